"""A small integration any training loop can call: report, stop early, checkpoint.

:class:`Session` wraps a live trial. ``session.report(epoch, metric)`` and
``session.should_stop()`` go to the study's scheduler (ASHA, Hyperband, median rule...);
``session.save_checkpoint(state)`` / ``session.load_checkpoint()`` keep a training state on
disk for population-based training, under ``<checkpoint_dir>/<study>/trial-<number>/``, with
the path recorded in the trial's system attributes (``checkpoint``, ``checkpoint_step``), so a
reloaded study finds every checkpoint again.

With a segment strategy (``"pbt"``, ``"sync_hyperband"``, ``"sync_halving"``), a trial is one
training segment: ``session.steps`` are the steps it trains, ``session.load_checkpoint()``
returns the state its parent saved (PBT: its own previous segment, or a top member's when it
exploits; synchronous Hyperband: the same configuration at the rung below), and
``session.parent`` says which trial that was. A checkpoint that cannot be restored raises
:class:`CheckpointError`: the trial fails with that reason and the study goes on (a PBT member
then exploits a top member; a Hyperband rung promotes the next configuration instead).

States are written with ``torch.save`` when torch is installed (tensors, state dicts), else
with pickle; only load checkpoints your own studies wrote.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airda.study import Trial

__all__ = ["CheckpointError", "Session"]


class CheckpointError(RuntimeError):
    """A checkpoint is missing or cannot be read back."""


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "study"


def _save(state: Any, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.save(state, tmp)
        fmt = "torch"
    else:
        with open(tmp, "wb") as f:
            pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
        fmt = "pickle"
    os.replace(tmp, path)  # a crash mid-write never leaves a half checkpoint under the name
    return fmt


def _load(path: Path, fmt: str) -> Any:
    if fmt == "torch":
        import torch

        return torch.load(path, map_location="cpu", weights_only=False)
    with open(path, "rb") as f:
        return pickle.load(f)


class Session:
    """Reporting, early stopping and checkpoints for one trial of a training loop.

    Args:
        trial: the live trial the objective received.
        checkpoint_dir: root folder of checkpoints; default ``$AIRDA_CHECKPOINT_DIR`` or
            ``./airda-checkpoints``.

    Example:
        >>> import tempfile, airda
        >>> from airda.space import Float
        >>> from airda.strategies import PopulationBasedTraining
        >>> root = tempfile.mkdtemp()
        >>> def train(trial):
        ...     s = Session(trial, checkpoint_dir=root)
        ...     state = s.load_checkpoint() or {"w": 0.0}
        ...     for step in s.steps:
        ...         state["w"] += trial["lr"]  # one "epoch" of training
        ...         s.report(step, -state["w"])
        ...     s.save_checkpoint(state)
        ...     return -state["w"]
        >>> pbt = PopulationBasedTraining(population_size=4, perturbation_interval=5, seed=0)
        >>> study = airda.create_study(space={"lr": Float(0.01, 1.0, log=True)}, strategy=pbt)
        >>> study.optimize(train, n_trials=12)
        >>> last = study.trials[-1]
        >>> max(last.intermediate), last.system_attrs["checkpoint_step"]
        (15, 15)
    """

    def __init__(self, trial: Trial, *, checkpoint_dir: str | os.PathLike[str] | None = None):
        from airda.strategies.segments import SegmentStrategy

        self.trial = trial
        self.study = trial.study
        root = checkpoint_dir or os.environ.get("AIRDA_CHECKPOINT_DIR") or "airda-checkpoints"
        self.directory = Path(root) / _safe(self.study.name) / f"trial-{trial.number}"
        strategy = self.study.strategy
        self.segments = strategy if isinstance(strategy, SegmentStrategy) else None
        self.parent: int | None = None
        self.start_step = 0
        self.end_step: int | None = None
        if self.segments is not None:
            self.parent = self.segments.parent_of(trial)
            self._set_attr(self.segments.parent_attr, self.parent)
            parent = None if self.parent is None else self.study.get_trial(self.parent)
            self.start_step, self.end_step = self.segments.segment(trial, parent)

    @property
    def pbt(self):
        """The study's PBT strategy, or None (kept for loops written against it)."""
        from airda.strategies.pbt import PopulationBasedTraining

        return self.segments if isinstance(self.segments, PopulationBasedTraining) else None

    def _set_attr(self, key: str, value: Any) -> None:
        self.study.storage.set_trial_system_attr(self.trial.trial_id, key, value)
        self.trial._frozen.system_attrs[key] = value

    @property
    def steps(self) -> range:
        """The steps this trial trains: a segment continues from its parent's step (PBT: for
        ``perturbation_interval`` steps; synchronous Hyperband: up to its rung's budget)."""
        if self.end_step is None:
            raise ValueError(
                "session.steps needs a segment strategy ('pbt', 'sync_hyperband', "
                "'sync_halving'), which sets the steps of each trial; loop over your own "
                "epochs otherwise"
            )
        return range(self.start_step + 1, self.end_step + 1)

    # ---- reporting -----------------------------------------------------------------------
    def report(self, step: int, value: float) -> None:
        """Record the metric after `step` (the resource spent: epochs, optimizer steps)."""
        self.trial.report(step, value)

    def should_stop(self) -> bool:
        """Whether the study's scheduler stops this trial now (then raise TrialPruned or
        return the metric)."""
        return self.trial.should_prune()

    # ---- checkpoints ---------------------------------------------------------------------
    def save_checkpoint(self, state: Any, step: int | None = None) -> Path:
        """Write `state` (any picklable object: state dicts, epoch, optimizer state) as this
        trial's checkpoint at `step` (default: the last reported step)."""
        if step is None:
            step = max(self.trial.intermediate) if self.trial.intermediate else self.start_step
        path = self.directory / "checkpoint.pt"
        fmt = _save(state, path)
        self._set_attr("checkpoint", str(path))
        self._set_attr("checkpoint_format", fmt)
        self._set_attr("checkpoint_step", int(step))
        return path

    def load_checkpoint(self) -> Any:
        """The state this trial starts from: its parent's checkpoint (PBT), or None when it
        starts from scratch. Raises CheckpointError when the checkpoint cannot be read."""
        if self.parent is None:
            return None
        parent = self.study.get_trial(self.parent)
        where = parent.system_attrs.get("checkpoint")
        if where is None:
            raise CheckpointError(
                f"trial {self.trial.number} starts from trial {self.parent}'s checkpoint, "
                f"but trial {self.parent} saved none (call session.save_checkpoint(state))"
            )
        fmt = parent.system_attrs.get("checkpoint_format", "torch")
        try:
            state = _load(Path(where), fmt)
        except Exception as exc:
            raise CheckpointError(
                f"trial {self.trial.number}: cannot restore trial {self.parent}'s checkpoint "
                f"{where}: {type(exc).__name__}: {exc}"
            ) from exc
        self._set_attr("restored_from", self.parent)
        return state
