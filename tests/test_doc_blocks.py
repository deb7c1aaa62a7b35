"""Every code block of README.md and docs/*.md runs as written.

Which blocks run:

* ```` ```python ```` blocks: plain code is executed; a block of ``>>>`` prompts is a doctest
  session and its printed output is checked (``doctest.ELLIPSIS``).
* ```` ```bash ```` blocks: run by ``bash -e -o pipefail``, with the test's Python environment
  first on ``PATH`` (so ``airda`` and ``python`` are the ones under test).
* Other fences (``toml``, ``text``, unlabelled output) are not run.

A test writes its blocks into one script, each block at its own line numbers (so a traceback's
line is the doc's line; the script is named after the doc, e.g. ``docs_hpo.md.py``), and runs
it with ``python SCRIPT`` as a user would run a file of the example: worker processes started
by spawn import that script, as they would the user's. The working directory is a fresh
temporary folder laid out like a checkout's root: ``examples/`` is a link to the repository's,
and ``../shared/data`` is the shared data folder (``tests/nas/shared_data.py``), so files a
block writes (such as ``airda-studies.db``) land in the temporary folder; ``XDG_CACHE_HOME``
points there too, so airda's caches (compiled variants, downloads) start empty, as a new user's.

Markers, an HTML comment on the line right before the opening fence:

* ``<!-- doc-test: skip (reason) -->``: the block is not run; the reason is the skip message.
* ``<!-- doc-test: requires optuna -->``: skip, saying so, when a module the example needs
  (an optional dependency, not one of airda's) cannot be imported.
* ``<!-- doc-test: gpu -->``: the example needs a CUDA device (marked ``gpu``; skipped without).
* ``<!-- doc-test: continue -->``: the block continues the previous run block of the same file,
  in the same process and folder (Python blocks share their names), so a guide can build an
  example over several blocks. Such a chain is one test, named after its blocks' lines.

Directives combine with ``;``: ``<!-- doc-test: continue; requires optuna -->``.

A block that names a file under ``../shared/data/`` skips, saying so, when the file is absent.

The line after a block states its run time on a 2-core CPU, in the form
``_Runs in about 3 s on a 2-core CPU._``; a test whose blocks are stated at over 20 s in all is
marked slow. ``AIRDA_DOC_TIMINGS=FILE`` appends each block's measured wall and CPU seconds (its
own process and the processes it waited for) and the load average to FILE, as JSON lines.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.nas.shared_data import shared_data_root

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_LANGS = ("python", "bash")
SLOW_SECONDS = 20.0
TIMEOUT_SECONDS = 1800

FENCE = re.compile(r"^```\s*([\w+-]*)\s*$")
MARKER = re.compile(r"^\s*<!--\s*doc-test:\s*(.*?)\s*-->\s*$")
SKIP = re.compile(r"^skip\s*\((.+)\)$")
RUNTIME = re.compile(
    r"^_Runs? in about ([0-9.]+) (ms|s|min)\b.*on (?:a 2-core CPU|one (?:H100|H200)).*_\s*$",
    re.IGNORECASE,
)
SHARED = re.compile(r"\.\./shared/data/([\w./-]+[\w])")


@dataclass
class Block:
    file: str  # relative to the repository root
    line: int  # of the first code line (the fence is the line before)
    lang: str
    code: str
    skip: str | None = None
    cont: bool = False
    requires: tuple[str, ...] = ()
    gpu: bool = False
    stated_s: float | None = None  # the run time the doc states after the block


@dataclass
class Chain:
    blocks: list[Block] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.blocks[0].file + ":" + "+".join(str(b.line) for b in self.blocks)

    @property
    def stated_s(self) -> float:
        return sum(b.stated_s or 0.0 for b in self.blocks)


def parse(path: Path) -> list[Block]:
    """The fenced blocks of a markdown file, with their markers and stated run times."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rel = path.relative_to(ROOT).as_posix()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, start = m.group(1).lower(), i
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        if j == len(lines):
            raise AssertionError(f"{rel}:{start + 1}: the fence is never closed")
        block = Block(rel, start + 2, lang, "\n".join(lines[start + 1 : j]) + "\n")
        marker = MARKER.match(lines[start - 1]) if start else None
        if marker and marker.group(1).startswith("skip"):
            if not (m := SKIP.match(marker.group(1))):
                raise AssertionError(f"{rel}:{start}: a skip marker needs a (reason)")
            block.skip = m.group(1).strip()
        elif marker:
            for directive in filter(None, (d.strip() for d in marker.group(1).split(";"))):
                if directive == "continue":
                    block.cont = True
                elif directive == "gpu":
                    block.gpu = True
                elif directive.startswith("requires "):
                    block.requires += tuple(directive[9:].replace(",", " ").split())
                else:
                    raise AssertionError(f"{rel}:{start}: unknown doc-test marker {directive!r}")
        k = j + 1
        while k < len(lines) and not lines[k].strip():
            k += 1
        if k < len(lines) and (rt := RUNTIME.match(lines[k].strip())):
            block.stated_s = float(rt.group(1)) * {"ms": 1e-3, "s": 1.0, "min": 60.0}[rt.group(2)]
        blocks.append(block)
        i = j + 1
    return blocks


def chains() -> tuple[list[Chain], list[Block]]:
    """The runnable chains of every doc, and the blocks skipped by a marker."""
    runs: list[Chain] = []
    skipped: list[Block] = []
    for path in DOCS:
        last: Chain | None = None
        for b in parse(path):
            if b.lang not in RUN_LANGS:
                continue
            if b.skip is not None:
                skipped.append(b)
                continue
            if b.cont:
                if last is None:
                    raise AssertionError(f"{b.file}:{b.line}: 'continue' with no block before")
                last.blocks.append(b)
            else:
                last = Chain([b])
                runs.append(last)
    return runs, skipped


RUNS, SKIPPED = chains()

# The helper the generated script loads on its first line: times each block (in the main
# process only: spawned workers re-run the script's top level), runs bash blocks and doctests.
HELPER = r"""
import doctest, json, os, resource, subprocess, sys, time

_last = []


def _in_worker():
    # A spawned worker process runs the script's top level again, as __mp_main__.
    return sys._getframe(2).f_globals.get("__name__") != "__main__"


def _cpu():
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def mark(where):
    if _in_worker():
        return
    now, cpu = time.perf_counter(), _cpu()
    if _last:
        block, t0, c0, load = _last
        seconds = now - t0
        print(f"---- {block}: {seconds:.2f} s", flush=True)
        record = {"block": block, "seconds": round(seconds, 3), "cpu_seconds": round(cpu - c0, 3),
                  "load_before": load, "load_after": round(os.getloadavg()[0], 2)}
        with open(TIMINGS, "a") as f:
            f.write(json.dumps(record) + "\n")
        _last.clear()
    if where is not None:
        print(f"---- {where}", flush=True)
        _last[:] = [where, time.perf_counter(), _cpu(), round(os.getloadavg()[0], 2)]


def bash(code, where):
    if _in_worker():
        return
    rc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", code]).returncode
    if rc:
        sys.exit(f"{where}: the bash block exited with status {rc}")


def run_doctest(code, globs, where, file, line):
    if _in_worker():
        return
    test = doctest.DocTestParser().get_doctest(code, globs, where, file, line - 1)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test, clear_globs=False)
    if runner.failures:
        sys.exit(f"{where}: {runner.failures} doctest example(s) failed")
"""


def script(chain: Chain, helper: Path) -> str:
    """One Python script of the chain's blocks, each at its line in the markdown file, so that
    tracebacks name the doc's lines. The line before each block (its fence) holds the timing
    mark; bash blocks and doctest sessions become one call there, their lines left blank."""
    lines: list[str] = []
    for k, b in enumerate(chain.blocks):
        where = f"{b.file}:{b.line}"
        if len(lines) > b.line - 2:
            raise AssertionError(f"{where}: blocks of a chain out of order")
        lines += [""] * (b.line - 2 - len(lines))
        head = f'_doc_test["mark"]({where!r})'
        if k == 0:
            head = f'_doc_test = __import__("runpy").run_path({str(helper)!r}); ' + head
        code = b.code.splitlines()
        if b.lang == "bash":
            head += f'; _doc_test["bash"]({json.dumps(b.code)}, {where!r})'
            code = [""] * len(code)
        elif b.code.lstrip().startswith(">>>"):
            call = f"({json.dumps(b.code)}, globals(), {where!r}, {b.file!r}, {b.line})"
            head += f'; _doc_test["run_doctest"]{call}'
            code = [""] * len(code)
        lines += [head, *code]
    lines.append('_doc_test["mark"](None)')
    return "\n".join(lines) + "\n"


def _params():
    for chain in RUNS:
        marks = [pytest.mark.slow] if chain.stated_s > SLOW_SECONDS else []
        if any(b.gpu for b in chain.blocks):
            marks.append(pytest.mark.gpu)
        yield pytest.param(chain, id=chain.id, marks=marks)


@pytest.mark.parametrize("chain", list(_params()))
def test_block_runs(chain: Chain, tmp_path: Path):
    if any(b.gpu for b in chain.blocks):
        torch = pytest.importorskip("torch")
        if not torch.cuda.is_available():
            pytest.skip("the example needs a CUDA device")
    for module in sorted({m for b in chain.blocks for m in b.requires}):
        pytest.importorskip(module, reason=f"the example needs {module}, which is not installed")
    text = "".join(b.code for b in chain.blocks)
    for rel in sorted(set(SHARED.findall(text))):
        path = shared_data_root() / rel
        if not path.exists():
            pytest.skip(
                f"needs the shared data file {path}, which is absent (the data live in "
                "../shared/data beside the repository, or where AIRDA_SHARED_DATA points)"
            )
    work = tmp_path / "checkout"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    if shared_data_root().exists():
        (tmp_path / "shared").mkdir()
        (tmp_path / "shared" / "data").symlink_to(shared_data_root().resolve())
    timings = tmp_path / "timings.jsonl"
    helper = tmp_path / "doc_test_helper.py"
    helper.write_text(f"TIMINGS = {str(timings)!r}\n" + HELPER)
    name = chain.blocks[0].file.replace("/", "_") + ".py"
    (work / name).write_text(script(chain, helper))
    env = dict(os.environ)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # airda's caches start empty, as a new user's
    for var in ("AIRDA_CACHE", "AIRDA_CACHE_DIR"):
        env.pop(var, None)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    proc = subprocess.run(
        [sys.executable, name],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    print(proc.stdout)
    print(proc.stderr, file=sys.stderr)
    if out := os.environ.get("AIRDA_DOC_TIMINGS"):
        with open(out, "a", encoding="utf-8") as f:
            f.write(timings.read_text() if timings.exists() else "")
    if proc.returncode:
        pytest.fail(
            f"{chain.id} failed (exit status {proc.returncode}); its output is above",
            pytrace=False,
        )


@pytest.mark.parametrize("block", SKIPPED, ids=[f"{b.file}:{b.line}" for b in SKIPPED])
def test_block_skipped(block: Block):
    pytest.skip(f"{block.file}:{block.line}: {block.skip}")


def test_blocks_found():
    n_python = sum(b.lang == "python" for p in DOCS for b in parse(p))
    assert n_python >= 30, n_python
    assert all(b.lang in RUN_LANGS for c in RUNS for b in c.blocks)


@pytest.mark.parametrize("path", DOCS, ids=[p.relative_to(ROOT).as_posix() for p in DOCS])
def test_run_time_stated(path: Path):
    """Each example states its run time on a 2-core CPU on the line after it."""
    missing = [
        f"{b.file}:{b.line}"
        for b in parse(path)
        if b.lang in RUN_LANGS and b.skip is None and b.stated_s is None
    ]
    assert not missing, f"no '_Runs in about N s on a 2-core CPU._' line after {missing}"


TOML = [b for p in DOCS for b in parse(p) if b.lang == "toml"]


@pytest.mark.parametrize("block", TOML, ids=[f"{b.file}:{b.line}" for b in TOML])
def test_toml_block_parses(block: Block):
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    tomllib.loads(block.code)
