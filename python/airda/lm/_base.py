"""The interface every language model of :mod:`airda.lm` implements, its result types and errors.

:class:`LM` is what the prompt optimisers (:mod:`airda.prompt`) and code evolution call: generate
text, chat, and score the log-probability of given continuations. Backends (``LocalLM``,
``HTTPLM``) and wrappers (``CachedLM``, ``BudgetedLM``) all subclass it, so a wrapper stacks on any
backend. This module imports only the standard library.
"""

from __future__ import annotations

import abc
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "LM",
    "BudgetExceeded",
    "Completion",
    "LMConnectionError",
    "LMError",
    "LMHTTPError",
    "LMResponseError",
    "LMTimeout",
    "Usage",
]


class LMError(RuntimeError):
    """A language model could not answer: the base of every error :mod:`airda.lm` raises about a
    call (bad arguments raise ``ValueError`` / ``TypeError`` instead)."""


class LMTimeout(LMError):
    """A request took longer than its timeout (after every retry)."""


class LMConnectionError(LMError):
    """The endpoint could not be reached (refused, reset, DNS), after every retry."""


class LMHTTPError(LMError):
    """The endpoint answered with an HTTP error status.

    Attributes:
        status: the HTTP status code.
    """

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class LMResponseError(LMError):
    """The endpoint answered something that is not the expected JSON (malformed, wrong shape)."""


class BudgetExceeded(LMError):
    """The call would exceed a :class:`~airda.lm.BudgetedLM`'s budget; raised before the call is
    made, so nothing was spent on it."""


@dataclass(frozen=True)
class Completion:
    """One generated text.

    Attributes:
        text: the generated text, without the prompt and without a stop string that ended it.
        finish_reason: ``"stop"`` (end of text or a stop string) or ``"length"`` (``max_tokens``
            reached).
        prompt_tokens: tokens in the prompt.
        completion_tokens: tokens generated.
    """

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


@dataclass
class Usage:
    """What a model was asked for: calls and tokens.

    A call is one prompt of :meth:`LM.generate` / :meth:`LM.chat`, or one prefix of
    :meth:`LM.score` / :meth:`LM.score_batch` (with all its continuations). Scoring counts each
    (prefix, continuation) pair's tokens as prompt tokens. ``cache_hits`` counts calls a
    :class:`~airda.lm.CachedLM` answered from its cache (those are not counted as calls).

    Example:
        >>> from airda.lm import Usage
        >>> u = Usage()
        >>> u.add(calls=2, prompt_tokens=30, completion_tokens=8)
        >>> u.total_tokens
        38
    """

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hits: int = 0
    _lock: threading.Lock = field(
        default_factory=threading.Lock, repr=False, compare=False, init=False
    )

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def add(
        self,
        *,
        calls: int = 0,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cache_hits: int = 0,
    ) -> None:
        """Count more usage (thread-safe)."""
        with self._lock:
            self.calls += calls
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
            self.cache_hits += cache_hits

    def snapshot(self) -> Usage:
        """A copy, e.g. to subtract later: ``lm.usage - before``."""
        with self._lock:
            return Usage(self.calls, self.prompt_tokens, self.completion_tokens, self.cache_hits)

    def __sub__(self, other: Usage) -> Usage:
        return Usage(
            self.calls - other.calls,
            self.prompt_tokens - other.prompt_tokens,
            self.completion_tokens - other.completion_tokens,
            self.cache_hits - other.cache_hits,
        )

    def __getstate__(self) -> dict[str, int]:
        return self.as_dict()

    def __setstate__(self, state: dict[str, int]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict (JSON-ready)."""
        return {
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cache_hits": self.cache_hits,
        }


# --- argument checks shared by every backend --------------------------------------------------


def check_texts(texts: Any, what: str) -> list[str]:
    """`texts` as a list of str; a bare str (a common slip) or a non-str item is a TypeError."""
    if isinstance(texts, str | bytes):
        raise TypeError(f"{what} must be a sequence of str, not a single {type(texts).__name__}")
    try:
        out = list(texts)
    except TypeError:
        raise TypeError(f"{what} must be a sequence of str, got {type(texts).__name__}") from None
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise TypeError(f"{what}[{i}] must be a str, got {type(t).__name__}")
    return out


def check_messages(conversations: Any) -> list[list[dict[str, str]]]:
    """Conversations as lists of ``{"role", "content"}`` dicts, checked."""
    if isinstance(conversations, str | bytes | Mapping):
        raise TypeError("conversations must be a sequence of conversations (lists of messages)")
    out = []
    for i, conv in enumerate(conversations):
        if isinstance(conv, str | bytes | Mapping):
            raise TypeError(
                f"conversations[{i}] must be a sequence of messages, got {type(conv).__name__}"
            )
        msgs = []
        for j, m in enumerate(conv):
            if not isinstance(m, Mapping):
                raise TypeError(
                    f"conversations[{i}][{j}] must be a mapping with 'role' and 'content'"
                )
            role, content = m.get("role"), m.get("content")
            if not isinstance(role, str) or not isinstance(content, str):
                raise TypeError(
                    f"conversations[{i}][{j}] needs str 'role' and 'content', got {dict(m)!r}"
                )
            msgs.append({"role": role, "content": content})
        if not msgs:
            raise ValueError(f"conversations[{i}] is empty")
        out.append(msgs)
    return out


def check_generation(
    max_tokens: Any, temperature: Any, stop: Any, seed: Any
) -> tuple[int, float, list[str], int | None]:
    """Checked generation parameters: (max_tokens, temperature, stop strings, seed)."""
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0:
        raise ValueError(f"max_tokens must be an int >= 0, got {max_tokens!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise TypeError(f"temperature must be a number, got {temperature!r}")
    temperature = float(temperature)
    if not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be finite and >= 0, got {temperature!r}")
    if stop is None:
        stops: list[str] = []
    elif isinstance(stop, str):
        stops = [stop]
    else:
        stops = check_texts(stop, "stop")
    if any(s == "" for s in stops):
        raise ValueError("stop strings must not be empty")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be an int or None, got {seed!r}")
    return max_tokens, temperature, stops, seed


def check_requests(requests: Any) -> list[tuple[str, list[str]]]:
    """Scoring requests as (prefix, [continuations]) pairs, checked."""
    if isinstance(requests, str | bytes | Mapping):
        raise TypeError("requests must be a sequence of (prefix, continuations) pairs")
    out = []
    for i, r in enumerate(requests):
        if isinstance(r, str | bytes) or not isinstance(r, Sequence) or len(r) != 2:
            raise TypeError(f"requests[{i}] must be a (prefix, continuations) pair, got {r!r}")
        prefix, conts = r
        if not isinstance(prefix, str):
            raise TypeError(f"requests[{i}]: the prefix must be a str, got {type(prefix).__name__}")
        out.append((prefix, check_texts(conts, f"requests[{i}] continuations")))
    return out


def truncate_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`text` cut before the earliest stop string; whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def render_chatml(messages: Sequence[Mapping[str, str]], add_generation_prompt: bool = True) -> str:
    """ChatML, the chat format of SmolLM2 and many open models: the fallback of
    :meth:`LM.render_chat` when a model brings no template of its own."""
    parts = [f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages]
    if add_generation_prompt:
        parts.append("<|im_start|>assistant\n")
    return "".join(parts)


class LM(abc.ABC):
    """A language model: generate, chat, and score continuations.

    Subclasses implement :meth:`generate` and :meth:`score`; :meth:`chat` renders each
    conversation with :meth:`render_chat` and generates, and :meth:`score_batch` loops over
    :meth:`score` unless a backend does better (``LocalLM`` shares the KV cache of common
    prefixes). Every method is safe to call from several threads.

    Attributes:
        name: the model's name (part of a cache key, shown in reports).
        usage: calls and tokens so far (:class:`Usage`).
    """

    name: str = "lm"

    def __init__(self) -> None:
        self.usage = Usage()

    @abc.abstractmethod
    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_tokens: int = 64,
        temperature: float = 0.0,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
    ) -> list[Completion]:
        """Continue each prompt.

        Args:
            prompts: the texts to continue (a list, even for one).
            max_tokens: the most tokens to generate for each.
            temperature: 0 for greedy decoding, else sampling at this temperature.
            stop: a string (or strings) that ends the generation; it is not part of the text.
            seed: the sampling seed (None: not reproducible when temperature > 0).

        Returns:
            One :class:`Completion` per prompt, in order.
        """

    def chat(
        self,
        conversations: Sequence[Sequence[Mapping[str, str]]],
        *,
        max_tokens: int = 64,
        temperature: float = 0.0,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
    ) -> list[Completion]:
        """Answer each conversation (a list of ``{"role", "content"}`` messages) as the
        assistant; the parameters are :meth:`generate`'s."""
        convs = check_messages(conversations)
        prompts = [self.render_chat(c) for c in convs]
        return self.generate(
            prompts, max_tokens=max_tokens, temperature=temperature, stop=stop, seed=seed
        )

    @abc.abstractmethod
    def score(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        """The log-probability (natural log, summed over its tokens) of each continuation
        given the prefix.

        The text is tokenized as ``prefix + continuation``, so a continuation's leading space
        belongs to it: score ``" positive"`` after ``"Sentiment:"``. An empty continuation
        scores 0.0.
        """

    def score_batch(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        """:meth:`score` for many (prefix, continuations) pairs: one list of log-probabilities
        per request, in order."""
        return [self.score(p, c) for p, c in check_requests(requests)]

    def render_chat(
        self, messages: Sequence[Mapping[str, str]], add_generation_prompt: bool = True
    ) -> str:
        """The prompt text :meth:`chat` sends for `messages` (the model's chat template; ChatML
        when it has none), so that a chat prompt can be scored with :meth:`score`."""
        (msgs,) = check_messages([messages])
        return render_chatml(msgs, add_generation_prompt)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
