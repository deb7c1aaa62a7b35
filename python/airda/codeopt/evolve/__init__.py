"""Code evolution: a language model (or a library of deterministic rewrites) proposes variants
of a reference implementation; each is compiled, tested and timed in the sandbox, and the
search keeps a program database of them in an airda study.

- :class:`EvolveSpec`: the reference, its arguments or inputs, the correctness check, the
  metric (time or a score); :meth:`EvolveSpec.from_toml`.
- :func:`evolve`: the loop (islands, MAP-Elites cells, cascaded evaluation, resume), returning
  an :class:`EvolveResult` (the winner, its speed-up with its interval, its lineage).
- proposers: :class:`LMProposer` (any :mod:`airda.lm` backend), :class:`RewriteProposer`
  (deterministic rewrites, no model), :class:`MixedProposer`; the :class:`Proposer` protocol.
- :func:`apply_reply`: SEARCH/REPLACE blocks, unified diffs and whole functions from a reply.

See docs/evolve.md.

Example:
    >>> from airda.codeopt.evolve import apply_reply
    >>> apply_reply("```c\\nint f(void) { return 2; }\\n```", "int f(void) { return 1; }",
    ...             "c", "f").kind
    'program'
"""

import importlib
from typing import Any

_LAZY = {
    "EvolveSpec": "_spec",
    "Program": "_database",
    "ProgramDatabase": "_database",
    "code_digest": "_database",
    "normalise_code": "_database",
    "Edit": "_edit",
    "EditError": "_edit",
    "apply_reply": "_edit",
    "unified_diff": "_edit",
    "Evaluator": "_evaluate",
    "Outcome": "_evaluate",
    "profile_hint": "_evaluate",
    "Context": "_propose",
    "LMProposer": "_propose",
    "MixedProposer": "_propose",
    "Proposal": "_propose",
    "Proposer": "_propose",
    "RewriteProposer": "_propose",
    "EvolveResult": "_evolve",
    "LineageStep": "_evolve",
    "evolve": "_evolve",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'airda.codeopt.evolve' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"airda.codeopt.evolve.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = sorted(_LAZY)
