"""Locating the data sets under ``../shared/data`` (beside the repository, never committed).

``AIRDA_SHARED_DATA`` overrides the location. A test that needs a file calls
:func:`shared_data_file`, which skips the test, saying why, when the file is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def shared_data_root() -> Path:
    return Path(os.environ.get("AIRDA_SHARED_DATA") or DEFAULT_ROOT)


def shared_data_file(*parts: str) -> Path:
    """The path of a shared data file; skips the calling test if it is absent."""
    path = shared_data_root().joinpath(*parts)
    if not path.is_file():
        pytest.skip(
            f"needs the shared data file {path}, which is absent (the data live in "
            "../shared/data beside the repository, or where AIRDA_SHARED_DATA points)"
        )
    return path
