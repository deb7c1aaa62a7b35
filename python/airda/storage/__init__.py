"""Where studies live: in memory, in an SQLite file (the embedded default), or in a PostgreSQL
database shared by many machines.

:func:`get_storage` takes a storage object, ``None`` (in memory), ``"memory://"``, a file path,
an ``sqlite:///path`` URL or a ``postgresql://user@host/db`` URL (psycopg 3, the ``postgres``
extra).
"""

from __future__ import annotations

import os
from typing import Any

from airda.storage.base import (
    DuplicatedStudyError,
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


def get_storage(storage: Storage | str | os.PathLike[str] | None) -> Storage:
    """A storage from an object, None (in memory), a URL or a file path.

    Example:
        >>> get_storage(None).url
        'memory://'
    """
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
