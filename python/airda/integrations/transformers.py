"""Hugging Face Transformers: report ``Trainer`` evaluations to an airda trial and stop pruned runs.

:class:`TrialCallback` is a ``transformers.TrainerCallback``. On each evaluation during
``trainer.train()`` it reports the metric (``eval_loss`` by default) with
``trial.report(global_step, value)`` and asks ``trial.should_prune()``. A pruned run stops at
once (``control.should_training_stop``), the Trainer finishes its loop as after its last step,
and the callback raises :class:`airda.TrialPruned` from ``on_train_end``, so that
``trainer.train()`` itself raises and the study records the trial as PRUNED. The objective
stays the plain Trainer code::

    def objective(trial):
        trainer = Trainer(model, args, train_dataset=..., eval_dataset=...,
                          callbacks=[TrialCallback(trial)])
        trainer.train()
        return trainer.evaluate()["eval_loss"]

Evaluations outside ``train()`` (the final ``trainer.evaluate()``) are not reported: their
value is what the objective returns. This module imports transformers; ``import
airda.integrations`` does not.

A complete example, a tiny BERT pruned by the median rule, is in ``docs/integrations.md``
(run by the documentation tests); ``tests/integrations/test_transformers.py`` checks the states
and the stored intermediate values.
"""

from __future__ import annotations

import difflib
import logging
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airda.trial import TrialPruned

try:
    from transformers import TrainerCallback
except ImportError:
    raise ImportError(
        "airda.integrations.transformers needs Hugging Face Transformers: "
        "pip install 'airda-lab[lm]' (or pip install transformers accelerate)"
    ) from None

if TYPE_CHECKING:
    from airda.space import Param
    from airda.study import Trial

__all__ = ["TrialCallback", "suggest_training_args"]

log = logging.getLogger("airda.integrations.transformers")


class TrialCallback(TrainerCallback):
    """Report the Trainer's evaluations to `trial`; stop the run when the trial is pruned.

    Args:
        trial: the live trial the objective received.
        metric: the evaluation metric to report, as in ``TrainingArguments.metric_for_best_model``:
            ``"eval_loss"`` (the default), or ``"accuracy"`` for ``eval_accuracy`` when
            ``compute_metrics`` returns one (the ``eval_`` prefix is added when missing).

    Reports use ``state.global_step`` (optimiser steps) as the step, so give budget schedulers
    (ASHA, Hyperband) ``max_resource`` in steps. Evaluate during training
    (``eval_strategy="steps"`` or ``"epoch"`` in ``TrainingArguments``), or nothing is
    reported and nothing is pruned. A metric the evaluation does not return raises
    ``ValueError`` naming those it does. Add this callback last: a pruned trial raises
    :class:`airda.TrialPruned` from ``on_train_end``, after the Trainer's own callbacks (its
    loggers) have closed their runs. Single-process training only.
    """

    def __init__(self, trial: Trial, metric: str = "eval_loss") -> None:
        if not isinstance(metric, str) or not metric:
            raise TypeError(f"metric must be a metric name, got {metric!r}")
        self.trial = trial
        self.metric = metric if metric.startswith("eval_") else f"eval_{metric}"
        self.pruned_at: int | None = None  # the global step at which the trial was pruned
        self._training = False
        self._reported = False

    @property
    def pruned(self) -> bool:
        return self.pruned_at is not None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if getattr(args, "world_size", 1) > 1:
            raise ValueError(
                f"TrialCallback supports single-process training; this run has "
                f"{args.world_size} processes"
            )
        self.pruned_at = None
        self._reported = False
        self._training = True

    def on_evaluate(
        self,
        args: Any,
        state: Any,
        control: Any,
        metrics: dict[str, float] | None = None,
        **kw: Any,
    ) -> None:
        if not self._training:  # trainer.evaluate() after train(): the objective's result
            return
        metrics = metrics or {}
        if self.metric not in metrics:
            given = ", ".join(sorted(metrics)) or "none"
            raise ValueError(
                f"TrialCallback: the evaluation returned no {self.metric!r} (it returned: "
                f"{given}); pass one of those as metric=, or return it from compute_metrics"
            )
        step = int(state.global_step)
        self.trial.report(step, float(metrics[self.metric]))
        self._reported = True
        if self.trial.should_prune():
            self.pruned_at = step
            control.should_training_stop = True
            log.info("trial %d pruned at step %d", self.trial.number, step)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._training = False
        if not self._reported:
            warnings.warn(
                f"TrialCallback: no evaluation ran during train(), so trial {self.trial.number} "
                f"reported nothing and could not be pruned; set eval_strategy='steps' or "
                f"'epoch' in TrainingArguments and give the Trainer an eval_dataset",
                stacklevel=2,
            )
        if self.pruned_at is not None:
            raise TrialPruned(f"trial {self.trial.number} pruned at step {self.pruned_at}")


def suggest_training_args(trial: Trial, space: Mapping[str, Param]) -> dict[str, Any]:
    """Suggest ``TrainingArguments`` fields on `trial`, as the ``hp_space`` of Hugging Face's
    ``Trainer.hyperparameter_search``: ``TrainingArguments(out, **suggest_training_args(...))``.

    Args:
        trial: the live trial.
        space: field name -> :class:`~airda.space.Float`, :class:`~airda.space.Int`,
            :class:`~airda.space.Categorical` or :class:`~airda.space.Fixed`. Each name must be
            a field of ``TrainingArguments`` (``ValueError`` names the closest fields
            otherwise, before anything trains); other hyperparameters (a LoRA rank) are asked
            with ``trial.suggest_*`` as usual.

    Returns the values by name: for a study created with a space, the trial's own values for
    the names it has; the others are suggested (define-by-run).

    Example:
        >>> import airda
        >>> from airda.space import Categorical, Float, Int
        >>> from airda.integrations.transformers import suggest_training_args
        >>> space = {"learning_rate": Float(1e-5, 1e-3, log=True),
        ...          "num_train_epochs": Int(1, 3),
        ...          "lr_scheduler_type": Categorical(("linear", "cosine"))}
        >>> trial = airda.create_study(seed=0).ask()
        >>> args = suggest_training_args(trial, space)
        >>> sorted(args) == sorted(space) and args == {k: trial.params[k] for k in space}
        True
        >>> suggest_training_args(trial, {"learnin_rate": Float(1e-5, 1e-3)})
        Traceback (most recent call last):
        ...
        ValueError: 'learnin_rate' is not a field of TrainingArguments (did you mean learning_rate?)
    """
    from dataclasses import fields

    from transformers import TrainingArguments

    from airda.space import Categorical, Fixed, Float, Int

    known = {f.name for f in fields(TrainingArguments)}
    for name in space:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ValueError(f"{name!r} is not a field of TrainingArguments{hint}")
    out: dict[str, Any] = {}
    for name, p in space.items():
        if isinstance(p, Float):
            out[name] = trial.suggest_float(name, p.low, p.high, log=p.log, step=p.step)
        elif isinstance(p, Int):
            out[name] = trial.suggest_int(name, p.low, p.high, step=p.step, log=p.log)
        elif isinstance(p, Categorical):
            out[name] = trial.suggest_categorical(name, p.choices)
        elif isinstance(p, Fixed):
            out[name] = p.value
        else:
            raise TypeError(
                f"{name}: give a Float, Int, Categorical or Fixed, got {type(p).__name__}"
            )
    return out
