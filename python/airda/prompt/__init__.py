"""Prompt optimisation over an airda.lm backend: tasks and metrics, calibration, and optimisers
(instruction proposal, meta-prompting, evolution, few-shot selection, joint search, reflection)
run as durable studies.

The prompt space: instruction text, demo subset and order, answer format, and the word that
stands for each label. With a small model the last two decide much of the accuracy, so they are
searched too, and classification answers are read by scoring each label word's log-probability
(no generation, no parse failures). :func:`calibrate` says first whether a task is within the
model's reach; :func:`optimize` runs one method as a study and ends on the locked test split
with paired verdicts against the starting prompt and the majority-class answer.

Example:
    >>> from airda.prompt import Prompt, builtin_task
    >>> task = builtin_task("sentiment", n=40, seed=0)
    >>> print(Prompt("Is it positive?", label_words={"positive": "Yes", "negative": "No"},
    ...              chat=False).render(task.dev[0].input))
    Is it positive?
    Give your answer as 'Answer: <answer>'.
    <BLANKLINE>
    Input: What a horrible service!
    Answer:
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ANSWER_FORMATS",
    "BUILTIN_TASKS",
    "METHODS",
    "BudgetExhausted",
    "Calibration",
    "CountedLM",
    "EvalResult",
    "Example",
    "OptimizeResult",
    "Prompt",
    "Task",
    "builtin_task",
    "calibrate",
    "evaluate",
    "exact_match",
    "load_task",
    "optimize",
    "start_prompt",
    "token_f1",
]

_WHERE = {
    "BUILTIN_TASKS": "_task",
    "Example": "_task",
    "Task": "_task",
    "builtin_task": "_task",
    "exact_match": "_task",
    "load_task": "_task",
    "token_f1": "_task",
    "ANSWER_FORMATS": "_prompt",
    "BudgetExhausted": "_prompt",
    "CountedLM": "_prompt",
    "EvalResult": "_prompt",
    "Prompt": "_prompt",
    "evaluate": "_prompt",
    "Calibration": "_calibrate",
    "calibrate": "_calibrate",
    "METHODS": "_optimize",
    "OptimizeResult": "_optimize",
    "optimize": "_optimize",
    "start_prompt": "_optimize",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'airda.prompt' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"airda.prompt.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
