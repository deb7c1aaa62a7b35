"""The PostgreSQL storage against a real server: concurrent worker processes on one study, a
killed worker's trial, a server restarted mid-study, schema versions, and the errors a user
meets (server down, bad URL, bad credentials). The conformance suite runs it too
(tests/testing/test_conformance.py).

The server is a throwaway cluster started for the session (airda.testing._postgres); every
test here is skipped, with the reason, where none can be started."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import airda
from airda.space import Float
from airda.storage import StorageError, get_storage
from airda.storage._schema import SCHEMA_VERSION
from airda.trial import TrialState
from tests import objectives

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is not installed (the postgres extra)")

from airda.storage.postgres import PostgresStorage  # noqa: E402
from airda.testing import _postgres  # noqa: E402

SPACE = {"x": Float(-3.0, 3.0)}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _quiet():
    logger = logging.getLogger("airda")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@pytest.fixture
def storage() -> Iterator[PostgresStorage]:
    try:
        store = _postgres.fresh_storage()
    except _postgres.PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server for the tests: {exc}")
    yield store
    _postgres.drop_schema(store)


@pytest.fixture
def server() -> _postgres.PostgresServer:
    """The session's own server (tests that change roles or need its port)."""
    if os.environ.get(_postgres.ENV_URL):
        pytest.skip(f"{_postgres.ENV_URL} names an external server")
    try:
        return _postgres.shared_server()
    except _postgres.PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server for the tests: {exc}")


def _python(code: str, **kw) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


# ---- many processes, one study --------------------------------------------------------------
def _hammer(args: tuple[PostgresStorage, int, int]) -> list[tuple[str, int]]:
    """A worker process: claim waiting trials and create new ones, finishing each."""
    storage, study_id, n_new = args
    worker = f"w{os.getpid()}"
    done = []
    while (
        t := storage.create_trial(study_id, None, worker=worker, claim_waiting=True)
    ) is not None:
        storage.finish_trial(t.trial_id, TrialState.COMPLETE, values=[t.params["i"]])
        done.append(("claimed", t.number))
    for i in range(n_new):
        t = storage.create_trial(study_id, {"i": 1000 + i}, worker=worker)
        storage.set_intermediate(t.trial_id, 0, float(i))
        storage.finish_trial(t.trial_id, TrialState.COMPLETE, values=[float(i)])
        done.append(("new", t.number))
    storage.close()
    return done


def test_processes_share_a_study_without_lost_or_duplicated_trials(storage):
    sid = storage.create_study("s", ["minimize"], None, None, {}).study_id
    for i in range(40):
        storage.create_trial(sid, {"i": i}, state=TrialState.WAITING)
    _, seq0 = storage.get_trials(sid)
    with mp.get_context("spawn").Pool(4) as pool:
        results = pool.map(_hammer, [(storage, sid, 25)] * 4)
    claimed = [n for r in results for kind, n in r if kind == "claimed"]
    new = [n for r in results for kind, n in r if kind == "new"]
    assert sorted(claimed) == list(range(40))  # every waiting trial taken exactly once
    assert sorted(new) == list(range(40, 140))  # consecutive numbers, none shared
    trials, seq = storage.get_trials(sid)
    assert [t.number for t in trials] == list(range(140))
    assert Counter(t.state for t in trials) == {TrialState.COMPLETE: 140}
    # Every write was one sequence step: 40 claims + 40 finishes, 100 x (new, report, finish).
    assert seq - seq0 == 40 * 2 + 100 * 3
    changed, _ = storage.get_trials(sid, seq0)
    assert len(changed) == 140


def test_optimize_with_worker_processes(storage):
    study = airda.create_study("p", storage=storage, space=SPACE, seed=0)
    study.optimize(objectives.quadratic, n_trials=24, n_workers=3)
    trials = study.trials
    assert [t.number for t in trials] == list(range(24))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    # Workers draw from distinct random streams: no two propose the same point. (Which worker
    # ran how many trials is up to the scheduler: one fast worker may take them all.)
    assert len({t.params["x"] for t in trials}) == 24


def test_threads_share_one_connection(storage):
    study = airda.create_study("t", storage=storage, space=SPACE, seed=0)
    study.optimize(objectives.quadratic, n_trials=30, n_workers=4, executor="thread")
    assert [t.number for t in study.trials] == list(range(30))
    assert all(t.state is TrialState.COMPLETE for t in study.trials)


def test_forked_child_opens_its_own_connection(storage):
    sid = storage.create_study("f", ["minimize"], None, None, {}).study_id
    storage.create_trial(sid, {"who": "parent"})
    pid = os.fork()
    if pid == 0:  # the child: its writes must go through a connection of its own
        try:
            storage.create_trial(sid, {"who": "child"})
            storage.close()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    storage.create_trial(sid, {"who": "parent again"})  # the parent's session still works
    trials, _ = storage.get_trials(sid)
    assert [t.params["who"] for t in trials] == ["parent", "child", "parent again"]


# ---- dead workers -----------------------------------------------------------------------------
def test_killed_workers_trial_is_failed(storage, tmp_path):
    airda.create_study("k", storage=storage, space=SPACE)
    proc = _python(
        f"""
        import pickle, sys, time, airda
        storage = pickle.loads(bytes.fromhex({pickle.dumps(storage).hex()!r}))
        study = airda.load_study("k", storage=storage)
        trial = study.ask()
        print(trial.number, flush=True)
        time.sleep(600)
        """
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "0", proc.stderr.read() if proc.stderr else ""
    (running,) = storage.running_trials(storage.get_study("k").study_id)
    assert running[1].endswith(f":{proc.pid}")
    proc.send_signal(signal.SIGKILL)
    proc.communicate()  # waits, and closes the pipes
    study = airda.load_study("k", storage=storage)  # fails the dead worker's trial
    (t,) = study.trials
    assert t.state is TrialState.FAIL
    assert "WorkerDied" in t.error


def test_stale_heartbeat_of_another_machine(storage, server):
    """Across machines only the heartbeat tells: it is kept in the server's clock and compared
    on the caller's, so a worker elsewhere is failed after the grace period and not before."""
    sid = storage.create_study("h", ["minimize"], None, None, {}).study_id
    quiet = storage.create_trial(sid, {"i": 0}, worker="elsewhere.example:1")
    alive = storage.create_trial(sid, {"i": 1}, worker="elsewhere.example:2")
    (_, _, beat), _ = sorted(storage.running_trials(sid))
    assert abs(beat - time.time()) < 5  # the server's clock, translated to ours
    server.sql(
        f"UPDATE {storage.schema}.trials SET heartbeat = heartbeat - 120 "
        f"WHERE trial_id = {quiet.trial_id}",
        dbname="airda_test",
    )
    storage.heartbeat([alive.trial_id])
    assert storage.fail_stale_trials(sid, grace=60.0) == [quiet.number]
    states = {t.number: t.state for t in storage.get_trials(sid)[0]}
    assert states == {quiet.number: TrialState.FAIL, alive.number: TrialState.RUNNING}


# ---- the server goes away ------------------------------------------------------------------
@pytest.fixture
def own_server() -> Iterator[_postgres.PostgresServer]:
    """A server of this test's own, to stop and restart."""
    try:
        server = _postgres.PostgresServer().start()
    except _postgres.PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server for the tests: {exc}")
    yield server
    server.remove()


def test_server_restarted_mid_study(own_server):
    storage = PostgresStorage(own_server.url())
    study = airda.create_study("r", storage=storage, space=SPACE, seed=0)
    study.optimize(objectives.quadratic, n_trials=5)
    # Restarted between two calls: the dropped connection is noticed and replaced.
    own_server.restart()
    study.optimize(objectives.quadratic, n_trials=5)
    assert len(study.trials) == 10
    # Down: a clear error, quickly, and no trial started.
    own_server.stop()
    start = time.monotonic()
    with pytest.raises(StorageError, match="cannot connect to PostgreSQL database 'airda_test'"):
        study.optimize(objectives.quadratic, n_trials=5)
    assert time.monotonic() - start < 15
    # Back: the same objects work again.
    own_server.start()
    study.optimize(objectives.quadratic, n_trials=5)
    trials = study.trials
    assert [t.number for t in trials] == list(range(15))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    storage.close()


def test_connection_lost_mid_write_is_a_storage_error(storage, server, monkeypatch):
    sid = storage.create_study("l", ["minimize"], None, None, {}).study_id
    t = storage.create_trial(sid, {})
    (pid,) = storage._fetch("SELECT pg_backend_pid()")[0]
    # The session is killed while the client believes it idle, and the kill's notice is
    # consumed before the write, as if it arrived with the write's answer.
    server.sql(f"SELECT pg_terminate_backend({pid})")
    time.sleep(0.2)
    monkeypatch.setattr(storage, "_server_hung_up", lambda con: False)
    with pytest.raises(StorageError, match=r"lost the connection .* may or may not have been"):
        storage.finish_trial(t.trial_id, TrialState.COMPLETE, values=[1.0])
    monkeypatch.undo()
    done = storage.finish_trial(t.trial_id, TrialState.COMPLETE, values=[1.0])  # reconnected
    assert done.values == (1.0,)


def test_a_session_left_in_a_failed_transaction_is_replaced(storage):
    sid = storage.create_study("i", ["minimize"], None, None, {}).study_id
    con = storage._con  # as an interrupted call would leave it
    con.execute("BEGIN")
    with pytest.raises(psycopg.errors.DivisionByZero):
        con.execute("SELECT 1/0")
    assert storage.create_trial(sid, {}).number == 0
    assert storage._con is not con


# ---- connecting --------------------------------------------------------------------------------
def test_server_down_is_a_clear_error_not_a_hang():
    port = _postgres._free_port()
    start = time.monotonic()
    with pytest.raises(StorageError, match=rf"cannot connect to .*127\.0\.0\.1:{port}"):
        PostgresStorage(f"postgresql://nobody@127.0.0.1:{port}/db")
    assert time.monotonic() - start < 5


def test_bad_url_and_bad_credentials(server):
    with pytest.raises(StorageError, match="malformed PostgreSQL URL"):
        PostgresStorage("postgresql://u@h/db?no_such_option=1")
    with pytest.raises(
        StorageError, match=r"invalid integer value \"notaport\" for connection option \"port\""
    ):
        PostgresStorage("postgresql://u@127.0.0.1:notaport/db")
    user, password = _postgres.PASSWORD_ROLE
    base = f"127.0.0.1:{server.port}/airda_test"
    with pytest.raises(StorageError, match="password authentication failed") as info:
        PostgresStorage(f"postgresql://{user}:wrong@{base}")
    assert "wrong" not in str(info.value)
    with pytest.raises(StorageError, match='database "nope" does not exist'):
        PostgresStorage(f"postgresql://airda@127.0.0.1:{server.port}/nope")
    good = PostgresStorage(f"postgresql://{user}:{password}@{base}?schema=pw_{os.getpid()}")
    assert password not in good.url
    assert password not in repr(good)
    assert good.schema == f"pw_{os.getpid()}"
    good.create_study("s", ["minimize"], None, None, {})
    _postgres.drop_schema(good)


def test_get_storage_and_pickling(storage):
    url = f"{_postgres.shared_server_url()}?schema={storage.schema}"
    again = get_storage(url)
    assert isinstance(again, PostgresStorage)
    assert again.schema == storage.schema
    storage.create_study("s", ["minimize"], None, None, {})
    assert [s.record.name for s in again.list_studies()] == ["s"]
    copy = pickle.loads(pickle.dumps(again))
    assert copy.get_study("s").name == "s"
    again.close()
    copy.close()


# ---- schema versions -----------------------------------------------------------------------
def test_schema_version_is_recorded_and_checked(storage, server):
    schema = storage.schema
    rows = server.sql(f"SELECT key, value FROM {schema}.meta ORDER BY key", dbname="airda_test")
    assert dict(rows) == {"schema": "airda-study", "version": str(SCHEMA_VERSION)}
    url = _postgres.shared_server_url()
    PostgresStorage(url, schema=schema).close()  # the current version opens
    server.sql(f"UPDATE {schema}.meta SET value='999' WHERE key='version'", dbname="airda_test")
    with pytest.raises(StorageError, match="newer than this airda"):
        PostgresStorage(url, schema=schema)


def test_foreign_tables_are_left_untouched(server):
    schema = f"foreign_{os.getpid()}"
    server.sql(f"CREATE SCHEMA {schema}", dbname="airda_test")
    server.sql(f"CREATE TABLE {schema}.trials (id int)", dbname="airda_test")
    try:
        with pytest.raises(StorageError, match="tables of something else"):
            PostgresStorage(_postgres.shared_server_url(), schema=schema)
        assert server.sql(f"SELECT count(*) FROM {schema}.trials", dbname="airda_test") == [(0,)]
    finally:
        server.sql(f"DROP SCHEMA {schema} CASCADE", dbname="airda_test")


def test_studies_list_and_best(storage):
    study = airda.create_study("best", storage=storage, space=SPACE, seed=1)
    study.optimize(objectives.quadratic, n_trials=8)
    (summary,) = storage.list_studies()
    assert summary.n_trials == 8
    assert summary.states == {"complete": 8}
    assert summary.best_values == (study.best_value,)
