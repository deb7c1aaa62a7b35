"""One rewrite's result, shared by the rewrite libraries of every language."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Candidate"]


@dataclass(frozen=True)
class Candidate:
    """A rewritten program: the rewrite's `kind` (``tile``, ``unroll``, ...), the `name` it is
    known by in the lineage, the new `source`, and a one-line `description`."""

    kind: str
    name: str
    source: str
    description: str
