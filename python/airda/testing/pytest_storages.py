"""Conformance tests every storage backend must pass. Backends are listed in
:data:`STORAGE_FACTORIES` (name -> factory taking a temporary folder).

The PostgreSQL backend runs against a throwaway server (``initdb`` into a temporary folder,
started on 127.0.0.1 for the session; or the server ``AIRDA_TEST_POSTGRES_URL`` names), each
test in a fresh schema; its tests are skipped, with the reason, where no server can be
started (PostgreSQL or psycopg not installed)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airda.storage import (
    DuplicatedStudyError,
    InMemoryStorage,
    Storage,
    StorageError,
    StudyNotFoundError,
)
from airda.storage.base import MaxTrialsReached
from airda.trial import TrialState

__all__ = [
    "STORAGE_FACTORIES",
    "test_claim_waiting_trials_in_order",
    "test_dead_workers_trials_are_failed",
    "test_finish_only_running_trials",
    "test_import_trials_keeps_every_field",
    "test_incremental_sync",
    "test_intermediate_values_and_attrs",
    "test_max_trials_is_exact_under_contention",
    "test_max_trials_stops_new_trials",
    "test_odd_attribute_keys_and_infinite_reports",
    "test_study_lifecycle",
    "test_system_attrs_of_running_trials",
    "test_trial_numbers_are_consecutive",
]


def _sqlite(tmp: Path) -> Storage:
    from airda.storage.sqlite import SQLiteStorage

    return SQLiteStorage(tmp / "conformance.db")


def _postgres(_tmp: Path) -> Storage:
    from airda.testing._postgres import PostgresUnavailable, fresh_storage

    try:
        return fresh_storage()
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server for the tests: {exc}")


STORAGE_FACTORIES: dict[str, Callable[[Path], Storage]] = {
    "memory": lambda _tmp: InMemoryStorage(),
    "postgres": _postgres,
    "sqlite": _sqlite,
}


@pytest.fixture(params=sorted(STORAGE_FACTORIES))
def storage(request, tmp_path) -> Iterator[Storage]:
    store = STORAGE_FACTORIES[request.param](tmp_path)
    yield store
    store.close()
    if type(store).__name__ == "PostgresStorage":
        from airda.testing._postgres import drop_schema

        drop_schema(store)


def test_study_lifecycle(storage: Storage) -> None:
    rec = storage.create_study(
        "s",
        ["minimize", "maximize"],
        {"x": {"type": "int", "low": 0, "high": 3}},
        {"name": "random"},
        {"owner": "me"},
    )
    assert rec.name == "s"
    assert rec.directions == ("minimize", "maximize")
    with pytest.raises(DuplicatedStudyError):
        storage.create_study("s", ["minimize"], None, None, {})
    assert storage.get_study("s") == rec
    storage.set_study_user_attr(rec.study_id, "note", [1, 2])
    assert storage.get_study("s").user_attrs == {"owner": "me", "note": [1, 2]}
    storage.set_study_space(rec.study_id, {"y": {"type": "fixed", "value": 1}})
    assert storage.get_study("s").space == {"y": {"type": "fixed", "value": 1}}
    summaries = storage.list_studies()
    assert [s.record.name for s in summaries] == ["s"]
    storage.delete_study("s")
    with pytest.raises(StudyNotFoundError):
        storage.get_study("s")
    with pytest.raises(StudyNotFoundError):
        storage.delete_study("s")


def test_trial_numbers_are_consecutive(storage: Storage) -> None:
    sid = storage.create_study("s", ["minimize"], None, None, {}).study_id
    trials = [storage.create_trial(sid, {"i": i}, worker="w") for i in range(5)]
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert len({t.trial_id for t in trials}) == 5
    assert all(t.state is TrialState.RUNNING for t in trials)
    other = storage.create_study("t", ["minimize"], None, None, {}).study_id
    assert storage.create_trial(other, {}).number == 0


def test_finish_only_running_trials(storage: Storage) -> None:
    sid = storage.create_study("s", ["minimize"], None, None, {}).study_id
    t = storage.create_trial(sid, {"x": 1.5})
    done = storage.finish_trial(
        t.trial_id, TrialState.COMPLETE, values=[0.25], system_attrs={"k": 1}
    )
    assert done.state is TrialState.COMPLETE
    assert done.values == (0.25,)
    assert done.system_attrs["k"] == 1
    assert done.datetime_complete is not None
    with pytest.raises(StorageError, match="not running"):
        storage.finish_trial(t.trial_id, TrialState.FAIL)
    with pytest.raises(StorageError):
        storage.finish_trial(10_000, TrialState.FAIL)


def test_intermediate_values_and_attrs(storage: Storage) -> None:
    sid = storage.create_study("s", ["minimize"], None, None, {}).study_id
    t = storage.create_trial(sid, {})
    storage.set_intermediate(t.trial_id, 0, 1.0)
    storage.set_intermediate(t.trial_id, 3, 0.5)
    storage.set_intermediate(t.trial_id, 3, 0.25)
    storage.set_trial_user_attr(t.trial_id, "note", {"a": 1})
    (got,), _ = storage.get_trials(sid)
    assert got.intermediate == {0: 1.0, 3: 0.25}
    assert got.user_attrs == {"note": {"a": 1}}


def test_odd_attribute_keys_and_infinite_reports(storage: Storage) -> None:
    """Any string is a key (quotes, dots, JSON-path syntax), a diverged loss is reported as
    inf (as Optuna stores it), and a value that is not JSON changes nothing."""
    keys = ['a"b', "a.b", "$.x", "a'b", "[0]", "", "\\"]
    rec = storage.create_study("s", ["minimize"], None, None, {})
    t = storage.create_trial(rec.study_id, {})
    for i, key in enumerate(keys):
        storage.set_trial_user_attr(t.trial_id, key, i)
        storage.set_study_user_attr(rec.study_id, key, [i])
    storage.set_intermediate(t.trial_id, 0, float("inf"))
    storage.set_intermediate(t.trial_id, 1, -float("inf"))
    with pytest.raises(TypeError):
        storage.set_trial_user_attr(t.trial_id, "bad", object())
    (got,), _ = storage.get_trials(rec.study_id)
    assert got.user_attrs == {key: i for i, key in enumerate(keys)}
    assert got.intermediate == {0: float("inf"), 1: -float("inf")}
    assert storage.get_study("s").user_attrs == {key: [i] for i, key in enumerate(keys)}


def test_system_attrs_of_running_trials(storage: Storage) -> None:
    """Schedulers and checkpoints record notes on running trials; finishing keeps them."""
    sid = storage.create_study("s", ["minimize"], None, None, {}).study_id
    t = storage.create_trial(sid, {"x": 1}, system_attrs={"ask_index": 0})
    _, seq = storage.get_trials(sid)
    storage.set_trial_system_attr(t.trial_id, "checkpoint", "/tmp/c.pt")
    storage.set_trial_system_attr(t.trial_id, "pbt_parent", None)
    (got,), _ = storage.get_trials(sid, seq)  # the write counts as a change for readers
    assert got.system_attrs == {"ask_index": 0, "checkpoint": "/tmp/c.pt", "pbt_parent": None}
    done = storage.finish_trial(t.trial_id, TrialState.COMPLETE, values=[1.0])
    assert done.system_attrs["checkpoint"] == "/tmp/c.pt"


def test_claim_waiting_trials_in_order(storage: Storage) -> None:
    sid = storage.create_study("s", ["minimize"], None, None, {}).study_id
    storage.create_trial(sid, {"x": 1}, state=TrialState.WAITING)
    storage.create_trial(sid, {"x": 2}, state=TrialState.WAITING)
    a = storage.create_trial(sid, None, worker="w1", claim_waiting=True)
    b = storage.create_trial(sid, None, worker="w2", claim_waiting=True)
    assert (a.params, a.state, a.worker) == ({"x": 1}, TrialState.RUNNING, "w1")
    assert b.params == {"x": 2}
    assert storage.create_trial(sid, None, claim_waiting=True) is None
    c = storage.create_trial(sid, {"x": 3}, claim_waiting=True)
    assert c.number == 2


def test_incremental_sync(storage: Storage) -> None:
    sid = storage.create_study("s", ["minimize"], None, None, {}).study_id
    t0 = storage.create_trial(sid, {"i": 0})
    storage.create_trial(sid, {"i": 1})
    everything, seq = storage.get_trials(sid)
    assert [t.number for t in everything] == [0, 1]
    nothing, seq2 = storage.get_trials(sid, seq)
    assert nothing == []
    assert seq2 == seq
    storage.finish_trial(t0.trial_id, TrialState.COMPLETE, values=[1.0])
    storage.create_trial(sid, {"i": 2})
    changed, seq3 = storage.get_trials(sid, seq)
    assert [t.number for t in changed] == [0, 2]
    assert changed[0].state is TrialState.COMPLETE
    assert seq3 > seq
    with pytest.raises(StudyNotFoundError):
        storage.get_trials(sid + 1000)


def test_dead_workers_trials_are_failed(storage: Storage) -> None:
    sid = storage.create_study("s", ["minimize"], None, None, {}).study_id
    alive = storage.create_trial(sid, {"i": 0}, worker="alive")
    dead = storage.create_trial(sid, {"i": 1}, worker="dead")
    failed = storage.fail_stale_trials(
        sid, requeue=True, is_dead=lambda worker, beat, grace, now: worker == "dead"
    )
    assert failed == [dead.number]
    trials, _ = storage.get_trials(sid)
    by_number = {t.number: t for t in trials}
    assert by_number[alive.number].state is TrialState.RUNNING
    assert by_number[dead.number].state is TrialState.FAIL
    assert "WorkerDied" in by_number[dead.number].error
    requeued = [t for t in trials if t.state is TrialState.WAITING]
    assert [t.params for t in requeued] == [{"i": 1}]


def test_max_trials_stops_new_trials(storage: Storage) -> None:
    """A study-wide budget: no trial numbered max_trials or more is inserted (nor is its
    number used up); waiting trials are still claimed; other studies are not limited."""
    sid = storage.create_study("s", ["minimize"], None, None, {}).study_id
    got = [storage.create_trial(sid, {"i": i}, max_trials=3) for i in range(3)]
    assert [t.number for t in got] == [0, 1, 2]
    with pytest.raises(MaxTrialsReached):
        storage.create_trial(sid, {"i": 3}, worker="w", max_trials=3)
    with pytest.raises(MaxTrialsReached):
        storage.create_trial(sid, {"i": 3}, max_trials=0)
    trials, _ = storage.get_trials(sid)
    assert [t.number for t in trials] == [0, 1, 2]  # nothing half-written
    assert storage.create_trial(sid, {"i": 3}, max_trials=5).number == 3  # no gap
    # An enqueued trial is in the study already: claimed whatever the limit.
    waiting = storage.create_trial(sid, {"i": 9}, state=TrialState.WAITING)
    claimed = storage.create_trial(sid, None, worker="w", claim_waiting=True, max_trials=1)
    assert claimed.number == waiting.number
    assert claimed.state is TrialState.RUNNING
    with pytest.raises(MaxTrialsReached):
        storage.create_trial(sid, {"i": 5}, claim_waiting=True, max_trials=5)
    assert storage.create_trial(sid, None, claim_waiting=True, max_trials=5) is None
    other = storage.create_study("t", ["minimize"], None, None, {}).study_id
    assert storage.create_trial(other, {}, max_trials=1).number == 0
    with pytest.raises(StudyNotFoundError):
        storage.create_trial(other + 1000, {}, max_trials=10)


def test_max_trials_is_exact_under_contention(storage: Storage) -> None:
    """Threads racing to create trials with one study-wide limit: exactly max_trials exist,
    numbered 0 to max_trials - 1, and every thread is told when the budget is spent."""
    sid = storage.create_study("s", ["minimize"], None, None, {}).study_id
    limit, n_threads = 20, 4
    created: list[int] = []
    refused = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            while True:
                try:
                    t = storage.create_trial(sid, {}, worker="w", max_trials=limit)
                except MaxTrialsReached:
                    with lock:
                        refused.append(1)
                    return
                with lock:
                    created.append(t.number)
        except BaseException as exc:  # surfaced below, with the thread's error
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(created) == list(range(limit))
    assert len(refused) == n_threads
    trials, _ = storage.get_trials(sid)
    assert [t.number for t in trials] == list(range(limit))


def test_import_trials_keeps_every_field(storage: Storage) -> None:
    """Trials copied from another study keep their state, values, reports, attributes, error,
    times and worker; they take the study's next numbers and readers see them as changes."""
    src = InMemoryStorage()
    sid0 = src.create_study("src", ["minimize"], None, None, {}).study_id
    done = src.create_trial(sid0, {"x": 1.5}, worker="laptop:1")
    src.set_intermediate(done.trial_id, 1, float("inf"))
    src.set_intermediate(done.trial_id, 2, 0.5)
    src.set_trial_user_attr(done.trial_id, "note", {"a": [1]})
    done = src.finish_trial(
        done.trial_id, TrialState.COMPLETE, values=[0.25], system_attrs={"ask_index": 0}
    )
    failed = src.finish_trial(
        src.create_trial(sid0, {"x": 2.0}, worker="laptop:1").trial_id,
        TrialState.FAIL,
        error="ValueError: boom",
        traceback="Traceback ...",
    )
    pruned = src.finish_trial(
        src.create_trial(sid0, {"x": 3.0}).trial_id, TrialState.PRUNED, values=[9.0]
    )
    waiting = src.create_trial(sid0, {"x": 4.0}, state=TrialState.WAITING)
    running = src.create_trial(sid0, {"x": 5.0})
    originals = [done, failed, pruned, waiting]

    sid = storage.create_study("dst", ["minimize"], None, None, {}).study_id
    storage.create_trial(sid, {"x": 0.0})  # number 0 is taken: the copies follow
    _, seq = storage.get_trials(sid)
    copies = storage.import_trials(sid, originals)
    assert [t.number for t in copies] == [1, 2, 3, 4]
    changed, _ = storage.get_trials(sid, seq)
    assert [t.number for t in changed] == [1, 2, 3, 4]
    for copy, t in zip(changed, originals, strict=True):
        for field in (
            "state",
            "values",
            "params",
            "intermediate",
            "user_attrs",
            "system_attrs",
            "error",
            "traceback",
            "worker",
        ):
            assert getattr(copy, field) == getattr(t, field), field
        for field in ("datetime_start", "datetime_complete"):
            want = getattr(t, field)
            got = getattr(copy, field)
            assert (got is None) == (want is None), field
            assert want is None or abs(got - want) < 1e-3, field
    # The copied waiting trial is claimed like any other.
    claimed = storage.create_trial(sid, None, worker="w", claim_waiting=True)
    assert claimed.params == {"x": 4.0}
    with pytest.raises(ValueError, match="running"):
        storage.import_trials(sid, [running])
    with pytest.raises(StudyNotFoundError):
        storage.import_trials(sid + 1000, [done])
    assert storage.import_trials(sid, []) == []
    assert len(storage.get_trials(sid)[0]) == 5
