"""The evolution loop: pick an island and a parent, ask a proposer for children, evaluate each
new one through the cascade in the sandbox, record it in the study; at the end, race the best
against the reference side by side for its speed-up and interval.

Example:
    >>> from airda.codeopt.evolve import EvolveSpec, evolve
    >>> from airda.codeopt.evolve._propose import Proposal
    >>> class Halve:  # a proposer: the same loop, with half the divisions
    ...     name = "halve"
    ...     def propose(self, parent, context, n, rng):
    ...         return [Proposal(parent.code.replace("y[i] = x[i] / 2.0", "y[i] = x[i] * 0.5"),
    ...                          "multiply by 0.5", self.name, "strength")]
    >>> src = "void h(double* y, const double* x, int n) { for (int i = 0; i < n; ++i) y[i] = x[i] / 2.0; }"
    >>> spec = EvolveSpec("halve", "c", src, "h", ["float64[256]:zeros:out", "float64[256]", "int32=256"],
    ...                   max_time_s=0.01, final_time_s=0.02)
    >>> res = evolve(spec, budget=3, proposers=Halve(), show_progress=False)
    >>> res.counts["passed"], res.counts["duplicates"] > 0, [s.proposer for s in res.lineage][:1]
    (1, True, ['reference'])
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airda.codeopt.evolve._database import Program, ProgramDatabase, code_digest
from airda.codeopt.evolve._edit import EditError, apply_reply, unified_diff
from airda.codeopt.evolve._evaluate import Evaluator, profile_hint
from airda.codeopt.evolve._propose import Context, MixedProposer, Proposal, RewriteProposer
from airda.codeopt.evolve._spec import EvolveSpec

__all__ = ["EvolveResult", "LineageStep", "evolve"]


@dataclass(frozen=True)
class LineageStep:
    """One step from the reference to the winner: the trial, who proposed it, what it
    changed, and the diff from its parent."""

    trial: int
    proposer: str
    description: str
    diff: str


@dataclass
class EvolveResult:
    """The outcome of :func:`evolve`.

    Attributes:
        best: the best correct program (the reference when no candidate beat it).
        reference: the reference program (trial 0).
        metric: ``time`` or ``score``.
        speedup / speedup_ci: metric ``time``: the best's speed-up over the reference from the
            final side-by-side race (median of paired ratios) and its 95 % interval.
        score: metric ``score``: the best's score (the reference's is ``reference.value``).
        lineage: the steps from the reference to the best.
        diff: the unified diff from the reference to the best.
        counts: ``proposed``, ``unparsable``, ``duplicates``, ``evaluated``, ``compiled``,
            ``passed``, ``failed`` (by stage), ``proposer_errors``, ``retried``.
        study_name: where every candidate is stored.
        interpreted: a Triton spec run under Triton's interpreter on the CPU (no GPU): its
            times and speed-up are the interpreter's, and say nothing about a GPU.
    """

    best: Program
    reference: Program
    metric: str
    speedup: float | None
    speedup_ci: tuple[float, float] | None
    score: float | None
    lineage: list[LineageStep]
    diff: str
    counts: dict[str, Any]
    study_name: str
    stopped: str = ""
    final: dict[str, Any] = field(default_factory=dict)
    interpreted: bool = False

    def summary(self) -> str:
        """A few lines: what was found, the counts."""
        c = self.counts
        lines = [f"study {self.study_name}: {c['evaluated']} candidates evaluated"]
        lines.append(
            f"proposed {c['proposed']}, unparsable {c['unparsable']}, duplicates "
            f"{c['duplicates']}, compiled {c['compiled']}, passed {c['passed']}; failed by "
            "stage: " + (", ".join(f"{k} {v}" for k, v in sorted(c["failed"].items())) or "none")
        )
        if self.best.parent is None:
            lines.append("no candidate beat the reference")
        elif self.metric == "time":
            lo, hi = self.speedup_ci or (math.nan, math.nan)
            lines.append(
                f"best: trial {self.best.number}, speed-up {self.speedup:.3g}x over the "
                f"reference (95% interval {lo:.3g}-{hi:.3g}x)"
            )
        else:
            lines.append(
                f"best: trial {self.best.number}, score {self.score:.6g} "
                f"(reference {self.reference.value:.6g})"
            )
        if self.stopped:
            lines.append(f"stopped early: {self.stopped}")
        if self.interpreted:
            lines.append(
                "interpreted: the Triton kernels ran under Triton's interpreter on the CPU (no "
                "GPU); these times and speed-ups are not GPU times"
            )
        return "\n".join(lines)

    def report(self) -> str:
        """The summary, the winner's lineage with each step's diff, and its whole diff from
        the reference."""
        out = [self.summary(), "", "lineage of the winner:"]
        for s in self.lineage:
            out.append(f"  trial {s.trial} [{s.proposer}] {s.description}")
        if self.diff:
            out += ["", "diff from the reference:", self.diff.rstrip()]
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study_name,
            "metric": self.metric,
            "best_trial": self.best.number,
            "speedup": self.speedup,
            "speedup_ci": list(self.speedup_ci) if self.speedup_ci else None,
            "score": self.score,
            "reference_value": self.reference.value,
            "lineage": [vars(s) for s in self.lineage],
            "diff": self.diff,
            "counts": self.counts,
            "stopped": self.stopped,
            "interpreted": self.interpreted,
            "best_code": self.best.code,
        }


def _profile_line(ev: Evaluator, spec: EvolveSpec, parent: Program, proposer: Any) -> str:
    """The prompt's profile line of `parent`: its time per call and where the time goes, a
    measured line profile for a compiled program when the proposer reads it (a model), else
    the deepest loop nest."""
    seconds = parent.value if spec.metric == "time" else None
    static = profile_hint(parent.code, spec.language, spec.entry, seconds)
    if not (parent.ok and getattr(proposer, "wants_profile", False)):
        return static
    measured = ev.line_profile(parent.code)
    if not measured:
        return static
    if seconds is None:
        return measured
    return f"{static.split(';', 1)[0]}; {measured}"


def _as_proposer(proposers: Any) -> Any:
    if proposers is None:
        return RewriteProposer()
    if isinstance(proposers, Mapping) or (
        isinstance(proposers, Sequence) and not isinstance(proposers, str)
    ):
        return MixedProposer(proposers)
    if not hasattr(proposers, "propose"):
        raise TypeError(f"proposers must be a proposer or a list of them, got {proposers!r}")
    return proposers


def _open_study(spec: EvolveSpec, storage: Any, study_name: str | None) -> Any:
    from airda.study import create_study

    key = spec.key()
    name = study_name or f"evolve-{spec.name}-{key}"
    study = create_study(
        name,
        storage=storage,
        direction=spec.direction,
        load_if_exists=True,
        user_attrs={"evolve_key": key, "kind": "evolve", "entry": spec.entry},
    )
    stored = study.user_attrs.get("evolve_key")
    if stored != key:
        raise ValueError(
            f"study {name!r} evolves another reference, arguments or metric (key {stored} != "
            f"{key}); choose another study name"
        )
    return study


class _Run:
    """One call of :func:`evolve`: the study, the database, the evaluator and the counts."""

    def __init__(self, spec: EvolveSpec, study: Any, db: ProgramDatabase, ev: Evaluator):
        self.spec, self.study, self.db, self.ev = spec, study, db, ev
        self.duplicates: dict[str, int] = dict(study.user_attrs.get("duplicates") or {})
        self.proposer_errors = int(study.user_attrs.get("proposer_errors") or 0)

    def spent(self) -> int:
        """Candidates that count against the budget: evaluated programs (not the reference)
        and unparsable replies."""
        return sum(
            1
            for t in self.study.trials
            if t.state.finished
            and t.user_attrs.get("proposer") != "reference"
            and (t.user_attrs.get("stage") == "parse" or "code" in t.user_attrs)
            and not _unfinished(t)
        )

    def evaluate(self, trial: Any, code: str) -> Program:
        from airda.trial import TrialState

        try:
            outcome = self.ev.evaluate(code)
        except BaseException:
            # Ctrl-C, SIGTERM: no result; a later run evaluates this program again
            trial.set_user_attr("interrupted", True)
            self.study.tell(trial, state=TrialState.FAIL, error="interrupted")
            raise
        return self.db.finish(trial, outcome)

    def unparsable(self, proposal: Proposal, parent: Program, island: int, err: str) -> None:
        from airda.trial import TrialState

        digest = hashlib.sha256((proposal.reply or "").encode()).hexdigest()[:20]
        trial = self.study.ask(fixed={"program": f"reply-{digest}"})
        trial.suggest_categorical("program", [f"reply-{digest}"])
        for k, v in {
            "reply": (proposal.reply or "")[:20_000],
            "parent": parent.number,
            "island": island,
            "proposer": proposal.proposer,
            "kind": proposal.kind or "reply",
            "description": proposal.description,
            "stage": "parse",
        }.items():
            trial.set_user_attr(k, v)
        self.study.tell(trial, state=TrialState.FAIL, error=err)

    def note_duplicate(self, proposer: str) -> None:
        self.duplicates[proposer] = self.duplicates.get(proposer, 0) + 1
        self.study.set_user_attr("duplicates", self.duplicates)


def _unfinished(t: Any) -> bool:
    return (t.error or "").startswith("WorkerDied") or bool(t.user_attrs.get("interrupted"))


def evolve(
    spec: EvolveSpec | str | os.PathLike[str],
    budget: int = 200,
    proposers: Any = None,
    storage: Any = None,
    study_name: str | None = None,
    islands: int = 4,
    seed: int = 0,
    show_progress: bool | None = True,
    *,
    migration_interval: int = 10,
    max_idle: int = 50,
    max_proposer_errors: int = 5,
) -> EvolveResult:
    """Evolve the spec's reference towards the fastest (or best-scoring) correct program.

    Args:
        spec: an :class:`EvolveSpec`, or the path of its TOML file.
        budget: candidates to evaluate in the study (stored ones count; the reference and
            proposals of programs evaluated before do not; an unparsable reply does).
        proposers: a proposer (:class:`LMProposer`, :class:`RewriteProposer`, your own), a list
            of them, or a mapping proposer -> weight (a :class:`MixedProposer`); default: the
            deterministic rewrites.
        storage / study_name: where the candidates are kept (None: in memory). A second call
            with the same storage and name resumes: nothing evaluated is evaluated again, and a
            candidate a killed run was evaluating is evaluated once more.
        islands: populations evolving side by side, the best migrating every
            `migration_interval` candidates.
        seed: the seed of parent selection and of the proposers' randomness.
        show_progress: a progress bar (terminal) or log lines with the ETA; None: on a
            terminal only.
        max_idle: stop after this many proposal rounds in a row gave no new program.
        max_proposer_errors: stop (raise ``RuntimeError``) after this many proposer failures
            in a row (a model endpoint that is down); one failure is logged and skipped.

    A candidate that does not compile, crashes, hangs, answers wrongly or makes the user's
    verify/score raise is a failed trial with its reason; the search goes on.
    """
    import sys

    from airda._logging import Progress, get_logger

    log = get_logger("airda.codeopt.evolve")
    if isinstance(spec, str | os.PathLike):
        spec = EvolveSpec.from_toml(spec)
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be an integer >= 1, got {budget!r}")
    proposer = _as_proposer(proposers)
    study = _open_study(spec, storage, study_name)
    db = ProgramDatabase(study, islands=islands, migration_interval=migration_interval)
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    stopped = ""
    with Evaluator(spec) as ev:
        run = _Run(spec, study, db, ev)
        ref_outcome = ev.reference()  # the correct outputs (also on a resumed run)
        if db.reference is None:
            trial = db.start(
                spec.source,  # type: ignore[arg-type]
                parent=None,
                island=-1,
                proposer="reference",
                kind="reference",
                description="the reference",
                diff="",
            )
            db.finish(trial, ref_outcome)
        assert db.reference is not None
        spent = run.spent()
        with Progress(
            total=budget,
            initial=min(spent, budget),
            desc=study.name,
            unit="candidate",
            enabled=None if show_progress else False,
        ) as bar:
            # programs a killed run was evaluating: evaluated once more, first
            for t in list(db.interrupted):
                if spent >= budget:
                    break
                a = t.user_attrs
                record = {k: a[k] for k in ("parent", "island", "proposer", "kind",
                                            "description", "diff") if k in a}  # fmt: skip
                trial = db.start(a["code"], **record, retry_of=t.number)
                run.evaluate(trial, a["code"])
                spent += 1
                bar.update(1)
            db.interrupted = []
            idle = errors = 0
            while spent < budget:
                island = (spent + idle) % db.n_islands
                rng = random.Random(f"{seed}-{spent}-{idle}")
                parent = db.select_parent(island, rng)
                ctx = Context(
                    language=spec.language,
                    entry=spec.entry,
                    metric=spec.metric,
                    reference=db.reference,
                    top=db.top(island, 4),
                    failures=db.failures_of_children(parent.number),
                    profile=_profile_line(ev, spec, parent, proposer),
                    known=db.__contains__,
                    threads=spec.threads,
                )
                try:
                    proposals = proposer.propose(parent, ctx, 1, rng)
                except Exception as exc:
                    errors += 1
                    run.proposer_errors += 1
                    study.set_user_attr("proposer_errors", run.proposer_errors)
                    log.warning(
                        "proposer %s failed: %s: %s", proposer.name, type(exc).__name__, exc
                    )
                    if errors >= max_proposer_errors:
                        raise RuntimeError(
                            f"the proposer failed {errors} times in a row; last: "
                            f"{type(exc).__name__}: {exc}"
                        ) from exc
                    idle += 1
                    continue
                errors = 0
                new = 0
                for prop in proposals:
                    if spent >= budget:
                        break
                    code, kind = prop.code, prop.kind
                    if code is None:
                        try:
                            edit = apply_reply(
                                prop.reply or "", parent.code, spec.language, spec.entry
                            )
                        except EditError as exc:
                            run.unparsable(prop, parent, island, str(exc))
                            spent += 1
                            new += 1
                            bar.update(1, last="parse")
                            continue
                        code, kind = edit.code, kind or edit.kind
                    if code in db or code_digest(code) == code_digest(parent.code):
                        run.note_duplicate(prop.proposer)
                        continue
                    trial = db.start(
                        code,
                        parent=parent.number,
                        island=island,
                        proposer=prop.proposer,
                        kind=kind or "edit",
                        description=prop.description,
                        diff=unified_diff(parent.code, code, f"trial {parent.number}", "child"),
                    )
                    p = run.evaluate(trial, code)
                    spent += 1
                    new += 1
                    best = db.best()
                    bar.update(1, **_postfix(spec, db, best, p))
                if new:
                    idle = 0
                else:
                    idle += 1
                    if idle >= max_idle:
                        stopped = f"no new program in {max_idle} proposal rounds in a row"
                        log.warning("%s: %s", study.name, stopped)
                        break
        return _result(spec, study, db, ev, run, stopped)


def _postfix(
    spec: EvolveSpec, db: ProgramDatabase, best: Program | None, last: Program
) -> dict[str, Any]:
    ref = db.reference
    out: dict[str, Any] = {"last": "ok" if last.ok else last.stage}
    if best is not None and best.value is not None and ref is not None and ref.value:
        if spec.metric == "time":
            out["best"] = f"{ref.value / best.value:.2f}x"
        else:
            out["best"] = f"{best.value:.4g}"
    return out


def _counts(study: Any, run: _Run) -> dict[str, Any]:
    trials = [
        t
        for t in study.trials
        if t.state.finished and t.user_attrs.get("proposer") not in (None, "reference")
    ]
    done = [t for t in trials if not _unfinished(t)]
    parse_failed = [t for t in done if t.user_attrs.get("stage") == "parse"]
    programs = [t for t in done if "code" in t.user_attrs]
    failed = Counter(t.user_attrs.get("stage", "?") for t in done if t.state.value != "complete")
    by_proposer: dict[str, dict[str, int]] = {}
    for t in done:
        row = by_proposer.setdefault(t.user_attrs["proposer"], Counter())
        row["proposed"] += 1
        stage = t.user_attrs.get("stage")
        row["parsed"] += stage != "parse"
        row["compiled"] += stage not in ("parse", "compile")
        row["passed"] += t.state.value == "complete"
    for name, n in run.duplicates.items():
        row = by_proposer.setdefault(name, Counter())
        row["proposed"] += n
        row["parsed"] += n
        row["duplicates"] += n
    n_dup = sum(run.duplicates.values())
    return {
        "proposed": len(done) + n_dup,
        "unparsable": len(parse_failed),
        "duplicates": n_dup,
        "evaluated": len(programs),
        "compiled": sum(1 for t in programs if t.user_attrs.get("stage") != "compile"),
        "passed": sum(1 for t in programs if t.state.value == "complete"),
        "failed": dict(failed),
        "proposer_errors": run.proposer_errors,
        "retried": sum(1 for t in programs if "retry_of" in t.user_attrs),
        "interrupted": len(trials) - len(done),
        "by_proposer": {k: dict(v) for k, v in by_proposer.items()},
    }


def _result(
    spec: EvolveSpec, study: Any, db: ProgramDatabase, ev: Evaluator, run: _Run, stopped: str
) -> EvolveResult:
    ref = db.reference
    assert ref is not None
    best = db.best() or ref
    speedup = ci = score = None
    final: dict[str, Any] = {}
    if spec.metric == "time":
        best, final = _final_race(spec, study, db, ev, ref)
        if best is ref:
            speedup, ci = 1.0, (1.0, 1.0)
        else:
            speedup, ci = final["speedup"], (final["ci"][0], final["ci"][1])
    else:
        score = best.value
    lineage = []
    node: Program | None = best
    while node is not None:
        lineage.append(LineageStep(node.number, node.proposer, node.description, node.diff))
        node = db.programs.get(node.parent) if node.parent is not None else None
    lineage.reverse()
    return EvolveResult(
        best=best,
        reference=ref,
        metric=spec.metric,
        speedup=speedup,
        speedup_ci=ci,
        score=score,
        lineage=lineage,
        diff=unified_diff(ref.code, best.code, "reference", f"trial {best.number}")
        if best is not ref
        else "",
        counts=_counts(study, run),
        study_name=study.name,
        stopped=stopped,
        final=final,
        interpreted=ev.interpreted,
    )


#: How many of the search's fastest programs race the reference at the end.
FINAL_RACE = 3


def _final_race(
    spec: EvolveSpec, study: Any, db: ProgramDatabase, ev: Evaluator, ref: Program
) -> tuple[Program, dict[str, Any]]:
    """The winner: the search's `FINAL_RACE` fastest programs, each raced side by side with the
    reference; the largest speed-up wins (a time measured during the search may be a lucky
    one). When even the winner is clearly slower than the reference (its interval below 1),
    the reference stays the best. The races are stored on the study: a second run with the
    same programs does not race again."""
    ok = [p for p in db.programs.values() if p.ok and p.parent is not None]
    top = sorted(ok, key=lambda p: (p.value, p.number))[:FINAL_RACE]
    if not top:
        return ref, {}
    numbers = [p.number for p in top]
    stored = study.user_attrs.get("final_race") or {}
    if stored.get("numbers") != numbers:
        results = {str(p.number): ev.final_speedup(p.code) for p in top}
        stored = {"numbers": numbers, "results": results}
        study.set_user_attr("final_race", stored)
    results = stored["results"]

    def measured(p: Program) -> float:
        s = results[str(p.number)]["speedup"]
        return -math.inf if s is None or not math.isfinite(s) else float(s)

    winner = max(top, key=lambda p: (measured(p), -p.number))
    final = {"trial": winner.number, **results[str(winner.number)]}
    # no measured speed-up, or one clearly below 1: the reference stays the best
    if final["ci"][1] is None or final["speedup"] is None or final["ci"][1] < 1.0:
        return ref, {}
    return winner, final
