"""``airda dashboard --storage URL``: a live local web dashboard of a storage's studies.

Example:
    $ airda dashboard --storage studies.db               # http://127.0.0.1:8080/
    $ airda dashboard --storage studies.db --port 9000 --open
    $ airda dashboard --storage postgresql://me@db/s
"""

from __future__ import annotations

import argparse
import errno
import sys
from typing import Any

__all__ = ["add_parser", "run"]

# Exit codes: stopped with Ctrl-C; a storage that cannot be read, a port in use, a bad host.
EXIT_OK, EXIT_USAGE = 0, 2


def add_parser(sub: Any) -> None:
    """Add ``airda dashboard`` to the command line's subparsers."""
    p = sub.add_parser(
        "dashboard",
        help="serve a live web dashboard of a storage's studies on 127.0.0.1",
        description="Serve a local web dashboard of the studies in a storage: the studies, and "
        "for each its history, parallel coordinates, slice and contour plots, importance, "
        "intermediate values, Pareto front and a filterable trial table with CSV export, "
        "updated every 2 s while workers write. The storage is only read (SQLite through "
        "read-only connections, which never block a writer). Prints the URL and serves until "
        "Ctrl-C. Exit codes: 0 stopped, 2 a storage that cannot be read, a port in use or a "
        "non-loopback host without --allow-remote.",
    )
    p.add_argument(
        "--storage",
        metavar="URL",
        required=True,
        help="the storage: an SQLite file, sqlite:///path or postgresql://...",
    )
    p.add_argument("--port", type=int, default=8080, help="the port (default: 8080; 0: any)")
    p.add_argument("--host", default="127.0.0.1", help="the address (default: 127.0.0.1)")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="let --host be an address other machines reach (anyone there can read the studies)",
    )
    p.add_argument("--open", action="store_true", help="open the page in a web browser")
    p.add_argument(
        "--max-trials",
        type=int,
        default=5000,
        metavar="N",
        help="plot a sample above N trials (default: 5000)",
    )


def _fail(text: str) -> int:
    print(f"airda dashboard: error: {text}", file=sys.stderr)
    return EXIT_USAGE


def run(args: argparse.Namespace) -> int:
    from airda.dashboard import DashboardServer, is_loopback

    if not args.allow_remote and not is_loopback(args.host):
        return _fail(
            f"--host {args.host} would serve the storage to other machines; "
            "use 127.0.0.1 or pass --allow-remote"
        )
    try:
        import plotly  # noqa: F401 (plotly.js and the figures come from it)
    except ImportError:
        return _fail("the dashboard draws with plotly: pip install 'airda-lab[viz]'")
    try:
        server = DashboardServer(
            args.storage,
            args.host,
            args.port,
            allow_remote=args.allow_remote,
            max_trials=args.max_trials,
        )
    except FileNotFoundError as exc:
        return _fail(str(exc))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return _fail(f"port {args.port} on {args.host} is in use; pick another with --port")
        return _fail(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}")
    except Exception as exc:  # a storage that cannot be read: a foreign file, a server down
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return _fail(f"storage {args.storage}: {text}")
    print(
        f"airda dashboard: serving {server.source.url} at {server.url} (Ctrl-C stops)", flush=True
    )
    if args.open:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return EXIT_OK
