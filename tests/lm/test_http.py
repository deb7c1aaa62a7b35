"""HTTPLM against a real server (airda.lm.serve on the tiny model, on 127.0.0.1), and against a
scripted server that answers 429/5xx, hangs, trickles, hangs up or sends malformed JSON."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from airda.lm import (
    HTTPLM,
    CachedLM,
    LMConnectionError,
    LMHTTPError,
    LMResponseError,
    LMTimeout,
    load,
    serve,
)
from tests.lm.fakes import ScriptedServer, completion_reply


@pytest.fixture(scope="module")
def server(tiny):
    with serve(tiny) as s:
        yield s


@pytest.fixture
def remote(server):
    return HTTPLM(server.url, server.model_name, timeout=30, max_retries=0)


def post(url: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# --- against airda's own server -----------------------------------------------------------


def test_models_and_load_from_url(server, remote):
    assert remote.models() == [server.model_name]
    lm = load(server.url)  # the only listed model
    assert lm.name == server.model_name
    lm = load(f"{server.url}?model={server.model_name}&timeout=5&max_retries=1")
    assert lm.timeout == 5.0
    assert lm.max_retries == 1


def test_generate_and_chat_match_the_local_model(tiny, remote):
    prompts = ["Hello", "Once upon a time"]
    assert remote.generate(prompts, max_tokens=3) == tiny.generate(prompts, max_tokens=3)
    conv = [[{"role": "user", "content": "hi"}]]
    assert remote.chat(conv, max_tokens=3) == tiny.chat(conv, max_tokens=3)
    assert remote.usage.calls == 3
    assert remote.usage.completion_tokens <= 9


def test_score_matches_the_local_model(tiny, remote):
    reqs = [
        ("Review: great fun\nSentiment:", [" positive", " negative", ""]),
        ("Sentiment: ", ["positive"]),
        ("Q: 2+2=", [" 4"]),
    ]
    got, want = remote.score_batch(reqs), tiny.score_batch(reqs)
    for g, w in zip(got, want, strict=True):
        assert g == pytest.approx(w, abs=1e-4)
    assert got[0][2] == 0.0


def test_score_after_an_empty_prefix_is_a_clear_error(remote):
    with pytest.raises(LMResponseError, match="first token"):
        remote.score("", ["hello"])


def test_concurrent_requests(remote, tiny):
    lm = HTTPLM(remote.base_url, remote.model, concurrency=3)
    prompts = [f"Item {i}:" for i in range(6)]
    assert [c.text for c in lm.generate(prompts, max_tokens=2)] == [
        c.text for c in tiny.generate(prompts, max_tokens=2)
    ]


@pytest.mark.parametrize(
    ("path", "body", "status", "match"),
    [
        ("/completions", b"{not json", 400, "not JSON"),
        ("/completions", b"[1, 2]", 400, "JSON object"),
        ("/completions", b'{"prompt": 3}', 400, "prompt"),
        ("/completions", b'{"prompt": "a", "stream": true}', 400, "streaming"),
        ("/completions", b'{"prompt": "a", "n": 2}', 400, "n=1"),
        ("/completions", b'{"prompt": "a", "max_tokens": 2, "logprobs": 1}', 400, "logprobs"),
        ("/completions", b'{"prompt": "a", "max_tokens": -1}', 400, "max_tokens"),
        ("/chat/completions", b'{"messages": []}', 400, "messages"),
        ("/chat/completions", b'{"messages": [{"role": "user"}]}', 400, "content"),
        ("/nothing", b"{}", 404, "no endpoint"),
    ],
)
def test_server_refuses_bad_requests_with_json_errors(server, path, body, status, match):
    got, reply = post(server.url + path, body)
    assert got == status
    assert match in reply["error"]["message"]


def test_server_echo_returns_prompt_logprobs(server, tiny):
    _, reply = post(
        server.url + "/completions",
        json.dumps(
            {"prompt": "Hello world", "echo": True, "logprobs": 1, "max_tokens": 0}
        ).encode(),
    )
    lp = reply["choices"][0]["logprobs"]
    assert reply["choices"][0]["text"] == "Hello world"
    assert lp["text_offset"][0] == 0
    assert lp["token_logprobs"][0] is None
    assert lp["token_logprobs"][1] == pytest.approx(tiny.score("Hello", [" world"])[0], abs=1e-4)


# --- against a server that misbehaves -------------------------------------------------------


def fast(url: str, **kw) -> HTTPLM:
    kw.setdefault("timeout", 5)
    kw.setdefault("backoff", 0.01)
    return HTTPLM(url, "m", **kw)


def test_retries_429_and_5xx_then_succeeds():
    script = [
        ("json", 429, {"error": "slow down"}, {"Retry-After": "0"}),
        ("json", 503, {"error": "busy"}),
        ("json", 200, completion_reply("done")),
    ]
    with ScriptedServer(script) as s:
        (c,) = fast(s.url, max_retries=3).generate(["x"])
    assert c.text == "done"
    assert len(s.requests) == 3


def test_gives_up_after_max_retries():
    with (
        ScriptedServer([("json", 500, {"error": "boom"})]) as s,
        pytest.raises(LMHTTPError, match="after 3 attempts") as info,
    ):
        fast(s.url, max_retries=2).generate(["x"])
    assert info.value.status == 500
    assert len(s.requests) == 3


def test_client_errors_are_not_retried():
    with (
        ScriptedServer([("json", 401, {"error": "bad key"})]) as s,
        pytest.raises(LMHTTPError, match="HTTP 401"),
    ):
        fast(s.url, max_retries=3).generate(["x"])
    assert len(s.requests) == 1


def test_timeout_is_an_error_not_a_hang():
    with ScriptedServer([("sleep", 3.0, completion_reply())]) as s:
        t = time.monotonic()
        with pytest.raises(LMTimeout, match=r"no reply within 0\.3 s"):
            fast(s.url, timeout=0.3, max_retries=1).generate(["x"])
        assert time.monotonic() - t < 2.5
    assert len(s.requests) == 2


def test_a_trickling_reply_hits_the_deadline():
    with ScriptedServer([("trickle", 0.05, completion_reply("x" * 40))]) as s:
        t = time.monotonic()
        with pytest.raises(LMTimeout):
            fast(s.url, timeout=0.4, max_retries=0).generate(["x"])
        assert time.monotonic() - t < 2.0


@pytest.mark.parametrize(
    ("step", "match"),
    [
        (("raw", 200, b"{'not': json"), "not JSON"),
        (("raw", 200, b"\xff\xfe"), "not JSON"),
        (("json", 200, {"unexpected": 1}), "no choices"),
        (("json", 200, {"choices": [{"text": None}]}), "no choices"),
    ],
)
def test_malformed_replies_are_clear_errors(step, match):
    with ScriptedServer([step]) as s, pytest.raises(LMResponseError, match=match):
        fast(s.url, max_retries=3).generate(["x"])
    assert len(s.requests) == 1


def test_hang_up_and_refused_connections_are_retried():
    with ScriptedServer([("close",), ("json", 200, completion_reply("back"))]) as s:
        (c,) = fast(s.url, max_retries=1).generate(["x"])
    assert c.text == "back"
    with ScriptedServer([("close",)]) as s:
        url = s.url
    with pytest.raises(LMConnectionError, match="after 3 attempts"):
        fast(url, max_retries=2).generate(["x"])


def test_score_unsupported_is_not_implemented():
    with ScriptedServer([("json", 400, {"error": {"message": "echo is not supported"}})]) as s:
        lm = fast(s.url)
        with pytest.raises(NotImplementedError, match="does not score"):
            lm.score("a", [" b"])
        with pytest.raises(NotImplementedError):  # remembered: no second request
            lm.score("a", [" b"])
    assert len(s.requests) == 1
    with ScriptedServer([("json", 400, {"error": {"message": "prompt too long"}})]) as s:
        lm = fast(s.url)
        for _ in range(2):  # another refusal is an error of that request, not of scoring
            with pytest.raises(LMHTTPError, match="prompt too long"):
                lm.score("a", [" b"])
    assert len(s.requests) == 2
    with (
        ScriptedServer([("json", 200, completion_reply())]) as s,
        pytest.raises(NotImplementedError, match="no prompt log-probabilities"),
    ):
        fast(s.url).score("a", [" b"])


def test_api_key_is_sent_but_never_kept_or_shown(monkeypatch, tmp_path):
    secret = "sk-test-0123456789abcdef"
    monkeypatch.setenv("AIRDA_TEST_KEY", secret)
    script = [
        ("json", 200, completion_reply("fine")),
        ("json", 400, {"error": f"invalid key {secret}"}),
    ]
    with ScriptedServer(script) as s:
        lm = fast(s.url, api_key_env="AIRDA_TEST_KEY", max_retries=0)
        cached = CachedLM(lm, tmp_path / "cache.db")
        cached.generate(["x"])
        with pytest.raises(LMHTTPError) as info:
            lm.generate(["y"])
    assert s.requests[0]["headers"]["Authorization"] == f"Bearer {secret}"
    assert secret not in str(info.value)
    assert "***" in str(info.value)
    assert secret not in repr(lm) + repr(vars(lm)) + repr(cached)
    cached.close()
    for f in tmp_path.iterdir():
        assert secret.encode() not in f.read_bytes()


def test_no_key_no_authorization_header(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with ScriptedServer([("json", 200, completion_reply())]) as s:
        fast(s.url).generate(["x"])
    assert "Authorization" not in s.requests[0]["headers"]


def test_concurrency_and_rate_limits():
    with ScriptedServer([("sleep", 0.15, completion_reply())]) as s:
        fast(s.url, concurrency=2).generate([str(i) for i in range(6)])
    assert s.max_in_flight == 2
    with ScriptedServer([("json", 200, completion_reply())]) as s:
        t = time.monotonic()
        fast(s.url, concurrency=4, requests_per_second=20).generate([str(i) for i in range(5)])
        assert time.monotonic() - t >= 0.19  # 5 starts, 1/20 s apart


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_url": "127.0.0.1:8000"}, "http"),
        ({"base_url": "http://user:pw@host/v1"}, "credentials"),
        ({"model": ""}, "model"),
        ({"timeout": 0}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"concurrency": 0}, "concurrency"),
        ({"requests_per_second": 0}, "requests_per_second"),
    ],
)
def test_bad_settings(kwargs, match):
    args = {"base_url": "http://127.0.0.1:1/v1", "model": "m", **kwargs}
    with pytest.raises(ValueError, match=match):
        HTTPLM(args.pop("base_url"), args.pop("model"), **args)


def test_load_rejects_unknown_url_options():
    with pytest.raises(ValueError, match="unknown option 'colour'"):
        load("http://127.0.0.1:1/v1?model=m&colour=red")
