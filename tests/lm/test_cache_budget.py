"""CachedLM (keys, persistence, several processes on one file) and BudgetedLM (refused before
the call, reservations under threads, cache hits free)."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading

import pytest

from airda.lm import BudgetedLM, BudgetExceeded, CachedLM
from tests.lm.fakes import EchoLM


def test_cache_answers_repeats_and_keeps_them_on_disk(tmp_path):
    inner = EchoLM()
    lm = CachedLM(inner, tmp_path / "c.db")
    a = lm.generate(["abc", "de"], max_tokens=5)
    b = lm.generate(["abc", "xyz"], max_tokens=5)
    assert a[0] == b[0]
    assert inner.usage.calls == 3  # abc, de, then only xyz
    assert lm.usage.calls == 3
    assert lm.usage.cache_hits == 1
    lm.close()
    again = CachedLM(EchoLM(), tmp_path / "c.db")  # a new process would see the same
    assert again.generate(["de"], max_tokens=5) == [a[1]]
    assert again.lm.usage.calls == 0
    assert len(again) == 3


def test_cache_keys_hold_model_and_parameters(tmp_path):
    path = tmp_path / "c.db"
    inner = EchoLM()
    lm = CachedLM(inner, path)
    lm.generate(["abc"], max_tokens=5)
    lm.generate(["abc"], max_tokens=2)  # other parameters: a miss
    lm.generate(["abc"], max_tokens=2, stop=["x"])
    lm.chat([[{"role": "user", "content": "abc"}]], max_tokens=2)  # another operation
    assert inner.usage.calls == 4
    other = EchoLM(name="other")
    CachedLM(other, path).generate(["abc"], max_tokens=5)  # another model: a miss
    assert other.usage.calls == 1


def test_sampling_without_a_seed_is_not_cached(tmp_path):
    inner = EchoLM()
    lm = CachedLM(inner, tmp_path / "c.db")
    lm.generate(["abc"], temperature=0.7)
    lm.generate(["abc"], temperature=0.7)
    assert inner.usage.calls == 2
    lm.generate(["abc"], temperature=0.7, seed=1)
    lm.generate(["abc"], temperature=0.7, seed=1)
    assert inner.usage.calls == 3


def test_cached_scores_and_misses_batched_once(tmp_path):
    inner = EchoLM()
    lm = CachedLM(inner, tmp_path / "c.db")
    assert lm.score_batch([("p", [" a", " bb"]), ("q", [" c"])]) == [[-2.0, -3.0], [-2.0]]
    assert inner.usage.calls == 2
    # one known pair, one new continuation of a known prefix, one new prefix
    assert lm.score_batch([("p", [" a", " ddd"]), ("r", [""])]) == [[-2.0, -4.0], [0.0]]
    assert inner.usage.calls == 4
    assert lm.score("q", [" c"]) == [-2.0]
    assert inner.usage.calls == 4
    assert lm.usage.cache_hits == 1


def test_cached_local_model_scores_equal(tiny, tmp_path):
    lm = CachedLM(tiny, tmp_path / "c.db")
    reqs = [("Sentiment:", [" positive", " negative"])]
    first = lm.score_batch(reqs)
    assert lm.score_batch(reqs) == first
    assert first[0] == pytest.approx(tiny.score_batch(reqs)[0], abs=1e-6)


def _writer(path: str, worker: int, n: int) -> None:
    lm = CachedLM(EchoLM(), path)
    for i in range(n):
        lm.generate([f"shared {i}", f"own {worker} {i}"], max_tokens=8)
    lm.close()


def test_several_processes_share_one_file(tmp_path):
    path = str(tmp_path / "c.db")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 40)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT COUNT(*) FROM lm_responses").fetchone()[0] == 40 + 3 * 40


def test_cache_refuses_a_folder_and_a_non_database(tmp_path):
    with pytest.raises(ValueError, match="folder"):
        CachedLM(EchoLM(), tmp_path)
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ValueError, match="not a usable SQLite file"):
        CachedLM(EchoLM(), bad)
    with pytest.raises(TypeError, match=r"airda\.lm\.LM"):
        CachedLM("smollm2", tmp_path / "c.db")


def test_budget_in_calls_refuses_before_the_call():
    inner = EchoLM()
    lm = BudgetedLM(inner, calls=3)
    lm.generate(["a", "b"])
    with pytest.raises(BudgetExceeded, match="budget of 3 calls: 2 used, this call needs 2"):
        lm.generate(["c", "d"])
    assert inner.usage.calls == 2  # nothing was sent
    lm.score("p", [" x", " y"])  # one call, whatever the continuations
    assert lm.remaining_calls == 0
    with pytest.raises(BudgetExceeded):
        lm.score_batch([("p", [" x"])])


def test_budget_in_tokens_reserves_max_tokens():
    inner = EchoLM()
    lm = BudgetedLM(inner, tokens=30)
    # EchoLM has no tokenizer: 4 characters a token, rounded up; plus max_tokens
    lm.generate(["abcdefgh"], max_tokens=5)  # reserves 2 + 5, spends 8 + 5 as EchoLM counts
    assert lm.usage.total_tokens == 13
    with pytest.raises(BudgetExceeded, match="tokens"):
        lm.generate(["x" * 20], max_tokens=20)
    assert inner.usage.calls == 1


def test_budget_counts_real_tokens_of_a_local_model(tiny):
    n = len(tiny.tokenizer("Sentiment: positive")["input_ids"])
    lm = BudgetedLM(tiny, tokens=n)
    lm.score("Sentiment:", [" positive"])
    assert lm.remaining_tokens == 0
    with pytest.raises(BudgetExceeded):
        lm.score("Sentiment:", [" positive"])


def test_budget_holds_under_threads():
    inner = EchoLM()
    lm = BudgetedLM(inner, calls=10)
    refused = []

    def work() -> None:
        for _ in range(5):
            try:
                lm.generate(["abc"])
            except BudgetExceeded:
                refused.append(1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert inner.usage.calls == 10
    assert len(refused) == 10


def test_cache_hits_are_free_under_a_budget(tmp_path):
    inner = EchoLM()
    lm = BudgetedLM(CachedLM(inner, tmp_path / "c.db"), calls=1)
    lm.generate(["abc"])
    assert lm.remaining_calls == 0
    with pytest.raises(BudgetExceeded):  # a hit or not, the call is refused up front
        lm.generate(["abc"])
    roomy = BudgetedLM(CachedLM(inner, tmp_path / "c.db"), calls=1)
    roomy.generate(["abc"])  # answered by the cache: no call spent
    assert roomy.remaining_calls == 1
    assert roomy.usage.cache_hits == 1


@pytest.mark.parametrize("kwargs", [{"calls": -1}, {"tokens": 1.5}, {"calls": True}])
def test_budget_bad_settings(kwargs):
    with pytest.raises(ValueError, match="must be an int >= 0"):
        BudgetedLM(EchoLM(), **kwargs)
