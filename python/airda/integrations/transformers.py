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

**Distributed training (DDP) with torchrun or accelerate launch.** Every rank runs the whole
script, so every rank runs the objective, but one study must run one trial. As with Optuna's
``TorchDistributedTrial``, rank 0 runs the study and the others follow it::

    study = airda.create_study(storage="studies.db", ...) if rank == 0 else None
    optimize_distributed(study, objective, n_trials=20)   # on every rank

:func:`optimize_distributed` initialises ``torch.distributed`` from torchrun's environment
when the Trainer has not yet, runs ``study.optimize`` on rank 0 and, before each trial it
evaluates, tells the other ranks to run the objective once more; after the last trial it tells
them to return. The objective receives a :class:`DistributedTrial` on every rank: on rank 0 it
wraps the study's trial; elsewhere it is a proxy. Its parameters, ``suggest_*`` values and
``should_prune()`` decisions come from rank 0 (broadcast over a gloo group), ``report`` writes
on rank 0 only, and an error raised by the trial on rank 0 (a storage failure, a parameter
outside the space) is raised on every rank, so that the ranks leave the training together
instead of waiting for each other. ``TrialCallback(trial)`` given this trial reports on rank 0
and stops every rank at the same evaluation (each rank calls ``on_evaluate`` with the metrics
gathered over all ranks); ``trainer.train()`` raises :class:`airda.TrialPruned` on every rank,
the study on rank 0 records PRUNED and the other ranks go on to the next trial. The same
script runs unchanged as ``python script.py`` (one process: the trial is the study's own).

A complete example, a tiny BERT pruned by the median rule, is in ``docs/integrations.md``
(run by the documentation tests), with a two-rank torchrun run;
``tests/integrations/test_transformers.py`` checks the states and the stored intermediate
values, and ``tests/integrations/test_transformers_ddp.py`` the same under two CPU ranks.
"""

from __future__ import annotations

import difflib
import logging
import os
import pickle
import warnings
from collections.abc import Callable, Mapping, Sequence
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
    from airda.study import Study, Trial
    from airda.trial import FrozenTrial

__all__ = ["DistributedTrial", "TrialCallback", "optimize_distributed", "suggest_training_args"]

log = logging.getLogger("airda.integrations.transformers")

# What rank 0 tells the other ranks before each trial it evaluates, and after the last one.
_NEXT, _DONE = "airda:next-trial", "airda:done"


def _torch_distributed() -> Any:
    import torch.distributed as dist

    if not dist.is_available():
        raise RuntimeError("this PyTorch build has no torch.distributed")
    return dist


def _launched_world() -> int:
    """The number of processes the launcher (torchrun, accelerate launch) started."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def _rank_and_world() -> tuple[int, int]:
    """This process's rank and the world size; (0, 1) in a process launched alone."""
    world = _launched_world()
    try:
        dist = _torch_distributed()
    except (ImportError, RuntimeError):
        if world > 1:
            raise
        return 0, 1
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if world > 1:
        raise RuntimeError(
            f"torch.distributed is not initialised in this process, one of WORLD_SIZE={world} "
            "ranks: run the study with optimize_distributed(...), which initialises it, or call "
            "torch.distributed.init_process_group() before making a DistributedTrial"
        )
    return 0, 1


_control: tuple[Any, Any] | None = None  # (the default group it serves, the gloo group or None)


def _control_group(dist: Any) -> Any:
    """The group the trial's messages go over: the default group when it has a CPU (gloo)
    backend, else one gloo group made once (NCCL alone would need each rank's GPU chosen before
    the first message, which the Trainer does later). Collective the first time."""
    global _control
    world = dist.group.WORLD
    if _control is None or _control[0] is not world:
        backend = str(dist.get_backend())
        group = None if "gloo" in backend else dist.new_group(backend="gloo")
        _control = (world, group)
    return _control[1]


def _broadcast(dist: Any, obj: Any, group: Any) -> Any:
    """Rank 0's `obj` on every rank (the others pass anything)."""
    box = [obj]
    dist.broadcast_object_list(box, src=0, group=group)
    return box[0]


def _portable(exc: BaseException) -> BaseException:
    """`exc` if it survives pickling (the other ranks raise the same type), else its text."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


class DistributedTrial:
    """The trial of a DDP run, seen by every rank: rank 0's study trial, a proxy elsewhere.

    Args:
        trial: on rank 0, the live trial the study gave the objective; ``None`` on the other
            ranks. In a process launched alone (no ``WORLD_SIZE`` above 1), the trial.

    Making one is a collective: every rank makes it at the same point (the start of the
    objective), after ``torch.distributed`` is initialised (:func:`optimize_distributed` does
    both). The parameters the study asked are in :attr:`params` on every rank. ``suggest_*``,
    :meth:`report`, :meth:`should_prune` and :meth:`set_user_attr` are collectives too: every
    rank calls them in the same order, rank 0 runs them on the trial and broadcasts the
    result; :meth:`report` and :meth:`set_user_attr` write on rank 0 only. An exception the
    trial raises on rank 0 is raised on every rank (of the same type when it pickles, else as
    ``RuntimeError``).

    Example (one process: the trial is the study's own, nothing is broadcast):
        >>> import airda
        >>> from airda.integrations.transformers import DistributedTrial
        >>> study = airda.create_study(seed=0)
        >>> trial = DistributedTrial(study.ask())
        >>> trial.rank, trial.world_size, trial.number
        (0, 1, 0)
        >>> lr = trial.suggest_float("lr", 1e-5, 1e-2, log=True)
        >>> trial.report(1, 0.5); trial.should_prune()
        False
        >>> study.tell(trial.trial, 0.4).intermediate, trial["lr"] == lr
        ({1: 0.5}, True)
    """

    def __init__(self, trial: Trial | None) -> None:
        self.rank, self.world_size = _rank_and_world()
        if self.rank == 0:
            from airda.study import Trial

            if not isinstance(trial, Trial):
                raise TypeError(
                    f"DistributedTrial on rank 0 wraps the study's trial (the objective's "
                    f"argument), got {type(trial).__name__}"
                )
        elif trial is not None:
            raise ValueError(
                f"DistributedTrial on rank {self.rank}: give None; the trial lives on rank 0, "
                "whose study runs it (a trial here would belong to a second study)"
            )
        self.trial = trial  # the study's trial on rank 0, None on the other ranks
        self._dist = self._group = None
        number, params = (trial.number, dict(trial.params)) if trial is not None else (0, {})
        if self.world_size > 1:
            self._dist = _torch_distributed()
            self._group = _control_group(self._dist)
            number, params = _broadcast(self._dist, (number, params), self._group)
        self.number: int = number
        self._params: dict[str, Any] = params

    @property
    def params(self) -> dict[str, Any]:
        """The trial's parameters: those the study asked and those suggested so far."""
        return self.trial.params if self.trial is not None else self._params

    def __getitem__(self, name: str) -> Any:
        return self.params[name]

    def _on_rank0(self, call: Callable[[Trial], Any]) -> Any:
        """`call(trial)` on rank 0, its result (or its exception) on every rank."""
        if self.world_size == 1:
            assert self.trial is not None
            return call(self.trial)
        result = error = raised = None
        if self.trial is not None:
            try:
                result = call(self.trial)
            except Exception as exc:
                raised, error = exc, _portable(exc)
        result, error = _broadcast(self._dist, (result, error), self._group)
        if raised is not None:
            raise raised
        if error is not None:
            raise error
        return result

    def _suggested(self, name: str, call: Callable[[Trial], Any]) -> Any:
        value = self._on_rank0(call)
        if self.trial is None:
            self._params[name] = value
        return value

    def suggest_float(
        self, name: str, low: float, high: float, *, log: bool = False, step: float | None = None
    ) -> float:
        """As :meth:`airda.study.Trial.suggest_float`; rank 0's value on every rank."""
        return self._suggested(name, lambda t: t.suggest_float(name, low, high, log=log, step=step))

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int:
        """As :meth:`airda.study.Trial.suggest_int`; rank 0's value on every rank."""
        return self._suggested(name, lambda t: t.suggest_int(name, low, high, step=step, log=log))

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        """As :meth:`airda.study.Trial.suggest_categorical`; rank 0's value on every rank."""
        return self._suggested(name, lambda t: t.suggest_categorical(name, choices))

    def report(self, step: int, value: float) -> None:
        """Record an intermediate value: rank 0 writes its own `value`; the others write
        nothing (give every rank the same value, e.g. metrics gathered over the ranks)."""
        self._on_rank0(lambda t: t.report(step, value))

    def should_prune(self) -> bool:
        """Rank 0's scheduler decision, the same on every rank."""
        return bool(self._on_rank0(lambda t: t.should_prune()))

    def set_user_attr(self, key: str, value: Any) -> None:
        """Store a user attribute on the trial (written by rank 0)."""
        self._on_rank0(lambda t: t.set_user_attr(key, value))

    def set_constraints(self, values: Any) -> None:
        """As :meth:`airda.study.Trial.set_constraints` (rank 0's values are stored)."""
        self._on_rank0(lambda t: t.set_constraints(values))

    def set_constraint(self, key: str, value: float) -> None:
        """As :meth:`airda.study.Trial.set_constraint` (rank 0's value is stored)."""
        self._on_rank0(lambda t: t.set_constraint(key, value))

    def __repr__(self) -> str:
        return (
            f"DistributedTrial(number={self.number}, rank={self.rank}/{self.world_size}, "
            f"params={self.params})"
        )


def optimize_distributed(
    study: Study | None,
    objective: Callable[[DistributedTrial], Any],
    n_trials: int | None = None,
    *,
    max_trials: int | None = None,
    timeout: float | None = None,
    catch: tuple[type[BaseException], ...] = (Exception,),
    callbacks: Sequence[Callable[[Study, FrozenTrial], None]] = (),
    show_progress: bool | None = None,
    backend: str | None = None,
) -> None:
    """Run `study` over the ranks of a DDP launch (torchrun, accelerate launch); call it on
    every rank, as the script's last step.

    Args:
        study: on rank 0, the study (any storage: only rank 0 touches it); ignored on the
            other ranks (``None`` there saves opening it).
        objective: the objective every rank runs; it receives a :class:`DistributedTrial`.
        n_trials, max_trials, timeout, catch, callbacks, show_progress: as
            :meth:`airda.study.Study.optimize` on rank 0, whose study decides how many trials
            run. The other ranks run the objective once per trial rank 0 evaluates (a result
            the study reuses runs nothing), and leave a trial that ends in
            :class:`airda.TrialPruned` or in an exception of a type in `catch` for the next.
        backend: when ``torch.distributed`` is not initialised yet (the Trainer initialises it
            when its ``TrainingArguments`` are first made), initialise it with this backend,
            ``None`` for PyTorch's default (gloo for CPU, NCCL for CUDA); torchrun's
            environment gives the ranks.

    Trials run one at a time (no ``n_workers``: the ranks are the workers). An exception that
    is raised in some ranks only, other than through the trial (rank 0's storage) leaves the
    others waiting in a collective until ``torch.distributed``'s timeout, as in any DDP run;
    one that is not in `catch` ends rank 0, and torchrun then stops the others.

    Launched alone (``python script.py``), it is ``study.optimize`` with each trial wrapped in
    a :class:`DistributedTrial`.
    """
    world = _launched_world()
    if world > 1:
        dist = _torch_distributed()
        if not dist.is_initialized():
            dist.init_process_group(backend=backend)
    rank, world = _rank_and_world()
    kwargs: dict[str, Any] = dict(
        n_trials=n_trials,
        max_trials=max_trials,
        timeout=timeout,
        catch=catch,
        callbacks=callbacks,
        show_progress=show_progress,
    )
    if rank == 0 and study is None:
        raise ValueError("optimize_distributed on rank 0 needs the study (None on other ranks)")
    if world == 1:
        assert study is not None
        study.optimize(lambda trial: objective(DistributedTrial(trial)), **kwargs)
        return
    dist = _torch_distributed()
    group = _control_group(dist)
    if rank == 0:
        assert study is not None

        def run(trial: Trial) -> Any:
            _broadcast(dist, _NEXT, group)
            return objective(DistributedTrial(trial))

        study.optimize(run, **kwargs)
        _broadcast(dist, _DONE, group)
        return
    while (message := _broadcast(dist, None, group)) == _NEXT:
        try:
            objective(DistributedTrial(None))
        except TrialPruned:
            pass
        except catch as exc:  # rank 0's study records the trial's failure
            log.debug("rank %d: the objective raised %s: %s", rank, type(exc).__name__, exc)
    if message != _DONE:
        raise RuntimeError(f"rank {rank}: unexpected message from rank 0: {message!r}")


class TrialCallback(TrainerCallback):
    """Report the Trainer's evaluations to `trial`; stop the run when the trial is pruned.

    Args:
        trial: the live trial the objective received (a :class:`DistributedTrial` under DDP).
        metric: the evaluation metric to report, as in ``TrainingArguments.metric_for_best_model``:
            ``"eval_loss"`` (the default), or ``"accuracy"`` for ``eval_accuracy`` when
            ``compute_metrics`` returns one (the ``eval_`` prefix is added when missing).

    Reports use ``state.global_step`` (optimiser steps) as the step, so give budget schedulers
    (ASHA, Hyperband) ``max_resource`` in steps. Evaluate during training
    (``eval_strategy="steps"`` or ``"epoch"`` in ``TrainingArguments``), or nothing is
    reported and nothing is pruned. A metric the evaluation does not return raises
    ``ValueError`` naming those it does. Add this callback last: a pruned trial raises
    :class:`airda.TrialPruned` from ``on_train_end``, after the Trainer's own callbacks (its
    loggers) have closed their runs.

    **Distributed training (DDP).** When the Trainer runs several processes (torchrun,
    accelerate launch), give it the :class:`DistributedTrial` the objective receives from
    :func:`optimize_distributed`: rank 0 reports, the prune decision is broadcast, and every
    rank stops at the same evaluation and raises :class:`airda.TrialPruned` from
    ``trainer.train()``. A plain trial in a multi-process run raises ``ValueError`` when
    training starts (each rank would run its own trial).
    """

    def __init__(self, trial: Trial | DistributedTrial, metric: str = "eval_loss") -> None:
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

    @property
    def _rank(self) -> int:
        return self.trial.rank if isinstance(self.trial, DistributedTrial) else 0

    def _check_distributed(self, world: int) -> None:
        if not isinstance(self.trial, DistributedTrial):
            raise ValueError(
                f"TrialCallback: this Trainer runs {world} processes, each running the "
                f"objective; a plain trial would be reported by every rank, and only rank 0 "
                f"holds the study's. Run the study with optimize_distributed(study, objective, "
                f"...) on every rank and give the callback the DistributedTrial the objective "
                f"receives (or wrap it yourself: DistributedTrial(trial if rank == 0 else None))"
            )
        if self.trial.world_size != world:
            raise ValueError(
                f"TrialCallback: the Trainer runs {world} processes but the DistributedTrial "
                f"was made in a world of {self.trial.world_size}; initialise torch.distributed "
                f"before making it (optimize_distributed does)"
            )

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        world = int(getattr(args, "world_size", 1))
        if world > 1:
            self._check_distributed(world)
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
        # Under DDP both are collectives: rank 0 writes and decides, every rank gets the answer.
        if self.trial.should_prune():
            self.pruned_at = step
            control.should_training_stop = True
            if self._rank == 0:
                log.info("trial %d pruned at step %d", self.trial.number, step)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._training = False
        if not self._reported and self._rank == 0:
            warnings.warn(
                f"TrialCallback: no evaluation ran during train(), so trial {self.trial.number} "
                f"reported nothing and could not be pruned; set eval_strategy='steps' or "
                f"'epoch' in TrainingArguments and give the Trainer an eval_dataset",
                stacklevel=2,
            )
        if self.pruned_at is not None:
            raise TrialPruned(f"trial {self.trial.number} pruned at step {self.pruned_at}")


def suggest_training_args(
    trial: Trial | DistributedTrial, space: Mapping[str, Param]
) -> dict[str, Any]:
    """Suggest ``TrainingArguments`` fields on `trial`, as the ``hp_space`` of Hugging Face's
    ``Trainer.hyperparameter_search``: ``TrainingArguments(out, **suggest_training_args(...))``.

    Args:
        trial: the live trial (a :class:`DistributedTrial` under DDP: every rank gets rank
            0's values).
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
