"""PyTorch Lightning: report a validation metric to an airda trial and stop a pruned run.

:class:`PruningCallback` is the counterpart of optuna-integration's
``PyTorchLightningPruningCallback``: after each validation it reports the monitored metric
with ``trial.report(epoch, value)`` and asks ``trial.should_prune()``; when the study's
scheduler says stop, it raises :class:`airda.TrialPruned`, which leaves ``trainer.fit`` (Lightning
tears the run down first) and ends the trial as PRUNED with its intermediate values stored.

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

    A pruned trial raises :class:`airda.TrialPruned` from inside ``trainer.fit``. Training in
    one process only: a distributed trainer (DDP, ``world_size > 1``) raises ``ValueError`` when
    fitting starts, as each rank would need the same trial and the same decision (raising in
    one rank leaves the others waiting in a collective). A fit in which no validation ran warns
    that nothing was reported.
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
            raise ValueError(
                f"PruningCallback supports training in one process; this trainer runs "
                f"{world} (strategy {type(trainer.strategy).__name__})"
            )
        self.pruned_at = None
        self._reported = False

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        # Lightning validates a few batches before training (the sanity check): not a result.
        if trainer.sanity_checking:
            return
        step = int(trainer.current_epoch if self.step == "epoch" else trainer.global_step)
        self.trial.report(step, self._value(trainer))
        self._reported = True
        if not self.trial.should_prune():
            return
        self.pruned_at = step
        trainer.should_stop = True
        log.info("trial %d pruned at %s %d", self.trial.number, self.step, step)
        raise TrialPruned(f"trial {self.trial.number} pruned at {self.step} {step}")

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if not self._reported:
            warnings.warn(
                f"PruningCallback: no validation ran during fit, so trial {self.trial.number} "
                f"reported nothing and could not be pruned; pass val_dataloaders to fit or "
                f"define val_dataloader()",
                stacklevel=2,
            )
