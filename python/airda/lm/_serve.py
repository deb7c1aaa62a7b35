"""``serve``: any :class:`~airda.lm.LM` as an OpenAI-compatible HTTP server, on the standard
library's ``ThreadingHTTPServer`` with one lock around the model.

Endpoints: ``GET /v1/models``, ``POST /v1/completions`` (``prompt`` a string or a list of
strings; ``echo=True, logprobs=N, max_tokens=0`` returns the prompt's token log-probabilities,
as vLLM does, when the model is a :class:`~airda.lm.LocalLM`), ``POST /v1/chat/completions``.
Streaming and ``n > 1`` are refused with a 400. Meant for 127.0.0.1: there is no
authentication.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from airda._logging import get_logger
from airda.lm._base import LM, LMError

__all__ = ["LMServer", "serve"]

_MAX_BODY = 16 * 1024 * 1024
_log = get_logger()


class _BadRequest(Exception):
    def __init__(self, message: str, status: int = 400, param: str | None = None):
        super().__init__(message)
        self.status, self.param = status, param


class LMServer:
    """A running server (see :func:`serve`).

    Attributes:
        host: the address it listens on.
        port: its port (the one picked when 0 was asked for).
        url: the API root, e.g. ``"http://127.0.0.1:8000/v1"``: give it to
            :class:`~airda.lm.HTTPLM`.
        model_name: the name ``/v1/models`` lists.
    """

    def __init__(self, lm: LM, host: str, port: int, model_name: str):
        self.lm = lm
        self.model_name = model_name
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"airda-lm-serve-{self.port}", daemon=True
        )
        self._closed = threading.Event()
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def wait(self) -> None:
        """Block until :meth:`close` (or Ctrl-C, which closes)."""
        try:
            while not self._closed.wait(0.5):
                pass
        except KeyboardInterrupt:
            self.close()
            raise

    def close(self) -> None:
        """Stop serving and free the port."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> LMServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LMServer({self.model_name!r}, {self.url!r})"

    # --- the endpoints -------------------------------------------------------------------

    def models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": self.model_name, "object": "model", "created": 0, "owned_by": "airda"}],
        }

    def completions(self, body: Mapping[str, Any]) -> dict[str, Any]:
        prompt = body.get("prompt")
        if isinstance(prompt, str):
            prompts = [prompt]
        elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
            prompts = list(prompt)
        else:
            raise _BadRequest("'prompt' must be a string or a list of strings", param="prompt")
        params = _generation(body, default_max_tokens=16)
        echo = body.get("echo", False)
        logprobs = body.get("logprobs")
        if not isinstance(echo, bool):
            raise _BadRequest("'echo' must be a boolean", param="echo")
        if logprobs is not None and (
            isinstance(logprobs, bool) or not isinstance(logprobs, int) or logprobs < 0
        ):
            raise _BadRequest("'logprobs' must be an integer >= 0 or null", param="logprobs")
        choices, prompt_tokens, completion_tokens = [], 0, 0
        if echo and params["max_tokens"] == 0:
            scorer = getattr(self.lm, "token_logprobs", None)
            if logprobs is not None and scorer is None:
                raise _BadRequest(f"{self.model_name} gives no prompt log-probabilities")
            for i, p in enumerate(prompts):
                lp = None
                if logprobs is not None:
                    with self._lock:
                        toks = scorer(p)
                    lp = {
                        "tokens": [t for t, _, _ in toks],
                        "token_logprobs": [v for _, _, v in toks],
                        "text_offset": [a for _, a, _ in toks],
                        "top_logprobs": None,
                    }
                    prompt_tokens += len(toks)
                choices.append({"index": i, "text": p, "finish_reason": "length", "logprobs": lp})
        else:
            if logprobs is not None:
                raise _BadRequest(
                    "logprobs are returned for an echoed prompt with max_tokens=0 only",
                    param="logprobs",
                )
            with self._lock:
                outs = self.lm.generate(prompts, **params)
            for i, (p, c) in enumerate(zip(prompts, outs, strict=True)):
                text = p + c.text if echo else c.text
                choices.append(
                    {"index": i, "text": text, "finish_reason": c.finish_reason, "logprobs": None}
                )
                prompt_tokens += c.prompt_tokens
                completion_tokens += c.completion_tokens
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": choices,
            "usage": _usage(prompt_tokens, completion_tokens),
        }

    def chat_completions(self, body: Mapping[str, Any]) -> dict[str, Any]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _BadRequest("'messages' must be a non-empty list", param="messages")
        msgs = []
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or not isinstance(m.get("role"), str):
                raise _BadRequest(f"messages[{i}] needs a 'role' string", param="messages")
            content = m.get("content")
            if isinstance(content, list):  # content parts: keep the text ones
                content = "".join(
                    p.get("text", "")
                    for p in content
                    if isinstance(p, dict) and p.get("type") == "text"
                )
            if not isinstance(content, str):
                raise _BadRequest(f"messages[{i}] needs a 'content' string", param="messages")
            msgs.append({"role": m["role"], "content": content})
        if "max_completion_tokens" in body and "max_tokens" not in body:
            body = {**body, "max_tokens": body["max_completion_tokens"]}
        params = _generation(body, default_max_tokens=256)
        with self._lock:
            (c,) = self.lm.chat([msgs], **params)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": c.text},
                    "finish_reason": c.finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": _usage(c.prompt_tokens, c.completion_tokens),
        }


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _generation(body: Mapping[str, Any], default_max_tokens: int) -> dict[str, Any]:
    if body.get("stream"):
        raise _BadRequest("streaming is not supported", param="stream")
    n = body.get("n", 1)
    if n not in (1, None):
        raise _BadRequest("only n=1 is supported", param="n")
    max_tokens = body.get("max_tokens", default_max_tokens)
    if max_tokens is None:
        max_tokens = default_max_tokens
    temperature = body.get("temperature", 1.0)
    if temperature is None:
        temperature = 1.0
    params = {
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stop": body.get("stop"),
        "seed": body.get("seed"),
    }
    from airda.lm._base import check_generation

    try:
        check_generation(**params)
    except (TypeError, ValueError) as exc:
        raise _BadRequest(str(exc)) from None
    return params


class _Handler(BaseHTTPRequestHandler):
    server_state: LMServer
    protocol_version = "HTTP/1.1"
    server_version = "airda-lm"

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("lm serve: %s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/v1/models", "/models"):
            self._reply(200, self.server_state.models())
        elif path in ("", "/health", "/v1"):
            self._reply(200, {"status": "ok", "model": self.server_state.model_name})
        else:
            self._error(404, f"no endpoint GET {path}", "not_found_error")

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        routes = {
            "/v1/completions": self.server_state.completions,
            "/completions": self.server_state.completions,
            "/v1/chat/completions": self.server_state.chat_completions,
            "/chat/completions": self.server_state.chat_completions,
        }
        route = routes.get(path)
        try:
            body = self._body()
            if route is None:
                raise _BadRequest(f"no endpoint POST {path}", status=404)
            self._reply(200, route(body))
        except _BadRequest as exc:
            kind = "not_found_error" if exc.status == 404 else "invalid_request_error"
            self._error(exc.status, str(exc), kind, exc.param)
        except (ValueError, TypeError) as exc:
            self._error(400, str(exc), "invalid_request_error")
        except LMError as exc:
            self._error(502, str(exc), "upstream_error")
        except Exception as exc:  # the server keeps serving; the client learns why
            _log.exception("lm serve: %s failed", path)
            self._error(500, f"{type(exc).__name__}: {exc}", "server_error")

    def _body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _BadRequest("bad Content-Length") from None
        if length <= 0:
            raise _BadRequest("the request has no JSON body")
        if length > _MAX_BODY:
            raise _BadRequest(f"the body is over {_MAX_BODY} bytes", status=413)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _BadRequest(f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise _BadRequest("the body must be a JSON object")
        return body

    def _reply(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str, param: str | None = None) -> None:
        self._reply(
            status, {"error": {"message": message, "type": kind, "param": param, "code": None}}
        )


def serve(
    lm: LM, host: str = "127.0.0.1", port: int = 0, *, model_name: str | None = None
) -> LMServer:
    """Serve `lm` over an OpenAI-compatible API, in a background thread.

    Args:
        lm: the model (requests are answered one at a time: one lock around it).
        host: the address to listen on (127.0.0.1: this machine only; there is no auth).
        port: the port; 0 picks a free one (read it from the result's ``port`` or ``url``).
        model_name: the name ``/v1/models`` lists (default: ``lm.name``).

    Returns:
        The running :class:`LMServer`; ``close()`` it (or use it as a context manager), or
        ``wait()`` on it to serve until Ctrl-C.

    Example:
        >>> from airda.lm import HTTPLM, serve, tiny_model
        >>> with serve(tiny_model()) as server:
        ...     remote = HTTPLM(server.url, server.model_name)
        ...     len(remote.generate(["Hello"], max_tokens=2))
        1
    """
    if not isinstance(lm, LM):
        raise TypeError(f"lm must be an airda.lm.LM, got {type(lm).__name__}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int in 0..65535, got {port!r}")
    server = LMServer(lm, host, port, model_name or lm.name)
    _log.info("serving %s at %s", server.model_name, server.url)
    return server
