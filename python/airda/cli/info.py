"""``airda info``: versions, compiled backends, and which op can run on which backend here."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import sys
from typing import Any

from airda._native import native, native_error
from airda._version import __version__
from airda.cli._env import use_triton_interpreter_without_gpu


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


NO_DRIVER = "no NVIDIA driver"


def _driver_version(c: Any) -> int:
    """The CUDA driver's version, 0 when no NVIDIA driver is installed (what
    cudaDriverGetVersion reports then)."""
    try:
        return int(c.cuda_driver_version() or 0)
    except (RuntimeError, TypeError, ValueError):
        return 0


def _cuda_report(c: Any) -> dict[str, Any]:
    info = c.build_info()
    report: dict[str, Any] = {
        "built": bool(info["cuda_built"]),
        "architectures": [f"sm_{a}" for a in str(info["cuda_architectures"]).split(",") if a],
        "runtime_version": info["cuda_runtime_version"],
        "driver_version": _driver_version(c),
        "devices": [],
        "error": None,
    }
    if report["built"]:
        try:
            count = c.cuda_device_count()
            report["devices"] = [c.cuda_device_name(i) for i in range(count)]
        except RuntimeError as exc:
            report["error"] = str(exc)
        if not report["driver_version"]:
            # CUDA's own words ("driver version is insufficient") read as "update your
            # driver" on a machine that has none: say what is missing.
            report["error"] = (
                f"{NO_DRIVER} on this machine (the CUDA backend is built; running it needs an "
                f"NVIDIA GPU and its driver){'; ' + report['error'] if report['error'] else ''}"
            )
    return report


def collect() -> dict[str, Any]:
    """The report ``airda info`` prints, as a dict."""
    triton_note = use_triton_interpreter_without_gpu()
    import airda.ops

    report: dict[str, Any] = {
        "airda": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in ("numpy", "torch", "triton")},
        "triton_mode": triton_note,
    }
    error = native_error()
    if error is None:
        c = native()
        info = c.build_info()
        report["compiled"] = {
            "path": c.__file__,
            "compiler": info["compiler"],
            "openmp": info["openmp"],
            "omp_threads": c.omp_max_threads(),
        }
        report["cuda"] = _cuda_report(c)
    else:
        report["compiled"] = {"error": error}
        report["cuda"] = {"built": False, "error": error}
    report["backends"] = {b: str(airda.ops.backend_status(b)) for b in airda.ops.BACKENDS}
    cuda = report["cuda"]
    if cuda.get("built") and not cuda.get("driver_version") and "cuda" in report["backends"]:
        report["backends"]["cuda"] = f"unavailable: built, but {NO_DRIVER} is installed here"
    report["ops"] = {
        op: {b: status.usable for b, status in row.items()}
        for op, row in airda.ops.available().items()
    }
    return report


def _driver_text(version: int) -> str:
    if not version:
        return NO_DRIVER
    return f"driver {version // 1000}.{version % 1000 // 10}"


def _format(report: dict[str, Any]) -> str:
    lines = [f"airda {report['airda']}  (python {report['python']}, {report['platform']})"]
    lines.append(
        "packages: "
        + ", ".join(f"{k} {v or 'not installed'}" for k, v in report["packages"].items())
    )
    compiled = report["compiled"]
    if "error" in compiled:
        lines.append(f"airda._C: NOT IMPORTABLE: {compiled['error']}")
    else:
        lines.append(f"airda._C: {compiled['path']}")
        lines.append(
            f"  compiler {compiled['compiler']}, OpenMP {compiled['openmp']}, "
            f"{compiled['omp_threads']} threads"
        )
    cuda = report["cuda"]
    if cuda.get("built"):
        rt = cuda["runtime_version"]
        lines.append(
            f"  CUDA built: {', '.join(cuda['architectures'])}, runtime {rt // 1000}.{rt % 1000 // 10}"
            f", static cudart; {_driver_text(cuda['driver_version'])}"
        )
        if cuda["devices"]:
            lines.append(f"  GPUs: {'; '.join(cuda['devices'])}")
    else:
        lines.append("  CUDA: not built")
    lines.append(f"triton: {report['triton_mode']}")
    lines.append("backends:")
    width = max(len(b) for b in report["backends"])
    for name, status in report["backends"].items():
        lines.append(f"  {name:<{width}}  {status}")
    lines.append("ops (op x backend, + = usable here):")
    backends = list(report["backends"])
    op_width = max(len(op) for op in report["ops"])
    lines.append(("  " + " " * op_width + "  " + "  ".join(f"{b:<9}" for b in backends)).rstrip())
    for op, row in report["ops"].items():
        marks = "  ".join(f"{'+' if row[b] else '-':<9}" for b in backends)
        lines.append(f"  {op:<{op_width}}  {marks}".rstrip())
    return "\n".join(lines)


def run_info(as_json: bool = False) -> int:
    report = collect()
    print(json.dumps(report, indent=2) if as_json else _format(report))
    return 0 if "error" not in report["compiled"] else 1
