"""SQLite storage, the embedded default: one file, many local worker processes, crash-safe.

What keeps parallel workers from "database is locked": WAL mode (readers never block the
writer), every write in a short ``BEGIN IMMEDIATE`` transaction (the write lock is taken up
front, so a transaction never has to upgrade a stale read snapshot, the cause of immediate
SQLITE_BUSY in WAL mode), a long busy timeout, and a retry loop on top. Trial numbers are
assigned inside the write transaction, so none is ever shared or skipped.

``synchronous=NORMAL`` in WAL mode survives a crash of any process; a power cut may lose the
last commits. The file must be on a local disk (WAL needs shared memory, which network file
systems do not give).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from airda.storage.base import (
    DuplicatedStudyError,
    Storage,
    StorageError,
    StudyNotFoundError,
    StudyRecord,
    StudySummary,
)
from airda.trial import FrozenTrial, TrialState

__all__ = ["SQLiteStorage"]

SCHEMA_NAME = "airda-study"
SCHEMA_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE studies (
    study_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    directions TEXT NOT NULL,
    space TEXT,
    strategy TEXT,
    user_attrs TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL
);
CREATE TABLE trials (
    trial_id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(study_id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    state TEXT NOT NULL,
    params TEXT NOT NULL,
    trial_values TEXT,
    intermediate TEXT NOT NULL DEFAULT '{}',
    user_attrs TEXT NOT NULL DEFAULT '{}',
    system_attrs TEXT NOT NULL DEFAULT '{}',
    datetime_start REAL,
    datetime_complete REAL,
    heartbeat REAL,
    worker TEXT NOT NULL DEFAULT '',
    error TEXT,
    traceback TEXT,
    seq INTEGER NOT NULL,
    UNIQUE (study_id, number)
);
CREATE INDEX trials_by_seq ON trials (study_id, seq);
CREATE INDEX trials_by_state ON trials (study_id, state);
"""

# Migrations from version k to k+1, applied in order to older files.
_MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {}

_TRIAL_COLUMNS = (
    "trial_id, number, state, params, trial_values, intermediate, user_attrs, system_attrs, "
    "datetime_start, datetime_complete, worker, error, traceback"
)

T = TypeVar("T")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


def _row_to_trial(row: Sequence[Any]) -> FrozenTrial:
    (
        trial_id,
        number,
        state,
        params,
        values,
        inter,
        user,
        system,
        start,
        end,
        worker,
        error,
        tb,
    ) = row
    return FrozenTrial(
        number=number,
        state=TrialState(state),
        params=json.loads(params),
        values=tuple(json.loads(values)) if values is not None else None,
        intermediate={int(k): v for k, v in json.loads(inter).items()},
        user_attrs=json.loads(user),
        system_attrs=json.loads(system),
        datetime_start=start,
        datetime_complete=end,
        worker=worker,
        error=error,
        traceback=tb,
        trial_id=trial_id,
    )


def _check_existing_file(path: Path) -> None:
    """Refuse, without writing a byte, a file that is not an airda study database."""
    with open(path, "rb") as f:
        head = f.read(len(_SQLITE_MAGIC))
    if head != _SQLITE_MAGIC:
        raise StorageError(
            f"{path} is not an SQLite database (wrong header); it was left untouched"
        )
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {
                r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if not tables:
                return  # an empty database: ours to initialise
            if "meta" not in tables:
                raise StorageError(
                    f"{path} is an SQLite database of something else (tables: "
                    f"{', '.join(sorted(tables)[:5])}); it was left untouched"
                )
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise StorageError(
            f"{path} is not a readable SQLite database ({exc}); it was left untouched"
        ) from None
    if meta.get("schema") != SCHEMA_NAME:
        raise StorageError(f"{path} is not an airda study database; it was left untouched")
    version = int(meta.get("version", "0"))
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"{path} has schema version {version}, newer than this airda ({SCHEMA_VERSION}); "
            "upgrade airda to open it"
        )


class SQLiteStorage(Storage):
    """Studies in one SQLite file; safe for many processes on one machine.

    Args:
        path: the database file; created (with its folder) if absent.
        timeout: seconds a writer waits for the lock before retrying.
        retries: how many times a transaction is retried on "locked"/"busy".
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 60.0, retries: int = 20):
        self.path = Path(path).expanduser().resolve()
        self.url = f"sqlite:///{self.path}"
        self.timeout = timeout
        self.retries = retries
        self._local = threading.local()
        if self.path.exists() and self.path.stat().st_size > 0:
            _check_existing_file(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._init_schema()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "timeout": self.timeout, "retries": self.retries}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self.url = f"sqlite:///{self.path}"
        self.timeout = state["timeout"]
        self.retries = state["retries"]
        self._local = threading.local()

    # ---- connections and transactions ----------------------------------------------------
    def _con(self) -> sqlite3.Connection:
        # One connection per thread and process: sqlite3 connections must not cross either.
        con = getattr(self._local, "con", None)
        if con is None or self._local.pid != os.getpid():
            con = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=True
            )
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA foreign_keys=ON")
            self._local.con = con
            self._local.pid = os.getpid()
        return con

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None and self._local.pid == os.getpid():
            con.close()
        self._local.con = None

    def _retry(self, fn: Callable[[], T]) -> T:
        delay = 0.001
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                msg = str(exc).lower()
                if ("locked" not in msg and "busy" not in msg) or attempt == self.retries:
                    raise StorageError(f"{self.path}: {exc}") from exc
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)
        raise AssertionError("unreachable")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def _write_txn(self, body: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            with self._write() as con:
                return body(con)

        return self._retry(run)

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return self._retry(lambda: self._con().execute(sql, args).fetchall())

    def _init_schema(self) -> None:
        def body(con: sqlite3.Connection) -> None:
            tables = {
                r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if not tables:
                for stmt in filter(str.strip, _SCHEMA.split(";")):
                    con.execute(stmt)
                con.execute(
                    "INSERT INTO meta VALUES ('schema', ?), ('version', ?)",
                    (SCHEMA_NAME, str(SCHEMA_VERSION)),
                )
                return
            version = int(con.execute("SELECT value FROM meta WHERE key='version'").fetchone()[0])
            while version < SCHEMA_VERSION:
                _MIGRATIONS[version](con)
                version += 1
                con.execute("UPDATE meta SET value=? WHERE key='version'", (str(version),))

        self._write_txn(body)

    # ---- studies -------------------------------------------------------------------------
    def _record(self, row: Sequence[Any]) -> StudyRecord:
        sid, name, directions, space, strategy, user_attrs, created = row
        return StudyRecord(
            sid,
            name,
            tuple(json.loads(directions)),
            json.loads(space) if space else None,
            json.loads(strategy) if strategy else None,
            json.loads(user_attrs),
            created,
        )

    def create_study(self, name, directions, space, strategy, user_attrs):
        def body(con: sqlite3.Connection) -> StudyRecord:
            try:
                cur = con.execute(
                    "INSERT INTO studies (name, directions, space, strategy, user_attrs, created) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        name,
                        _dumps(list(directions)),
                        _dumps(space) if space else None,
                        _dumps(strategy) if strategy else None,
                        _dumps(user_attrs),
                        time.time(),
                    ),
                )
            except sqlite3.IntegrityError:
                raise DuplicatedStudyError(f"a study named {name!r} exists already") from None
            row = con.execute("SELECT * FROM studies WHERE study_id=?", (cur.lastrowid,)).fetchone()
            return self._record(row)

        return self._write_txn(body)

    def get_study(self, name):
        rows = self._read("SELECT * FROM studies WHERE name=?", (name,))
        if not rows:
            raise StudyNotFoundError(f"no study named {name!r} in {self.url}")
        return self._record(rows[0])

    def _study_by_id(self, study_id: int) -> StudyRecord:
        rows = self._read("SELECT * FROM studies WHERE study_id=?", (study_id,))
        if not rows:
            raise StudyNotFoundError(f"no study with id {study_id} in {self.url}")
        return self._record(rows[0])

    def list_studies(self):
        out = []
        for row in self._read("SELECT * FROM studies ORDER BY study_id"):
            rec = self._record(row)
            states = dict(
                self._read(
                    "SELECT state, COUNT(*) FROM trials WHERE study_id=? GROUP BY state",
                    (rec.study_id,),
                )
            )
            best = None
            if len(rec.directions) == 1:
                order = "ASC" if rec.directions[0] == "minimize" else "DESC"
                r = self._read(
                    "SELECT trial_values FROM trials WHERE study_id=? AND state='complete' "
                    f"ORDER BY json_extract(trial_values, '$[0]') {order} LIMIT 1",
                    (rec.study_id,),
                )
                best = tuple(json.loads(r[0][0])) if r else None
            out.append(StudySummary(rec, sum(states.values()), states, best))
        return out

    def delete_study(self, name):
        def body(con: sqlite3.Connection) -> None:
            cur = con.execute("DELETE FROM studies WHERE name=?", (name,))
            if cur.rowcount == 0:
                raise StudyNotFoundError(f"no study named {name!r} in {self.url}")

        self._write_txn(body)

    def set_study_space(self, study_id, space):
        self._write_txn(
            lambda con: con.execute(
                "UPDATE studies SET space=? WHERE study_id=?", (_dumps(space), study_id)
            )
        )

    def set_study_user_attr(self, study_id, key, value):
        self._write_txn(
            lambda con: con.execute(
                "UPDATE studies SET user_attrs=json_set(user_attrs, ?, json(?)) WHERE study_id=?",
                (f'$."{key}"', _dumps(value), study_id),
            )
        )

    # ---- trials --------------------------------------------------------------------------
    @staticmethod
    def _next_seq(con: sqlite3.Connection, study_id: int) -> int:
        return con.execute(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM trials WHERE study_id=?", (study_id,)
        ).fetchone()[0]

    def _trial(self, con: sqlite3.Connection, trial_id: int) -> FrozenTrial:
        row = con.execute(
            f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE trial_id=?", (trial_id,)
        ).fetchone()
        if row is None:
            raise StorageError(f"no trial with id {trial_id}")
        return _row_to_trial(row)

    def create_trial(
        self,
        study_id,
        params,
        *,
        state=TrialState.RUNNING,
        worker="",
        system_attrs=None,
        claim_waiting=False,
    ):
        params_json = _dumps(params or {})
        attrs_json = _dumps(system_attrs or {})

        def body(con: sqlite3.Connection) -> FrozenTrial | None:
            now = time.time()
            seq = self._next_seq(con, study_id)
            if claim_waiting:
                row = con.execute(
                    "SELECT trial_id FROM trials WHERE study_id=? AND state='waiting' "
                    "ORDER BY number LIMIT 1",
                    (study_id,),
                ).fetchone()
                if row is not None:
                    con.execute(
                        "UPDATE trials SET state='running', worker=?, datetime_start=?, "
                        "heartbeat=?, seq=? WHERE trial_id=?",
                        (worker, now, now, seq, row[0]),
                    )
                    return self._trial(con, row[0])
                if params is None:
                    return None
            if (
                con.execute("SELECT 1 FROM studies WHERE study_id=?", (study_id,)).fetchone()
                is None
            ):
                raise StudyNotFoundError(f"no study with id {study_id} in {self.url}")
            number = con.execute(
                "SELECT COALESCE(MAX(number), -1) + 1 FROM trials WHERE study_id=?", (study_id,)
            ).fetchone()[0]
            running = state is TrialState.RUNNING
            cur = con.execute(
                "INSERT INTO trials (study_id, number, state, params, system_attrs, "
                "datetime_start, heartbeat, worker, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    study_id,
                    number,
                    state.value,
                    params_json,
                    attrs_json,
                    now if running else None,
                    now if running else None,
                    worker if running else "",
                    seq,
                ),
            )
            return FrozenTrial(
                number=number,
                state=state,
                params=json.loads(params_json),
                system_attrs=json.loads(attrs_json),
                datetime_start=now if running else None,
                worker=worker if running else "",
                trial_id=cur.lastrowid,
            )

        return self._write_txn(body)

    def finish_trial(
        self,
        trial_id,
        state,
        *,
        values=None,
        params=None,
        error=None,
        traceback=None,
        system_attrs=None,
    ):
        values_json = _dumps(list(values)) if values is not None else None
        params_json = _dumps(params) if params is not None else None
        attrs_json = _dumps(system_attrs) if system_attrs else None

        def body(con: sqlite3.Connection) -> FrozenTrial:
            row = con.execute(
                "SELECT study_id, state, number FROM trials WHERE trial_id=?", (trial_id,)
            ).fetchone()
            if row is None:
                raise StorageError(f"no trial with id {trial_id}")
            study_id, current, number = row
            if current != TrialState.RUNNING.value:
                raise StorageError(f"trial {number} is {current}, not running")
            con.execute(
                "UPDATE trials SET state=?, trial_values=?, params=COALESCE(?, params), "
                "system_attrs=CASE WHEN ? IS NULL THEN system_attrs "
                "ELSE json_patch(system_attrs, ?) END, error=?, traceback=?, "
                "datetime_complete=?, seq=? WHERE trial_id=?",
                (
                    state.value,
                    values_json,
                    params_json,
                    attrs_json,
                    attrs_json,
                    error,
                    traceback,
                    time.time(),
                    self._next_seq(con, study_id),
                    trial_id,
                ),
            )
            return self._trial(con, trial_id)

        return self._write_txn(body)

    def _update_json(self, trial_id: int, column: str, key: str, value_json: str) -> None:
        def body(con: sqlite3.Connection) -> None:
            row = con.execute(
                "SELECT study_id FROM trials WHERE trial_id=?", (trial_id,)
            ).fetchone()
            if row is None:
                raise StorageError(f"no trial with id {trial_id}")
            con.execute(
                f"UPDATE trials SET {column}=json_set({column}, ?, json(?)), seq=? "
                "WHERE trial_id=?",
                (f'$."{key}"', value_json, self._next_seq(con, row[0]), trial_id),
            )

        self._write_txn(body)

    def set_intermediate(self, trial_id, step, value):
        self._update_json(trial_id, "intermediate", str(int(step)), _dumps(float(value)))

    def set_trial_user_attr(self, trial_id, key, value):
        self._update_json(trial_id, "user_attrs", key, _dumps(value))

    def set_trial_system_attr(self, trial_id, key, value):
        self._update_json(trial_id, "system_attrs", key, _dumps(value))

    def heartbeat(self, trial_ids):
        if not trial_ids:
            return
        now = time.time()
        marks = ",".join("?" * len(trial_ids))
        self._write_txn(
            lambda con: con.execute(
                f"UPDATE trials SET heartbeat=? WHERE state='running' AND trial_id IN ({marks})",
                (now, *trial_ids),
            )
        )

    def get_trials(self, study_id, since_seq=0):
        def run() -> tuple[list[FrozenTrial], int]:
            con = self._con()
            # One read transaction: the rows and the sequence number come from one snapshot.
            con.execute("BEGIN")
            try:
                if (
                    con.execute("SELECT 1 FROM studies WHERE study_id=?", (study_id,)).fetchone()
                    is None
                ):
                    raise StudyNotFoundError(f"no study with id {study_id} in {self.url}")
                rows = con.execute(
                    f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE study_id=? AND seq>? ORDER BY number",
                    (study_id, since_seq),
                ).fetchall()
                seq = con.execute(
                    "SELECT COALESCE(MAX(seq), 0) FROM trials WHERE study_id=?", (study_id,)
                ).fetchone()[0]
            finally:
                con.execute("COMMIT")
            return [_row_to_trial(r) for r in rows], seq

        return self._retry(run)

    def running_trials(self, study_id):
        return [
            tuple(r)
            for r in self._read(
                "SELECT trial_id, worker, heartbeat FROM trials WHERE study_id=? AND state='running'",
                (study_id,),
            )
        ]
