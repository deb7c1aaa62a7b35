"""Compiled variants of the tune tests go to a private cache folder."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _tune_cache(tmp_path_factory):
    old = os.environ.get("AIRDA_CACHE_DIR")
    os.environ["AIRDA_CACHE_DIR"] = str(tmp_path_factory.mktemp("airda-cache"))
    yield
    if old is None:
        os.environ.pop("AIRDA_CACHE_DIR", None)
    else:
        os.environ["AIRDA_CACHE_DIR"] = old
