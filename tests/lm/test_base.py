"""The interface's own pieces: Usage arithmetic and pickling, the default chat and score_batch
of LM (on a minimal backend), argument checks."""

from __future__ import annotations

import pickle

import pytest

from airda.lm import Usage
from tests.lm.fakes import EchoLM


def test_usage_adds_subtracts_and_pickles():
    u = Usage()
    u.add(calls=2, prompt_tokens=10, completion_tokens=5, cache_hits=1)
    before = u.snapshot()
    u.add(calls=1, prompt_tokens=3)
    assert (u - before).as_dict() == {
        "calls": 1,
        "prompt_tokens": 3,
        "completion_tokens": 0,
        "cache_hits": 0,
    }
    assert u.total_tokens == 18
    again = pickle.loads(pickle.dumps(u))
    assert again == u
    again.add(calls=1)
    assert again.calls == 4


def test_default_chat_renders_chatml_and_score_batch_loops():
    lm = EchoLM()
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    text = lm.render_chat(msgs)
    assert (
        text
        == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    )
    (c,) = lm.chat([msgs], max_tokens=5)
    assert c.text == text[::-1][:5]
    assert lm.score_batch([("p", [" a", ""]), ("q", [" bc"])]) == [[-2.0, -0.0], [-3.0]]
    assert lm.usage.calls == 3


@pytest.mark.parametrize(
    ("requests", "match"),
    [
        ("text", "sequence of"),
        ([("p", " x")], "continuations must be a sequence of str"),
        ([("p", [" x"], "extra")], "pair"),
        ([(None, [" x"])], "prefix"),
    ],
)
def test_score_batch_checks_requests(requests, match):
    with pytest.raises(TypeError, match=match):
        EchoLM().score_batch(requests)
