"""PostgreSQL storage: one study shared by workers on many machines (psycopg 3).

The tables are SQLite's (:mod:`airda.storage._schema`, one schema version for both), in a
PostgreSQL schema of their own (``airda_studies`` unless the URL says ``?schema=NAME``), so the
database may hold other applications' tables, Optuna's included. (Not ``airda``: PostgreSQL's
default search path starts with a schema named after the user, so a user named airda would
see the tables from every other tool.) One table is added: a counter
row per study (``study_counters``: the next trial number and the study's write sequence).

How concurrent workers stay consistent, at READ COMMITTED:

* Every write that changes a trial takes its study's counter row (``UPDATE ... RETURNING``),
  in the same statement or transaction as the change, and holds it until commit. Trial numbers
  are therefore consecutive, and writes commit in the order of their sequence numbers, so a
  reader's snapshot always holds every write up to the counter it sees: incremental sync
  (:meth:`PostgresStorage.get_trials`, one statement) never misses a write.
* A waiting trial is claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``: two workers never take
  the same one, and neither waits for the other.
* Heartbeats and every time in the tables come from the server's clock, and
  :meth:`PostgresStorage.running_trials` translates them to the caller's clock: the
  stale-trial rule holds across machines whose clocks disagree.
* Deadlocks and serialization failures are retried; a connection the server closed (restart,
  failover) is noticed before a write is sent and replaced. A connection lost in the middle of
  a write that cannot safely be repeated (a new trial, a finished one) raises
  :class:`StorageError`; the next call reconnects.

``read_only=True`` opens the storage for reading only (a dashboard, a report): every session
runs ``SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY``, so the server itself refuses any
write and any row lock (``FOR UPDATE``), every write method raises
:class:`~airda.storage.ReadOnlyStorageError` before sending anything, and a schema that holds
no airda tables yet (or an older version of them) is refused instead of created or upgraded.
Under MVCC a reader never blocks a writer.

Each process holds one connection, shared by its threads under a lock; a forked child opens
its own and never touches its parent's. Connecting gives up after ``connect_timeout`` seconds
(10 unless the URL says otherwise) with a :class:`StorageError`, never a hang.

Example (needs a server):

    >>> storage = PostgresStorage("postgresql://me@db.example.org/studies")  # doctest: +SKIP
    >>> airda.create_study("sweep", storage=storage, space=space)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import threading
import time
import urllib.parse
import zlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from airda.storage._schema import (
    SCHEMA_NAME,
    SCHEMA_VERSION,
    TRIAL_COLUMNS,
    Damaged,
    check_version,
    dumps,
    dumps_reported,
    import_row,
    loads,
    migrate,
    row_to_record,
    row_to_trial,
    schema_statements,
)
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

try:
    import psycopg
    from psycopg import conninfo as pg_conninfo
    from psycopg import errors as pg_errors
    from psycopg import sql as pg_sql
except ImportError:  # pragma: no cover - the error is raised when a storage is made
    psycopg = None

__all__ = ["PostgresStorage"]

DEFAULT_SCHEMA = "airda_studies"

# Added to the shared tables: the per-study counters every trial write locks.
_POSTGRES_EXTRA = [
    "CREATE TABLE study_counters ("
    " study_id INTEGER PRIMARY KEY REFERENCES studies(study_id) ON DELETE CASCADE,"
    " next_number INTEGER NOT NULL DEFAULT 0,"
    " seq INTEGER NOT NULL DEFAULT 0)",
]

# The server's clock, in seconds since the epoch (every time stored comes from it).
_NOW = "extract(epoch from clock_timestamp())::float8"

_STUDY_COLUMNS = "study_id, name, directions, space, strategy, user_attrs, created"

# Connections a forked child inherited from its parent: kept referenced and never closed,
# since closing one would end the parent's session on the shared socket.
_INHERITED: list[Any] = []

T = TypeVar("T")


class _Retry(Exception):
    """Raised inside a transaction to run it again (nothing was committed)."""


def _split_url(url: str) -> tuple[str, str | None]:
    """The connection string for libpq and the schema named by ``?schema=`` (which libpq
    would refuse as an unknown parameter)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        return url, None  # a libpq key=value string: passed through
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    schema = None
    kept = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            kept.append((key, value))
    rest = urllib.parse.urlencode(kept, quote_via=urllib.parse.quote)
    return urllib.parse.urlunsplit(parts._replace(query=rest)), schema


def _masked(url: str) -> str:
    """The URL without its password (it appears in errors and reprs)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class PostgresStorage(Storage):
    """Studies in a PostgreSQL database; safe for many processes on many machines.

    Args:
        url: ``postgresql://user[:password]@host[:port]/database[?schema=NAME&...]``; any
            libpq parameter may follow (``sslmode``, ``connect_timeout``, ...), and libpq's
            environment (``PGPASSWORD``, ``~/.pgpass``) supplies what the URL leaves out.
        schema: the PostgreSQL schema holding airda's tables (created if absent); the URL's
            ``?schema=`` wins over this default.
        connect_timeout: seconds to wait for the server before a :class:`StorageError`
            (unless the URL sets ``connect_timeout``).
        retries: how many times a write is retried after a deadlock or serialization failure.
        read_only: only read: sessions in read-only transaction mode, writes refused with
            :class:`~airda.storage.ReadOnlyStorageError`, nothing created or upgraded (a
            schema without airda's tables, or with an older version of them, is a
            :class:`StorageError`).

    Raises:
        StorageError: psycopg is missing, the URL is malformed, the server cannot be reached
            or refuses the credentials, or the schema holds something else or a newer
            version of airda's tables.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        connect_timeout: float = 10.0,
        retries: int = 20,
        read_only: bool = False,
    ):
        if psycopg is None:
            raise StorageError(
                "PostgreSQL storage needs psycopg 3: pip install 'airda-lab[postgres]'"
            )
        conninfo, url_schema = _split_url(url)
        self._conninfo = conninfo
        self.schema = url_schema if url_schema is not None else (schema or DEFAULT_SCHEMA)
        if not self.schema:
            raise StorageError(f"empty schema name in {_masked(url)!r}")
        self.connect_timeout = connect_timeout
        self.retries = retries
        self.read_only = bool(read_only)
        self.url = _masked(url)
        try:
            params = pg_conninfo.conninfo_to_dict(conninfo)
        except psycopg.Error as exc:
            raise StorageError(f"malformed PostgreSQL URL {self.url!r}: {exc}") from None
        self._params = params
        host = params.get("host") or os.environ.get("PGHOST") or "localhost"
        port = params.get("port") or os.environ.get("PGPORT") or "5432"
        db = params.get("dbname") or os.environ.get("PGDATABASE") or params.get("user") or ""
        self._where = f"PostgreSQL database {db!r} on {host}:{port} (schema {self.schema!r})"
        self._reset()
        if self.read_only:
            self._check_schema()
        else:
            self._init_schema()

    def _reset(self) -> None:
        self._lock = threading.RLock()
        self._con: Any = None
        self._pid = os.getpid()

    def __getstate__(self) -> dict[str, Any]:
        return {
            "conninfo": self._conninfo,
            "schema": self.schema,
            "connect_timeout": self.connect_timeout,
            "retries": self.retries,
            "read_only": self.read_only,
            "url": self.url,
            "params": self._params,
            "where": self._where,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._conninfo = state["conninfo"]
        self.schema = state["schema"]
        self.connect_timeout = state["connect_timeout"]
        self.retries = state["retries"]
        self.read_only = state.get("read_only", False)
        self.url = state["url"]
        self._params = state["params"]
        self._where = state["where"]
        self._reset()

    def __repr__(self) -> str:
        ro = ", read_only=True" if self.read_only else ""
        return f"PostgresStorage({self.url!r}, schema={self.schema!r}{ro})"

    # ---- connections -----------------------------------------------------------------------
    def _connect(self) -> Any:
        extra: dict[str, Any] = {}
        if "connect_timeout" not in self._params:
            extra["connect_timeout"] = max(2, round(self.connect_timeout))
        if "application_name" not in self._params:
            extra["application_name"] = "airda"
        try:
            con = psycopg.connect(self._conninfo, autocommit=True, **extra)
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to {self._where}: {_first_line(exc)}") from None
        try:
            # A transaction left open by a stalled client would hold its study's counter.
            con.execute(
                pg_sql.SQL(
                    "SET search_path TO {}; SET idle_in_transaction_session_timeout = '60s'"
                ).format(pg_sql.Identifier(self.schema))
            )
            if self.read_only:
                # Every transaction of this session, autocommit statements included: the
                # server refuses writes and row locks, whatever the client sends.
                con.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        except psycopg.Error as exc:
            con.close()
            raise StorageError(f"{self._where}: {_first_line(exc)}") from None
        return con

    def _connection(self) -> Any:
        """This process's connection (the caller holds the lock); a new one after a fork or
        once the server has closed the old one."""
        con = self._con
        if (
            con is not None
            and not con.closed
            and (
                # An interrupted call (Ctrl-C mid-statement) may leave a transaction open or
                # failed: that session is not reused.
                con.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
                or self._server_hung_up(con)
            )
        ):
            self._drop()
            con = None
        if con is None or con.closed:
            self._con = con = self._connect()
        return con

    @staticmethod
    def _server_hung_up(con: Any) -> bool:
        # An idle connection has nothing to read; anything there is the server closing it
        # (a restart, pg_terminate_backend) or a notice: ask, at the cost of one round trip.
        try:
            readable, _, _ = select.select([con.fileno()], [], [], 0)
        except (OSError, ValueError, psycopg.Error):
            return True
        if not readable:
            return False
        try:
            con.execute("SELECT 1")
        except psycopg.Error:
            return True
        return False

    def _drop(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            # A broken connection may fail to close; it is gone either way.
            with contextlib.suppress(Exception):
                con.close()

    def _rollback(self, con: Any) -> None:
        if con.closed or con.broken:
            return
        try:
            con.execute("ROLLBACK")
        except psycopg.Error:
            self._drop()  # a session in an unknown state is not reused

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            if self._con is not None:
                _INHERITED.append(self._con)
            self._reset()

    def close(self) -> None:
        if self._pid != os.getpid():
            self._check_fork()
            return
        with self._lock:
            self._drop()

    def __del__(self) -> None:
        # Close quietly when the storage goes away (psycopg warns about open connections).
        with contextlib.suppress(Exception):
            if getattr(self, "_con", None) is not None and self._pid == os.getpid():
                self._con.close()

    # ---- running statements ----------------------------------------------------------------
    def _writable(self) -> None:
        if self.read_only:
            raise ReadOnlyStorageError(
                f"{self._where} was opened read-only (read_only=True): its studies can be "
                "read, not written"
            )

    def _error(self, exc: BaseException) -> StorageError:
        if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
            return ReadOnlyStorageError(
                f"{self._where} was opened read-only (read_only=True): {_first_line(exc)}"
            )
        if isinstance(exc, Damaged):
            return StorageError(f"{self._where}: {exc} (the row was changed outside airda)")
        return StorageError(f"{self._where}: {_first_line(exc)}")

    def _run(self, body: Callable[[Any], T], *, txn: bool, idempotent: bool) -> T:
        """Run `body(connection)`, in one transaction if `txn` (else in autocommit: one
        statement is atomic on its own). Deadlocks are retried; a lost connection is replaced
        and `body` run again when that is safe: it was lost before anything was sent, or
        `body` may run twice."""
        self._check_fork()
        delay = 0.001
        reconnects = 0
        attempt = 0
        while True:
            sent = False
            with self._lock:
                con = self._connection()
                try:
                    if txn:
                        con.execute("BEGIN")
                    sent = True
                    try:
                        out = body(con)
                    except BaseException:
                        if txn:
                            self._rollback(con)
                        raise
                    if txn:
                        con.execute("COMMIT")
                    return out
                except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure) as exc:
                    if attempt >= self.retries:
                        raise self._error(exc) from exc
                except psycopg.OperationalError as exc:
                    if not (con.closed or con.broken):
                        raise self._error(exc) from exc
                    self._drop()
                    if (sent and not idempotent) or reconnects >= 1:
                        raise StorageError(
                            f"lost the connection to {self._where} ({_first_line(exc)}); "
                            + ("the write may or may not have been recorded; " if sent else "")
                            + "the next call reconnects"
                        ) from exc
                    reconnects += 1
                    continue
                except (psycopg.Error, Damaged) as exc:
                    raise self._error(exc) from exc
            attempt += 1
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.5)

    def _read(self, body: Callable[[Any], T]) -> T:
        return self._run(body, txn=False, idempotent=True)

    def _fetch(self, query: str, args: Sequence[Any] = ()) -> list[Any]:
        return self._read(lambda con: con.execute(query, args).fetchall())

    def _init_schema(self) -> None:
        schema = self.schema

        def body(con: Any) -> None:
            # Several workers may open a fresh database at once: one creates, the others wait.
            con.execute(
                "SELECT pg_advisory_xact_lock(%s)", (zlib.crc32(f"airda:{schema}".encode()),)
            )
            tables = {
                r[0]
                for r in con.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname=%s", (schema,)
                )
            }
            if not tables:
                if not con.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname=%s", (schema,)
                ).fetchone():
                    con.execute(pg_sql.SQL("CREATE SCHEMA {}").format(pg_sql.Identifier(schema)))
                for stmt in schema_statements("postgresql") + _POSTGRES_EXTRA:
                    con.execute(stmt)
                con.execute(
                    "INSERT INTO meta VALUES ('schema', %s), ('version', %s)",
                    (SCHEMA_NAME, str(SCHEMA_VERSION)),
                )
                return
            if "meta" not in tables:
                raise StorageError(
                    f"{self._where} holds tables of something else ("
                    f"{', '.join(sorted(tables)[:5])}); it was left untouched: choose another "
                    "schema with ?schema=NAME in the URL"
                )
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
            version = check_version(meta, self._where)
            migrate(
                version,
                "postgresql",
                con.execute,
                lambda v: con.execute("UPDATE meta SET value=%s WHERE key='version'", (str(v),)),
            )

        self._run(body, txn=True, idempotent=True)

    def _check_schema(self) -> None:
        """What :meth:`_init_schema` checks, without creating or upgrading anything."""
        schema = self.schema

        def body(con: Any) -> None:
            tables = {
                r[0]
                for r in con.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname=%s", (schema,)
                )
            }
            if "meta" not in tables:
                raise StorageError(
                    f"{self._where} holds no airda study tables"
                    + (f" (but {', '.join(sorted(tables)[:5])})" if tables else "")
                    + "; it was opened read-only and left untouched"
                )
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
            version = check_version(meta, self._where)
            if version < SCHEMA_VERSION:
                raise StorageError(
                    f"{self._where} has schema version {version}: open it once for writing "
                    f"to upgrade it to {SCHEMA_VERSION}; it was opened read-only and left "
                    "untouched"
                )

        self._read(body)

    # ---- studies -------------------------------------------------------------------------
    def create_study(self, name, directions, space, strategy, user_attrs):
        self._writable()
        args = (
            name,
            dumps(list(directions)),
            dumps(space) if space else None,
            dumps(strategy) if strategy else None,
            dumps(user_attrs),
        )

        def body(con: Any) -> StudyRecord:
            try:
                row = con.execute(
                    "WITH s AS (INSERT INTO studies (name, directions, space, strategy, "
                    f"user_attrs, created) VALUES (%s, %s, %s, %s, %s, {_NOW}) "
                    f"RETURNING {_STUDY_COLUMNS}), "
                    "c AS (INSERT INTO study_counters (study_id) SELECT study_id FROM s) "
                    f"SELECT {_STUDY_COLUMNS} FROM s",
                    args,
                ).fetchone()
            except pg_errors.UniqueViolation:
                raise DuplicatedStudyError(f"a study named {name!r} exists already") from None
            return row_to_record(row)

        return self._run(body, txn=False, idempotent=False)

    def _records(self, where: str, args: Sequence[Any] = ()) -> list[StudyRecord]:
        return self._read(
            lambda con: [
                row_to_record(r)
                for r in con.execute(f"SELECT {_STUDY_COLUMNS} FROM studies {where}", args)
            ]
        )

    def get_study(self, name):
        rows = self._records("WHERE name=%s", (name,))
        if not rows:
            raise StudyNotFoundError(f"no study named {name!r} in {self.url}")
        return rows[0]

    def list_studies(self):
        records = self._records("ORDER BY study_id")
        counts: dict[int, dict[str, int]] = {}
        for sid, state, n in self._fetch(
            "SELECT study_id, state, COUNT(*) FROM trials GROUP BY study_id, state"
        ):
            counts.setdefault(sid, {})[state] = n
        out = []
        for rec in records:
            states = counts.get(rec.study_id, {})
            best = None
            if len(rec.directions) == 1:
                order = "ASC" if rec.directions[0] == "minimize" else "DESC"
                r = self._fetch(
                    "SELECT trial_values FROM trials WHERE study_id=%s AND state='complete' "
                    # feasible: no constraint value above 0 (or none at all)
                    "AND NOT EXISTS (SELECT 1 FROM json_array_elements_text("
                    "system_attrs::json->'constraints') c WHERE c::float8 > 0) "
                    f"ORDER BY (trial_values::json->>0)::float8 {order} LIMIT 1",
                    (rec.study_id,),
                )
                if r:
                    try:
                        best = tuple(loads(r[0][0], "values", list))
                    except Damaged as exc:
                        raise self._error(exc) from None
            out.append(StudySummary(rec, sum(states.values()), states, best))
        return out

    def delete_study(self, name):
        self._writable()

        def body(con: Any) -> None:
            if con.execute("DELETE FROM studies WHERE name=%s", (name,)).rowcount == 0:
                raise StudyNotFoundError(f"no study named {name!r} in {self.url}")

        self._run(body, txn=False, idempotent=False)

    def set_study_space(self, study_id, space):
        self._writable()
        self._run(
            lambda con: con.execute(
                "UPDATE studies SET space=%s WHERE study_id=%s", (dumps(space), study_id)
            ),
            txn=False,
            idempotent=True,
        )

    def set_study_user_attr(self, study_id, key, value):
        self._writable()
        check_json(value)

        def body(con: Any) -> None:
            row = con.execute(
                "SELECT user_attrs FROM studies WHERE study_id=%s FOR UPDATE", (study_id,)
            ).fetchone()
            if row is None:
                raise StorageError(f"no study with id {study_id} in {self.url}")
            attrs = loads(row[0], f"study id {study_id}'s user_attrs", dict)
            attrs[key] = value
            con.execute(
                "UPDATE studies SET user_attrs=%s WHERE study_id=%s", (dumps(attrs), study_id)
            )

        self._run(body, txn=True, idempotent=True)

    # ---- trials --------------------------------------------------------------------------
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
        self._writable()
        params_json = dumps(params or {})
        attrs_json = dumps(system_attrs or {})
        running = state is TrialState.RUNNING

        def claim(con: Any) -> FrozenTrial | None:
            # The waiting trial is locked first (never waited for: SKIP LOCKED), then the
            # counter; nothing else locks a waiting trial, so no cycle can form.
            row = con.execute(
                "WITH w AS (SELECT trial_id FROM trials WHERE study_id=%s AND state='waiting' "
                "ORDER BY number LIMIT 1 FOR UPDATE SKIP LOCKED), "
                "c AS (UPDATE study_counters SET seq=seq+1 WHERE study_id=%s "
                "AND EXISTS (SELECT 1 FROM w) RETURNING seq) "
                f"UPDATE trials t SET state='running', worker=%s, datetime_start={_NOW}, "
                f"heartbeat={_NOW}, seq=c.seq FROM w, c WHERE t.trial_id=w.trial_id "
                "RETURNING " + ", ".join(f"t.{c.strip()}" for c in TRIAL_COLUMNS.split(",")),
                (study_id, study_id, worker),
            ).fetchone()
            return None if row is None else row_to_trial(row)

        def insert(con: Any) -> FrozenTrial:
            start = _NOW if running else "NULL"
            # The budget is a condition of the counter's UPDATE: at READ COMMITTED a writer
            # that waited for the row lock re-checks it on the committed row, so workers on
            # any number of machines stop at exactly max_trials.
            row = con.execute(
                "WITH c AS (UPDATE study_counters SET next_number=next_number+1, seq=seq+1 "
                "WHERE study_id=%s AND (%s::integer IS NULL OR next_number < %s::integer) "
                "RETURNING next_number-1 AS number, seq) "
                "INSERT INTO trials (study_id, number, state, params, system_attrs, "
                "datetime_start, heartbeat, worker, seq) "
                f"SELECT %s, c.number, %s, %s, %s, {start}, {start}, %s, c.seq FROM c "
                "RETURNING trial_id, number, datetime_start",
                (
                    study_id,
                    max_trials,
                    max_trials,
                    study_id,
                    state.value,
                    params_json,
                    attrs_json,
                    worker if running else "",
                ),
            ).fetchone()
            if row is None:
                if (
                    max_trials is not None
                    and con.execute(
                        "SELECT 1 FROM study_counters WHERE study_id=%s", (study_id,)
                    ).fetchone()
                ):
                    raise MaxTrialsReached(
                        f"study id {study_id} has reached its limit of {max_trials} trials in "
                        f"{self._where}"
                    )
                raise StudyNotFoundError(f"no study with id {study_id} in {self.url}")
            trial_id, number, start_time = row
            return FrozenTrial(
                number=number,
                state=state,
                params=loads(params_json, "params", dict),
                system_attrs=loads(attrs_json, "system attributes", dict),
                datetime_start=start_time,
                worker=worker if running else "",
                trial_id=trial_id,
            )

        if claim_waiting:
            # Repeating a claim that may have committed would take a second trial: not safe.
            got = self._run(claim, txn=False, idempotent=False)
            if got is not None or params is None:
                if got is None:
                    self._study_exists(study_id)
                return got
        return self._run(insert, txn=False, idempotent=False)

    def import_trials(self, study_id, trials):
        self._writable()
        check_importable(trials)
        rows = [import_row(t) for t in trials]
        returning = ", ".join(f"t.{c.strip()}" for c in TRIAL_COLUMNS.split(","))

        def body(con: Any) -> list[FrozenTrial]:
            # Numbers and sequence numbers for all of them, under the study's counter lock.
            got = con.execute(
                "UPDATE study_counters SET next_number=next_number+%s, seq=seq+%s "
                "WHERE study_id=%s RETURNING next_number-%s, seq-%s",
                (len(rows), len(rows), study_id, len(rows), len(rows)),
            ).fetchone()
            if got is None:
                raise StudyNotFoundError(f"no study with id {study_id} in {self.url}")
            number, seq = got
            out = []
            for i, row in enumerate(rows):
                r = con.execute(
                    "INSERT INTO trials AS t (study_id, number, state, params, trial_values, "
                    "intermediate, user_attrs, system_attrs, datetime_start, datetime_complete, "
                    "worker, error, traceback, seq) VALUES "
                    f"(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {returning}",
                    (study_id, number + i, *row, seq + 1 + i),
                ).fetchone()
                out.append(row_to_trial(r))
            return out

        return self._run(body, txn=True, idempotent=False)

    def _study_exists(self, study_id: int) -> None:
        if not self._fetch("SELECT 1 FROM studies WHERE study_id=%s", (study_id,)):
            raise StudyNotFoundError(f"no study with id {study_id} in {self.url}")

    def _not_running(self, con: Any, trial_id: int) -> StorageError:
        row = con.execute(
            "SELECT number, state FROM trials WHERE trial_id=%s", (trial_id,)
        ).fetchone()
        if row is None:
            return StorageError(f"no trial with id {trial_id}")
        return StorageError(f"trial {row[0]} is {row[1]}, not running")

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
        self._writable()
        values_json = dumps(list(values)) if values is not None else None
        params_json = dumps(params) if params is not None else None
        attrs = dict(system_attrs) if system_attrs else {}
        returning = ", ".join(f"t.{c.strip()}" for c in TRIAL_COLUMNS.split(","))

        def body(con: Any) -> FrozenTrial:
            merged = None
            if attrs:
                # Merge in Python (see _update_json): lock the counter, then read the row.
                row = con.execute(
                    "UPDATE study_counters SET seq=seq WHERE study_id="
                    "(SELECT study_id FROM trials WHERE trial_id=%s) RETURNING seq",
                    (trial_id,),
                ).fetchone()
                old = con.execute(
                    "SELECT system_attrs, number FROM trials WHERE trial_id=%s AND state='running'",
                    (trial_id,),
                ).fetchone()
                if row is None or old is None:
                    raise self._not_running(con, trial_id)
                merged = dumps(loads(old[0], f"trial {old[1]}'s system attributes", dict) | attrs)
            row = con.execute(
                "WITH c AS (UPDATE study_counters SET seq=seq+1 WHERE study_id="
                "(SELECT study_id FROM trials WHERE trial_id=%s AND state='running') "
                "RETURNING seq) "
                "UPDATE trials t SET state=%s, trial_values=%s, params=COALESCE(%s, t.params), "
                "system_attrs=COALESCE(%s, t.system_attrs), error=%s, traceback=%s, "
                f"datetime_complete={_NOW}, seq=c.seq FROM c "
                f"WHERE t.trial_id=%s AND t.state='running' RETURNING {returning}",
                (
                    trial_id,
                    state.value,
                    values_json,
                    params_json,
                    merged,
                    error,
                    traceback,
                    trial_id,
                ),
            ).fetchone()
            if row is None:
                raise self._not_running(con, trial_id)
            return row_to_trial(row)

        return self._run(body, txn=bool(attrs), idempotent=False)

    def _update_json(
        self, trial_id: int, column: str, key: str, value: Any, encode: Callable[[Any], str]
    ) -> None:
        self._writable()

        # Read, change and write the object in Python under the study's counter lock: SQL's
        # JSON types cannot hold +-inf (reported values) and reorder keys.
        def body(con: Any) -> None:
            row = con.execute(
                "UPDATE study_counters SET seq=seq+1 WHERE study_id="
                "(SELECT study_id FROM trials WHERE trial_id=%s) RETURNING seq",
                (trial_id,),
            ).fetchone()
            if row is None:
                raise StorageError(f"no trial with id {trial_id} in {self.url}")
            (text,) = con.execute(
                f"SELECT {column} FROM trials WHERE trial_id=%s", (trial_id,)
            ).fetchone()
            obj = loads(text, f"trial id {trial_id}'s {column}", dict)
            obj[key] = value
            con.execute(
                f"UPDATE trials SET {column}=%s, seq=%s WHERE trial_id=%s",
                (encode(obj), row[0], trial_id),
            )

        self._run(body, txn=True, idempotent=True)

    def set_intermediate(self, trial_id, step, value):
        self._update_json(trial_id, "intermediate", str(int(step)), float(value), dumps_reported)

    def set_trial_user_attr(self, trial_id, key, value):
        check_json(value)
        self._update_json(trial_id, "user_attrs", key, value, dumps)

    def set_trial_system_attr(self, trial_id, key, value):
        check_json(value)
        self._update_json(trial_id, "system_attrs", key, value, dumps)

    def heartbeat(self, trial_ids):
        self._writable()
        if not trial_ids:
            return
        ids = [int(t) for t in trial_ids]
        self._run(
            lambda con: con.execute(
                f"UPDATE trials SET heartbeat={_NOW} WHERE state='running' AND trial_id=ANY(%s)",
                (ids,),
            ),
            txn=False,
            idempotent=True,
        )

    def get_trials(self, study_id, since_seq=0):
        # One statement, one snapshot: the counter and the rows agree (see the module's notes).
        rows = self._fetch(
            "SELECT c.seq, "
            + ", ".join(f"t.{c.strip()}" for c in TRIAL_COLUMNS.split(","))
            + " FROM study_counters c LEFT JOIN trials t ON t.study_id=c.study_id AND t.seq>%s "
            "WHERE c.study_id=%s ORDER BY t.number",
            (since_seq, study_id),
        )
        if not rows:
            raise StudyNotFoundError(f"no study with id {study_id} in {self.url}")
        try:
            trials = [row_to_trial(r[1:]) for r in rows if r[1] is not None]
        except Damaged as exc:
            raise self._error(exc) from None
        return trials, rows[0][0]

    def running_trials(self, study_id):
        rows = self._fetch(
            f"SELECT trial_id, worker, heartbeat, {_NOW} FROM trials "
            "WHERE study_id=%s AND state='running'",
            (study_id,),
        )
        # Heartbeats are in the server's clock; the stale rule compares with this machine's.
        offset = time.time() - rows[0][3] if rows else 0.0
        return [
            (tid, worker, None if beat is None else beat + offset) for tid, worker, beat, _ in rows
        ]
