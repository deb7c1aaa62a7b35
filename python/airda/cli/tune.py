"""``airda tune c``: search the compile-time parameters and flags of a C/C++ kernel.

Example:
    $ airda tune c kernel.c --entry saxpy --define N=4096 \\
        --arg 'float32[N]:zeros:out' --arg 'float32[N]:rand' --arg 'int32=N' \\
        --param UNROLL=1,2,4,8 --flags '-O2|-O3 -march=native' --reference ref.c --budget 10
    $ airda tune c tune.toml        # the same, described by a TOML file
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tomllib

from airda.cli.studies import DEFAULT_STORAGE

__all__ = ["add_parser", "join_option_values", "run_tune_c"]

# Options whose values start with '-' (compiler flags): argparse would take them for options.
_DASH_VALUED = ("--flags", "--reference-flags", "--compiler")


def join_option_values(argv: list[str]) -> list[str]:
    """``--flags -O2|-O3`` -> ``--flags=-O2|-O3`` so that argparse accepts the value."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in _DASH_VALUED and i + 1 < len(argv):
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def add_parser(sub: Any) -> None:
    tune = sub.add_parser(
        "tune",
        help="autotune code variants (C/C++ compile-time parameters and flags)",
        description="Find the fastest correct variant of a kernel: every variant is compiled, "
        "checked against a reference and timed in a sandbox process (a crash or hang fails "
        "only that variant), searched by any airda strategy, stored in a study.",
    )
    tsub = tune.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = tsub.add_parser(
        "c",
        help="tune a C/C++ kernel over -D parameters and compiler flags",
        description="Tune a C/C++ kernel. The entry function keeps its C signature; --arg "
        "describes its arguments in order: 'DTYPE[SHAPE]:INIT[:out]' for an array passed by "
        "pointer (SHAPE: comma-separated expressions over --define names, INIT: rand, randn, "
        "zeros, ones, arange; ':out' marks an output compared with the reference) or "
        "'DTYPE=EXPR' for a scalar passed by value (DTYPE: float32, float64, int8..uint64). "
        "KERNEL may instead be a .toml file with the same settings as keys (kernel, entry, "
        "args, defines, params, flags, reference, budget, ...; see docs/tune.md). Prints the "
        "best variant, its speed-up over the reference and a table. Exit code 0 when a correct "
        "variant was found, 1 otherwise.",
    )
    c.add_argument("kernel", help="the kernel source (.c, .cpp) or a .toml settings file")
    c.add_argument("--entry", help="the function to tune (required unless in the TOML)")
    c.add_argument(
        "--arg", action="append", default=None, metavar="SPEC", help="an argument (repeatable)"
    )
    c.add_argument(
        "--define",
        action="append",
        default=None,
        metavar="NAME=VALUE",
        help="a fixed -D value, usable in --arg shapes (repeatable)",
    )
    c.add_argument(
        "--param",
        action="append",
        default=None,
        metavar="NAME=V1,V2,...",
        help="a -D parameter to tune and its values (repeatable)",
    )
    c.add_argument(
        "--flags",
        help="compiler flag sets separated by '|', e.g. '-O2|-O3 -march=native' (default -O2)",
    )
    c.add_argument("--reference", help="reference source: correct outputs and the baseline time")
    c.add_argument("--reference-entry", help="its function (default: --entry)")
    c.add_argument("--reference-flags", help="its compiler flags (default: -O2)")
    c.add_argument(
        "--budget",
        help="variants to evaluate (e.g. 50), or seconds with a suffix (e.g. 30s, 2m); "
        "default: the whole space",
    )
    c.add_argument("--strategy", help="random, grid, halton, rea, local, ... (default: random)")
    c.add_argument("--seed", type=int, help="strategy seed (default 0)")
    c.add_argument("--atol", type=float, help="absolute tolerance of the gate (1e-5)")
    c.add_argument("--rtol", type=float, help="relative tolerance of the gate (1e-4)")
    c.add_argument(
        "--jobs", type=_positive_int, help="parallel compiler processes (default: CPU count)"
    )
    c.add_argument(
        "--variant-timeout",
        type=_positive_seconds,
        help="seconds one call of a variant may take before it counts as hung (default 10)",
    )
    c.add_argument("--max-time", type=float, help="measurement cap per variant, s (0.5)")
    c.add_argument("--rel-ci", type=float, help="target relative width of the median's CI (0.02)")
    c.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        help="wall (default) or cpu: the worker thread's CPU time, steadier on a loaded "
        "machine (single-threaded kernels only)",
    )
    c.add_argument("--flush", action="store_true", default=None, help="flush caches per sample")
    c.add_argument(
        "--no-race",
        action="store_true",
        default=None,
        help="measure every variant fully (no early stop of clearly slower ones)",
    )
    c.add_argument("--compiler", help="compiler command (default: $CC / $CXX, cc / c++)")
    lim = c.add_argument_group(
        "sandbox",
        "limits of the worker process that runs the variants ('none' for no limit) and the "
        "environment it sees (only PATH, LANG, LC_*, OMP_*, ... and what --env names)",
    )
    lim.add_argument(
        "--memory-limit",
        metavar="SIZE",
        help="address space, e.g. 8G (default: the machine's physical memory)",
    )
    lim.add_argument(
        "--cpu-limit", metavar="SECONDS", help="CPU seconds per request to the worker (300)"
    )
    lim.add_argument("--file-size-limit", metavar="SIZE", help="largest file written (64M)")
    lim.add_argument(
        "--process-limit",
        metavar="N",
        help="processes and threads the worker may add (max(256, 4 x CPUs); root: not applied)",
    )
    lim.add_argument(
        "--output-limit", metavar="SIZE", help="stdout/stderr kept per request (1M, the tail)"
    )
    lim.add_argument(
        "--env",
        action="append",
        default=None,
        metavar="NAME[=VALUE]",
        help="pass this environment variable to the variants (repeatable)",
    )
    c.add_argument(
        "--storage", help=f"storage file or URL (default: {DEFAULT_STORAGE}; memory:// for none)"
    )
    c.add_argument("--name", help="study name (default: derived from the tuning key)")
    c.add_argument("--top", type=int, default=20, help="rows of the table (default 20)")
    c.add_argument("--json", action="store_true", help="print the result as JSON")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}")
    return value


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: Any, what: str) -> int | None:
    """``8G``, ``512M``, ``64k``, ``1048576`` -> bytes; ``none`` -> None (no limit)."""
    if text is None or (isinstance(text, str) and text.strip().lower() in ("none", "off")):
        return None
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", str(text))
        if not m:
            raise ValueError(f"{what} must be a size like 512M or 8G (or none), got {text!r}")
        value = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if value < 1:
        raise ValueError(f"{what} must be positive (or none), got {text!r}")
    return value


def _parse_count(text: Any, what: str, seconds: bool = False) -> Any:
    if text is None or (isinstance(text, str) and text.strip().lower() in ("none", "off")):
        return None
    try:
        value = float(text) if seconds else int(text)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a positive number (or none), got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{what} must be a positive number (or none), got {text!r}")
    return value


def _limits(cfg: dict[str, Any]) -> Any:
    """The sandbox limits of the settings; defaults where not given."""
    from airda.codeopt import Limits

    kw: dict[str, Any] = {}
    if "memory_limit" in cfg:
        kw["memory"] = parse_size(cfg["memory_limit"], "--memory-limit")
    if "cpu_limit" in cfg:
        kw["cpu_time"] = _parse_count(cfg["cpu_limit"], "--cpu-limit", seconds=True)
    if "file_size_limit" in cfg:
        kw["file_size"] = parse_size(cfg["file_size_limit"], "--file-size-limit")
    if "process_limit" in cfg:
        kw["processes"] = _parse_count(cfg["process_limit"], "--process-limit")
    if "output_limit" in cfg:
        kw["output"] = parse_size(cfg["output_limit"], "--output-limit") or 0
    return Limits(**kw)


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """SIGTERM raises SystemExit while tuning, so that the compilers and the sandbox are
    stopped and their temporary files removed (the default action would end the process on
    the spot)."""

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave the signal alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _parse_budget(text: Any) -> tuple[int | None, float | None]:
    if text is None:
        return None, None
    if isinstance(text, int) and not isinstance(text, bool):
        return text, None
    s = str(text).strip().lower()
    try:
        if s.endswith("m"):
            return None, float(s[:-1]) * 60
        if s.endswith("s"):
            return None, float(s[:-1])
        return int(s), None
    except ValueError:
        raise ValueError(
            f"--budget must be a number of variants or seconds (30s), got {text!r}"
        ) from None


def _kv(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"{what} {item!r} must look like NAME=VALUE")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _value(v: str) -> Any:
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def _settings(args: Any) -> dict[str, Any]:
    """Merge the TOML file (when KERNEL is one) and the command-line options (which win)."""
    cfg: dict[str, Any] = {}
    base = Path(".")
    kernel = Path(args.kernel)
    if kernel.suffix == ".toml":
        with open(kernel, "rb") as f:
            doc = tomllib.load(f)
        cfg = dict(doc.get("tune", doc))
        base = kernel.parent
        if "kernel" not in cfg:
            raise ValueError(f"{kernel}: no 'kernel' key (the source to tune)")
        cfg["kernel"] = str(base / cfg["kernel"])
        if cfg.get("reference"):
            cfg["reference"] = str(base / cfg["reference"])
        if isinstance(cfg.get("flags"), str):
            cfg["flags"] = cfg["flags"].split("|")
    else:
        cfg["kernel"] = str(kernel)
    cli: dict[str, Any] = {
        "entry": args.entry,
        "reference": args.reference,
        "reference_entry": args.reference_entry,
        "reference_flags": args.reference_flags,
        "budget": args.budget,
        "strategy": args.strategy,
        "seed": args.seed,
        "atol": args.atol,
        "rtol": args.rtol,
        "jobs": args.jobs,
        "variant_timeout": args.variant_timeout,
        "max_time": args.max_time,
        "rel_ci": args.rel_ci,
        "flush": args.flush,
        "clock": args.clock,
        "compiler": args.compiler,
        "storage": args.storage,
        "name": args.name,
        "memory_limit": args.memory_limit,
        "cpu_limit": args.cpu_limit,
        "file_size_limit": args.file_size_limit,
        "process_limit": args.process_limit,
        "output_limit": args.output_limit,
        "env": args.env,
    }
    if args.no_race:
        cli["race"] = False
    if args.arg:
        cli["args"] = args.arg
    if args.define:
        cli["defines"] = {k: _value(v) for k, v in _kv(args.define, "--define").items()}
    if args.param:
        cli["params"] = {
            k: [_value(x) for x in v.split(",") if x.strip()]
            for k, v in _kv(args.param, "--param").items()
        }
    if args.flags is not None:
        cli["flags"] = [f.strip() for f in args.flags.split("|") if f.strip()]
    cfg.update({k: v for k, v in cli.items() if v is not None})
    known = {
        "kernel", "entry", "args", "defines", "params", "flags", "reference", "reference_entry",
        "reference_flags", "budget", "strategy", "seed", "atol", "rtol", "jobs",
        "variant_timeout", "max_time", "rel_ci", "flush", "clock", "race", "compiler", "storage", "name",
        "timeout", "memory_limit", "cpu_limit", "file_size_limit", "process_limit", "output_limit",
        "env",
    }  # fmt: skip
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ValueError(f"unknown settings {unknown}; known: {sorted(known)}")
    if not cfg.get("entry"):
        raise ValueError("--entry is required (the function to tune)")
    if not cfg.get("args"):
        raise ValueError("describe the entry's arguments with --arg (see airda tune c --help)")
    if cfg.get("jobs") is not None:  # the TOML form is not checked by argparse
        cfg["jobs"] = _parse_count(cfg["jobs"], "jobs")
    if cfg.get("variant_timeout") is not None:
        cfg["variant_timeout"] = _parse_count(cfg["variant_timeout"], "variant_timeout", True)
    if isinstance(cfg.get("env"), str):
        cfg["env"] = [cfg["env"]]
    return cfg


def run_tune_c(args: Any) -> int:
    with _terminate_as_exit():
        return _run_tune_c(args)


def _run_tune_c(args: Any) -> int:
    from airda.codeopt import CVariantSpec, parse_arg, tune_c
    from airda.codeopt.search import format_seconds

    cfg = _settings(args)
    limits = _limits(cfg)
    defines = dict(cfg.get("defines", {}))
    specs = [parse_arg(a, defines) for a in cfg["args"]]
    n_budget, seconds = _parse_budget(cfg.get("budget"))
    if cfg.get("timeout") is not None:
        seconds = float(cfg["timeout"])
    kernel = Path(cfg["kernel"])
    if not kernel.exists():
        raise ValueError(f"kernel source {kernel} does not exist")
    reference = Path(cfg["reference"]) if cfg.get("reference") else None
    if reference is not None and not reference.exists():
        raise ValueError(f"reference source {reference} does not exist")
    from airda._logging import Progress

    # Rate and ETA on a terminal, a log line every 30 s otherwise; nothing with --json.
    bar = Progress(
        n_budget,
        desc=f"tuning {cfg['entry']}",
        unit="variant",
        enabled=False if args.json else None,
    )

    def progress(row: dict[str, Any]) -> None:
        what = format_seconds(row["median_s"]) if row["state"] == "complete" else "failed"
        bar.update(1, last=what)

    spec = CVariantSpec(
        kernel,
        cfg["entry"],
        specs,
        params=cfg.get("params", {}),
        flags=cfg.get("flags", ["-O2"]),
        defines=defines,
        reference=reference,
        reference_entry=cfg.get("reference_entry"),
        reference_flags=cfg.get("reference_flags", "-O2"),
        atol=float(cfg.get("atol", 1e-5)),
        rtol=float(cfg.get("rtol", 1e-4)),
        compiler=cfg.get("compiler"),
        jobs=cfg.get("jobs"),
        variant_timeout=float(cfg.get("variant_timeout", 10.0)),
        max_time_s=float(cfg.get("max_time", 0.5)),
        rel_ci=float(cfg.get("rel_ci", 0.02)),
        flush=bool(cfg.get("flush", False)),
        race=bool(cfg.get("race", True)),
        clock=str(cfg.get("clock", "wall")),
        limits=limits,
        env=cfg.get("env"),
    )
    try:
        res = tune_c(
            spec,
            budget=n_budget,
            timeout=seconds,
            strategy=cfg.get("strategy", "random"),
            seed=int(cfg.get("seed", 0)),
            storage=cfg.get("storage", DEFAULT_STORAGE),
            study_name=cfg.get("name"),
            progress=progress,
        )
    finally:
        bar.close()
    if args.json:
        doc = {
            "study": res.study.name,
            "best_params": res.best_params,
            "best": res.best,
            "reference": res.reference,
            "speedup": res.speedup,
            "evaluated": res.evaluated,
            "variants": res.rows,
        }
        print(json.dumps(doc, indent=1, default=str))
        return 0 if res.best_params is not None else 1
    print(
        f"study {res.study.name}: {len(res.rows)} variants "
        f"({res.evaluated} measured now, {len(res.rows) - res.evaluated} from storage), "
        f"{res.n_failed} failed"
    )
    if res.best_params is None:
        print("no variant passed the correctness gate")
        print(res.table(args.top))
        _print_compile_errors(res.rows, kernel.name)
        return 1
    best = res.best or {}
    params = " ".join(f"{k}={v}" for k, v in res.best_params.items() if k != "flags")
    print(f"best: {params} flags='{res.best_params.get('flags', '')}'")
    line = (
        f"  median {format_seconds(best['median_s'])} per call "
        f"(95% CI {format_seconds(best['ci_low_s'])}..{format_seconds(best['ci_high_s'])}, CV {best['cv']:.1%})"
    )
    print(line)
    if res.reference is not None and res.speedup is not None:
        how = " (raced side by side)" if res.reference.get("final_race") else ""
        print(
            f"  reference {format_seconds(res.reference['median_s'])}: speed-up {res.speedup:.2f}x{how}"
        )
    if best.get("final_race"):
        print(
            "  (the best and the reference were timed in an interleaved final race; the table "
            "shows the search's measurements)"
        )
    if best.get("noisy"):
        print("  warning: noisy measurement (CV above 5%); the machine may be loaded")
    print()
    print(res.table(args.top))
    _print_compile_errors(res.rows, kernel.name)
    return 0


def _print_compile_errors(rows: list[dict[str, Any]], kernel: str) -> None:
    """Every distinct compiler message in full, once, with the variants it stopped (the table
    shows only each one's first error line). The compiled copy of the kernel is named after
    the kernel: its lines are the kernel's (the generated trampoline comes after them)."""
    from airda.codeopt.cvariants import name_compiled_copy

    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("failure") == "compile" and r.get("error"):
            # "compile failed (FLAGS -DX=1): MESSAGE": the same message for many variants
            _, sep, message = r["error"].partition("): ")
            message = name_compiled_copy(message if sep else r["error"], kernel)
            groups.setdefault(message, []).append(r)
    for message, group in groups.items():
        params = ", ".join(
            " ".join(f"{k}={v}" for k, v in g["params"].items() if k != "flags")
            + f" flags='{g['params'].get('flags', '')}'"
            for g in group[:3]
        )
        more = f" and {len(group) - 3} more" if len(group) > 3 else ""
        print()
        print(f"compile error of {len(group)} variant(s) ({params}{more}):")
        print(message)
