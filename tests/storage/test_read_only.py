"""Storages opened read-only (``get_storage(url, read_only=True)``): every write is refused with
:class:`ReadOnlyStorageError` (nothing written, no write lock taken), nothing is created, and a
reader sees what a writer adds. SQLite always; PostgreSQL against the tests' throwaway server
(skipped, with the reason, where none can be started)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator

import pytest

import airda
from airda.space import Float
from airda.storage import (
    ReadOnlyStorageError,
    SQLiteStorage,
    StorageError,
    get_storage,
)
from airda.trial import TrialState

SPACE = {"x": Float(-3.0, 3.0)}


def _quadratic(trial) -> float:
    return (trial["x"] - 1.0) ** 2


def _every_write(store, study_id: int, trial_id: int) -> dict[str, object]:
    """Each write method of the Storage interface, as a thunk."""
    return {
        "create_study": lambda: store.create_study("new", ["minimize"], None, None, {}),
        "delete_study": lambda: store.delete_study("s"),
        "set_study_space": lambda: store.set_study_space(study_id, {}),
        "set_study_user_attr": lambda: store.set_study_user_attr(study_id, "k", 1),
        "create_trial": lambda: store.create_trial(study_id, {"x": 0.5}),
        "import_trials": lambda: store.import_trials(study_id, []),
        "finish_trial": lambda: store.finish_trial(trial_id, TrialState.COMPLETE, values=[1.0]),
        "set_intermediate": lambda: store.set_intermediate(trial_id, 0, 1.0),
        "set_trial_user_attr": lambda: store.set_trial_user_attr(trial_id, "k", 1),
        "set_trial_system_attr": lambda: store.set_trial_system_attr(trial_id, "k", 1),
        "heartbeat": lambda: store.heartbeat([trial_id]),
    }


def _check_refuses_writes_and_reads_new_trials(writer, reader) -> None:
    study = airda.create_study("s", storage=writer, space=SPACE, seed=0)
    study.optimize(_quadratic, n_trials=3)
    running = writer.create_trial(study.study_id, {"x": 0.0}, worker="w")
    sid = reader.get_study("s").study_id
    before, seq = reader.get_trials(sid)
    assert reader.read_only
    for what, write in _every_write(reader, sid, running.trial_id).items():
        with pytest.raises(ReadOnlyStorageError, match="read-only") as info:
            write()
        assert isinstance(info.value, PermissionError), what
        assert isinstance(info.value, StorageError), what
    after, seq_after = reader.get_trials(sid)
    assert seq_after == seq  # nothing was written
    assert [t.number for t in after] == [t.number for t in before] == [0, 1, 2, 3]
    assert [s.record.name for s in reader.list_studies()] == ["s"]
    # A writer goes on meanwhile; the reader sees its new trials incrementally.
    writer.finish_trial(running.trial_id, TrialState.COMPLETE, values=[2.0])
    study.optimize(_quadratic, n_trials=2)
    new, seq_new = reader.get_trials(sid, seq)
    assert seq_new > seq
    assert sorted(t.number for t in new) == [3, 4, 5]
    assert all(t.state is TrialState.COMPLETE for t in new)
    # A study loaded through the read-only storage reads, and fails no stale trial.
    loaded = airda.load_study("s", storage=reader)
    assert len(loaded.trials) == 6
    with pytest.raises(ReadOnlyStorageError):
        loaded.optimize(_quadratic, n_trials=1)


# ---- SQLite ---------------------------------------------------------------------------------


def test_sqlite_refuses_writes_and_reads_a_writers_new_trials(tmp_path):
    path = tmp_path / "s.db"
    writer = get_storage(path)
    reader = get_storage(f"sqlite:///{path}", read_only=True)
    assert isinstance(reader, SQLiteStorage)
    _check_refuses_writes_and_reads_new_trials(writer, reader)


def test_sqlite_read_only_connections_cannot_write_or_lock(tmp_path):
    path = tmp_path / "s.db"
    writer = SQLiteStorage(path)
    airda.create_study("s", storage=writer, space=SPACE).optimize(_quadratic, n_trials=2)
    reader = SQLiteStorage(path, read_only=True)
    con = reader._con()
    # Even SQL sent past the storage's own checks is refused by SQLite: mode=ro.
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        con.execute("DELETE FROM trials")
    # Neither a read snapshot held open nor BEGIN IMMEDIATE (a writer's lock, on a writable
    # connection) makes a writer wait: it commits at once, with no retry and 0.1 s timeout.
    fast = SQLiteStorage(path, timeout=0.1, retries=0)
    sid = fast.get_study("s").study_id
    for begin in ("BEGIN", "BEGIN IMMEDIATE"):
        con.execute(begin)
        seen = con.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
        fast.create_trial(sid, {"x": 0.0}, state=TrialState.WAITING)
        assert con.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == seen  # its snapshot
        con.execute("COMMIT")
        assert con.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == seen + 1


def test_sqlite_read_only_creates_nothing(tmp_path):
    missing = tmp_path / "missing.db"
    with pytest.raises(StorageError, match="no storage file"):
        get_storage(missing, read_only=True)
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(StorageError, match="holds no airda study"):
        SQLiteStorage(empty, read_only=True)
    assert sqlite3.connect(empty).execute("SELECT COUNT(*) FROM sqlite_master").fetchone() == (0,)
    foreign = tmp_path / "foreign.db"
    foreign.write_bytes(b"not a database" * 100)
    with pytest.raises(StorageError, match="not an SQLite database"):
        SQLiteStorage(foreign, read_only=True)


def test_a_read_only_sqlite_storage_survives_pickling(tmp_path):
    import pickle

    path = tmp_path / "s.db"
    airda.create_study("s", storage=path, space=SPACE).optimize(_quadratic, n_trials=1)
    reader = pickle.loads(pickle.dumps(SQLiteStorage(path, read_only=True)))
    assert reader.get_study("s").name == "s"
    with pytest.raises(ReadOnlyStorageError, match=r"read_only=True"):
        reader.create_study("t", ["minimize"], None, None, {})


def test_get_storage_read_only_arguments(tmp_path):
    with pytest.raises(ValueError, match="in-memory"):
        get_storage(None, read_only=True)
    with pytest.raises(ValueError, match="in-memory"):
        get_storage("memory://", read_only=True)
    with pytest.raises(ValueError, match="sqlite URLs look like"):
        get_storage("sqlite://rel.db", read_only=True)
    with pytest.raises(ValueError, match="unknown storage URL scheme"):
        get_storage("redis://x", read_only=True)
    path = tmp_path / "s.db"
    writer = get_storage(path)
    with pytest.raises(ValueError, match="opened for writing"):
        get_storage(writer, read_only=True)
    writer.create_study("s", ["minimize"], None, None, {})
    reader = get_storage(os.fspath(path), read_only=True)
    assert get_storage(reader, read_only=True) is reader


# ---- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture
def pg_writer() -> Iterator[object]:
    pytest.importorskip("psycopg", reason="psycopg 3 is not installed (the postgres extra)")
    from airda.testing import _postgres

    try:
        store = _postgres.fresh_storage()
    except _postgres.PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server for the tests: {exc}")
    yield store
    _postgres.drop_schema(store)


def _pg_url(writer) -> str:
    from airda.testing import _postgres

    url = _postgres.shared_server_url()
    return url + ("&" if "?" in url else "?") + f"schema={writer.schema}"


def test_postgres_refuses_writes_and_reads_a_writers_new_trials(pg_writer):
    reader = get_storage(_pg_url(pg_writer), read_only=True)
    try:
        assert "read_only=True" in repr(reader)
        _check_refuses_writes_and_reads_new_trials(pg_writer, reader)
    finally:
        reader.close()


def test_postgres_sessions_are_read_only_on_the_server(pg_writer):
    """SQL sent past the storage's own checks is refused by the server: the session's
    transactions are READ ONLY (no writes, no row locks)."""
    from psycopg import errors

    airda.create_study("s", storage=pg_writer, space=SPACE).optimize(_quadratic, n_trials=2)
    reader = get_storage(_pg_url(pg_writer), read_only=True)
    try:
        con = reader._connection()
        assert con.execute("SHOW transaction_read_only").fetchone() == ("on",)
        with pytest.raises(errors.ReadOnlySqlTransaction):
            con.execute("DELETE FROM trials")
        with pytest.raises(errors.ReadOnlySqlTransaction):
            con.execute("SELECT * FROM study_counters FOR UPDATE")
        # A write that reached the server anyway becomes the storage's read-only error.
        with pytest.raises(ReadOnlyStorageError, match="read-only"):
            reader._run(
                lambda c: c.execute("UPDATE meta SET value=value"), txn=True, idempotent=True
            )
    finally:
        reader.close()


def test_postgres_read_only_creates_no_schema(pg_writer):
    import psycopg

    url = _pg_url(pg_writer).replace(f"schema={pg_writer.schema}", "schema=ro_never_made")
    with pytest.raises(StorageError, match="holds no airda study tables"):
        get_storage(url, read_only=True)
    with psycopg.connect(pg_writer._conninfo, autocommit=True) as con:
        found = con.execute("SELECT 1 FROM pg_namespace WHERE nspname='ro_never_made'").fetchone()
    assert found is None
