"""The evolution loop: finds the faster variant among bad ones, records every failure with its
reason, resumes after SIGKILL exactly, and drives LM and rewrite proposers."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from airda._native import native_error
from airda.codeopt.evolve import (
    Context,
    LMProposer,
    MixedProposer,
    Program,
    RewriteProposer,
    code_digest,
    evolve,
)
from airda.lm import LM, Completion
from airda.study import load_study
from airda.trial import TrialState
from tests.codeopt.evolve._kernels import (
    FAST,
    REFERENCE,
    SCRIPT,
    SLOW_QUICK,
    WRONG,
    ScriptedProposer,
    psum_spec,
)

pytestmark = pytest.mark.skipif(native_error() is not None, reason=f"{native_error()}")
ROOT = Path(__file__).resolve().parents[3]


def no_slow(script):
    return [(d, c) for d, c in script if c is not SLOW_QUICK]


def test_short_run_finds_the_faster_variant_and_records_every_failure():
    res = evolve(psum_spec(timeout=0.5), budget=10, proposers=ScriptedProposer(no_slow(SCRIPT)),
                 islands=2, show_progress=False)  # fmt: skip
    c = res.counts
    assert c["evaluated"] == 6
    assert c["passed"] == 2
    assert c["failed"] == {"quick": 3, "compile": 1}
    assert c["compiled"] == 5
    assert res.stopped.startswith("no new program in 50")
    assert res.best.code == FAST
    assert res.speedup > 5
    lo, hi = res.speedup_ci
    assert lo <= res.speedup <= hi
    assert [s.proposer for s in res.lineage] == ["reference", "scripted"]
    assert res.lineage[1].description == "running sum"
    assert "+        s += x[i];" in res.diff
    report = res.report()
    assert "speed-up" in report
    assert "lineage of the winner" in report
    assert "running sum" in report


def test_failures_are_trials_with_their_reasons(tmp_path):
    db = tmp_path / "ev.db"
    evolve(psum_spec(timeout=0.5), budget=6, proposers=ScriptedProposer(no_slow(SCRIPT)),
           storage=db, study_name="s", show_progress=False)  # fmt: skip
    study = load_study("s", storage=db)
    errors = {t.user_attrs["description"]: t.error for t in study.trials}
    assert errors["the reference"] is None
    assert errors["running sum"] is None
    assert errors["wrong order"].startswith("wrong output 0")
    assert "SIGSEGV" in errors["crash at the end"]
    assert errors["does not compile"].startswith("compile error:")
    assert errors["hang"].startswith("timeout: a call ran over 0.5 s")
    t = next(t for t in study.trials if t.user_attrs["description"] == "running sum")
    assert t.user_attrs["parent"] == 0
    assert t.user_attrs["stage"] == "done"
    assert t.user_attrs["diff"].startswith("--- trial 0")
    assert t.params["program"] == code_digest(FAST)


def test_a_second_run_continues_and_never_reevaluates(tmp_path):
    db = tmp_path / "ev.db"
    script = no_slow(SCRIPT)
    first = evolve(psum_spec(), budget=3, proposers=ScriptedProposer(script), storage=db,
                   study_name="s", show_progress=False)  # fmt: skip
    assert first.counts["evaluated"] == 3
    same = evolve(psum_spec(), budget=3, proposers=ScriptedProposer(script), storage=db,
                  study_name="s", show_progress=False)  # fmt: skip
    assert same.counts["evaluated"] == 3
    assert same.counts["duplicates"] == 0
    more = evolve(psum_spec(), budget=5, proposers=ScriptedProposer(script), storage=db,
                  study_name="s", show_progress=False)  # fmt: skip
    assert more.counts["evaluated"] == 5
    codes = [t.user_attrs["code"] for t in load_study("s", storage=db).trials]
    assert len({code_digest(c) for c in codes}) == len(codes) == 6  # and the reference
    with pytest.raises(ValueError, match="evolves another reference"):
        evolve(psum_spec(atol=1e-3), budget=5, proposers=ScriptedProposer(script), storage=db,
               study_name="s", show_progress=False)  # fmt: skip


_CHILD = """
import sys
from airda.codeopt.evolve import evolve
from tests.codeopt.evolve._kernels import SCRIPT, ScriptedProposer, psum_spec
script = [(d, c) for d, c in SCRIPT if d != "hang"]
evolve(psum_spec(timeout=5.0), budget=6, proposers=ScriptedProposer(script),
       storage=sys.argv[1], study_name="resume", islands=2, show_progress=False)
"""


def test_resume_after_sigkill_is_exact(tmp_path):
    db = tmp_path / "ev.db"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(db)], cwd=ROOT, env=env)
    slow = code_digest(SLOW_QUICK)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    trials = load_study("resume", storage=db).trials
                except Exception:  # not created yet
                    trials = []
                if any(
                    t.state is TrialState.RUNNING and t.params.get("program") == slow
                    for t in trials
                ):
                    break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before the slow candidate"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = load_study("resume", storage=db).trials  # the killed trial is failed as stale
    killed = [t for t in before if (t.error or "").startswith("WorkerDied")]
    assert [t.params["program"] for t in killed] == [slow]
    done_before = {t.number: t.user_attrs["code"] for t in before if t not in killed}

    script = [(d, c) for d, c in SCRIPT if d != "hang"]
    res = evolve(psum_spec(timeout=5.0), budget=6, proposers=ScriptedProposer(script),
                 storage=db, study_name="resume", islands=2, show_progress=False)  # fmt: skip
    after = load_study("resume", storage=db).trials
    # nothing stored before is lost or changed
    assert {t.number: t.user_attrs["code"] for t in after if t.number in done_before} == (
        done_before
    )
    # the interrupted candidate evaluated once more, nothing else twice
    retry = [t for t in after if t.user_attrs.get("retry_of") == killed[0].number]
    assert len(retry) == 1
    assert retry[0].state is TrialState.COMPLETE
    evaluated = [t for t in after if t.state.finished and not (t.error or "").startswith("Worker")]
    digests = [code_digest(t.user_attrs["code"]) for t in evaluated]
    assert len(digests) == len(set(digests)) == 7  # the reference and the budget of 6
    assert res.counts["evaluated"] == 6
    assert res.counts["retried"] == 1
    assert res.counts["interrupted"] == 1
    assert res.best.code in (FAST, SLOW_QUICK)  # equally fast on the full inputs


class ScriptedLM(LM):
    """Replies from a list in turn (the last repeats); records the prompts."""

    def __init__(self, replies: Sequence[str]):
        super().__init__()
        self.name = "scripted-lm"
        self.replies = list(replies)
        self.prompts: list[str] = []

    def generate(self, prompts, *, max_tokens=64, temperature=0.0, stop=None, seed=None):
        out = []
        for p in prompts:
            self.prompts.append(p)
            text = self.replies[min(len(self.prompts) - 1, len(self.replies) - 1)]
            out.append(Completion(text, "stop", len(p), len(text)))
        self.usage.add(calls=len(out))
        return out

    def score(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        return [0.0 for _ in continuations]


SR_FAST = """Keep a running sum instead of summing again.
<<<<<<< SEARCH
    for (int i = 0; i < n; ++i) {
        double s = 0.0;
        for (int k = 0; k <= i; ++k) s += x[k];
        y[i] = s;
    }
=======
    double s = 0.0;
    for (int i = 0; i < n; ++i) {
        s += x[i];
        y[i] = s;
    }
>>>>>>> REPLACE
"""


def test_lm_proposer_parse_compile_pass_and_unparsable():
    lm = ScriptedLM(["I am not sure what to do here.", SR_FAST, "```c\nvoid psum(double* y) {\n"])
    res = evolve(psum_spec(), budget=3, proposers=LMProposer(lm), show_progress=False)
    c = res.counts
    assert c["proposed"] == 3
    assert c["unparsable"] == 2
    assert c["passed"] == 1
    assert c["by_proposer"]["lm:scripted-lm"] == {"proposed": 3, "parsed": 1, "compiled": 1,
                                                   "passed": 1}  # fmt: skip
    assert res.lineage[-1].description == "Keep a running sum instead of summing again."
    assert res.speedup > 5
    # the prompt: the parent's code, its time and profile, the edit format
    first = lm.prompts[0]
    assert "for (int k = 0; k <= i; ++k) s += x[k];" in first
    assert "per call" in first
    # a measured line profile: the inner loop's line takes most samples
    profile = next(ln for ln in first.splitlines() if ln.startswith("Profile:"))
    assert "sampled" in profile
    top = profile.split("sampled", 1)[1].split(":", 1)[1].split(",")[0]
    assert "line 4 `for (int k = 0; k <= i; ++k) s += x[k];`" in top, profile
    assert "<<<<<<< SEARCH" in first


def test_lm_proposer_prompt_lists_best_programs_and_failures():
    ref = Program(0, REFERENCE, None, -1, "reference", "reference", "the reference", "",
                  "done", True, 1e-3)  # fmt: skip
    fast = Program(2, FAST, 0, 0, "x", "edit", "running sum", "", "done", True, 1e-5)
    bad = Program(3, WRONG, 0, 0, "x", "edit", "wrong order", "", "quick", False, None,
                  "wrong output 0: max abs error 1 at index 0")  # fmt: skip
    ctx = Context("c", "psum", "time", ref, top=[fast, ref], failures=[bad], profile="p")
    [system, user] = LMProposer(ScriptedLM(["x"])).prompt(ref, ctx)
    assert system["role"] == "system"
    assert "running sum: 10 us per call, 100.00x" in user["content"]
    assert "wrong order: wrong output 0" in user["content"]
    assert FAST.strip() in user["content"]


def test_tiny_model_replies_are_recorded_as_unparsable(tmp_path):
    from airda.lm import tiny_model

    res = evolve(psum_spec(), budget=2, proposers=LMProposer(tiny_model(), max_tokens=16),
                 storage=tmp_path / "t.db", study_name="t", show_progress=False)  # fmt: skip
    assert res.counts["proposed"] == 2
    assert res.counts["unparsable"] == 2
    assert res.best.parent is None
    assert res.speedup == 1.0
    failed = [t for t in load_study("t", storage=tmp_path / "t.db").trials if t.number > 0]
    assert all(t.error.startswith("unparsable reply") and "reply" in t.user_attrs for t in failed)


def test_smollm2_as_proposer_runs_to_its_budget(smollm2, tmp_path):
    """The local SmolLM2 file proposes (two short replies): the search runs to its budget,
    every reply is a trial with its outcome (a stage and a reason when it fails), nothing
    crashes, and the reference stays best unless a reply passed."""
    res = evolve(psum_spec(), budget=2, proposers=LMProposer(smollm2, max_tokens=24),
                 storage=tmp_path / "s.db", study_name="s", show_progress=False)  # fmt: skip
    assert res.counts["proposed"] == 2
    trials = [t for t in load_study("s", storage=tmp_path / "s.db").trials if t.number > 0]
    assert len(trials) == 2
    for t in trials:
        assert "reply" in t.user_attrs
        assert t.state.value == "complete" or (t.error and t.user_attrs.get("stage"))
    if all(t.state.value != "complete" for t in trials):
        assert res.best.parent is None


class Failing:
    name = "failing"

    def propose(self, parent: Program, context: Context, n: int, rng: Any) -> list:
        raise ConnectionError("endpoint down")


def test_a_proposer_that_keeps_failing_ends_the_run_with_the_reason():
    with pytest.raises(RuntimeError, match="failed 5 times in a row; last: ConnectionError"):
        evolve(psum_spec(), budget=3, proposers=Failing(), show_progress=False)


def test_a_proposer_failure_is_skipped_when_others_work():
    mixed = MixedProposer({Failing(): 1.0, ScriptedProposer([("running sum", FAST)]): 1.0})
    res = evolve(psum_spec(), budget=1, proposers=mixed, show_progress=False, seed=3)
    assert res.best.code == FAST


def test_rewrite_proposer_with_the_rewrites_library():
    res = evolve(psum_spec(), budget=6, proposers=RewriteProposer(), show_progress=False)
    c = res.counts
    assert c["evaluated"] == 6
    assert c["duplicates"] == 0
    assert c["by_proposer"]["rewrites"]["proposed"] == 6
    kinds = {t.proposer for t in res.lineage}
    assert kinds <= {"reference", "rewrites"}
    assert c["passed"] >= 1  # rewrites of the reference that keep it correct


# Correct only when OpenMP gives it exactly two threads: the spec's threads reach the sandbox,
# and an omp pragma makes the candidate compile with -fopenmp.
TWO_THREADS = "#include <omp.h>\n" + REFERENCE.replace(
    "    for (int i = 0; i < n; ++i) {",
    "    int t = omp_get_max_threads();\n    #pragma omp parallel for\n"
    "    for (int i = 0; i < n; ++i) {",
).replace("y[i] = s;", "y[i] = t == 2 ? s : -1.0;")


@pytest.mark.parametrize(("threads", "passed"), [(2, True), (1, False)])
def test_spec_threads_reach_openmp_candidates(threads, passed):
    res = evolve(psum_spec(threads=threads), budget=1,
                 proposers=ScriptedProposer([("two threads", TWO_THREADS)]),
                 show_progress=False)  # fmt: skip
    assert res.counts["passed"] == int(passed), res.counts


def test_rewrite_proposer_proposes_parallel_for_only_with_threads():
    parent = Program(0, REFERENCE, None, -1, "reference", "reference", "", "", "done", True, 1.0)
    prop = RewriteProposer(limit=1000)
    names = [
        [p.description for p in prop.propose(parent, Context("c", "psum", "time", parent,
                                              threads=t), 1000, random.Random(0))]
        for t in (1, 2)
    ]  # fmt: skip
    assert not any(d.startswith("parallel") for d in names[0])
    assert any(d.startswith("parallel(i)") for d in names[1])
    ctx = Context("c", "psum", "time", parent, threads=2)
    text = "\n".join(m["content"] for m in LMProposer(object()).prompt(parent, ctx))
    assert "2 threads" in text


SLOWER = REFERENCE.replace(
    "        y[i] = s;",
    "        for (int k = 0; k <= i; ++k) s += 0.0 * x[k];\n        y[i] = s;",
)


def test_a_candidate_slower_in_the_final_race_does_not_win(tmp_path):
    res = evolve(psum_spec(), budget=1, proposers=ScriptedProposer([("slower", SLOWER)]),
                 storage=tmp_path / "f.db", study_name="f", show_progress=False)  # fmt: skip
    assert res.counts["passed"] == 1
    assert res.best.parent is None
    assert res.speedup == 1.0
    assert "no candidate beat the reference" in res.summary()
    race = load_study("f", storage=tmp_path / "f.db").user_attrs["final_race"]
    assert race["results"]["1"]["ci"][1] < 1.0
