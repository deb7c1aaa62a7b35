"""One op = one name everywhere (../shared/DESIGN.md, "Layout"): a registered op's files are named
after its module in airda.ops, ``<op>``: ops/<op>.py, csrc/cpu/<op>.cpp, csrc/cuda/<op>.cu and
<op>.h, kernels/<op>.py, csrc/bindings/<op>.cpp, tests/ops/test_<op>.py and bench/test_<op>.py,
for the backends it registers. The registered name is <op> itself, or <op>_<entry point> for an
op with several entry points (mixed_op_forward and mixed_op_backward, parzen_logpdf and
parzen_log_norm). Every native or kernel file belongs to an op, or is one of the few shared
ones listed here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from airda.ops._registry import registered_ops

ROOT = Path(__file__).resolve().parents[2]

# Files under csrc/ and kernels/ that are not an op's: the module and its runtime, the shared
# checks, TPE's proposal state and the code-variant profiler (in their own folders), and the
# old name of the sign-code kernels (a deprecated alias for one release).
SHARED = {
    "csrc/bindings": {"module.cpp", "runtime.cpp", "checks.h", "tpe.cpp", "profiler.cpp"},
    "csrc/cpu": {"runtime.cpp", "grouped_depthwise_conv_body.inc"},
    "csrc/cuda": {"runtime.cu", "runtime.h", "common.cuh"},
    # grouped_depthwise_conv_v1.py is the first kernel, kept for a benchmark (moving to bench/)
    "kernels": {"__init__.py", "sign_codes.py", "grouped_depthwise_conv_v1.py"},
}


def _ops() -> dict[str, set[str]]:
    """Each op's module name -> the backends its entry points register."""
    out: dict[str, set[str]] = {}
    for name, op in registered_ops().items():
        module = op.impls["reference"].__module__
        assert module.startswith("airda.ops."), f"{name}: reference in {module}"
        stem = module.rsplit(".", 1)[1]
        assert name == stem or name.startswith(stem + "_"), (
            f"op {name!r} is registered in airda.ops.{stem}: name the module after the op"
        )
        out.setdefault(stem, set()).update(op.impls)
    return out


OPS = _ops()


def _expected(stem: str, backends: set[str]) -> list[str]:
    files = [f"python/airda/ops/{stem}.py", f"tests/ops/test_{stem}.py", f"bench/test_{stem}.py"]
    if "cpu" in backends:
        files += [f"csrc/cpu/{stem}.cpp", f"csrc/include/airda/{stem}.h"]
    if "cuda" in backends:
        files += [f"csrc/cuda/{stem}.cu", f"csrc/cuda/{stem}.h"]
    if {"cpu", "cuda"} & backends:
        files.append(f"csrc/bindings/{stem}.cpp")
    if "triton" in backends:
        files.append(f"kernels/{stem}.py")
    return files


@pytest.mark.parametrize("stem", sorted(OPS))
def test_an_op_has_its_files_under_its_name(stem):
    missing = [f for f in _expected(stem, OPS[stem]) if not (ROOT / f).is_file()]
    assert not missing, f"{stem}: missing {missing}"


@pytest.mark.parametrize("folder", ["csrc/cpu", "csrc/cuda", "csrc/bindings", "kernels"])
def test_every_native_and_kernel_file_belongs_to_an_op(folder):
    owned = {
        Path(f).name for stem in OPS for f in _expected(stem, OPS[stem]) if f.startswith(folder)
    }
    stray = sorted(
        p.name
        for p in (ROOT / folder).iterdir()
        if p.is_file() and p.name not in owned | SHARED.get(folder, set())
    )
    assert not stray, f"{folder}: files of no op (name them after their op): {stray}"


def _cmake_list(name: str) -> set[str]:
    text = (ROOT / "CMakeLists.txt").read_text()
    match = re.search(rf"set\({name}\s+([^)]*)\)", text)
    assert match, f"CMakeLists.txt sets no {name}"
    return set(match.group(1).split())


def test_cmake_builds_every_op_with_a_native_backend():
    assert _cmake_list("AIRDA_OPS") == {s for s, b in OPS.items() if "cpu" in b}
    assert _cmake_list("AIRDA_CUDA_OPS") == {s for s, b in OPS.items() if "cuda" in b}


def test_every_op_is_checked():
    """The ops this test knows; a new op joins them by registering itself."""
    assert set(OPS) >= {
        "pack_sign_bits",
        "hamming_gram",
        "mixed_op",
        "grouped_depthwise_conv",
        "non_dominated_rank",
        "hypervolume",
        "bootstrap_means",
        "parzen",
    }
