"""What every plot starts from: a study's trials read once (from a Study, a storage, or a list
of records), downsampled when there are too many to draw."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from airda.trial import FrozenTrial, TrialState

__all__ = ["MAX_TRIALS", "StudyView", "downsample", "load"]

# Above this many trials a plot draws a sample: the best, the Pareto front and a stratified
# sample of the rest (optuna-dashboard could not show a 46k-trial study: its issue 385).
MAX_TRIALS = 5000


@dataclass(frozen=True)
class StudyView:
    """The trials of one study, as plotted."""

    name: str
    directions: tuple[str, ...]
    trials: list[FrozenTrial]
    space: Any = None
    n_total: int = 0  # trials in the study (more than len(trials) when downsampled)

    @property
    def downsampled(self) -> bool:
        return self.n_total > len(self.trials)

    @property
    def note(self) -> str:
        """What a title says of a sample: '' when every trial is drawn."""
        if not self.downsampled:
            return ""
        return f" ({len(self.trials):,} of {self.n_total:,} trials shown)"

    def complete(self) -> list[FrozenTrial]:
        return [t for t in self.trials if t.state is TrialState.COMPLETE and t.values is not None]

    def param_names(self) -> list[str]:
        """The space's parameters (in its order), then any other a trial holds."""
        names = list(self.space.names) if self.space is not None else []
        for t in self.trials:
            for k in t.params:
                if k not in names:
                    names.append(k)
        return names

    def signed(self, values: np.ndarray, objective: int) -> np.ndarray:
        """Values as losses (lower is better) for one objective."""
        return values if self.directions[objective] == "minimize" else -values


def load(
    study: Any,
    name: str | None = None,
    *,
    directions: Sequence[str] | None = None,
    max_trials: int | None = MAX_TRIALS,
) -> StudyView:
    """A view of `study`: a :class:`~airda.study.Study`, a storage (URL, file path or
    :class:`~airda.storage.Storage`) with the study's `name`, or a sequence of trial records
    (with `directions`, default one minimised objective). Reading a storage writes nothing."""
    if isinstance(study, StudyView):
        return downsample(study, max_trials) if max_trials is not None else study
    if hasattr(study, "trials") and hasattr(study, "directions"):
        view = StudyView(
            study.name, tuple(study.directions), list(study.trials), getattr(study, "space", None)
        )
    elif isinstance(study, (str, os.PathLike)) or _is_storage(study):
        if name is None:
            raise ValueError("give the study's name with a storage: plot_x(url, name='...')")
        view = _from_storage(study, name)
    elif isinstance(study, Sequence) and all(isinstance(t, FrozenTrial) for t in study):
        n_obj = max((len(t.values) for t in study if t.values is not None), default=1)
        dirs = tuple(directions) if directions is not None else ("minimize",) * n_obj
        view = StudyView(name or "trials", dirs, list(study))
    else:
        raise TypeError(
            "expected a Study, a storage URL or path with name=, or a list of FrozenTrial; "
            f"got {type(study).__name__}"
        )
    for d in view.directions:
        if d not in ("minimize", "maximize"):
            raise ValueError(f"directions are 'minimize' or 'maximize', got {d!r}")
    view = replace(view, n_total=len(view.trials))
    if max_trials is not None:
        view = downsample(view, max_trials)
    return view


def _is_storage(obj: Any) -> bool:
    from airda.storage import Storage

    return isinstance(obj, Storage)


def _from_storage(storage: Any, name: str) -> StudyView:
    from airda.space import Space
    from airda.storage import get_storage

    if isinstance(storage, (str, os.PathLike)):
        text = os.fspath(storage)
        if "://" not in text and not Path(text).exists():
            raise ValueError(f"no storage file {text!r}")
        if text.startswith("sqlite:///") and not Path(text[len("sqlite:///") :]).exists():
            raise ValueError(f"no storage file {text[len('sqlite:///') :]!r}")
    # A path or URL is opened read-only: a plot never writes, creates or upgrades a storage.
    is_url = isinstance(storage, (str, os.PathLike))
    store = get_storage(storage, read_only=True) if is_url else get_storage(storage)
    record = store.get_study(name)
    trials, _ = store.get_trials(record.study_id)
    trials = sorted(trials, key=lambda t: t.number)
    space = Space.from_dict(record.space) if record.space else None
    return StudyView(record.name, tuple(record.directions), trials, space)


def downsample(view: StudyView, max_trials: int) -> StudyView:
    """At most `max_trials` trials: the best complete ones (a tenth of the budget; for several
    objectives the whole Pareto front, up to half the budget, then the next fronts), then an
    even sample over trial numbers within each state, so that every state keeps its share
    (at least one trial). Deterministic."""
    if isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 10:
        raise ValueError(f"max_trials must be an int >= 10, got {max_trials!r}")
    trials = view.trials
    if len(trials) <= max_trials:
        return view
    keep: set[int] = set()
    done = [i for i, t in enumerate(trials) if t.state is TrialState.COMPLETE and t.values]
    n_best = max(1, max_trials // 10)
    if done:
        vals = np.array([trials[i].values for i in done], dtype=np.float64)
        signs = np.array([1.0 if d == "minimize" else -1.0 for d in view.directions])
        loss = vals[:, : len(signs)] * signs
        if loss.shape[1] == 1:
            order = np.argsort(loss[:, 0], kind="stable")[:n_best]
        else:
            from airda.ops.non_dominated_rank import non_dominated_rank

            ranks = np.asarray(non_dominated_rank(np.ascontiguousarray(loss)))
            # The whole Pareto front (up to half the budget), then the next fronts.
            n_best = max(n_best, min(int((ranks == 0).sum()), max_trials // 2))
            order = np.lexsort((np.arange(len(ranks)), ranks))[:n_best]
        keep.update(done[i] for i in order)
    rest = [i for i in range(len(trials)) if i not in keep]
    by_state: dict[TrialState, list[int]] = {}
    for i in rest:
        by_state.setdefault(trials[i].state, []).append(i)
    groups = list(by_state.values())
    total = max_trials - len(keep)
    # Largest remainders: the shares add up to exactly `total`; a rare state keeps one trial.
    exact = np.array([total * len(g) / len(rest) for g in groups])
    shares = np.floor(exact).astype(np.int64)
    for j in np.argsort(-(exact - shares), kind="stable")[: total - int(shares.sum())]:
        shares[j] += 1
    for j in np.flatnonzero(shares == 0):
        shares[j] = 1
        shares[int(np.argmax(shares))] -= 1
    for idx, share in zip(groups, shares.tolist(), strict=True):
        pick = np.linspace(0, len(idx) - 1, min(share, len(idx))).round().astype(np.int64)
        keep.update(idx[j] for j in pick)
    return replace(view, trials=[trials[i] for i in sorted(keep)])
