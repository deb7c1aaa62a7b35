"""LocalLM: generation, scoring (the shared-prefix fast path against one forward pass per
pair), token boundaries, chat templates, usage, and bad input."""

from __future__ import annotations

import math
import sys

import pytest

from airda.lm import LM, Completion, LocalLM

PREFIX = (
    "Classify the sentiment of the review.\n"
    "Review: a wonderful film\nSentiment: positive\n"
    "Review: dull and far too long\nSentiment: negative\n"
)


def requests(n: int = 4) -> list[tuple[str, list[str]]]:
    reviews = ["great fun", "awful", "I loved it", "a waste of time", "fine", "boring"][:n]
    return [(f"{PREFIX}Review: {r}\nSentiment:", [" positive", " negative"]) for r in reviews]


def close(a, b, tol=1e-4):
    return all(
        abs(x - y) <= tol for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True)
    )


def test_import_is_light():
    import subprocess

    code = (
        "import sys, airda.lm; from airda.lm import LM, Usage, Completion;"
        "print(any(m in sys.modules for m in ('torch', 'transformers', 'pandas')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_tiny_model_is_an_lm(tiny):
    assert isinstance(tiny, LM)
    assert isinstance(tiny, LocalLM)
    assert tiny.name.startswith("tiny")


def test_shared_prefix_scores_equal_separate_scores(tiny):
    reqs = [*requests(4), ("Other prompt entirely", [" x", "yz", ""])]
    fast = tiny.score_batch(reqs)
    slow = tiny.score_batch(reqs, reuse_prefix=False)
    assert close(fast, slow)
    assert fast[-1][2] == 0.0  # an empty continuation
    assert all(v < 0 for row in fast for v in row if v != 0.0)


def test_multi_token_continuations_after_requests_of_different_lengths(tiny):
    # the two-level path: each request's text once, then its continuations on its own cache
    # with the request's padding masked out
    labels = [" positive", " very negative indeed", " so-so", ""]
    reviews = ["ok", "a long and winding review of a film that went nowhere", "meh!"]
    reqs = [(f"{PREFIX}Review: {r}\nSentiment:", labels) for r in reviews]
    fast = tiny.score_batch(reqs)
    assert close(fast, tiny.score_batch(reqs, reuse_prefix=False))
    assert all(row[3] == 0.0 for row in fast)


def test_prefixes_are_kept_between_calls():
    from airda.lm import tiny_model

    lm = tiny_model()
    assert lm.prefix_cache_size == 8
    reqs = requests(4)
    first = lm.score_batch(reqs[:2])
    assert lm._prefix_hits == 0
    second = lm.score_batch(reqs[2:])  # the same instruction and demos: the kept prefix
    assert lm._prefix_hits == 1
    assert close(first + second, lm.score_batch(reqs, reuse_prefix=False))
    lm.prefix_cache_size = 0
    lm._prefix_kv.clear()
    lm.score_batch(reqs[:2])
    lm.score_batch(reqs[:2])
    assert lm._prefix_hits == 1


def test_score_is_score_batch_of_one(tiny):
    prefix, conts = requests(1)[0]
    assert close([tiny.score(prefix, conts)], tiny.score_batch([(prefix, conts)]))


def test_token_boundary_space_belongs_to_the_continuation(tiny):
    # "Sentiment: " + "positive" tokenizes as "Sentiment:" + " positive": same tokens, same score
    ids_a, start_a = tiny.encode("Sentiment:", " positive")
    ids_b, start_b = tiny.encode("Sentiment: ", "positive")
    assert ids_a == ids_b
    assert start_a == start_b
    assert close(
        [tiny.score("Sentiment:", [" positive"])], [tiny.score("Sentiment: ", ["positive"])]
    )
    # the continuation's tokens are those of the whole text from where it starts
    ids, start = tiny.encode("Sentiment:", " positive")
    assert tiny.tokenizer.decode(ids[start:]) == " positive"


def test_empty_prefix_is_scored_after_a_context_token(tiny):
    ids, start = tiny.encode("", "hello")
    assert start == 1
    assert len(ids) >= 2
    (v,) = tiny.score("", ["hello"])
    assert math.isfinite(v)
    assert v < 0


def test_groups_with_different_prefixes_and_many_rows(tiny):
    # two prompts, several examples each, in one batch: several groups, one result per request
    reqs = requests(3) + [
        (f"Answer yes or no.\nQ: is {x} even?\nA:", [" yes", " no"]) for x in range(5)
    ]
    assert close(tiny.score_batch(reqs), tiny.score_batch(reqs, reuse_prefix=False))


def test_generate_greedy_is_deterministic_and_counts_tokens(tiny):
    a = tiny.generate(["Hello", "Once upon a time"], max_tokens=4)
    b = tiny.generate(["Hello", "Once upon a time"], max_tokens=4)
    assert a == b
    assert all(isinstance(c, Completion) for c in a)
    assert all(c.completion_tokens <= 4 and c.finish_reason in ("stop", "length") for c in a)
    assert a[0].prompt_tokens == len(tiny.tokenizer("Hello")["input_ids"])


def test_generate_batch_matches_one_by_one(tiny):
    prompts = ["Hello", "Once upon a time there was"]
    together = tiny.generate(prompts, max_tokens=3)
    alone = [tiny.generate([p], max_tokens=3)[0] for p in prompts]
    assert [c.text for c in together] == [c.text for c in alone]


def test_sampling_is_seeded(tiny):
    a = tiny.generate(["Hello"], max_tokens=4, temperature=1.0, seed=3)
    b = tiny.generate(["Hello"], max_tokens=4, temperature=1.0, seed=3)
    assert a == b


def test_stop_strings_cut_the_text(tiny):
    (full,) = tiny.generate(["Hello"], max_tokens=6)
    assert full.text
    stop = full.text[len(full.text) // 2 :][:2] or full.text[-1]
    (cut,) = tiny.generate(["Hello"], max_tokens=6, stop=[stop])
    assert stop not in cut.text
    assert full.text.startswith(cut.text)
    assert cut.finish_reason == "stop"


def test_max_tokens_zero(tiny):
    (c,) = tiny.generate(["Hello"], max_tokens=0)
    assert c.text == ""
    assert c.completion_tokens == 0
    assert c.finish_reason == "length"


def test_chat_uses_the_template(tiny):
    msgs = [{"role": "user", "content": "hi"}]
    text = tiny.render_chat(msgs)
    assert text.endswith("<|im_start|>assistant\n")
    assert "<|im_start|>user\nhi<|im_end|>" in text
    assert tiny.render_chat(msgs, add_generation_prompt=False).endswith("<|im_end|>\n")
    (c,) = tiny.chat([msgs], max_tokens=2)
    assert c.prompt_tokens == len(tiny.tokenizer(text)["input_ids"])


def test_usage_counts_calls_and_tokens(tiny):
    before = tiny.usage.snapshot()
    tiny.generate(["a", "b"], max_tokens=2)
    tiny.score_batch(requests(2))
    used = tiny.usage - before
    assert used.calls == 4
    assert used.completion_tokens <= 4
    assert used.prompt_tokens > 0


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda lm: lm.generate("Hello"), TypeError, "prompts must be a sequence of str"),
        (lambda lm: lm.generate([1]), TypeError, r"prompts\[0\]"),
        (lambda lm: lm.generate(["a"], max_tokens=-1), ValueError, "max_tokens"),
        (lambda lm: lm.generate(["a"], temperature=float("nan")), ValueError, "temperature"),
        (lambda lm: lm.generate(["a"], stop=[""]), ValueError, "stop"),
        (lambda lm: lm.score("p", " x"), TypeError, "continuations"),
        (lambda lm: lm.score(3, [" x"]), TypeError, "prefix"),
        (lambda lm: lm.score_batch([("p",)]), TypeError, r"requests\[0\]"),
        (lambda lm: lm.chat([{"role": "user", "content": "x"}]), TypeError, "conversations"),
        (lambda lm: lm.chat([[{"role": "user"}]]), TypeError, "content"),
        (lambda lm: lm.generate(["a " * 9000], max_tokens=1), ValueError, "context"),
    ],
)
def test_bad_input_is_a_clear_error(tiny, call, error, match):
    with pytest.raises(error, match=match):
        call(tiny)


def test_unknown_model_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not 'smollm2'"):
        LocalLM(str(tmp_path / "nothing-here"))
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"not a \.gguf"):
        LocalLM(str(tmp_path / "weights.bin"))


@pytest.mark.slow
def test_smollm2_answers_and_scores(smollm2):
    # the real model: a label word that fits scores above one that does not, and the fast
    # path equals one forward pass per pair on its 30 layers too
    reqs = requests(2)
    fast = smollm2.score_batch(reqs)
    assert close(fast, smollm2.score_batch(reqs, reuse_prefix=False))
    assert fast[0][0] > fast[0][1]  # "great fun" -> positive
    assert fast[1][1] > fast[1][0]  # "awful" -> negative
    # the same file named by path, or through load(), reuses the loaded weights
    from airda.lm import load, smollm2_path

    assert LocalLM(str(smollm2_path())).model is smollm2.model
    assert load("smollm2").model is smollm2.model
    (c,) = smollm2.chat([[{"role": "user", "content": "Say hello."}]], max_tokens=4)
    assert c.text.strip()
    assert c.completion_tokens <= 4
