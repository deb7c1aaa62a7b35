"""Where the dashboard reads studies from: a storage opened read-only
(``get_storage(url, read_only=True)``), and a per-study cache of trials kept current with the
storage's incremental reads (only the trials written since the last sequence number).

An SQLite file is opened with ``mode=ro`` connections (SQLite's URI parameter): the process
cannot write a byte to it, and in WAL mode a reader never blocks a writer. Its trials are
decoded in chunks, so that a page can show how far a large study's first load has got, and the
history's values can be read alone (three columns) before the whole study is decoded. A
PostgreSQL storage is opened with its sessions in read-only transaction mode: the server
refuses any write or row lock from the dashboard.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airda.storage import Storage, StudyNotFoundError, get_storage
from airda.storage._schema import TRIAL_COLUMNS, row_to_trial
from airda.trial import FrozenTrial, TrialState
from airda.viz import MAX_TRIALS, StudyView
from airda.viz._data import downsample

__all__ = ["ReadOnlySource", "StudyCache", "open_read_only"]

_CHUNK = 5000  # trials decoded between two progress updates
_STATES = {s.value: s for s in TrialState}
_NONE: dict[str, Any] = {}  # shared by the value-only trials, which nothing mutates


def open_read_only(url: str | os.PathLike[str] | Storage) -> ReadOnlySource:
    """A read-only view of the storage at `url` (a file path, ``sqlite:///path`` or
    ``postgresql://...``), opened with ``get_storage(url, read_only=True)``, or a storage
    opened that way. Raises
    :class:`FileNotFoundError` for a missing SQLite file (none is created) and
    :class:`~airda.storage.StorageError` for a file or server that cannot be read or holds no
    airda study."""
    if isinstance(url, Storage):  # a storage opened read-only already
        storage = get_storage(url, read_only=True)  # ValueError for one opened for writing
        path = getattr(storage, "path", None)
        return _SQLiteSource(path) if isinstance(path, Path) else ReadOnlySource(storage)
    text = os.fspath(url)
    if text in ("memory://", ":memory:"):
        raise ValueError("an in-memory storage lives in one process: give a file or a server URL")
    if "://" not in text or text.startswith("sqlite://"):
        path = Path(text[len("sqlite:///") :] if text.startswith("sqlite:///") else text)
        if not text.startswith("sqlite:///") and "://" in text:
            raise ValueError(f"sqlite URLs look like sqlite:///path.db, got {text!r}")
        path = path.expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"no storage file {path}")
        return _SQLiteSource(path)
    return ReadOnlySource(get_storage(text, read_only=True))


class ReadOnlySource:
    """Reads of one storage; a storage that is not an SQLite file is read through its public
    API (``list_studies``, ``get_study``, ``get_trials``), which only reads."""

    def __init__(self, storage: Storage):
        self.storage = storage
        self.url = storage.url

    def list_studies(self) -> list[Any]:
        return self.storage.list_studies()

    def get_study(self, name: str) -> Any:
        return self.storage.get_study(name)

    def get_trials(
        self, study_id: int, since_seq: int, progress: Any = None
    ) -> tuple[list[FrozenTrial], int]:
        trials, seq = self.storage.get_trials(study_id, since_seq)
        if progress is not None:
            progress(len(trials), len(trials))
        return trials, seq

    def last_updates(self) -> dict[int, float]:
        """The time of each study's latest trial start or end, where the storage tells it
        cheaply (SQLite); empty otherwise."""
        return {}

    def light_trials(self, study_id: int) -> list[FrozenTrial] | None:
        """Trials with their number, state, values, times and constraint values only (no
        parameters), when this storage can read them faster than whole trials; None
        otherwise."""
        return None


class _SQLiteSource(ReadOnlySource):
    def __init__(self, path: Path):
        # Refuses a foreign, damaged, empty or older-schema file, reading only.
        super().__init__(get_storage(path, read_only=True))
        self.path = path
        self._local = threading.local()

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            uri = "file:" + urllib.parse.quote(str(self.path)) + "?mode=ro"
            con = sqlite3.connect(uri, uri=True, timeout=60.0, isolation_level=None)
            self._local.con = con
        return con

    def _snapshot(self, study_id: int, sql: str, args: tuple[Any, ...]) -> tuple[list[Any], int]:
        con = self._con()
        # One read transaction: the rows and the sequence number come from one snapshot.
        con.execute("BEGIN")
        try:
            if (
                con.execute("SELECT 1 FROM studies WHERE study_id=?", (study_id,)).fetchone()
                is None
            ):
                raise StudyNotFoundError(f"no study with id {study_id} in {self.url}")
            rows = con.execute(sql, args).fetchall()
            seq = con.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM trials WHERE study_id=?", (study_id,)
            ).fetchone()[0]
        finally:
            con.execute("COMMIT")
        return rows, seq

    def get_trials(self, study_id, since_seq, progress=None):
        con = self._con()
        out: list[FrozenTrial] = []
        # One read transaction, rows decoded as they are fetched (a chunk of raw rows in
        # memory at a time, not the whole study's twice).
        con.execute("BEGIN")
        try:
            if (
                con.execute("SELECT 1 FROM studies WHERE study_id=?", (study_id,)).fetchone()
                is None
            ):
                raise StudyNotFoundError(f"no study with id {study_id} in {self.url}")
            total = con.execute(
                "SELECT COUNT(*) FROM trials WHERE study_id=? AND seq>?", (study_id, since_seq)
            ).fetchone()[0]
            cur = con.execute(
                f"SELECT {TRIAL_COLUMNS} FROM trials WHERE study_id=? AND seq>? ORDER BY number",
                (study_id, since_seq),
            )
            while rows := cur.fetchmany(_CHUNK):
                out.extend(row_to_trial(r) for r in rows)
                if progress is not None:
                    progress(len(out), max(total, len(out)))
            seq = con.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM trials WHERE study_id=?", (study_id,)
            ).fetchone()[0]
        finally:
            con.execute("COMMIT")
        return out, seq

    def last_updates(self):
        rows = self._con().execute(
            "SELECT study_id, MAX(COALESCE(datetime_complete, datetime_start)) FROM trials "
            "GROUP BY study_id"
        )
        return {sid: when for sid, when in rows if when is not None}

    def light_trials(self, study_id):
        rows, _ = self._snapshot(
            study_id,
            "SELECT number, state, trial_values, datetime_start, datetime_complete, "
            "json_extract(system_attrs, '$.constraints') FROM trials "
            "WHERE study_id=? ORDER BY number",
            (study_id,),
        )
        # every row's values decoded by one json.loads (one call per row was 2/3 of the time)
        decoded = json.loads("[" + ",".join(r[2] or "null" for r in rows) + "]")
        # constraint values (feasibility decides the best so far), NULL in most studies
        if any(r[5] is not None for r in rows):
            limits = json.loads("[" + ",".join(r[5] or "null" for r in rows) + "]")
        else:
            limits = [None] * len(rows)
        return [
            FrozenTrial(
                number,
                _STATES[state],
                _NONE,
                tuple(values) if values else None,
                intermediate=_NONE,
                user_attrs=_NONE,
                system_attrs=_NONE if c is None else {"constraints": c},
                datetime_start=start,
                datetime_complete=end,
            )
            for (number, state, _, start, end, _c), values, c in zip(
                rows, decoded, limits, strict=True
            )
        ]


@dataclass
class StudyCache:
    """The trials of one study as last read, by number, and the sequence number to read from.

    ``refresh()`` reads only what changed; the first one of a large study may take seconds,
    and ``loaded``/``to_load`` say how far it has got (read by other threads meanwhile)."""

    source: ReadOnlySource
    name: str
    record: Any = None
    trials: dict[int, FrozenTrial] = field(default_factory=dict)
    seq: int = -1  # -1: never read
    loaded: int = 0
    to_load: int = 0
    last_read: float = 0.0
    error: str | None = None  # why the first read failed
    lock: threading.Lock = field(default_factory=threading.Lock)
    _view: tuple[int, int, StudyView] | None = None  # (seq, max_trials, view)
    _light: tuple[float, StudyView] | None = None
    light_ready: threading.Event = field(default_factory=threading.Event)  # first light read done

    @property
    def ready(self) -> bool:
        return self.seq >= 0

    def refresh(self, min_age: float = 0.0) -> int:
        """Read the trials written since the last read (none when the last read is younger
        than `min_age` seconds); the number of trials that changed."""
        with self.lock:
            if self.ready and time.monotonic() - self.last_read < min_age:
                return 0
            # The record too: study attributes (an evaluation report) and a define-by-run
            # space change without moving the trials' sequence number.
            self.record = self.source.get_study(self.name)

            def progress(done: int, total: int) -> None:
                self.loaded, self.to_load = done, total

            new, seq = self.source.get_trials(
                self.record.study_id, max(self.seq, 0), progress if not self.ready else None
            )
            for t in new:
                self.trials[t.number] = t
            self.seq = seq
            self.last_read = time.monotonic()
            return len(new)

    def view(self, max_trials: int | None = MAX_TRIALS) -> StudyView:
        """The study as plotted: every trial, or a sample above `max_trials` (viz's
        downsampling), computed once per sequence number."""
        from airda.space import Space

        key = (self.seq, max_trials or 0)
        cached = self._view
        if cached is not None and cached[:2] == key:
            return cached[2]
        rec = self.record
        trials = [self.trials[n] for n in sorted(self.trials)]
        space = Space.from_dict(rec.space) if rec.space else None
        view = StudyView(rec.name, tuple(rec.directions), trials, space, n_total=len(trials))
        if max_trials is not None:
            view = downsample(view, max_trials)
        self._view = (*key, view)
        return view

    def light_view(self, max_trials: int = MAX_TRIALS) -> StudyView | None:
        """While the first read of a large study runs: its values alone (no parameters),
        sampled, for the history; None where the storage has no faster path."""
        if self._light is not None and time.monotonic() - self._light[0] < 2.0:
            return self._light[1]
        if self.record is None:
            self.record = self.source.get_study(self.name)
        trials = self.source.light_trials(self.record.study_id)
        if trials is None:
            return None
        rec = self.record
        view = StudyView(rec.name, tuple(rec.directions), trials, None, n_total=len(trials))
        view = downsample(view, max_trials)
        self._light = (time.monotonic(), view)
        return view

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for t in self.trials.values():
            counts[t.state.value] = counts.get(t.state.value, 0) + 1
        return {"seq": self.seq, "n_trials": len(self.trials), "states": counts}
