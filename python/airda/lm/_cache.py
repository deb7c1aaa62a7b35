"""``CachedLM``: a response cache in SQLite in front of any :class:`~airda.lm.LM`.

A response is keyed by the model (its ``identity``: for an endpoint, URL and model name; never
an API key), the operation, the request and its parameters. Deterministic requests are cached:
greedy generation (temperature 0) or sampling with a seed, and every score. Several processes can
share one file: it is in WAL mode, and writes take the lock up front (``BEGIN IMMEDIATE``) with a
busy timeout.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airda.lm._base import (
    LM,
    Completion,
    Usage,
    check_generation,
    check_messages,
    check_requests,
    check_texts,
)

__all__ = ["CachedLM"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lm_responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    op TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL
)
"""


class CachedLM(LM):
    """`lm` with its responses kept in a SQLite file and reused.

    Args:
        lm: the model to cache.
        path: the SQLite file (created with its folder when absent); shareable by processes.

    ``usage.calls`` counts what was sent to `lm` (misses), ``usage.cache_hits`` what the cache
    answered. Sampling without a seed (temperature > 0, seed None) is never cached.

    Example:
        >>> import tempfile, os
        >>> from airda.lm import CachedLM, tiny_model
        >>> lm = CachedLM(tiny_model(), os.path.join(tempfile.mkdtemp(), "lm-cache.db"))
        >>> a = lm.score("Sentiment:", [" positive"])
        >>> b = lm.score("Sentiment:", [" positive"])
        >>> a == b, lm.usage.calls, lm.usage.cache_hits
        (True, 1, 1)
    """

    def __init__(self, lm: LM, path: str | os.PathLike):
        super().__init__()
        if not isinstance(lm, LM):
            raise TypeError(f"lm must be an airda.lm.LM, got {type(lm).__name__}")
        self.lm = lm
        self.name = lm.name
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise ValueError(f"cache path {str(self.path)!r} is a folder: give a file name")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                str(self.path), timeout=60.0, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA busy_timeout = 60000")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{str(self.path)!r} is not a usable SQLite file: {exc}") from None

    @property
    def identity(self) -> str:
        """The wrapped model's identity (what keys are made of)."""
        return str(getattr(self.lm, "identity", f"{type(self.lm).__name__} {self.lm.name}"))

    def close(self) -> None:
        """Close the SQLite connection."""
        with self._lock:
            self._db.close()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM lm_responses").fetchone()[0])

    def clear(self) -> None:
        """Forget every response of this model."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM lm_responses WHERE model = ?", (self.identity,))
            self._db.execute("COMMIT")

    # --- storage -------------------------------------------------------------------------

    def _key(self, op: str, request: Any, params: Mapping[str, Any]) -> str:
        blob = json.dumps(
            {"model": self.identity, "op": op, "request": request, "params": dict(params)},
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def _get(self, keys: list[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        with self._lock:
            for lo in range(0, len(keys), 500):
                chunk = keys[lo : lo + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, value FROM lm_responses WHERE key IN ({marks})", chunk
                ).fetchall()
                found.update((k, json.loads(v)) for k, v in rows)
        return found

    def _put(self, op: str, items: list[tuple[str, Any]]) -> None:
        if not items:
            return
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO lm_responses VALUES (?, ?, ?, ?, ?)",
                    [(k, self.identity, op, json.dumps(v), now) for k, v in items],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # --- the interface -------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_tokens: int = 64,
        temperature: float = 0.0,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
    ) -> list[Completion]:
        """:meth:`LM.generate`, answered from the cache where it can be."""
        texts = check_texts(prompts, "prompts")
        params = _params(max_tokens, temperature, stop, seed)
        return self._completions(
            "generate", texts, params, lambda todo: self.lm.generate(todo, **params)
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
        """:meth:`LM.chat`, answered from the cache where it can be."""
        convs = check_messages(conversations)
        params = _params(max_tokens, temperature, stop, seed)
        return self._completions("chat", convs, params, lambda todo: self.lm.chat(todo, **params))

    def _completions(
        self, op: str, requests: list[Any], params: dict[str, Any], call: Any
    ) -> list[Completion]:
        if params["temperature"] > 0 and params["seed"] is None:  # not reproducible: no cache
            before = self.lm.usage.snapshot()
            out = call(requests)
            self._count(self.lm.usage - before)
            return out
        keys = [self._key(op, r, params) for r in requests]
        found = self._get(keys)
        todo = [i for i, k in enumerate(keys) if k not in found]
        results: list[Completion | None] = [
            None if k not in found else Completion(**found[k]) for k in keys
        ]
        if todo:
            before = self.lm.usage.snapshot()
            fresh = call([requests[i] for i in todo])
            self._count(self.lm.usage - before)
            for i, c in zip(todo, fresh, strict=True):
                results[i] = c
            self._put(
                op, [(keys[i], _completion_dict(c)) for i, c in zip(todo, fresh, strict=True)]
            )
        self.usage.add(cache_hits=len(requests) - len(todo))
        return [c for c in results if c is not None]

    def score(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        """:meth:`LM.score`, answered from the cache where it can be."""
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
        return self.score_batch([(prefix, check_texts(continuations, "continuations"))])[0]

    def score_batch(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        """:meth:`LM.score_batch`: the pairs not in the cache go to the model in one batch
        (so a local model still shares their prefixes)."""
        reqs = check_requests(requests)
        keys = [[self._key("score", [p, c], {}) for c in conts] for p, conts in reqs]
        found = self._get([k for row in keys for k in row])
        missing: dict[str, list[str]] = {}  # prefix -> continuations to ask for, in order
        for (p, conts), row in zip(reqs, keys, strict=True):
            for c, k in zip(conts, row, strict=True):
                if k not in found and c not in missing.setdefault(p, []):
                    missing[p].append(c)
        missing = {p: cs for p, cs in missing.items() if cs}
        if missing:
            before = self.lm.usage.snapshot()
            fresh = self.lm.score_batch(list(missing.items()))
            self._count(self.lm.usage - before)
            new = []
            for (p, cs), values in zip(missing.items(), fresh, strict=True):
                for c, v in zip(cs, values, strict=True):
                    k = self._key("score", [p, c], {})
                    found[k] = v
                    new.append((k, v))
            self._put("score", new)
        hits = sum(1 for p, _ in reqs if p not in missing)
        self.usage.add(cache_hits=hits)
        return [[float(found[k]) for k in row] for row in keys]

    def render_chat(self, messages: Any, add_generation_prompt: bool = True) -> str:
        return self.lm.render_chat(messages, add_generation_prompt)

    def _count(self, used: Usage) -> None:
        self.usage.add(
            calls=used.calls,
            prompt_tokens=used.prompt_tokens,
            completion_tokens=used.completion_tokens,
            cache_hits=used.cache_hits,
        )

    def __repr__(self) -> str:
        return f"CachedLM({self.lm!r}, {str(self.path)!r})"


def _params(max_tokens: Any, temperature: Any, stop: Any, seed: Any) -> dict[str, Any]:
    max_tokens, temperature, stops, seed = check_generation(max_tokens, temperature, stop, seed)
    return {
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stop": stops or None,
        "seed": seed,
    }


def _completion_dict(c: Completion) -> dict[str, Any]:
    return {
        "text": c.text,
        "finish_reason": c.finish_reason,
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
    }
