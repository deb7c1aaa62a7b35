"""Where studies live: in memory, in an SQLite file (the embedded default), or in a PostgreSQL
database shared by many machines.

:func:`get_storage` takes a storage object, ``None`` (in memory), ``"memory://"``, a file path,
an ``sqlite:///path`` URL or a ``postgresql://user@host/db`` URL (psycopg 3, the ``postgres``
extra).

``get_storage(url, read_only=True)`` (or ``read_only=True`` on :class:`SQLiteStorage` and
:class:`PostgresStorage`) opens a storage that only reads: a dashboard, a report or an analysis
next to running workers. SQLite connections are ``file:...?mode=ro``; PostgreSQL sessions are
``SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY``; neither can write or take a write lock,
so a writer never waits for it. Every write raises :class:`ReadOnlyStorageError` (a
:class:`StorageError` and a :class:`PermissionError`); nothing is created: not a missing file,
not the tables of an empty database.
"""

from __future__ import annotations

import os
from typing import Any

from airda.storage.base import (
    DuplicatedStudyError,
    ReadOnlyStorageError,
    Storage,
    StorageError,
    StudyNotFoundError,
    StudyRecord,
    StudySummary,
)
from airda.storage.memory import InMemoryStorage

__all__ = [
    "DuplicatedStudyError",
    "InMemoryStorage",
    "PostgresStorage",
    "ReadOnlyStorageError",
    "SQLiteStorage",
    "Storage",
    "StorageError",
    "StudyNotFoundError",
    "StudyRecord",
    "StudySummary",
    "get_storage",
]


def __getattr__(name: str) -> Any:
    if name == "SQLiteStorage":
        from airda.storage.sqlite import SQLiteStorage

        return SQLiteStorage
    if name == "PostgresStorage":
        from airda.storage.postgres import PostgresStorage

        return PostgresStorage
    raise AttributeError(name)


def get_storage(
    storage: Storage | str | os.PathLike[str] | None, *, read_only: bool = False
) -> Storage:
    """A storage from an object, None (in memory), a URL or a file path.

    Args:
        storage: a Storage (returned as it is), None or ``"memory://"`` (a new in-memory
            storage), an ``sqlite:///path`` or ``postgresql://...`` URL, or a file path.
        read_only: open the URL or file read-only (see the module's notes): writes raise
            :class:`ReadOnlyStorageError`, and a missing file or an empty database is a
            :class:`StorageError` rather than created. An in-memory storage cannot be opened
            read-only (nothing could ever be in it), nor can a Storage object opened for
            writing be made read-only: both are a ValueError.

    Example:
        >>> get_storage(None).url
        'memory://'
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "s.db")
        >>> _ = get_storage(path).create_study("demo", ["minimize"], None, None, {})
        >>> reader = get_storage(path, read_only=True)
        >>> reader.read_only, reader.get_study("demo").name
        (True, 'demo')
    """
    if read_only:
        return _read_only(storage)
    if isinstance(storage, Storage):
        return storage
    if storage is None:
        return InMemoryStorage()
    if not isinstance(storage, (str, os.PathLike)):
        raise TypeError(f"storage must be a Storage, a URL or a path, got {type(storage).__name__}")
    text = os.fspath(storage)
    if text in ("memory://", ":memory:"):
        return InMemoryStorage()
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme == "sqlite":
            if not rest.startswith("/") or rest == "/":
                raise ValueError(
                    f"sqlite URLs look like sqlite:///relative.db or sqlite:////abs.db, got {text!r}"
                )
            from airda.storage.sqlite import SQLiteStorage

            return SQLiteStorage(rest[1:] or rest)
        if scheme in ("postgresql", "postgres"):
            from airda.storage.postgres import PostgresStorage

            return PostgresStorage(text)
        raise ValueError(f"unknown storage URL scheme {scheme!r} in {text!r}")
    from airda.storage.sqlite import SQLiteStorage

    return SQLiteStorage(text)


def _read_only(storage: Storage | str | os.PathLike[str] | None) -> Storage:
    if isinstance(storage, Storage):
        if getattr(storage, "read_only", False):
            return storage
        raise ValueError(
            f"{storage.url} was opened for writing: give its URL or path to open it read-only"
        )
    if storage is None or (
        isinstance(storage, (str, os.PathLike)) and os.fspath(storage) in ("memory://", ":memory:")
    ):
        raise ValueError("an in-memory storage lives in one process: give a file or a server URL")
    if not isinstance(storage, (str, os.PathLike)):
        raise TypeError(f"storage must be a Storage, a URL or a path, got {type(storage).__name__}")
    text = os.fspath(storage)
    scheme, sep, rest = text.partition("://")
    if sep and scheme in ("postgresql", "postgres"):
        from airda.storage.postgres import PostgresStorage

        return PostgresStorage(text, read_only=True)
    if sep and scheme != "sqlite":
        raise ValueError(f"unknown storage URL scheme {scheme!r} in {text!r}")
    if sep and (not rest.startswith("/") or rest == "/"):
        raise ValueError(
            f"sqlite URLs look like sqlite:///relative.db or sqlite:////abs.db, got {text!r}"
        )
    from airda.storage.sqlite import SQLiteStorage

    return SQLiteStorage(rest[1:] if sep else text, read_only=True)
