"""Prompts and their evaluation: the prompt space's one point (instruction, demos, answer
format, label words), rendering for a chat or a plain model, and :func:`evaluate` (label words
scored by log-probability, or generation then parsing), with an LM-call budget.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airda.prompt._task import Example, Task

__all__ = [
    "ANSWER_FORMATS",
    "BudgetExhausted",
    "CountedLM",
    "EvalResult",
    "Prompt",
    "evaluate",
]

# How the answer is asked for and read. "bare": the reply is the answer; "answer": the reply
# ends with "Answer: X" (scoring pre-fills "Answer:"); "options": the instruction lists the
# allowed answers (the label words) and the reply is one of them.
ANSWER_FORMATS: dict[str, str] = {
    "bare": "Reply with the answer only.",
    "answer": "Give your answer as 'Answer: <answer>'.",
    "options": "Reply with one of: {options}.",
}


class BudgetExhausted(RuntimeError):
    """The LM-call budget of an optimisation run is spent."""


class CountedLM:
    """An LM with its calls counted against an optional budget: one call per prompt generated
    or per prefix scored (a batch of k prompts is k calls), refused before it would exceed.

    When ``airda.lm.BudgetExceeded`` is raised by a wrapped ``BudgetedLM``, it passes through
    unchanged; this class counts the same unit for optimisers that need to plan batches.
    """

    def __init__(self, lm: Any, calls: int | None = None) -> None:
        if calls is not None and (
            isinstance(calls, bool) or not isinstance(calls, int) or calls < 0
        ):
            raise ValueError(f"budget calls must be a non-negative int or None, got {calls!r}")
        self.lm, self.budget, self.calls = lm, calls, 0

    @property
    def remaining(self) -> int | None:
        """Calls left (None: unlimited)."""
        return None if self.budget is None else max(self.budget - self.calls, 0)

    def _take(self, n: int) -> None:
        if self.budget is not None and self.calls + n > self.budget:
            raise BudgetExhausted(
                f"LM-call budget spent: {self.calls} of {self.budget} used, {n} more asked"
            )
        self.calls += n

    @property
    def name(self) -> str:
        return str(getattr(self.lm, "name", type(self.lm).__name__))

    def render_chat(
        self, messages: Sequence[Mapping[str, str]], add_generation_prompt: bool = True
    ) -> str:
        return self.lm.render_chat(messages, add_generation_prompt=add_generation_prompt)

    def generate(self, prompts: Sequence[str], **kw: Any) -> list[Any]:
        self._take(len(prompts))
        return self.lm.generate(list(prompts), **kw)

    def score_batch(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        self._take(len(requests))
        return self.lm.score_batch(list(requests))


@dataclass(frozen=True)
class Prompt:
    """One point of the prompt space.

    Args:
        instruction: the instruction text (may be empty).
        demos: worked examples shown before the input, in order.
        answer_format: a key of :data:`ANSWER_FORMATS`.
        label_words: for a classification task, the word that stands for each label
            (``{"positive": "good", ...}``); None for open-ended answers.
        chat: render with the model's chat template (demos as earlier turns); False for a
            plain-text prompt.

    Example:
        >>> p = Prompt("Is it positive?", answer_format="answer",
        ...            label_words={"positive": "Yes", "negative": "No"}, chat=False)
        >>> print(p.render("Great film."))
        Is it positive?
        Give your answer as 'Answer: <answer>'.
        <BLANKLINE>
        Input: Great film.
        Answer:
    """

    instruction: str = ""
    demos: tuple[Example, ...] = ()
    answer_format: str = "answer"
    label_words: Mapping[str, str] | None = None
    chat: bool = True

    def __post_init__(self) -> None:
        if self.answer_format not in ANSWER_FORMATS:
            raise ValueError(
                f"unknown answer_format {self.answer_format!r}; choose from {list(ANSWER_FORMATS)}"
            )
        object.__setattr__(self, "demos", tuple(self.demos))
        if self.label_words is not None:
            words = dict(self.label_words)
            if len(set(words.values())) != len(words):
                raise ValueError(f"label words must differ between labels, got {words}")
            object.__setattr__(self, "label_words", words)

    # ---- rendering ----------------------------------------------------------------------

    def word(self, target: str) -> str:
        """The answer text of a target: its label word, or the target itself."""
        if self.label_words is not None:
            return self.label_words.get(target, target)
        return target

    def system_text(self) -> str:
        """The instruction and the format line."""
        fmt = ANSWER_FORMATS[self.answer_format]
        if "{options}" in fmt:
            words = list(self.label_words.values()) if self.label_words else []
            fmt = fmt.format(options=", ".join(words)) if words else ANSWER_FORMATS["bare"]
        return "\n".join(x for x in (self.instruction.strip(), fmt) if x)

    def _reply(self, target: str) -> str:
        word = self.word(target)
        return f"Answer: {word}" if self.answer_format == "answer" else word

    def prefill(self) -> str:
        """What the reply starts with before the answer word ("Answer:" or nothing)."""
        return "Answer:" if self.answer_format == "answer" else ""

    def messages(self, input: str) -> list[dict[str, str]]:
        """The chat: a system turn, one user/assistant pair per demo, the input."""
        msgs = [{"role": "system", "content": self.system_text()}]
        for d in self.demos:
            msgs.append({"role": "user", "content": d.input})
            msgs.append({"role": "assistant", "content": self._reply(d.target)})
        msgs.append({"role": "user", "content": input})
        return msgs

    def render(self, input: str, lm: Any = None) -> str:
        """The prompt text for one input: through ``lm.render_chat`` when chat and an LM is
        given, else plain text (``Input: ...`` / ``Answer: ...`` blocks)."""
        if self.chat and lm is not None:
            return lm.render_chat(self.messages(input), add_generation_prompt=True)
        parts = [self.system_text(), ""]
        for d in self.demos:
            parts += [f"Input: {d.input}", f"Answer: {self.word(d.target)}", ""]
        parts += [f"Input: {input}", "Answer:"]
        return "\n".join(parts)

    def score_prefix(self, input: str, lm: Any = None) -> str:
        """The text the label words are scored after."""
        text = self.render(input, lm)
        if self.chat and lm is not None:
            return text + self.prefill()
        return text

    def continuations(self, labels: Sequence[str], lm: Any = None) -> list[str]:
        """The scored continuation of each label (a leading space after "Answer:")."""
        space = " " if (self.prefill() or not (self.chat and lm is not None)) else ""
        return [space + self.word(label) for label in labels]

    def text(self) -> str:
        """A readable rendering of the whole prompt (stored with each trial)."""
        return self.render("{input}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "instruction": self.instruction,
            "demos": [[d.input, d.target] for d in self.demos],
            "answer_format": self.answer_format,
            "label_words": dict(self.label_words) if self.label_words else None,
            "chat": self.chat,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Prompt:
        """Inverse of :meth:`to_dict`."""
        return cls(
            d.get("instruction", ""),
            tuple(Example(a, b) for a, b in d.get("demos", [])),
            d.get("answer_format", "answer"),
            d.get("label_words"),
            bool(d.get("chat", True)),
        )


@dataclass
class EvalResult:
    """Per-example scores of a prompt, with its predictions and parse failures."""

    scores: list[float]
    predictions: list[str | None]
    parse_failures: int
    calls: int
    failures: list[str] = field(default_factory=list)

    @property
    def mean(self) -> float:
        """The mean score (0 for no examples)."""
        return sum(self.scores) / len(self.scores) if self.scores else 0.0

    @property
    def spread(self) -> dict[str, int]:
        """How often each answer was predicted (parse failures under ``"<unparsed>"``)."""
        c = Counter("<unparsed>" if p is None else p for p in self.predictions)
        return dict(c.most_common())

    @property
    def parse_rate(self) -> float:
        """Share of examples whose answer could be read."""
        n = len(self.predictions)
        return 1.0 - self.parse_failures / n if n else 0.0


_ANSWER_RE = re.compile(r"answer\s*[:=]\s*(.+)", re.IGNORECASE)


def parse_reply(prompt: Prompt, text: str, labels: Sequence[str] | None) -> str | None:
    """Read the answer out of a generated reply; None when it cannot be read.

    With labels, the reply must name one label word (the first found wins); the "answer"
    format needs its ``Answer:`` line.
    """
    text = text.strip()
    if prompt.answer_format == "answer":
        m = _ANSWER_RE.search(text)
        if m is None:
            return None
        text = m.group(1).strip()
    else:
        text = text.splitlines()[0].strip() if text else ""
    if not text:
        return None
    if labels is None:
        return text
    words = {prompt.word(label).lower(): label for label in labels}
    best: tuple[int, str] | None = None
    for word, label in words.items():
        m = re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", text.lower())
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), label)
    return None if best is None else best[1]


def evaluate(
    prompt: Prompt,
    lm: Any,
    examples: Sequence[Example],
    *,
    task: Task | None = None,
    mode: str | None = None,
    max_tokens: int = 24,
) -> EvalResult:
    """Score a prompt on examples.

    ``mode="score"`` (default for a classification task or a prompt with label words): each
    label's word is scored by log-probability after the prompt (``lm.score_batch``, one
    request per example) and the best is the prediction; nothing is parsed, so nothing fails
    to parse. ``mode="generate"``: the model writes a reply (greedy) that is parsed
    (:func:`parse_reply`) and scored by the task's metric; an unreadable reply scores 0 and
    counts as a parse failure.

    Args:
        prompt: the prompt.
        lm: an ``airda.lm.LM`` (or a :class:`CountedLM`).
        examples: what to score it on.
        task: gives the labels and metric (default: the prompt's label words, exact match).
        mode: "score" or "generate" (default: "score" when there are labels).
        max_tokens: the reply's length limit in generate mode.

    Raises:
        ValueError: no examples, or scoring without labels.
    """
    examples = list(examples)
    if not examples:
        raise ValueError("evaluate needs at least one example (got an empty list)")
    labels = (
        task.labels if task is not None and task.labels is not None
        else (list(prompt.label_words) if prompt.label_words else None)
    )  # fmt: skip
    if mode is None:
        mode = "score" if labels is not None and (task is None or task.scored) else "generate"
    if mode not in ("score", "generate"):
        raise ValueError(f"mode must be 'score' or 'generate', got {mode!r}")
    base = lm.lm if isinstance(lm, CountedLM) else lm
    render_lm = base if prompt.chat else None
    if mode == "score":
        if labels is None:
            raise ValueError("mode 'score' needs labels (a classification task or label words)")
        conts = prompt.continuations(labels, render_lm)
        reqs = [(prompt.score_prefix(e.input, render_lm), conts) for e in examples]
        rows = lm.score_batch(reqs)
        preds: list[str | None] = []
        for row in rows:
            best = max(range(len(labels)), key=lambda i: row[i])
            preds.append(labels[best])
        scores = [float(p == e.target) for p, e in zip(preds, examples, strict=True)]
        return EvalResult(scores, preds, 0, len(reqs))
    texts = [prompt.render(e.input, render_lm) for e in examples]
    outs = lm.generate(texts, max_tokens=max_tokens, temperature=0.0, stop=["\n\n"])
    preds, scores, failures = [], [], 0
    for out, e in zip(outs, examples, strict=True):
        reply = getattr(out, "text", out)
        p = parse_reply(prompt, str(reply), labels)
        preds.append(p)
        if p is None:
            failures += 1
            scores.append(0.0)
        elif task is not None:
            scores.append(task.score_answer(p, e))
        else:
            scores.append(float(p == e.target) if labels else _exact(p, e.target))
    return EvalResult(scores, preds, failures, len(texts))


def _exact(p: str, t: str) -> float:
    from airda.prompt._task import exact_match

    return exact_match(p, t)
