"""``airda tune c``: search the compile-time parameters and flags of a C/C++ kernel.

Example:
    $ airda tune c kernel.c --entry saxpy --define N=4096 \\
        --arg 'float32[N]:zeros:out' --arg 'float32[N]:rand' --arg 'int32=N' \\
        --param UNROLL=1,2,4,8 --flags '-O2|-O3 -march=native' --reference ref.c --budget 10
    $ airda tune c tune.toml        # the same, described by a TOML file
"""

from __future__ import annotations

import json
import sys
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
    c.add_argument("--jobs", type=int, help="parallel compiler processes (default: CPU count)")
    c.add_argument("--variant-timeout", type=float, help="seconds one call may take (default 10)")
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
    c.add_argument(
        "--storage", help=f"storage file or URL (default: {DEFAULT_STORAGE}; memory:// for none)"
    )
    c.add_argument("--name", help="study name (default: derived from the tuning key)")
    c.add_argument("--top", type=int, default=20, help="rows of the table (default 20)")
    c.add_argument("--json", action="store_true", help="print the result as JSON")


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
        "timeout",
    }  # fmt: skip
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ValueError(f"unknown settings {unknown}; known: {sorted(known)}")
    if not cfg.get("entry"):
        raise ValueError("--entry is required (the function to tune)")
    if not cfg.get("args"):
        raise ValueError("describe the entry's arguments with --arg (see airda tune c --help)")
    return cfg


def run_tune_c(args: Any) -> int:
    from airda.codeopt import parse_arg, tune_c
    from airda.codeopt.tuner import _fmt_s

    cfg = _settings(args)
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
    tty = sys.stderr.isatty() and not args.json
    count = [0]

    def progress(row: dict[str, Any]) -> None:
        count[0] += 1
        if tty:
            what = _fmt_s(row["median_s"]) if row["state"] == "complete" else "failed"
            print(
                f"\rtuning {cfg['entry']}: {count[0]} variants measured (last: {what})   ",
                end="",
                file=sys.stderr,
                flush=True,
            )

    res = tune_c(
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
        budget=n_budget,
        timeout=seconds,
        strategy=cfg.get("strategy", "random"),
        seed=int(cfg.get("seed", 0)),
        storage=cfg.get("storage", DEFAULT_STORAGE),
        study_name=cfg.get("name"),
        compiler=cfg.get("compiler"),
        jobs=cfg.get("jobs"),
        variant_timeout=float(cfg.get("variant_timeout", 10.0)),
        max_time_s=float(cfg.get("max_time", 0.5)),
        rel_ci=float(cfg.get("rel_ci", 0.02)),
        flush=bool(cfg.get("flush", False)),
        race=bool(cfg.get("race", True)),
        clock=str(cfg.get("clock", "wall")),
        progress=progress,
    )
    if tty and count[0]:
        print(file=sys.stderr)
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
        return 1
    best = res.best or {}
    params = " ".join(f"{k}={v}" for k, v in res.best_params.items() if k != "flags")
    print(f"best: {params} flags='{res.best_params.get('flags', '')}'")
    line = (
        f"  median {_fmt_s(best['median_s'])} per call "
        f"(95% CI {_fmt_s(best['ci_low_s'])}..{_fmt_s(best['ci_high_s'])}, CV {best['cv']:.1%})"
    )
    print(line)
    if res.reference is not None and res.speedup is not None:
        how = " (raced side by side)" if res.reference.get("final_race") else ""
        print(f"  reference {_fmt_s(res.reference['median_s'])}: speed-up {res.speedup:.2f}x{how}")
    if best.get("final_race"):
        print(
            "  (the best and the reference were timed in an interleaved final race; the table "
            "shows the search's measurements)"
        )
    if best.get("noisy"):
        print("  warning: noisy measurement (CV above 5%); the machine may be loaded")
    print()
    print(res.table(args.top))
    return 0
