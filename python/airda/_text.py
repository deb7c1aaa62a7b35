"""Plain-text tables for terminals and reports (the CLI and ``airda.eval`` reports share them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["format_cell", "table"]


def format_cell(v: Any) -> str:
    """None as ``-``, floats to 6 significant digits, sequences in parentheses."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(format_cell(x) for x in v) + ")"
    return str(v)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns aligned on spaces under a dashed rule.

    Example:
        >>> print(table(["name", "value"], [["a", 1.5], ["bb", None]]))
        name  value
        ----  -----
        a     1.5
        bb    -
    """
    cells = [[format_cell(c) for c in r] for r in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)
