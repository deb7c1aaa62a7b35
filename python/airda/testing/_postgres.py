"""A throwaway PostgreSQL server for tests and benchmarks: ``initdb`` into a temporary folder,
``pg_ctl start`` on 127.0.0.1 and a free port, stopped and deleted at exit.

PostgreSQL refuses to run as root; as root the server runs as the ``postgres`` user (which
Debian's package creates). ``AIRDA_TEST_POSTGRES_URL`` names an existing server instead (each
test then works in a schema of its own, dropped afterwards).

Example (needs PostgreSQL installed):

    >>> server = PostgresServer()  # doctest: +SKIP
    >>> server.start()  # doctest: +SKIP
    >>> PostgresStorage(server.url())  # doctest: +SKIP
    >>> server.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

__all__ = [
    "PASSWORD_ROLE",
    "PostgresServer",
    "PostgresUnavailable",
    "drop_schema",
    "fresh_storage",
    "shared_server_url",
]

ENV_URL = "AIRDA_TEST_POSTGRES_URL"
SUPERUSER = "airda"
# A role that must give its password (the rest of 127.0.0.1 is trusted): for the tests of
# refused credentials.
PASSWORD_ROLE = ("airda_pw", "s3cret")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    # Debian keeps the server's programs out of PATH, one folder per major version.
    dirs = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda d: int(Path(d).parent.name) if Path(d).parent.name.isdigit() else 0,
    )
    for d in reversed(dirs):
        if (Path(d) / "pg_ctl").exists() and (Path(d) / "initdb").exists():
            return Path(d)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A private PostgreSQL cluster in a temporary folder.

    Args:
        durable: keep PostgreSQL's crash safety (fsync, synchronous commits, full page
            writes), as a production server would; off by default (tests only need speed).
        max_connections: the server's connection limit.
    """

    def __init__(self, *, durable: bool = False, max_connections: int = 200):
        self.durable = durable
        self.max_connections = max_connections
        self.port = 0
        self.data: Path | None = None
        self._owner = os.getpid()
        self._user: str | None = None
        bindir = _bin_dir()
        if bindir is None:
            raise PostgresUnavailable(
                "PostgreSQL is not installed (no initdb/pg_ctl in PATH or "
                "/usr/lib/postgresql/*/bin): apt-get install postgresql"
            )
        self.bindir = bindir
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(
                    "running as root, and PostgreSQL refuses root: no 'postgres' user to run "
                    "the server as"
                ) from None
            self._user = "postgres"

    def _cmd(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._user is not None:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        # From a folder the server's user may enter (initdb fails in one it cannot, e.g. a
        # checkout under /root when it runs as postgres).
        cwd = self.data if self.data is not None else tempfile.gettempdir()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd)
        if check and proc.returncode != 0:
            raise PostgresUnavailable(
                f"{args[0]} failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-1500:]}"
                + self._log_tail()
            )
        return proc

    def _log_tail(self) -> str:
        if self.data is None or not (self.data / "server.log").exists():
            return ""
        return "\nserver log: " + (self.data / "server.log").read_text()[-1500:]

    def start(self) -> PostgresServer:
        """initdb (once) and start the server; raise PostgresUnavailable with the reason."""
        if self.data is None:
            self.data = Path(tempfile.mkdtemp(prefix="airda-pg-"))
            if self._user is not None:
                entry = pwd.getpwnam(self._user)
                os.chown(self.data, entry.pw_uid, entry.pw_gid)
            self._cmd(
                "initdb",
                "-D",
                str(self.data / "db"),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            )
            user, _ = PASSWORD_ROLE
            (self.data / "db" / "pg_hba.conf").write_text(
                f"host all {user} 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 trust\n"
            )
            atexit.register(self.stop)
        for attempt in range(3):
            if attempt or not self.port:  # a server started again keeps its port
                self.port = _free_port()
            if self._pg_start(check=attempt == 2).returncode == 0:
                break
        if not getattr(self, "_initialised", False):
            user, password = PASSWORD_ROLE
            self.sql(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
            self.sql("CREATE DATABASE airda_test")
            self.sql(f"GRANT ALL ON DATABASE airda_test TO {user}")
            self._initialised = True
        return self

    def _pg_start(self, *, check: bool) -> subprocess.CompletedProcess[str]:
        assert self.data is not None
        settings = [
            "listen_addresses=127.0.0.1",
            f"port={self.port}",
            "unix_socket_directories=''",
            f"max_connections={self.max_connections}",
        ]
        if not self.durable:
            settings += ["fsync=off", "synchronous_commit=off", "full_page_writes=off"]
        return self._cmd(
            "pg_ctl",
            "-D",
            str(self.data / "db"),
            "-l",
            str(self.data / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(f"-c {s}" for s in settings),
            "start",
            check=check,
        )

    def url(self, dbname: str = "airda_test", user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"

    def sql(self, statement: str, dbname: str = "postgres") -> list[Any]:
        """Run one statement as the superuser (autocommit); its rows, if any."""
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=10) as con:
            cur = con.execute(statement)
            return cur.fetchall() if cur.description else []

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (the data stays until :meth:`remove`)."""
        if self.data is None or os.getpid() != self._owner:
            return
        if (self.data / "db" / "postmaster.pid").exists():
            self._cmd("pg_ctl", "-D", str(self.data / "db"), "-m", mode, "-w", "stop", check=False)

    def restart(self) -> None:
        """Stop and start again on the same port (clients' connections are closed)."""
        assert self.data is not None
        self._cmd("pg_ctl", "-D", str(self.data / "db"), "-m", "fast", "-w", "stop")
        self._pg_start(check=True)

    def remove(self) -> None:
        self.stop("immediate")
        if self.data is not None and os.getpid() == self._owner:
            shutil.rmtree(self.data, ignore_errors=True)
            self.data = None


_SHARED: PostgresServer | None = None
_SHARED_ERROR: str | None = None


def _remove_shared() -> None:
    if _SHARED is not None:
        _SHARED.remove()


def shared_server() -> PostgresServer:
    """This process's throwaway server, started on first use; PostgresUnavailable if none can
    be started (the reason is remembered, so later calls fail at once)."""
    global _SHARED, _SHARED_ERROR
    if _SHARED_ERROR is not None:
        raise PostgresUnavailable(_SHARED_ERROR)
    if _SHARED is None:
        try:
            server = PostgresServer().start()
        except (PostgresUnavailable, OSError, subprocess.SubprocessError) as exc:
            _SHARED_ERROR = str(exc)
            raise PostgresUnavailable(_SHARED_ERROR) from None
        except ImportError as exc:
            _SHARED_ERROR = f"psycopg is not installed ({exc}): pip install 'psycopg[binary]'"
            raise PostgresUnavailable(_SHARED_ERROR) from None
        _SHARED = server
        atexit.register(_remove_shared)
    return _SHARED


def shared_server_url() -> str:
    """``AIRDA_TEST_POSTGRES_URL`` if set, else the URL of :func:`shared_server`'s database."""
    return os.environ.get(ENV_URL) or shared_server().url()


def fresh_storage() -> Any:
    """A PostgresStorage in a fresh schema of the test server (drop it with
    :func:`drop_schema`)."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise PostgresUnavailable(
            f"psycopg is not installed ({exc}): pip install 'airda-lab[postgres]'"
        ) from None
    from airda.storage.postgres import PostgresStorage

    return PostgresStorage(shared_server_url(), schema=f"test_{uuid.uuid4().hex[:12]}")


def drop_schema(storage: Any) -> None:
    """Drop a test storage's schema (and close its connection)."""
    import psycopg
    from psycopg import sql

    storage.close()
    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(storage._conninfo, autocommit=True, connect_timeout=10) as con,
    ):
        con.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(storage.schema))
        )
