"""``BudgetedLM``: a cap on calls and tokens, checked before each call.

A call is what :class:`~airda.lm.Usage` counts: one prompt generated, or one prefix scored (with
all its continuations). Before a call the wrapper reserves the most it can cost, and refuses it
with :class:`~airda.lm.BudgetExceeded` if that would pass the cap; nothing is spent on a refused
call. What counts is what the wrapped model reports (so a :class:`~airda.lm.CachedLM` inside
makes cache hits free).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from airda.lm._base import (
    LM,
    BudgetExceeded,
    Completion,
    Usage,
    check_generation,
    check_messages,
    check_requests,
    check_texts,
)

__all__ = ["BudgetedLM"]


class BudgetedLM(LM):
    """`lm` with at most `calls` calls and `tokens` tokens (prompt plus completion).

    The token cost of a call is reserved in advance: its prompt tokens (counted with the model's
    tokenizer when it has one, else estimated as one per 4 characters, rounded up) plus
    ``max_tokens`` for each prompt generated; what the model then reports is what is spent.

    Args:
        lm: the model.
        calls: the most calls (None: no cap).
        tokens: the most tokens (None: no cap).

    Example:
        >>> from airda.lm import BudgetedLM, BudgetExceeded, tiny_model
        >>> lm = BudgetedLM(tiny_model(), calls=2)
        >>> _ = lm.score("Q: 2+2=", [" 4", " 5"])
        >>> _ = lm.score("Q: 3+3=", [" 6"])
        >>> try:
        ...     lm.score("Q: 4+4=", [" 8"])
        ... except BudgetExceeded as exc:
        ...     print(exc)
        budget of 2 calls: 2 used, this call needs 1
    """

    def __init__(self, lm: LM, calls: int | None = None, tokens: int | None = None):
        super().__init__()
        if not isinstance(lm, LM):
            raise TypeError(f"lm must be an airda.lm.LM, got {type(lm).__name__}")
        for what, value in (("calls", calls), ("tokens", tokens)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ValueError(f"{what} must be an int >= 0 or None, got {value!r}")
        self.lm = lm
        self.name = lm.name
        self.calls = calls
        self.tokens = tokens
        self._lock = threading.Lock()
        self._reserved_calls = 0
        self._reserved_tokens = 0

    @property
    def identity(self) -> str:
        return str(getattr(self.lm, "identity", f"{type(self.lm).__name__} {self.lm.name}"))

    @property
    def remaining_calls(self) -> int | None:
        """Calls left (None: no cap)."""
        return None if self.calls is None else max(self.calls - self.usage.calls, 0)

    @property
    def remaining_tokens(self) -> int | None:
        """Tokens left (None: no cap)."""
        return None if self.tokens is None else max(self.tokens - self.usage.total_tokens, 0)

    def _count_tokens(self, text: str) -> int:
        inner = self.lm
        while not hasattr(inner, "tokenizer") and hasattr(inner, "lm"):
            inner = inner.lm
        tok = getattr(inner, "tokenizer", None)
        if tok is not None:
            return len(tok(text)["input_ids"])
        return math.ceil(len(text) / 4)

    def _run(self, calls: int, tokens: int, fn: Any) -> Any:
        with self._lock:
            used = self.usage
            if self.calls is not None and used.calls + self._reserved_calls + calls > self.calls:
                raise BudgetExceeded(
                    f"budget of {self.calls} calls: {used.calls + self._reserved_calls} used, "
                    f"this call needs {calls}"
                )
            if (
                self.tokens is not None
                and used.total_tokens + self._reserved_tokens + tokens > self.tokens
            ):
                raise BudgetExceeded(
                    f"budget of {self.tokens} tokens: {used.total_tokens + self._reserved_tokens} "
                    f"used, this call may need {tokens}"
                )
            self._reserved_calls += calls
            self._reserved_tokens += tokens
        before = self.lm.usage.snapshot()
        try:
            return fn()
        finally:
            spent: Usage = self.lm.usage - before
            with self._lock:
                self._reserved_calls -= calls
                self._reserved_tokens -= tokens
                self.usage.add(
                    calls=spent.calls,
                    prompt_tokens=spent.prompt_tokens,
                    completion_tokens=spent.completion_tokens,
                    cache_hits=spent.cache_hits,
                )

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_tokens: int = 64,
        temperature: float = 0.0,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
    ) -> list[Completion]:
        """:meth:`LM.generate` within the budget."""
        texts = check_texts(prompts, "prompts")
        check_generation(max_tokens, temperature, stop, seed)
        need = (
            sum(self._count_tokens(t) for t in texts) + max_tokens * len(texts)
            if self.tokens is not None
            else 0
        )
        return self._run(
            len(texts),
            need,
            lambda: self.lm.generate(
                texts, max_tokens=max_tokens, temperature=temperature, stop=stop, seed=seed
            ),
        )

    def chat(
        self,
        conversations: Sequence[Sequence[Mapping[str, str]]],
        *,
        max_tokens: int = 64,
        temperature: float = 0.0,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
    ) -> list[Completion]:
        """:meth:`LM.chat` within the budget."""
        convs = check_messages(conversations)
        check_generation(max_tokens, temperature, stop, seed)
        need = (
            sum(self._count_tokens(self.lm.render_chat(c)) for c in convs) + max_tokens * len(convs)
            if self.tokens is not None
            else 0
        )
        return self._run(
            len(convs),
            need,
            lambda: self.lm.chat(
                convs, max_tokens=max_tokens, temperature=temperature, stop=stop, seed=seed
            ),
        )

    def score(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        """:meth:`LM.score` within the budget (one call)."""
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
        return self.score_batch([(prefix, check_texts(continuations, "continuations"))])[0]

    def score_batch(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        """:meth:`LM.score_batch` within the budget (one call per request)."""
        reqs = check_requests(requests)
        need = (
            sum(self._count_tokens(p + c) + (p == "") for p, conts in reqs for c in conts)
            if self.tokens is not None
            else 0
        )
        return self._run(len(reqs), need, lambda: self.lm.score_batch(reqs))

    def render_chat(self, messages: Any, add_generation_prompt: bool = True) -> str:
        return self.lm.render_chat(messages, add_generation_prompt)

    def __repr__(self) -> str:
        return f"BudgetedLM({self.lm!r}, calls={self.calls}, tokens={self.tokens})"
