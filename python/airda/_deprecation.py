"""Names and modules that moved, served from their old paths for one release with a
:class:`DeprecationWarning` naming the new home (one place, so every shim says the same)."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["moved_module", "moved_names"]


def _warn(old: str, new: str, stacklevel: int) -> None:
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release; import it from {new}",
        DeprecationWarning,
        stacklevel=stacklevel + 1,
    )


def moved_names(module: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that serves each name of `homes` from its new module.

    Example:
        >>> import warnings
        >>> getattr_ = moved_names("old.place", {"sqrt": "math"})
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     getattr_("sqrt")(9.0), str(seen[0].message)
        (3.0, 'old.place.sqrt is deprecated and will be removed in the next release; import it from math')
    """

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        _warn(f"{module}.{name}", home, 2)
        return getattr(importlib.import_module(home), name)

    return __getattr__


def moved_module(module: str, new: str) -> tuple[list[str], Callable[[str], Any]]:
    """Warn (at import) that `module` moved to `new`; return the ``__all__`` and the
    ``__getattr__`` that forward everything, private helpers included, to `new`."""
    target = importlib.import_module(new)
    _warn(module, new, 3)

    def __getattr__(name: str) -> Any:
        # Dunders stay the shim's own (a forwarded __path__ would make it look like a package).
        if name.startswith("__"):
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        return getattr(target, name)

    return list(getattr(target, "__all__", [])), __getattr__
