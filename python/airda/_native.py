"""Loads the compiled module ``airda._C`` on first use and remembers why it failed, if it did."""

from __future__ import annotations

import functools
import importlib
from types import ModuleType


@functools.cache
def _load() -> tuple[ModuleType | None, str | None]:
    try:
        return importlib.import_module("airda._C"), None
    except ImportError as exc:  # an unbuilt or broken extension must not break pure-Python use
        return None, f"{type(exc).__name__}: {exc}"


def native() -> ModuleType:
    """Return ``airda._C``; raise ImportError with the original reason if it cannot load."""
    module, error = _load()
    if module is None:
        raise ImportError(f"the compiled module airda._C is not importable ({error})")
    return module


def native_error() -> str | None:
    """Why ``airda._C`` cannot load, or None when it loads."""
    return _load()[1]
