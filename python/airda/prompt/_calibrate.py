"""Calibration: is a task within a model's reach at all, before anything is optimised?"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from airda.prompt._prompt import Prompt, evaluate
from airda.prompt._task import Task

__all__ = ["Calibration", "calibrate"]


@dataclass
class Calibration:
    """Zero-shot accuracy of the starting prompt on dev, against chance and the majority class.

    Attributes:
        task: the task's name.
        accuracy: mean metric of the starting prompt on dev.
        parse_rate: share of dev answers that could be read (1.0 when label words are scored).
        chance: 1 / number of labels (0 for open-ended tasks).
        majority_label: the most common train target; majority: its share of dev.
        spread: how often each answer was predicted on dev.
        per_word: with labels, the zero-shot accuracy of each verbalizer set (the i-th
            candidate word of every label), by the words joined with "/".
        in_reach: False when no tried prompt beats the best constant answer on dev by more
            than one example, or nothing parsed.
        reason: why it is (not) in reach, in words.
        calls: LM calls spent.
    """

    task: str
    accuracy: float
    parse_rate: float
    chance: float
    majority_label: str | None
    majority: float
    spread: dict[str, int]
    per_word: dict[str, float]
    in_reach: bool
    reason: str
    calls: int

    def __str__(self) -> str:
        words = ", ".join(f"{k} {v:.2f}" for k, v in self.per_word.items())
        return (
            f"{self.task}: zero-shot {self.accuracy:.3f} (parse rate {self.parse_rate:.2f}), "
            f"chance {self.chance:.3f}, majority {self.majority_label!r} {self.majority:.3f}; "
            f"answers {self.spread}" + (f"; label words: {words}" if words else "") + "\n"
            f"{'in reach' if self.in_reach else 'OUT OF REACH'}: {self.reason}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return dict(self.__dict__)


def calibrate(
    task: Task, lm: Any, *, prompt: Prompt | None = None, words: bool = True
) -> Calibration:
    """Score the starting prompt zero-shot on dev, and (with `words`) each verbalizer set.

    A task is flagged out of reach when the best prompt tried does not beat always answering
    the majority label by more than one dev example, or when (generation) nothing parses: an
    optimiser would then most likely find a prompt that repeats one answer.

    Args:
        task: the task.
        lm: an ``airda.lm.LM``.
        prompt: the prompt to calibrate (default: the task's starting prompt).
        words: also try the i-th candidate word of every label, for each i.

    Example:
        >>> from airda.prompt import builtin_task, calibrate  # doctest: +SKIP
        >>> print(calibrate(builtin_task("sentiment"), airda.lm.LocalLM("smollm2")))  # doctest: +SKIP
    """
    from airda.prompt._optimize import start_prompt

    prompt = prompt or start_prompt(task)
    res = evaluate(prompt, lm, task.dev, task=task)
    calls = res.calls
    per_word: dict[str, float] = {}
    best = res.mean
    if words and task.labels and task.scored:
        depth = max(len(v) for v in task.verbalizers.values())
        for i in range(depth):
            chosen = {
                lab: task.verbalizers[lab][min(i, len(task.verbalizers[lab]) - 1)]
                for lab in task.labels
            }
            if len(set(chosen.values())) < len(chosen):
                continue
            p = Prompt(prompt.instruction, prompt.demos, prompt.answer_format, chosen, prompt.chat)
            r = evaluate(p, lm, task.dev, task=task)
            calls += r.calls
            per_word["/".join(chosen.values())] = r.mean
            best = max(best, r.mean)
    chance = 1.0 / len(task.labels) if task.labels else 0.0
    maj_label, maj = task.majority() if task.labels else (None, 0.0)
    if not task.labels:
        counts = Counter(e.target for e in task.train)
        maj_label = counts.most_common(1)[0][0]
        maj = sum(e.target == maj_label for e in task.dev) / len(task.dev)
    # The level to beat: the best constant answer on dev (the train majority, or another label
    # when dev happens to hold more of it), plus one dev example.
    counts = Counter(e.target for e in task.dev)
    constant = counts.most_common(1)[0][1] / len(task.dev)
    margin = 1.0 / len(task.dev)
    if res.parse_rate == 0.0:
        in_reach, reason = False, "no reply of the starting prompt could be parsed"
    elif best <= max(maj, constant) + margin:
        in_reach, reason = (
            False,
            f"the best prompt tried ({best:.3f}) does not beat the best constant answer "
            f"({max(maj, constant):.3f}) by more than one dev example",
        )
    else:
        in_reach, reason = (
            True,
            f"the best prompt tried scores {best:.3f} > best constant answer "
            f"{max(maj, constant):.3f}",
        )
    return Calibration(
        task.name, res.mean, res.parse_rate, chance, maj_label, maj, res.spread, per_word,
        in_reach, reason, calls,
    )  # fmt: skip
