"""``HTTPLM``: a model behind an OpenAI-compatible endpoint (``/v1/chat/completions``,
``/v1/completions``), on the standard library only.

Each request has a timeout (every socket operation, and the whole body read); 429, 5xx, timeouts
and connection errors are retried with exponential backoff and full jitter (``Retry-After`` is
honoured, capped); a thread pool bounds how many requests are in flight and a rate limit spaces
their starts. The API key is read from an environment variable when a request is sent: it is not
kept on the object, logged, written to a cache, or put in an error message.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from airda._logging import get_logger
from airda.lm._base import (
    LM,
    Completion,
    LMConnectionError,
    LMError,
    LMHTTPError,
    LMResponseError,
    LMTimeout,
    check_generation,
    check_messages,
    check_texts,
)

__all__ = ["HTTPLM"]

_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_MAX_BACKOFF = 30.0
_BODY_IN_ERRORS = 300  # characters of a server's error body quoted in an exception

_log = get_logger()


class HTTPLM(LM):
    """An OpenAI-compatible endpoint: ``generate`` uses ``/completions``, ``chat`` uses
    ``/chat/completions``, ``score`` uses ``/completions`` with ``echo=True``, ``logprobs=1``
    and ``max_tokens=0`` (servers that do not offer this raise ``NotImplementedError``).

    Args:
        base_url: the API root, e.g. ``"http://127.0.0.1:8000/v1"`` or
            ``"https://api.openai.com/v1"``.
        model: the model's name, sent with every request.
        api_key_env: the environment variable that holds the API key (read at each request;
            no key, no ``Authorization`` header, as local servers want).
        timeout: seconds allowed for each attempt of a request.
        max_retries: retries after the first attempt (429, 5xx, timeouts, connection errors).
        concurrency: the most requests in flight at once.
        requests_per_second: the most request starts per second (None: no limit).
        backoff: the first retry's mean wait in seconds; each retry doubles it (full jitter).

    Example:
        >>> from airda.lm import HTTPLM
        >>> lm = HTTPLM("http://127.0.0.1:8000/v1", "smollm2", timeout=30)
        >>> lm.name
        'smollm2'
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 3,
        concurrency: int = 4,
        requests_per_second: float | None = None,
        backoff: float = 0.5,
    ):
        super().__init__()
        if not isinstance(base_url, str):
            raise TypeError(f"base_url must be a str, got {type(base_url).__name__}")
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if parts.username or parts.password:
            raise ValueError("base_url must not hold credentials: use api_key_env")
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a non-empty str, got {model!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ValueError(f"timeout must be a number > 0, got {timeout!r}")
        if isinstance(backoff, bool) or not isinstance(backoff, int | float) or not backoff >= 0:
            raise ValueError(f"backoff must be a number >= 0, got {backoff!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an int >= 1, got {concurrency!r}")
        if requests_per_second is not None and (
            isinstance(requests_per_second, bool)
            or not isinstance(requests_per_second, int | float)
            or not requests_per_second > 0
        ):
            raise ValueError(
                f"requests_per_second must be > 0 or None, got {requests_per_second!r}"
            )
        if api_key_env is not None and (not isinstance(api_key_env, str) or not api_key_env):
            raise ValueError(f"api_key_env must be a variable name or None, got {api_key_env!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = model
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.requests_per_second = requests_per_second
        self.backoff = float(backoff)
        self._slots = threading.BoundedSemaphore(concurrency)
        self._rate_lock = threading.Lock()
        self._next_start = 0.0
        self._scores = True  # until the server refuses an echo request
        self._rng = random.Random()

    @property
    def identity(self) -> str:
        """What :class:`~airda.lm.CachedLM` keys responses on: the endpoint and the model."""
        return f"http {self.base_url} {self.model}"

    def __repr__(self) -> str:
        return f"HTTPLM({self.base_url!r}, {self.model!r})"

    # --- the public interface ------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_tokens: int = 64,
        temperature: float = 0.0,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
    ) -> list[Completion]:
        """Continue each prompt with ``/completions`` (one request each, concurrently)."""
        texts = check_texts(prompts, "prompts")
        params = self._params(max_tokens, temperature, stop, seed)
        bodies = [{"model": self.model, "prompt": t, **params} for t in texts]
        replies = self._map("/completions", bodies)
        out = [self._completion(r, "text") for r in replies]
        self._count(out)
        return out

    def chat(
        self,
        conversations: Sequence[Sequence[Mapping[str, str]]],
        *,
        max_tokens: int = 64,
        temperature: float = 0.0,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
    ) -> list[Completion]:
        """Answer each conversation with ``/chat/completions`` (the server applies its
        model's chat template)."""
        convs = check_messages(conversations)
        params = self._params(max_tokens, temperature, stop, seed)
        bodies = [{"model": self.model, "messages": c, **params} for c in convs]
        replies = self._map("/chat/completions", bodies)
        out = [self._completion(r, "message") for r in replies]
        self._count(out)
        return out

    def score(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        """Log-probability of each continuation given `prefix`, from ``/completions`` with
        ``echo=True, logprobs=1, max_tokens=0`` (one request per continuation).

        Raises:
            NotImplementedError: the server does not return the prompt's log-probabilities.
        """
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
        return self.score_batch([(prefix, check_texts(continuations, "continuations"))])[0]

    def score_batch(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        """:meth:`score` for many requests, their continuations sent concurrently."""
        from airda.lm._base import check_requests

        reqs = check_requests(requests)
        if not self._scores:
            raise self._no_scores(None)
        pairs = [(p, c) for p, conts in reqs for c in conts if c]
        bodies = [
            {
                "model": self.model,
                "prompt": p + c,
                "max_tokens": 0,
                "echo": True,
                "logprobs": 1,
                "temperature": 0.0,
            }
            for p, c in pairs
        ]
        try:
            replies = self._map("/completions", bodies)
        except LMHTTPError as exc:
            # a missing endpoint, or a refusal that names the feature (not, say, a prompt over
            # the context length): the server does not score
            text = str(exc).lower()
            if exc.status in (404, 405, 501) or (
                exc.status in (400, 422) and ("echo" in text or "logprob" in text)
            ):
                self._scores = False
                raise self._no_scores(str(exc)) from None
            raise
        values = iter(
            [self._continuation_logprob(r, p, c) for r, (p, c) in zip(replies, pairs, strict=True)]
        )
        prompt_tokens = sum(_usage(r).get("prompt_tokens", 0) for r in replies)
        self.usage.add(calls=len(reqs), prompt_tokens=prompt_tokens)
        return [[next(values) if c else 0.0 for c in conts] for _, conts in reqs]

    def models(self) -> list[str]:
        """The model names the endpoint lists (``GET /models``)."""
        reply = self._request("GET", "/models", None)
        data = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(data, list):
            raise LMResponseError(f"{self.base_url}/models: no 'data' list in the reply")
        return [str(m.get("id")) for m in data if isinstance(m, dict)]

    # --- helpers -------------------------------------------------------------------------

    def _no_scores(self, why: str | None) -> NotImplementedError:
        return NotImplementedError(
            f"{self.base_url} does not score text: /completions with echo=True, logprobs=1 and "
            "max_tokens=0 was refused"
            + (f" ({why})" if why else "")
            + "; score with a LocalLM, or an endpoint that returns prompt log-probabilities "
            "(airda lm serve, vLLM)"
        )

    @staticmethod
    def _params(max_tokens: Any, temperature: Any, stop: Any, seed: Any) -> dict[str, Any]:
        max_tokens, temperature, stops, seed = check_generation(max_tokens, temperature, stop, seed)
        params: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
        if stops:
            params["stop"] = stops
        if seed is not None:
            params["seed"] = seed
        return params

    def _count(self, out: list[Completion]) -> None:
        self.usage.add(
            calls=len(out),
            prompt_tokens=sum(c.prompt_tokens for c in out),
            completion_tokens=sum(c.completion_tokens for c in out),
        )

    def _completion(self, reply: Any, kind: str) -> Completion:
        try:
            choice = reply["choices"][0]
            if kind == "message":
                text = choice["message"]["content"]
                text = "" if text is None else text
            else:
                text = choice["text"]
            if not isinstance(text, str):
                raise TypeError("text is not a string")
            reason = choice.get("finish_reason") or "stop"
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise LMResponseError(
                f"{self.base_url}: the reply has no choices[0].{kind} text ({exc})"
            ) from None
        usage = _usage(reply)
        return Completion(
            text,
            str(reason),
            int(usage.get("prompt_tokens", 0) or 0),
            int(usage.get("completion_tokens", 0) or 0),
        )

    def _continuation_logprob(self, reply: Any, prefix: str, cont: str) -> float:
        try:
            lp = reply["choices"][0]["logprobs"]
            tokens, values, offsets = lp["tokens"], lp["token_logprobs"], lp["text_offset"]
        except (KeyError, IndexError, TypeError):
            self._scores = False
            raise self._no_scores("the reply holds no prompt log-probabilities") from None
        if not (len(tokens) == len(values) == len(offsets)):
            raise LMResponseError(f"{self.base_url}: logprobs lists of different lengths")
        cut, total = len(prefix), len(prefix) + len(cont)
        found, out = False, 0.0
        for i, (start, value) in enumerate(zip(offsets, values, strict=True)):
            end = offsets[i + 1] if i + 1 < len(offsets) else total
            if start >= cut or end > cut:
                if value is None:
                    raise LMResponseError(
                        f"{self.base_url}: no log-probability for the continuation's first "
                        "token (the server gives none for a text's first token: give a prefix)"
                    )
                out += float(value)
                found = True
        if not found:
            raise LMResponseError(f"{self.base_url}: the echoed tokens do not cover {cont!r}")
        return out

    def _map(self, path: str, bodies: list[dict[str, Any]]) -> list[Any]:
        if len(bodies) <= 1:
            return [self._request("POST", path, b) for b in bodies]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(bodies))) as pool:
            return list(pool.map(lambda b: self._request("POST", path, b), bodies))

    def _wait_for_rate(self) -> None:
        if not self.requests_per_second:
            return
        with self._rate_lock:
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + 1.0 / self.requests_per_second
        if start > now:
            time.sleep(start - now)

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        """One request with retries; the parsed JSON reply."""
        url = self.base_url + path
        data = None if body is None else json.dumps(body).encode()
        attempt = 0
        while True:
            retry_after = None
            try:
                with self._slots:
                    self._wait_for_rate()
                    status, raw, retry_after = self._send(method, url, data)
                if status < 400:
                    return self._parse(url, raw)
                error: LMError = LMHTTPError(
                    f"{method} {url}: HTTP {status}: {self._redact(_excerpt(raw))}", status
                )
                retryable = status in _RETRY_STATUS
            except _Timeout:
                error, retryable = (
                    LMTimeout(f"{method} {url}: no reply within {self.timeout:g} s"),
                    True,
                )
            except _Unreachable as exc:
                error, retryable = (
                    LMConnectionError(f"{method} {url}: {self._redact(str(exc))}"),
                    True,
                )
            if not retryable or attempt >= self.max_retries:
                if attempt:
                    error.args = (f"{error.args[0]} (after {attempt + 1} attempts)",)
                raise error
            wait = self._rng.uniform(0, min(_MAX_BACKOFF, self.backoff * 2**attempt))
            if retry_after is not None:
                wait = max(wait, min(retry_after, _MAX_BACKOFF))
            _log.debug("%s %s: %s; retry %d in %.2f s", method, url, error, attempt + 1, wait)
            time.sleep(wait)
            attempt += 1

    def _send(self, method: str, url: str, data: bytes | None) -> tuple[int, bytes, float | None]:
        """One attempt: (status, body, Retry-After seconds). Raises _Timeout / _Unreachable."""
        headers = {"Accept": "application/json", "User-Agent": "airda-lm"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        deadline = time.monotonic() + self.timeout
        try:
            try:
                response = urllib.request.urlopen(request, timeout=self.timeout)
            except urllib.error.HTTPError as exc:
                response = exc
            with response:
                status = response.status if hasattr(response, "status") else response.code
                retry_after = _seconds(response.headers.get("Retry-After"))
                # read1: what has arrived (one socket read, each under the timeout), so a
                # reply that trickles in still meets the deadline
                read = getattr(response, "read1", None) or response.read
                chunks = []
                while True:
                    if time.monotonic() > deadline:
                        raise _Timeout
                    chunk = read(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
                return status, b"".join(chunks), retry_after
        except _Timeout:
            raise
        except TimeoutError:
            raise _Timeout from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise _Timeout from None
            raise _Unreachable(str(exc.reason)) from None
        except (ConnectionError, OSError, ValueError) as exc:
            # refused/reset connections, a server that closed without a reply, bad chunking
            raise _Unreachable(f"{type(exc).__name__}: {exc}") from None

    def _parse(self, url: str, raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise LMResponseError(
                f"{url}: the reply is not JSON ({exc}): {self._redact(_excerpt(raw))}"
            ) from None

    def _redact(self, text: str) -> str:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return text.replace(key, "***") if key else text


class _Timeout(Exception):
    pass


class _Unreachable(Exception):
    pass


def _usage(reply: Any) -> dict[str, Any]:
    usage = reply.get("usage") if isinstance(reply, dict) else None
    return usage if isinstance(usage, dict) else {}


def _excerpt(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    return text if len(text) <= _BODY_IN_ERRORS else text[:_BODY_IN_ERRORS] + "..."


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
