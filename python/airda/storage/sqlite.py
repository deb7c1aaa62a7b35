"""SQLite storage, the embedded default: one file, many local worker processes, crash-safe.

What keeps parallel workers from "database is locked": WAL mode (readers never block the
writer), every write in a short ``BEGIN IMMEDIATE`` transaction (the write lock is taken up
front, so a transaction never has to upgrade a stale read snapshot, the cause of immediate
SQLITE_BUSY in WAL mode), a long busy timeout, and a retry loop on top. Trial numbers are
assigned inside the write transaction, so none is ever shared or skipped.

``synchronous=NORMAL`` in WAL mode survives a crash of any process; a power cut may lose the
last commits. The file must be on a local disk (WAL needs shared memory, which network file
systems do not give).

Nothing in this module opens the database file except through SQLite. Closing any descriptor
of a file drops every POSIX lock this process holds on it, including those of SQLite
connections still open on it (SQLite's "How to corrupt your database", section 2.2); another
process may then checkpoint and delete the WAL that a connection here still writes to, and
the writes after that are lost. SQLite's own connections share their locks per file and
defer closing descriptors while locks are held, so many handles on one file are safe.

A file that cannot be written (read-only file or folder) is opened read-only: every read works
and every write raises :class:`~airda.storage.ReadOnlyStorageError` saying so. ``read_only=True``
opens any file that way on purpose (a dashboard, a report, an analysis next to running
workers): every connection is ``file:...?mode=ro`` (SQLite's read-only URI), so this process
cannot write a byte to the file or take a write lock, a missing file is not created and an
empty or older database is not initialised or upgraded.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from airda.storage._schema import (
    SCHEMA_NAME,
    SCHEMA_VERSION,
    check_version,
    migrate,
    schema_statements,
)
from airda.storage._schema import TRIAL_COLUMNS as _TRIAL_COLUMNS
from airda.storage._schema import Damaged as _Damaged
from airda.storage._schema import dumps as _dumps
from airda.storage._schema import dumps_reported as _dumps_reported
from airda.storage._schema import import_row as _import_row
from airda.storage._schema import loads as _loads
from airda.storage._schema import row_to_record as _row_to_record
from airda.storage._schema import row_to_trial as _row_to_trial
from airda.storage.base import (
    DuplicatedStudyError,
    MaxTrialsReached,
    ReadOnlyStorageError,
    Storage,
    StorageError,
    StudyNotFoundError,
    StudyRecord,
    StudySummary,
    check_importable,
    check_json,
)
from airda.trial import FrozenTrial, TrialState

__all__ = ["SQLiteStorage"]

# The tables, version rules and row codecs are shared with the PostgreSQL storage.
_SCHEMA_STATEMENTS = schema_statements("sqlite")

T = TypeVar("T")


def _readonly_message(path: Path, asked: bool = False) -> str:
    if asked:
        return f"{path} was opened read-only (read_only=True): its studies can be read, not written"
    return (
        f"{path} is read-only (no write permission on the file or its folder): "
        "its studies can be read but not written"
    )


class SQLiteStorage(Storage):
    """Studies in one SQLite file; safe for many processes on one machine.

    Args:
        path: the database file; created (with its folder) if absent.
        timeout: seconds a writer waits for the lock before retrying.
        retries: how many times a transaction is retried on "locked"/"busy".
        read_only: open the file read-only: every connection is ``mode=ro``, every write
            raises :class:`~airda.storage.ReadOnlyStorageError`, and a missing, empty or
            older-schema file is refused (:class:`StorageError`) instead of created,
            initialised or upgraded.

    Attributes:
        read_only: opened with ``read_only=True``, or the file or its folder cannot be
            written; reads work, writes raise :class:`~airda.storage.ReadOnlyStorageError`.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "s.db")
        >>> writer = SQLiteStorage(path)
        >>> sid = writer.create_study("demo", ["minimize"], None, None, {}).study_id
        >>> reader = SQLiteStorage(path, read_only=True)
        >>> [s.record.name for s in reader.list_studies()]
        ['demo']
        >>> try:
        ...     reader.create_trial(sid, {"x": 1.0})
        ... except PermissionError as exc:  # a ReadOnlyStorageError, a StorageError too
        ...     print(type(exc).__name__, "read-only" in str(exc))
        ReadOnlyStorageError True
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 60.0,
        retries: int = 20,
        read_only: bool = False,
    ):
        self.path = Path(path).expanduser().resolve()
        self.url = f"sqlite:///{self.path}"
        self.timeout = timeout
        self.retries = retries
        self._local = threading.local()
        self.read_only = bool(read_only)
        self._asked_read_only = bool(read_only)
        if self.path.is_dir():
            raise StorageError(
                f"{self.path} is a folder; give a database file, e.g. {self.path / 'studies.db'}"
            )
        if read_only:
            if not self.path.is_file():
                raise StorageError(f"no storage file {self.path} (opened read-only: none is made)")
            version = self._inspect()
            if version is None or version < SCHEMA_VERSION:
                raise StorageError(
                    f"{self.path} "
                    + (
                        "holds no airda study (an empty database)"
                        if version is None
                        else f"has schema version {version}: open it once for writing to "
                        f"upgrade it to {SCHEMA_VERSION}"
                    )
                    + "; it was opened read-only and left untouched"
                )
            return
        if self.path.exists():
            self.read_only = not (
                os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK)
            )
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create {self.path}: {exc.strerror}") from None
        version = self._inspect()
        if version is None or version < SCHEMA_VERSION:
            if self.read_only:
                raise StorageError(
                    _readonly_message(self.path)
                    + (
                        "; it holds no study yet"
                        if version is None
                        else f", and its schema (version {version}) needs an upgrade first"
                    )
                )
            self._init_schema()

    def __getstate__(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "timeout": self.timeout,
            "retries": self.retries,
            "read_only": self.read_only,
            "asked_read_only": self._asked_read_only,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self.url = f"sqlite:///{self.path}"
        self.timeout = state["timeout"]
        self.retries = state["retries"]
        self.read_only = state.get("read_only", False)
        self._asked_read_only = state.get("asked_read_only", False)
        self._local = threading.local()

    # ---- connections and transactions ----------------------------------------------------
    def _connect_read_only(self) -> sqlite3.Connection:
        uri = "file:" + urllib.parse.quote(str(self.path))
        con = sqlite3.connect(
            f"{uri}?mode=ro", uri=True, timeout=self.timeout, isolation_level=None
        )
        try:
            con.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.OperationalError:
            # A WAL database in a folder nobody may write: no -shm file can be made, so read
            # the file as it stands (nobody can be writing it).
            con.close()
            con = sqlite3.connect(
                f"{uri}?immutable=1", uri=True, timeout=self.timeout, isolation_level=None
            )
        return con

    def _con(self) -> sqlite3.Connection:
        # One connection per thread and process: sqlite3 connections must not cross either.
        con = getattr(self._local, "con", None)
        if con is None or self._local.pid != os.getpid():
            if self.read_only:
                con = self._connect_read_only()
            else:
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

    def _error(self, exc: BaseException) -> StorageError:
        if isinstance(exc, _Damaged):
            return StorageError(f"{self.path}: {exc} (the file was changed outside airda)")
        msg = str(exc)
        if "readonly" in msg.lower() or "read-only" in msg.lower():
            return ReadOnlyStorageError(
                f"{_readonly_message(self.path, self._asked_read_only)} (SQLite: {msg})"
            )
        return StorageError(f"{self.path}: {msg}")

    def _retry(self, fn: Callable[[], T]) -> T:
        delay = 0.001
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                msg = str(exc).lower()
                if ("locked" not in msg and "busy" not in msg) or attempt == self.retries:
                    raise self._error(exc) from exc
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)
            except (sqlite3.Error, _Damaged) as exc:
                # Malformed pages, hand-edited rows: name the file, never a raw sqlite3 error.
                raise self._error(exc) from exc
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
        if self.read_only:
            raise ReadOnlyStorageError(_readonly_message(self.path, self._asked_read_only))

        def run() -> T:
            with self._write() as con:
                return body(con)

        return self._retry(run)

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return self._retry(lambda: self._con().execute(sql, args).fetchall())

    def _inspect(self) -> int | None:
        """The file's schema version, None for an empty database; refuse anything else
        without writing a byte (through SQLite only: see the module's docstring)."""
        if not self.path.exists():
            return None
        try:
            con = self._connect_read_only()
            try:
                tables = {
                    r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
                }
                meta = (
                    dict(con.execute("SELECT key, value FROM meta").fetchall())
                    if "meta" in tables
                    else {}
                )
            finally:
                con.close()
        except sqlite3.DatabaseError as exc:
            if "not a database" in str(exc):
                raise StorageError(
                    f"{self.path} is not an SQLite database, or a damaged one (SQLite: {exc}); "
                    "it was left untouched"
                ) from None
            raise StorageError(
                f"{self.path} is not a readable SQLite database ({exc}); it was left untouched"
            ) from None
        if not tables:
            return None  # an empty database: ours to initialise
        if "meta" not in tables:
            raise StorageError(
                f"{self.path} is an SQLite database of something else (tables: "
                f"{', '.join(sorted(tables)[:5])}); it was left untouched"
            )
        return check_version(meta, str(self.path))

    def _init_schema(self) -> None:
        def body(con: sqlite3.Connection) -> None:
            tables = {
                r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if not tables:
                for stmt in _SCHEMA_STATEMENTS:
                    con.execute(stmt)
                con.execute(
                    "INSERT INTO meta VALUES ('schema', ?), ('version', ?)",
                    (SCHEMA_NAME, str(SCHEMA_VERSION)),
                )
                return
            version = int(con.execute("SELECT value FROM meta WHERE key='version'").fetchone()[0])
            migrate(
                version,
                "sqlite",
                con.execute,
                lambda v: con.execute("UPDATE meta SET value=? WHERE key='version'", (str(v),)),
            )

        self._write_txn(body)

    # ---- studies -------------------------------------------------------------------------
    def _records(self, sql: str, args: Sequence[Any] = ()) -> list[StudyRecord]:
        return self._retry(
            lambda: [_row_to_record(r) for r in self._con().execute(sql, args).fetchall()]
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
            return _row_to_record(row)

        return self._write_txn(body)

    def get_study(self, name):
        rows = self._records("SELECT * FROM studies WHERE name=?", (name,))
        if not rows:
            raise StudyNotFoundError(f"no study named {name!r} in {self.url}")
        return rows[0]

    def _study_by_id(self, study_id: int) -> StudyRecord:
        rows = self._records("SELECT * FROM studies WHERE study_id=?", (study_id,))
        if not rows:
            raise StudyNotFoundError(f"no study with id {study_id} in {self.url}")
        return rows[0]

    def list_studies(self):
        out = []
        for rec in self._records("SELECT * FROM studies ORDER BY study_id"):
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
                    # feasible: no constraint value above 0 (or none at all)
                    "AND NOT EXISTS (SELECT 1 FROM json_each(system_attrs, '$.constraints') "
                    "WHERE value > 0) "
                    f"ORDER BY json_extract(trial_values, '$[0]') {order} LIMIT 1",
                    (rec.study_id,),
                )
                best = (
                    tuple(self._retry(lambda r=r: _loads(r[0][0], "values", list))) if r else None
                )
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
        check_json(value)
        self._update_json("studies", "study_id", study_id, "user_attrs", key, value, _dumps)

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
        max_trials=None,
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
            if max_trials is not None and number >= max_trials:
                # Decided under the write lock that assigns the number: exact across workers.
                raise MaxTrialsReached(
                    f"study id {study_id} has reached its limit of {max_trials} trials in {self.url}"
                )
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

    def import_trials(self, study_id, trials):
        check_importable(trials)
        rows = [_import_row(t) for t in trials]

        def body(con: sqlite3.Connection) -> list[FrozenTrial]:
            if (
                con.execute("SELECT 1 FROM studies WHERE study_id=?", (study_id,)).fetchone()
                is None
            ):
                raise StudyNotFoundError(f"no study with id {study_id} in {self.url}")
            number = con.execute(
                "SELECT COALESCE(MAX(number), -1) + 1 FROM trials WHERE study_id=?", (study_id,)
            ).fetchone()[0]
            seq = self._next_seq(con, study_id)
            ids = []
            for i, row in enumerate(rows):
                cur = con.execute(
                    "INSERT INTO trials (study_id, number, state, params, trial_values, "
                    "intermediate, user_attrs, system_attrs, datetime_start, datetime_complete, "
                    "worker, error, traceback, seq) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (study_id, number + i, *row, seq + i),
                )
                ids.append(cur.lastrowid)
            return [self._trial(con, i) for i in ids]

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
        attrs = dict(system_attrs) if system_attrs else {}
        attrs_json = _dumps(attrs) if attrs else None

        def body(con: sqlite3.Connection) -> FrozenTrial:
            row = con.execute(
                "SELECT study_id, state, number FROM trials WHERE trial_id=?", (trial_id,)
            ).fetchone()
            if row is None:
                raise StorageError(f"no trial with id {trial_id}")
            study_id, current, number = row
            if current != TrialState.RUNNING.value:
                raise StorageError(f"trial {number} is {current}, not running")
            merged = None
            if attrs_json is not None:
                (old,) = con.execute(
                    "SELECT system_attrs FROM trials WHERE trial_id=?", (trial_id,)
                ).fetchone()
                merged = _dumps(_loads(old, f"trial {number}'s system attributes", dict) | attrs)
            con.execute(
                "UPDATE trials SET state=?, trial_values=?, params=COALESCE(?, params), "
                "system_attrs=COALESCE(?, system_attrs), error=?, traceback=?, "
                "datetime_complete=?, seq=? WHERE trial_id=?",
                (
                    state.value,
                    values_json,
                    params_json,
                    merged,
                    error,
                    traceback,
                    time.time(),
                    self._next_seq(con, study_id),
                    trial_id,
                ),
            )
            return self._trial(con, trial_id)

        return self._write_txn(body)

    def _update_json(
        self,
        table: str,
        id_column: str,
        row_id: int,
        column: str,
        key: str,
        value: Any,
        dumps: Callable[[Any], str],
    ) -> None:
        # Read, change and write the object in Python, inside the write transaction: SQL's
        # JSON paths would need the key quoted (a key with '"' was silently dropped) and
        # cannot hold +-inf.
        is_trial = table == "trials"

        def body(con: sqlite3.Connection) -> None:
            extra = ", study_id" if is_trial else ""
            row = con.execute(
                f"SELECT {column}{extra} FROM {table} WHERE {id_column}=?", (row_id,)
            ).fetchone()
            if row is None:
                raise StorageError(f"no {table[:-1]} with id {row_id} in {self.url}")
            obj = _loads(row[0], f"{table[:-1]} id {row_id}'s {column}", dict)
            obj[key] = value
            if is_trial:
                con.execute(
                    f"UPDATE trials SET {column}=?, seq=? WHERE trial_id=?",
                    (dumps(obj), self._next_seq(con, row[1]), row_id),
                )
            else:
                con.execute(
                    f"UPDATE {table} SET {column}=? WHERE {id_column}=?", (dumps(obj), row_id)
                )

        self._write_txn(body)

    def set_intermediate(self, trial_id, step, value):
        self._update_json(
            "trials",
            "trial_id",
            trial_id,
            "intermediate",
            str(int(step)),
            float(value),
            _dumps_reported,
        )

    def set_trial_user_attr(self, trial_id, key, value):
        check_json(value)
        self._update_json("trials", "trial_id", trial_id, "user_attrs", key, value, _dumps)

    def set_trial_system_attr(self, trial_id, key, value):
        check_json(value)
        self._update_json("trials", "trial_id", trial_id, "system_attrs", key, value, _dumps)

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
