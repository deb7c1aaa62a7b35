"""PyTorch Lightning: report a validation metric to an airda trial and stop a pruned run.

:class:`PruningCallback` is the counterpart of optuna-integration's
``PyTorchLightningPruningCallback``: after each validation it reports the monitored metric
with ``trial.report(epoch, value)`` and asks ``trial.should_prune()``; when the study's
scheduler says stop, it raises :class:`airda.TrialPruned`, which leaves ``trainer.fit`` (Lightning
tears the run down first) and ends the trial as PRUNED with its intermediate values stored.

Distributed training (DDP) is supported with ranks forked from the process that holds the
trial (``strategy="ddp_fork"`` or ``"ddp_notebook"``) on a study stored in a file or a server:
rank 0 alone reports and asks the scheduler, the decision is broadcast to every rank, and all
stop together; after ``trainer.fit`` returns, :meth:`PruningCallback.check_pruned` raises
:class:`airda.TrialPruned` in the objective's process.

It subclasses ``lightning.pytorch.Callback`` (Lightning 2.x) and falls back to
``pytorch_lightning.Callback`` when only that package is installed. This module imports
Lightning; ``import airda.integrations`` does not.

Example:
    >>> import airda, torch
    >>> from airda.integrations.lightning import PruningCallback, pl
    >>> from airda.schedulers import MedianStopping
    >>> class Line(pl.LightningModule):
    ...     def __init__(self, lr):
    ...         super().__init__()
    ...         self.net, self.lr = torch.nn.Linear(3, 1), lr
    ...     def training_step(self, batch, _):
    ...         return torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
    ...     def validation_step(self, batch, _):
    ...         self.log("val_loss", torch.nn.functional.mse_loss(self.net(batch[0]), batch[1]))
    ...     def configure_optimizers(self):
    ...         return torch.optim.SGD(self.parameters(), lr=self.lr)
    >>> x = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
    >>> data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, True)), 16)
    >>> def objective(trial):
    ...     trainer = pl.Trainer(max_epochs=3, callbacks=[PruningCallback(trial, "val_loss")],
    ...                          logger=False, enable_checkpointing=False,
    ...                          enable_progress_bar=False, enable_model_summary=False)
    ...     trainer.fit(Line(trial.suggest_float("lr", 1e-3, 0.3, log=True)), data, data)
    ...     return trainer.callback_metrics["val_loss"].item()
    >>> study = airda.create_study(seed=0, scheduler=MedianStopping(n_startup_trials=2))
    >>> study.optimize(objective, n_trials=4)
    >>> sorted(len(t.intermediate) for t in study.trials)[-1]
    3
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Any

from airda.trial import TrialPruned

try:  # Lightning 2.x ships the trainer as lightning.pytorch; older installs as pytorch_lightning
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - exercised only where `lightning` is absent
    try:
        import pytorch_lightning as pl
    except ImportError:
        raise ImportError(
            "airda.integrations.lightning needs PyTorch Lightning: "
            "pip install 'airda-lab[lightning]' (or pip install lightning)"
        ) from None

if TYPE_CHECKING:
    from airda.study import Trial

__all__ = ["PruningCallback", "pl"]

log = logging.getLogger("airda.integrations.lightning")

_STEPS = ("epoch", "global_step")
# Where rank 0 records, on the trial, the step at which a distributed run was pruned: the
# objective's process reads it back in check_pruned (the ranks' own objects die with them).
PRUNED_ATTR = "airda.lightning.pruned_at"


class PruningCallback(pl.Callback):
    """Report `monitor` to `trial` after each validation; stop the run when it is pruned.

    Args:
        trial: the live trial the objective received.
        monitor: a metric the LightningModule logs in validation (``self.log("val_loss", ...)``);
            read from ``trainer.callback_metrics``.
        step: what a report's step is: ``"epoch"``, the 0-based epoch index (the default, as
            Optuna's callback), or ``"global_step"``, the optimiser steps taken. Use
            ``"global_step"`` when validation runs several times an epoch
            (``val_check_interval < 1``) and with budget schedulers (ASHA, Hyperband), whose
            step is the resource spent: their ``min_resource`` and ``max_resource`` are then
            in optimiser steps.

    A metric that is not logged raises ``ValueError`` naming the metrics that are, so the
    trial fails with that reason instead of training unpruned. The sanity-check validation
    Lightning runs before training is not reported.

    A pruned trial raises :class:`airda.TrialPruned` from inside ``trainer.fit``. A fit in
    which no validation ran warns that nothing was reported.

    **Distributed training (DDP).** Every rank must share this trial, so the ranks must be
    forked from the objective's process: ``pl.Trainer(strategy="ddp_fork", devices=N)`` (or
    ``"ddp_notebook"``), and the study must live in an SQLite file or PostgreSQL (forked ranks
    of an in-memory study would each write to a copy). Log the monitored metric with
    ``self.log(..., sync_dist=True)``, so that every rank holds the mean over ranks. Rank 0
    alone reports and asks ``trial.should_prune()``; the decision is broadcast, and every rank
    stops at the end of that validation (none raises: an exception in one rank would leave the
    others waiting in a collective). ``trainer.fit`` then returns in the objective's process;
    call :meth:`check_pruned` after it, which raises :class:`airda.TrialPruned` when rank 0
    pruned the trial. Other launchers (``strategy="ddp"`` starting the script anew for each
    rank, ``torchrun``, ``ddp_spawn``) run a separate objective, hence a separate trial, in
    each rank, and raise ``ValueError`` when fitting starts.
    """

    def __init__(self, trial: Trial, monitor: str = "val_loss", *, step: str = "epoch") -> None:
        super().__init__()
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"monitor must be a metric name, got {monitor!r}")
        if step not in _STEPS:
            raise ValueError(f"step must be one of {_STEPS}, got {step!r}")
        self.trial = trial
        self.monitor = monitor
        self.step = step
        self.pruned_at: int | None = None  # the step at which the trial was pruned
        self._reported = False
        self._rank = 0  # this process's global rank during a fit
        self._world = 1

    @property
    def pruned(self) -> bool:
        return self.pruned_at is not None

    def _value(self, trainer: Any) -> float:
        metrics = trainer.callback_metrics
        if self.monitor not in metrics:
            logged = ", ".join(sorted(metrics)) or "none"
            raise ValueError(
                f"PruningCallback: metric {self.monitor!r} was not logged in validation "
                f"(logged: {logged}); log it in validation_step with "
                f"self.log({self.monitor!r}, value) or pass one of those as monitor="
            )
        value = metrics[self.monitor]
        return float(value.item() if hasattr(value, "item") else value)

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        world = int(getattr(trainer, "world_size", 1))
        if world > 1:
            self._check_distributed(trainer, world)
        self._world = world
        self._rank = int(getattr(trainer, "global_rank", 0)) if world > 1 else 0
        self.pruned_at = None
        self._reported = False

    def _check_distributed(self, trainer: Any, world: int) -> None:
        from airda.storage import InMemoryStorage

        launcher = getattr(trainer.strategy, "launcher", None)
        if not getattr(launcher, "is_interactive_compatible", False):
            how = (
                f"started by {type(launcher).__name__}"
                if launcher is not None
                else "started outside Lightning (torchrun, a cluster)"
            )
            raise ValueError(
                f"PruningCallback: this trainer runs {world} processes {how} (strategy "
                f"{type(trainer.strategy).__name__}), each with its own objective and trial; "
                "fork the ranks from the objective's process with strategy='ddp_fork' (or "
                "'ddp_notebook'), or train in one process"
            )
        if isinstance(self.trial.study.storage, InMemoryStorage):
            raise ValueError(
                "PruningCallback: DDP ranks forked from an in-memory study would each report to "
                "a copy of it; store the study in an SQLite file or PostgreSQL "
                "(create_study(storage='studies.db'))"
            )

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        # Lightning validates a few batches before training (the sanity check): not a result.
        if trainer.sanity_checking:
            return
        step = int(trainer.current_epoch if self.step == "epoch" else trainer.global_step)
        if self._world > 1:
            self._distributed_validation_end(trainer, step)
            return
        self.trial.report(step, self._value(trainer))
        self._reported = True
        if not self.trial.should_prune():
            return
        self.pruned_at = step
        trainer.should_stop = True
        log.info("trial %d pruned at %s %d", self.trial.number, self.step, step)
        raise TrialPruned(f"trial {self.trial.number} pruned at {self.step} {step}")

    def _distributed_validation_end(self, trainer: Any, step: int) -> None:
        # Rank 0 reports and decides; a failure there (a metric not logged) is sent with the
        # decision, so that every rank raises it together instead of waiting for rank 0.
        decision: tuple[bool, str | None] = (False, None)
        if self._rank == 0:
            try:
                self.trial.report(step, self._value(trainer))
                prune = self.trial.should_prune()
                if prune:
                    self.trial.set_user_attr(PRUNED_ATTR, step)
                decision = (prune, None)
            except Exception as exc:
                decision = (False, f"{type(exc).__name__}: {exc}")
        prune, error = trainer.strategy.broadcast(decision, src=0)
        if error is not None:
            raise RuntimeError(f"PruningCallback on rank 0: {error}")
        self._reported = True
        if prune:
            self.pruned_at = step
            trainer.should_stop = True
            if self._rank == 0:
                log.info("trial %d pruned at %s %d", self.trial.number, self.step, step)

    def check_pruned(self) -> None:
        """Raise :class:`airda.TrialPruned` if a distributed fit pruned the trial; call it in
        the objective after ``trainer.fit`` (the ranks that decided are gone by then). It reads
        the decision rank 0 recorded on the stored trial, and gives the live trial the values
        the ranks reported, so that the pruned trial keeps its last value. Does nothing after
        a fit in one process (which raises from inside ``trainer.fit``) or an unpruned one."""
        stored = self.trial.study.get_trial(self.trial.number)
        at = stored.user_attrs.get(PRUNED_ATTR)
        if at is None:
            return
        self.pruned_at = int(at)
        self.trial.intermediate.update(stored.intermediate)
        self.trial.user_attrs[PRUNED_ATTR] = at
        raise TrialPruned(f"trial {self.trial.number} pruned at {self.step} {at}")

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if self._rank != 0:
            return
        if not self._reported:
            warnings.warn(
                f"PruningCallback: no validation ran during fit, so trial {self.trial.number} "
                f"reported nothing and could not be pruned; pass val_dataloaders to fit or "
                f"define val_dataloader()",
                stacklevel=2,
            )
