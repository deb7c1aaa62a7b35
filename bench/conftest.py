"""Benchmark harness: each group times a baseline and airda's backends in the same run and
prints the ratios, with the machine they ran on, at the end of the session.

Run: ``pytest bench`` (add ``--benchmark-disable`` to only check that the bodies run).
"""

from __future__ import annotations

import os
import platform
from collections import defaultdict
from collections.abc import Callable
from typing import Any

# Spinning OpenMP threads make timings bimodal on small machines; set before libgomp loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

# group -> {"baseline": name, "entries": {name: median seconds}}
_RESULTS: dict[str, dict[str, Any]] = defaultdict(lambda: {"baseline": None, "entries": {}})


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    threads = "?"
    try:
        from airda._native import native

        threads = str(native().omp_max_threads())
    except ImportError:
        pass
    gpu = ""
    try:
        import torch

        if torch.cuda.is_available():
            gpu = f", GPU {torch.cuda.get_device_name()}"
        torch_threads = torch.get_num_threads()
    except ImportError:
        torch_threads = "?"
    return (
        f"{cpu}, {os.cpu_count()} CPUs, OpenMP threads {threads} "
        f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}), torch threads {torch_threads}"
        f"{gpu}"
    )


@pytest.fixture
def timed(benchmark):
    """Time `fn(*args)` as entry `name` of `group`; the group's `baseline=True` entry is the
    denominator of every ratio printed for it. `warmup=0` spares a slow entry an untimed run;
    `setup` (untimed) runs before every round."""

    def run(
        group: str,
        name: str,
        fn: Callable[..., Any],
        *args: Any,
        rounds: int = 5,
        baseline: bool = False,
        warmup: int = 1,
        setup: Callable[[], None] | None = None,
    ) -> Any:
        benchmark.group = group
        benchmark.extra_info["entry"] = name
        result = benchmark.pedantic(
            fn, args=args, rounds=rounds, iterations=1, warmup_rounds=warmup, setup=setup
        )
        record = _RESULTS[group]
        if baseline:
            record["baseline"] = name
        if benchmark.stats is not None:
            record["entries"][name] = benchmark.stats.stats.median
        return result

    return run


def pytest_terminal_summary(terminalreporter):
    if not _RESULTS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("airda ratios (median times, measured in this run)")
    write(f"machine: {machine()}")
    for group, record in sorted(_RESULTS.items()):
        entries = record["entries"]
        base = record["baseline"]
        if not entries:
            write(f"{group}: timings disabled (--benchmark-disable)")
            continue
        base_time = entries.get(base)
        write(f"{group}:")
        for name, seconds in sorted(entries.items(), key=lambda kv: kv[1]):
            if base_time is None:
                ratio = "no baseline measured"
            elif name == base:
                ratio = "baseline"
            elif seconds <= base_time:
                ratio = f"{base_time / seconds:.1f}x faster than {base}"
            else:
                ratio = f"{seconds / base_time:.2f}x the time of {base}"
            write(f"  {name:<28} {seconds * 1e3:10.2f} ms   {ratio}")
