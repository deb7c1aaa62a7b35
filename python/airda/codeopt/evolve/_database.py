"""The program database of an evolution, kept in an airda study: every candidate is a trial
(its code, the diff from its parent, the parent's trial number, island, proposer, the stage of
the cascade it reached, its time or score, its failure reason). Islands with periodic migration
of their best, MAP-Elites-style cells (code length x edit kind) that keep one elite each, parent
selection mixing exploitation and exploration, and deduplication of programs (whitespace
normalised): a program is never evaluated twice.

Everything in memory is rebuilt from the study by replaying its trials in order, so a resumed
run (after a crash or a SIGKILL) continues with the same islands, cells and migrations.

Example:
    >>> from airda.codeopt.evolve._database import normalise_code
    >>> normalise_code("int f() {\\n  return 1;   \\n}\\n\\n") == normalise_code("int f() { return 1; }")
    False
    >>> normalise_code("int  f()  {\\n\\n return 1;\\n}") == normalise_code("int f() {\\n return 1;\\n}")
    True
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Program", "ProgramDatabase", "code_digest", "normalise_code"]

# What a trial's user attributes hold (the record of a candidate).
_ATTRS = ("code", "parent", "island", "proposer", "kind", "description", "diff", "stage")
_DIED = "WorkerDied"


def normalise_code(code: str) -> str:
    """The code with runs of spaces and tabs made one space, line ends stripped, blank lines
    dropped: programs that differ only there are the same program."""
    lines = (re.sub(r"[ \t]+", " ", ln).strip() for ln in code.replace("\r", "\n").split("\n"))
    return "\n".join(ln for ln in lines if ln)


def code_digest(code: str) -> str:
    """The identity of a program (of its normalised text)."""
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Program:
    """One evaluated candidate (or the reference, trial 0).

    Attributes:
        number: its trial number in the study.
        code: the whole program text.
        parent: the parent's trial number (None for the reference).
        island: the island it was bred on (-1: the reference, a member of every island).
        proposer / kind / description: who proposed it, the kind of edit (``unroll``,
            ``search-replace``, ...) and a one-line description.
        diff: the unified diff from its parent.
        stage: the last stage of the cascade it entered (``done`` when it passed).
        ok: it passed every stage.
        value: seconds per call (metric ``time``) or the score; None when it failed.
        error: why it failed.
    """

    number: int
    code: str
    parent: int | None
    island: int
    proposer: str
    kind: str
    description: str
    diff: str
    stage: str
    ok: bool
    value: float | None
    error: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def digest(self) -> str:
        return code_digest(self.code)


class ProgramDatabase:
    """The programs of one study, their islands and their diversity cells.

    Args:
        study: the airda study (direction ``minimize`` for seconds, ``maximize`` for scores).
        islands: how many populations evolve side by side.
        migration_interval: every this many recorded programs, each island's best joins the
            next island (a ring).
        exploit: the share of parent choices that take the island's best; of the rest, two
            thirds take a random elite of the MAP-Elites cells, one third a random correct
            member of the island.
    """

    def __init__(
        self,
        study: Any,
        *,
        islands: int = 4,
        migration_interval: int = 10,
        exploit: float = 0.5,
    ):
        if isinstance(islands, bool) or not isinstance(islands, int) or islands < 1:
            raise ValueError(f"islands must be an integer >= 1, got {islands!r}")
        if migration_interval < 1:
            raise ValueError(f"migration_interval must be >= 1, got {migration_interval!r}")
        if not 0.0 <= exploit <= 1.0:
            raise ValueError(f"exploit must be in [0, 1], got {exploit!r}")
        self.study = study
        self.n_islands = islands
        self.migration_interval = migration_interval
        self.exploit = exploit
        self.maximize = study.directions[0] == "maximize"
        self.programs: dict[int, Program] = {}
        self.by_digest: dict[str, int] = {}
        self.members: list[list[int]] = [[] for _ in range(islands)]
        self.cells: dict[str, int] = {}
        self.migrations: list[tuple[int, int, int]] = []  # (after n programs, number, to island)
        self.interrupted: list[Any] = []  # trials whose evaluation a killed run left unfinished
        self.reference: Program | None = None
        self._ref_len = 1
        self.reload()

    # ---- replay ----------------------------------------------------------------------------
    def reload(self) -> None:
        """Rebuild everything from the study's trials (in trial order)."""
        from airda.trial import TrialState

        self.programs.clear()
        self.by_digest.clear()
        self.members = [[] for _ in range(self.n_islands)]
        self.cells.clear()
        self.migrations.clear()
        self.interrupted = []
        retried: set[int] = set()
        trials = self.study.trials
        for t in trials:
            if "retry_of" in t.user_attrs:
                retried.add(int(t.user_attrs["retry_of"]))
        for t in trials:
            if "code" not in t.user_attrs or not t.state.finished:
                continue
            if _unfinished(t):
                if t.number not in retried:
                    self.interrupted.append(t)
                continue
            self._add(program_of(t, ok=t.state is TrialState.COMPLETE))
        # an interrupted program evaluated meanwhile (a later trial) needs no retry
        pending: dict[str, Any] = {}
        for t in self.interrupted:
            pending.setdefault(code_digest(t.user_attrs["code"]), t)
        self.interrupted = [t for d, t in pending.items() if d not in self.by_digest]

    def _add(self, p: Program) -> None:
        digest = p.digest
        if digest in self.by_digest:
            return  # an older trial holds this program
        self.programs[p.number] = p
        self.by_digest[digest] = p.number
        if p.parent is None:
            self.reference = p
            self._ref_len = max(len(normalise_code(p.code)), 1)
            for m in self.members:
                m.append(p.number)
        elif 0 <= p.island < self.n_islands:
            self.members[p.island].append(p.number)
        if p.ok:
            cell = self.cell(p)
            held = self.cells.get(cell)
            if held is None or self.fitness(p) > self.fitness(self.programs[held]):
                self.cells[cell] = p.number
        n = len(self.programs)
        if self.n_islands > 1 and n % self.migration_interval == 0:
            self._migrate(n)

    def _migrate(self, n: int) -> None:
        """Each island's best joins the next island (ring), unless it is a member already."""
        bests = [self.best(i) for i in range(self.n_islands)]
        for i, best in enumerate(bests):
            if best is None or best.parent is None:
                continue
            to = (i + 1) % self.n_islands
            if best.number not in self.members[to]:
                self.members[to].append(best.number)
                self.migrations.append((n, best.number, to))

    # ---- queries ---------------------------------------------------------------------------
    def fitness(self, p: Program) -> float:
        """Higher is better: the score, or minus the seconds; -inf when it failed."""
        if not p.ok or p.value is None or not math.isfinite(p.value):
            return -math.inf
        return p.value if self.maximize else -p.value

    def cell(self, p: Program) -> str:
        """The MAP-Elites cell: the code's length relative to the reference's (half-octave
        buckets) and the kind of edit that made it."""
        ratio = max(len(normalise_code(p.code)), 1) / self._ref_len
        bucket = max(-4, min(4, round(2 * math.log2(ratio))))
        return f"len{bucket:+d}|{p.kind}"

    def __len__(self) -> int:
        return len(self.programs)

    def __contains__(self, code: str) -> bool:
        return code_digest(code) in self.by_digest

    def island_programs(self, island: int) -> list[Program]:
        return [self.programs[n] for n in self.members[island]]

    def best(self, island: int | None = None) -> Program | None:
        """The best correct program (of an island, or of all)."""
        pool: Iterable[Program] = (
            self.programs.values() if island is None else self.island_programs(island)
        )
        ok = [p for p in pool if p.ok]
        if not ok:
            return None
        return max(ok, key=lambda p: (self.fitness(p), -p.number))

    def top(self, island: int, k: int = 3) -> list[Program]:
        """The island's `k` best correct programs, best first."""
        ok = [p for p in self.island_programs(island) if p.ok]
        return sorted(ok, key=lambda p: (-self.fitness(p), p.number))[:k]

    def failures_of_children(self, parent: int, k: int = 3) -> list[Program]:
        """The latest `k` failed children of a program."""
        kids = [p for p in self.programs.values() if p.parent == parent and not p.ok]
        return sorted(kids, key=lambda p: -p.number)[:k]

    def select_parent(self, island: int, rng: random.Random) -> Program:
        """A parent for the next child on `island`: its best (exploitation), a random elite of
        the cells or a random correct member (exploration)."""
        assert self.reference is not None, "the reference is evaluated first"
        ok = [p for p in self.island_programs(island) if p.ok]
        if not ok:
            return self.reference
        r = rng.random()
        if r < self.exploit:
            best = self.best(island)
            assert best is not None
            return best
        if r < self.exploit + (1.0 - self.exploit) * 2.0 / 3.0 and self.cells:
            return self.programs[self.cells[rng.choice(sorted(self.cells))]]
        return rng.choice(ok)

    # ---- writing ---------------------------------------------------------------------------
    def start(self, code: str, **record: Any) -> Any:
        """Start the trial of a new candidate, its record stored before it is evaluated (a
        run killed during the evaluation leaves it to be retried)."""
        digest = code_digest(code)
        if digest in self.by_digest:
            raise ValueError(
                f"program {digest} was evaluated before (trial {self.by_digest[digest]})"
            )
        trial = self.study.ask(fixed={"program": digest})
        trial.suggest_categorical("program", [digest])  # kept as the trial's parameter
        trial.set_user_attr("code", code)
        for key, value in record.items():
            trial.set_user_attr(key, value)
        return trial

    def finish(self, trial: Any, outcome: Any) -> Program:
        """Tell the study a candidate's outcome (complete with its value, or failed with its
        reason) and add it to the islands and cells."""
        from airda.trial import TrialState

        trial.set_user_attr("stage", outcome.stage)
        for k, v in outcome.attrs.items():
            trial.set_user_attr(k, v)
        if outcome.ok:
            frozen = self.study.tell(trial, outcome.value)
        else:
            frozen = self.study.tell(trial, state=TrialState.FAIL, error=outcome.error)
        p = program_of(frozen, ok=frozen.state is TrialState.COMPLETE)
        self._add(p)
        return p


def _unfinished(t: Any) -> bool:
    """A trial whose evaluation did not end: its process died (the study failed it as stale),
    or it was interrupted."""
    err = t.error or ""
    return err.startswith(_DIED) or bool(t.user_attrs.get("interrupted"))


def program_of(t: Any, *, ok: bool) -> Program:
    a = t.user_attrs
    value = t.values[0] if ok and t.values else None
    parent = a.get("parent")
    return Program(
        number=t.number,
        code=a["code"],
        parent=None if parent is None else int(parent),
        island=int(a.get("island", -1)),
        proposer=str(a.get("proposer", "")),
        kind=str(a.get("kind", "")),
        description=str(a.get("description", "")),
        diff=str(a.get("diff", "")),
        stage=str(a.get("stage", "")),
        ok=ok,
        value=value,
        error=t.error,
        attrs={k: v for k, v in a.items() if k not in _ATTRS},
    )
