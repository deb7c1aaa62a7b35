"""Test helpers: a small HTTP server that misbehaves on cue, and a deterministic in-memory LM
for the wrappers' own logic (the cache's keys and locking, the budget's arithmetic)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from airda.lm import LM, Completion


class ScriptedServer:
    """Answers request k with ``script[k]`` (the last entry repeats): ``("json", status,
    payload, headers)``, ``("raw", status, bytes)``, ``("sleep", seconds, payload)``,
    ``("close",)`` (hang up without a reply), ``("trickle", seconds_per_byte, payload)``.
    Records each request's path, headers and body."""

    def __init__(self, script: Sequence[tuple]):
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._answer(None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(json.loads(self.rfile.read(length)) if length else None)

            def _answer(self, body: Any) -> None:
                with owner._lock:
                    k = len(owner.requests)
                    owner.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                    owner.in_flight += 1
                    owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
                try:
                    self._act(owner.script[min(k, len(owner.script) - 1)])
                except (BrokenPipeError, ConnectionResetError):  # the client gave up: fine
                    self.close_connection = True
                finally:
                    with owner._lock:
                        owner.in_flight -= 1

            def _send(self, status: int, data: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _act(self, step: tuple) -> None:
                kind = step[0]
                if kind == "json":
                    _, status, payload, *rest = step
                    self._send(status, json.dumps(payload).encode(), rest[0] if rest else None)
                elif kind == "raw":
                    self._send(step[1], step[2])
                elif kind == "sleep":
                    time.sleep(step[1])
                    self._send(200, json.dumps(step[2]).encode())
                elif kind == "close":
                    self.close_connection = True
                    self.connection.shutdown(2)
                elif kind == "trickle":
                    data = json.dumps(step[2]).encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    for i in range(len(data)):
                        self.wfile.write(data[i : i + 1])
                        self.wfile.flush()
                        time.sleep(step[1])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def completion_reply(text: str = "ok") -> dict[str, Any]:
    return {
        "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }


class EchoLM(LM):
    """Deterministic and instant: generates the prompt reversed (cut to max_tokens
    characters), scores a continuation as minus its length. Counts like a real backend."""

    def __init__(self, name: str = "echo"):
        super().__init__()
        self.name = name

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_tokens: int = 64,
        temperature: float = 0.0,
        stop: Any = None,
        seed: int | None = None,
    ) -> list[Completion]:
        out = [
            Completion(p[::-1][:max_tokens], "stop", len(p), min(len(p), max_tokens))
            for p in prompts
        ]
        self.usage.add(
            calls=len(out),
            prompt_tokens=sum(c.prompt_tokens for c in out),
            completion_tokens=sum(c.completion_tokens for c in out),
        )
        return out

    def score(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        self.usage.add(calls=1, prompt_tokens=sum(len(prefix + c) for c in continuations))
        return [-float(len(c)) for c in continuations]
