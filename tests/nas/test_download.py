"""`airda nas download nb201`: fetching the table over HTTP (a local server) or from a file,
converting the upstream pickle, the checksum, the restricted unpickler, errors, the CLI."""

from __future__ import annotations

import argparse
import hashlib
import http.server
import io
import os
import pickle
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airda.cli import nas_download
from airda.nas import TabularBenchmark
from airda.nas import download as dl
from tests.nas.shared_data import shared_data_file

METRICS = [
    "cifar10-test",
    "cifar10-val",
    "cifar100-test",
    "cifar100-val",
    "imagenet-test",
    "imagenet-val",
]
RELPATH = Path("nasbench201") / "nb201_12epoch.csv"


# -- a local HTTP server ------------------------------------------------------------------------


@dataclass
class Server:
    """Files served on 127.0.0.1, with the number of requests per path."""

    base: str
    files: dict[str, bytes] = field(default_factory=dict)
    no_length: set[str] = field(default_factory=set)  # served without Content-Length
    hits: dict[str, int] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


@pytest.fixture
def server(monkeypatch) -> Iterator[Server]:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)  # 127.0.0.1 must not go through a proxy
    state = Server(base="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.lstrip("/")
            state.hits[name] = state.hits.get(name, 0) + 1
            if name == "broken":
                self.send_error(500, "Internal Server Error")
                return
            if name not in state.files:
                self.send_error(404, "Not Found")
                return
            body = state.files[name]
            self.send_response(200)
            if name not in state.no_length:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch) -> None:
    """Never touch the user's cache: the default cache folder is a temporary one."""
    monkeypatch.setenv("AIRDA_CACHE", str(tmp_path / "default-cache"))
    monkeypatch.delenv("AIRDA_CACHE_DIR", raising=False)


# -- tables and pickles -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_csv() -> Path:
    return shared_data_file("nasbench201", "nb201_12epoch.csv")


@pytest.fixture(scope="module")
def upstream_frame(shared_csv) -> pd.DataFrame:
    """The shared table in the upstream layout: arch (int index), cellstr, six accuracies."""
    frame = pd.read_csv(shared_csv).rename(columns={"index": "arch", "arch": "cellstr"})
    frame["cellstr"] = frame["cellstr"].astype(object)  # as pandas 1.0 stored strings
    return frame


@pytest.fixture(scope="module")
def upstream_pickle(upstream_frame) -> bytes:
    return pickle.dumps(upstream_frame, protocol=5)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cache_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*")) if root.exists() else []


class G:
    """A global as a pickle names it (module, name), written as such even if this numpy or
    pandas has moved it: how an old pickle looks."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name


@dataclass
class Call:
    """``func(*args)`` (REDUCE) or ``func.__new__(func, *args)`` (NEWOBJ), then BUILD `state`."""

    func: G
    args: tuple[Any, ...]
    state: Any = None
    newobj: bool = False


class RawPickler(pickle._Pickler):  # type: ignore[name-defined]
    """The pure-Python pickler, plus G and Call written opcode by opcode."""

    def save(self, obj: Any, save_persistent_id: bool = True) -> None:
        if isinstance(obj, G):
            self.save(obj.module)
            self.save(obj.name)
            self.write(pickle.STACK_GLOBAL)
        elif isinstance(obj, Call):
            self.save(obj.func)
            self.save(obj.args)
            self.write(pickle.NEWOBJ if obj.newobj else pickle.REDUCE)
            if obj.state is not None:
                self.save(obj.state)
                self.write(pickle.BUILD)
        else:
            super().save(obj, save_persistent_id)


def raw_dumps(obj: Any, protocol: int) -> bytes:
    buf = io.BytesIO()
    RawPickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


def legacy_pickle(frame: pd.DataFrame, protocol: int, int64_index: bool) -> bytes:
    """`frame` pickled as pandas 1.0 with numpy 1.18 did (what the upstream file, written in
    2020, holds): numpy.core names, the "0.14.1" block-manager state, RangeIndex or
    Int64Index rows; protocol 5 puts numeric arrays in buffers (numpy.core.numeric._frombuffer)."""

    def dtype(code: str) -> Call:
        order = "|" if code == "O8" else "<"
        flags = 63 if code == "O8" else 0
        return Call(
            G("numpy", "dtype"), (code, False, True), (3, order, None, None, None, -1, -1, flags)
        )

    def array(values: np.ndarray) -> Call:
        if values.dtype == object:
            code = "O8"
        else:
            code = {"int64": "i8", "float64": "f8"}[values.dtype.name]
        if protocol >= 5 and code != "O8":
            return Call(
                G("numpy.core.numeric", "_frombuffer"),
                (bytearray(values.tobytes()), dtype(code), values.shape, "C"),
            )
        data = values.ravel().tolist() if code == "O8" else values.tobytes()
        return Call(
            G("numpy.core.multiarray", "_reconstruct"),
            (G("numpy", "ndarray"), (0,), b"b"),
            (1, values.shape, dtype(code), False, data),
        )

    def index(labels: list[Any]) -> Call:
        return Call(
            G("pandas.core.indexes.base", "_new_Index"),
            (
                G("pandas.core.indexes.base", "Index"),
                {"data": array(np.array(labels, dtype=object)), "name": None},
            ),
        )

    n = len(frame)
    if int64_index:
        rows = Call(
            G("pandas.core.indexes.base", "_new_Index"),
            (
                G("pandas.core.indexes.numeric", "Int64Index"),
                {"data": array(np.arange(n, dtype=np.int64)), "name": None},
            ),
        )
    else:
        rows = Call(
            G("pandas.core.indexes.base", "_new_Index"),
            (
                G("pandas.core.indexes.range", "RangeIndex"),
                {"name": None, "start": 0, "stop": n, "step": 1},
            ),
        )
    columns = list(frame.columns)
    blocks = [  # (values as a 2-D block, first and last column)
        (frame[["arch"]].to_numpy(dtype=np.int64).T.copy(), 0, 1),
        (frame[["cellstr"]].to_numpy(dtype=object).T.copy(), 1, 2),
        (frame[METRICS].to_numpy(dtype=np.float64).T.copy(), 2, 8),
    ]
    axes = [index(columns), rows]
    state = (
        axes,
        [array(v) for v, _, _ in blocks],
        [index(columns[a:b]) for _, a, b in blocks],
        {
            "0.14.1": {
                "axes": axes,
                "blocks": [
                    {"values": array(v), "mgr_locs": Call(G("builtins", "slice"), (a, b, 1))}
                    for v, a, b in blocks
                ],
            }
        },
    )
    manager = Call(G("pandas.core.internals.managers", "BlockManager"), (), state, newobj=True)
    df_state = {"_data": manager, "_typ": "dataframe", "_metadata": [], "attrs": {}}
    return raw_dumps(Call(G("pandas.core.frame", "DataFrame"), (), df_state, newobj=True), protocol)


# -- (a) the upstream pickle, fetched, converted and verified -----------------------------------


def test_download_converts_verifies_and_caches(server, upstream_pickle, shared_csv, tmp_path):
    server.files["mini-bench-arch-cell-accs.pd"] = upstream_pickle
    url = server.url("mini-bench-arch-cell-accs.pd")
    cache = tmp_path / "cache"

    path = dl.download_nb201(cache, source=url, progress=False)

    assert path == cache / RELPATH
    assert sha256(path.read_bytes()) == sha256(shared_csv.read_bytes()) == dl.NB201_SHA256
    bench = TabularBenchmark.from_csv(path)
    assert len(bench) == 15_625
    assert bench.metrics == tuple(METRICS)
    assert bench.query(bench.arch_at(0), "cifar10-test") == pytest.approx(69.55)
    assert server.hits == {"mini-bench-arch-cell-accs.pd": 1}
    assert cache_files(cache) == [cache / "nasbench201", path]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as any new file, not mkstemp's 0600

    # A second call finds it (checked) and fetches nothing; force fetches again.
    assert dl.download_nb201(cache, source=url) == path
    assert server.hits["mini-bench-arch-cell-accs.pd"] == 1
    assert dl.cached_table("nb201", cache) == path
    dl.download_nb201(cache, source=url, force=True, progress=False)
    assert server.hits["mini-bench-arch-cell-accs.pd"] == 2


@pytest.mark.parametrize(("protocol", "int64_index"), [(4, False), (5, True)])
def test_pandas_1_0_pickle(upstream_frame, tmp_path, protocol, int64_index):
    """The upstream file's format (pandas 1.0, numpy 1.x names), read by today's versions,
    without numpy's deprecation warning for numpy.core (warnings are errors here)."""
    data = legacy_pickle(upstream_frame, protocol, int64_index)
    assert b"numpy.core" in data
    assert b"pandas.core.frame" in data
    source = tmp_path / "mini-bench-arch-cell-accs.pd"
    source.write_bytes(data)

    path = dl.download_nb201(tmp_path / "cache", source=source)

    assert sha256(path.read_bytes()) == dl.NB201_SHA256


def test_rows_in_any_order_and_string_dtype(upstream_frame, tmp_path):
    """Rows are put in index order; a pandas string column converts like an object one."""
    frame = upstream_frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    frame["cellstr"] = frame["cellstr"].astype("string")
    source = tmp_path / "shuffled.pd"
    frame.to_pickle(source)

    path = dl.download_nb201(tmp_path / "cache", source=source)

    assert sha256(path.read_bytes()) == dl.NB201_SHA256


def test_progress_on_stderr(server, upstream_pickle, tmp_path, capsys):
    server.files["t.pd"] = upstream_pickle
    server.no_length.add("t.pd")
    dl.download_nb201(tmp_path / "cache", source=server.url("t.pd"), progress=True)
    err = capsys.readouterr().err
    assert "downloading t.pd: 2.3 MB" in err
    assert "MB/s" in err
    assert err.endswith("\n")


def test_default_urls_fall_back_after_404(server, upstream_pickle, tmp_path, monkeypatch):
    server.files["master/t.pd"] = upstream_pickle
    spec = replace(dl.TABLES["nb201"], urls=(server.url("main/t.pd"), server.url("master/t.pd")))
    monkeypatch.setitem(dl.TABLES, "nb201", spec)

    path = dl.download_nb201(progress=False)  # the default cache folder and sources

    assert path == Path(os.environ["AIRDA_CACHE"]) / RELPATH
    assert server.hits == {"main/t.pd": 1, "master/t.pd": 1}
    assert sha256(path.read_bytes()) == dl.NB201_SHA256


def test_a_damaged_cached_table_is_replaced(upstream_pickle, tmp_path):
    source = tmp_path / "t.pd"
    source.write_bytes(upstream_pickle)
    target = tmp_path / "cache" / RELPATH
    target.parent.mkdir(parents=True)
    target.write_text("index,arch,cifar10-test\n")
    assert dl.cached_table("nb201", tmp_path / "cache") is None

    assert dl.download_nb201(tmp_path / "cache", source=source) == target
    assert dl.cached_table("nb201", tmp_path / "cache") == target


def test_cache_folder_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("AIRDA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert dl.default_cache_dir() == tmp_path / "xdg" / "airda"
    monkeypatch.setenv("AIRDA_CACHE_DIR", str(tmp_path / "dir"))
    assert dl.default_cache_dir() == tmp_path / "dir"
    monkeypatch.setenv("AIRDA_CACHE", str(tmp_path / "a"))
    assert dl.default_cache_dir() == tmp_path / "a"
    monkeypatch.setenv("AIRDA_CACHE", "")  # empty means unset
    monkeypatch.delenv("AIRDA_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert dl.default_cache_dir() == tmp_path / "home" / ".cache" / "airda"
    with pytest.raises(ValueError, match="unknown table 'nb101'; available: nb201"):
        dl.cached_table("nb101")


# -- (b) a table that is not the expected one ---------------------------------------------------


def test_tampered_table_fails_the_checksum_and_writes_nothing(server, upstream_frame, tmp_path):
    frame = upstream_frame.copy()
    frame.loc[1234, "cifar10-val"] += 0.01
    server.files["t.pd"] = pickle.dumps(frame)
    cache = tmp_path / "cache"

    with pytest.raises(dl.ChecksumError) as info:
        dl.download_nb201(cache, source=server.url("t.pd"), progress=False)

    message = str(info.value)
    assert "does not match the expected NAS-Bench-201 12-epoch table" in message
    assert dl.NB201_SHA256 in message
    converted = dl._frame_to_csv(frame, "t")
    assert sha256(converted) in message
    assert "nothing was written" in message
    assert cache_files(cache) == []


def test_missing_rows_and_columns(upstream_frame, tmp_path):
    short = tmp_path / "short.pd"
    upstream_frame.iloc[:100].to_pickle(short)
    with pytest.raises(dl.ChecksumError, match=r"\(100 rows; expected 15625\)"):
        dl.download_nb201(tmp_path / "cache", source=short)
    renamed = tmp_path / "renamed.pd"
    upstream_frame.rename(columns={"cellstr": "arch_str"}).to_pickle(renamed)
    with pytest.raises(dl.DownloadError, match="no column 'cellstr'; columns: arch, arch_str"):
        dl.download_nb201(tmp_path / "cache", source=renamed)
    series = tmp_path / "series.pd"
    upstream_frame["arch"].to_pickle(series)
    with pytest.raises(dl.DownloadError, match="holds a Series, not a pandas DataFrame"):
        dl.download_nb201(tmp_path / "cache", source=series)
    assert cache_files(tmp_path / "cache") == []


def test_a_different_csv_fails_the_checksum(tmp_path):
    source = tmp_path / "other.csv"
    source.write_text(
        "index,arch,cifar10-test\n0,|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1.0\n"
    )
    with pytest.raises(dl.ChecksumError, match=r"other\.csv does not match"):
        dl.download_nb201(tmp_path / "cache", source=source)


# -- (c) pickles that would run code ------------------------------------------------------------


class RunsCode:
    """Unpickling this calls ``func(*args)``."""

    def __init__(self, func: Any, *args: Any):
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.func, self.args


def malicious(kind: str, marker: Path) -> bytes:
    """A pickle that, loaded by a plain unpickler, creates `marker` (or tries to run code)."""
    touch = f"open({str(marker)!r}, 'w').close()"
    if kind == "os.system":
        return pickle.dumps(RunsCode(os.system, f"touch {marker}"))
    if kind in ("builtins.eval", "builtins.exec"):
        return pickle.dumps(RunsCode(eval if kind == "builtins.eval" else exec, touch))
    if kind == "builtins.getattr":
        module = Call(G("builtins", "__import__"), ("os",))
        return raw_dumps(Call(Call(G("builtins", "getattr"), (module, "system")), ("true",)), 4)
    if kind == "numpy.memmap":  # creates (or overwrites) a file
        return raw_dumps(Call(G("numpy", "memmap"), (str(marker), "uint8", "w+", 0, (1,))), 4)
    if kind == "nested in a frame":
        frame = pd.DataFrame({"arch": [0], "cellstr": [RunsCode(eval, touch)]}, dtype=object)
        return pickle.dumps(frame)
    module, _, name = kind.rpartition(".")
    if kind == "pandas.core.frame.DataFrame.to_csv":  # a method reached by a dotted name
        module, name = "pandas.core.frame", "DataFrame.to_csv"
    return raw_dumps(Call(G(module, name), (str(marker),)), 4)


@pytest.mark.parametrize(
    "kind",
    [
        "os.system",
        "builtins.eval",
        "builtins.exec",
        "builtins.getattr",
        "pandas.eval",
        "pandas.read_pickle",
        "pandas.io.pickle.read_pickle",
        "pandas.core.frame.DataFrame.to_csv",
        "pandas.core.computation.eval.eval",
        "subprocess.getoutput",
        "numpy.memmap",
        "nested in a frame",
    ],
)
def test_malicious_pickle_is_refused_and_nothing_runs(server, tmp_path, kind):
    marker = tmp_path / "marker"
    server.files["evil.pd"] = malicious(kind, marker)
    cache = tmp_path / "cache"

    with pytest.raises(
        dl.UnsafePickleError, match=r"refusing to load .*evil\.pd: it names "
    ) as info:
        dl.download_nb201(cache, source=server.url("evil.pd"), progress=False)

    assert "could run code" in str(info.value)
    assert isinstance(info.value, pickle.UnpicklingError)
    assert isinstance(info.value, RuntimeError)  # the CLI reports RuntimeErrors
    assert not marker.exists()
    assert cache_files(cache) == []


@pytest.mark.parametrize(
    "kind", ["os.system", "builtins.eval", "numpy.memmap", "nested in a frame"]
)
def test_the_malicious_pickles_do_run_code_when_loaded_plainly(tmp_path, kind):
    """The test above is not vacuous: pickle.loads would create the marker."""
    marker = tmp_path / "marker"
    pickle.loads(malicious(kind, marker))
    assert marker.exists()


def test_not_a_pickle(tmp_path):
    source = tmp_path / "page.html"
    source.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(dl.DownloadError, match=r"page\.html is not a readable pandas pickle"):
        dl.download_nb201(tmp_path / "cache", source=source)


# -- (d) the errors of fetching -----------------------------------------------------------------


def test_too_large_with_and_without_content_length(server, tmp_path):
    server.files["big.pd"] = server.files["big-nolength.pd"] = b"x" * 300_000
    server.no_length.add("big-nolength.pd")
    for name in ("big.pd", "big-nolength.pd"):
        with pytest.raises(dl.DownloadError, match=r"is 0\.\d MB or more, over the 0\.1 MB limit"):
            dl.download_nb201(tmp_path / "cache", source=server.url(name), max_bytes=100_000)
    local = tmp_path / "big.pd"
    local.write_bytes(b"x" * 300_000)
    with pytest.raises(dl.DownloadError, match=r"over the 0\.1 MB limit"):
        dl.download_nb201(tmp_path / "cache", source=local, max_bytes=100_000)
    assert cache_files(tmp_path / "cache") == []


def test_http_errors(server, tmp_path):
    with pytest.raises(
        dl.DownloadError, match=r"HTTP 404 Not Found from http://127\.0\.0\.1:\d+/nope\.pd$"
    ):
        dl.download_nb201(tmp_path / "cache", source=server.url("nope.pd"))
    with pytest.raises(dl.DownloadError, match="HTTP 500 Internal Server Error from http://"):
        dl.download_nb201(tmp_path / "cache", source=server.url("broken"))


def test_default_urls_all_404_say_what_to_do_offline(server, tmp_path, monkeypatch):
    spec = replace(dl.TABLES["nb201"], urls=(server.url("main/t.pd"), server.url("master/t.pd")))
    monkeypatch.setitem(dl.TABLES, "nb201", spec)
    with pytest.raises(
        dl.DownloadError, match=r"main/t\.pd and .*master/t\.pd; download .* --from FILE"
    ):
        dl.download_nb201(tmp_path / "cache")


def test_connection_refused(tmp_path):
    with socket.socket() as sock:  # a port that nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(
        dl.DownloadError,
        match=rf"could not reach http://127\.0\.0\.1:{port}/t\.pd: .*refused.*--from FILE",
    ):
        dl.download_nb201(tmp_path / "cache", source=f"http://127.0.0.1:{port}/t.pd")


def test_bad_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent\.pd: no such file"):
        dl.download_nb201(tmp_path / "cache", source=tmp_path / "absent.pd")
    with pytest.raises(ValueError, match="unsupported source"):
        dl.download_nb201(tmp_path / "cache", source="ftp://example.org/t.pd")
    with pytest.raises(ValueError, match="must name a local file"):
        dl.download_nb201(tmp_path / "cache", source="file://example.org/t.pd")


# -- (e) local files ----------------------------------------------------------------------------


def test_local_file_and_file_url(upstream_pickle, tmp_path):
    source = tmp_path / "dl" / "mini-bench-arch-cell-accs.pd"
    source.parent.mkdir()
    source.write_bytes(upstream_pickle)

    path = dl.download_nb201(tmp_path / "a", source=str(source))
    assert sha256(path.read_bytes()) == dl.NB201_SHA256
    path = dl.download_nb201(tmp_path / "b", source=source.as_uri())
    assert sha256(path.read_bytes()) == dl.NB201_SHA256


def test_the_csv_itself_needs_no_pandas(shared_csv, upstream_pickle, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now fails
    path = dl.download_nb201(tmp_path / "cache", source=shared_csv)
    assert path.read_bytes() == shared_csv.read_bytes()

    source = tmp_path / "t.pd"
    source.write_bytes(upstream_pickle)
    with pytest.raises(
        dl.DownloadError, match="needs pandas, which is not installed: pip install pandas"
    ):
        dl.download_nb201(tmp_path / "other", source=source)


# -- (f) the command line -----------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="airda nas")
    sub = parser.add_subparsers(dest="action")
    nas_download.add_download_parser(sub)
    return parser.parse_args(argv)


def test_cli_download_then_already_there(server, upstream_pickle, tmp_path, capsys):
    server.files["t.pd"] = upstream_pickle
    cache = tmp_path / "my cache"
    args = parse(["download", "nb201", "--cache", str(cache), "--from", server.url("t.pd")])
    assert (args.action, args.table, args.force) == ("download", "nb201", False)

    assert nas_download.run_download(args) == 0
    out = capsys.readouterr().out
    path = cache / RELPATH
    assert f"(15,625 architectures) from {server.url('t.pd')}, sha256 verified: {path}" in out
    assert f"airda nas search --benchmark '{path}' --metric cifar10-val" in out
    assert "without --benchmark" not in out  # not the default cache folder

    assert nas_download.run_download(args) == 0
    assert f"already in the cache (sha256 verified): {path}" in capsys.readouterr().out
    assert server.hits == {"t.pd": 1}

    nas_download.run_download(parse([*sys_argv(args), "--force"]))
    assert server.hits == {"t.pd": 2}


def sys_argv(args: argparse.Namespace) -> list[str]:
    return ["download", args.table, "--cache", args.cache, "--from", args.source]


def test_cli_default_cache_and_default_benchmark(upstream_pickle, tmp_path, capsys):
    source = tmp_path / "t.pd"
    source.write_bytes(upstream_pickle)
    assert nas_download.default_benchmark() is None

    assert nas_download.run_download(parse(["download", "nb201", "--from", str(source)])) == 0

    expected = str(Path(os.environ["AIRDA_CACHE"]) / RELPATH)
    assert nas_download.default_benchmark() == expected
    out = capsys.readouterr().out
    assert expected in out
    assert "finds it there without --benchmark" in out


def test_cli_errors_and_hint(tmp_path):
    with pytest.raises(SystemExit):
        parse(["download", "nb101"])
    args = parse(["download", "nb201", "--cache", str(tmp_path), "--from", str(tmp_path / "x")])
    with pytest.raises(FileNotFoundError):
        nas_download.run_download(args)
    hint = nas_download.missing_table_hint()
    assert "`airda nas download nb201`" in hint
    assert "--benchmark FILE" in hint
