"""One-shot architecture search by sampling subnets of a weight-sharing supernet.

Three ways to train the shared weights of a :class:`~airda.nas.supernet.Supernet`, all in
:func:`train_supernet` (``rule=``):

- ``"uniform"``, SPOS (Guo et al., "Single Path One-Shot Neural Architecture Search with
  Uniform Sampling", ECCV 2020): each step trains one subnet drawn uniformly from the space.
- ``"sandwich"``, the sandwich rule of BigNAS / Once-for-All (Yu et al. 2020, Cai et al.
  2020) for elastic spaces: each step accumulates the gradients of the largest subnet, the
  smallest and `num_random` random ones, optionally with in-place distillation (the smaller
  subnets learn the largest one's soft predictions).
- ``"controller"``, ENAS (Pham et al., "Efficient Neural Architecture Search via Parameter
  Sharing", ICML 2018): subnets come from a REINFORCE controller (airda's ``reinforce``
  strategy); every epoch alternates shared-weight training with controller updates rewarded
  by the validation accuracy of the subnets it samples.

After training, :func:`search_subnets` runs an ordinary airda study over ``supernet.space``
(regularized evolution by default, any strategy works): each trial is a subnet, scored by its
validation accuracy with inherited weights after batch-norm recalibration, through an
evaluator (:func:`airda.nas.evaluate_many` by default, which shares work across the
subnets of a batch; :func:`airda.nas.evaluate.evaluate_loop`, or any function with the same
signature and results). :func:`spos` and :func:`enas` chain the steps; :func:`retrain` trains the
architecture found as a standalone network.

Everything is stored and resumable: supernet training is one trial of a study that reports
every epoch (``trial.report(epoch, mean validation accuracy of fixed probe subnets)``, with
the epoch's metrics in the user attr ``"history"``); with `checkpoint`, the supernet weights,
optimiser, LR schedule, random states, epoch and controller state are saved after every
epoch, and a run started again with the same arguments continues from there, reaching the
same weights as a run that was never interrupted.

Example:
    >>> import types, torch
    >>> from airda.nas.supernet import NB201Supernet
    >>> from airda.nas.oneshot import TrainConfig, spos
    >>> g = torch.Generator().manual_seed(0)
    >>> def split(n):
    ...     y = torch.randint(0, 3, (n,), generator=g)
    ...     return torch.randn(n, 1, 16, generator=g) + y[:, None, None], y
    >>> (xt, yt), (xv, yv) = split(64), split(32)
    >>> data = types.SimpleNamespace(x_train=xt, y_train=yt, x_val=xv, y_val=yv)
    >>> _ = torch.manual_seed(0)
    >>> net = NB201Supernet(dims=1, in_channels=1, num_classes=3, C=4, N=1)
    >>> result = spos(net, data, TrainConfig(epochs=2, batch_size=16), n_trials=12, seed=0)
    >>> len(result.search.trials), sorted(result.arch) == sorted(net.space.names)
    (12, True)
    >>> [step for step in result.training.trial.intermediate]
    [0, 1]
"""

from __future__ import annotations

import math
import os
import time
import traceback as tb_module
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from airda._logging import Progress
from airda.space import candidate_key
from airda.strategies import Reinforce, Strategy, get_strategy
from airda.trial import FrozenTrial, TrialState, frozen_from_mapping, frozen_to_mapping

if TYPE_CHECKING:
    from airda.nas.supernet import Supernet
    from airda.study import Study, Trial

__all__ = [
    "OneShotResult",
    "SupernetTraining",
    "TrainConfig",
    "accuracy",
    "enas",
    "reinitialise",
    "retrain",
    "search_subnets",
    "spos",
    "train_model",
    "train_supernet",
]

Evaluator = Callable[..., list[dict[str, Any]]]
RULES = ("uniform", "sandwich", "controller")


# ---------------------------------------------------------------------------------------------
# Configuration and data


@dataclass(frozen=True)
class TrainConfig:
    """How to train (a supernet, or a standalone network in :func:`train_model`).

    SGD with (Nesterov) momentum, a cosine learning-rate schedule over every step of every
    epoch, cross-entropy, gradients clipped to norm `grad_clip` (None: no clipping).

    Example:
        >>> TrainConfig(epochs=5).lr
        0.05
        >>> TrainConfig(epochs=0)
        Traceback (most recent call last):
        ...
        ValueError: TrainConfig: epochs must be an int >= 1, got 0
    """

    epochs: int = 20
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 4e-5
    grad_clip: float | None = 5.0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"TrainConfig: {name} must be an int >= 1, got {v!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"TrainConfig: lr must be a finite number > 0, got {self.lr!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"TrainConfig: momentum must be in [0, 1), got {self.momentum!r}")
        if self.nesterov and self.momentum == 0:
            raise ValueError("TrainConfig: nesterov needs momentum > 0")
        if not self.weight_decay >= 0:
            raise ValueError(f"TrainConfig: weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"TrainConfig: grad_clip must be > 0 or None, got {self.grad_clip}")


def _split(data: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) of split `name` ("train", "val", "test") of a dataset object."""
    try:
        x, y = getattr(data, f"x_{name}"), getattr(data, f"y_{name}")
    except AttributeError:
        raise ValueError(
            f"data must have x_{name} and y_{name} tensors (an airda.nas.data Dataset or an "
            f"object with the same attributes); {type(data).__name__} has not"
        ) from None
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise ValueError(f"data.x_{name} and data.y_{name} must be torch tensors")
    if y.dim() != 1 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(
            f"data.x_{name} {tuple(x.shape)} and data.y_{name} {tuple(y.shape)} must hold the "
            "same number (> 0) of samples, y one label each"
        )
    return x, y.long()


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled index batches of one epoch; the last, short batch is dropped when there is
    more than one (a batch of one sample breaks batch norm)."""
    perm = torch.randperm(n, generator=generator)
    out = [perm[i : i + batch_size] for i in range(0, n, batch_size)]
    if len(out) > 1 and out[-1].numel() < batch_size:
        out.pop()
    return out


def _optimizer(
    params: Any, config: TrainConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, Any]:
    opt = torch.optim.SGD(
        params,
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total_steps, 1))
    return opt, sched


def _default_evaluator() -> Evaluator:
    from airda.nas.evaluate import evaluate_many

    return evaluate_many


# ---------------------------------------------------------------------------------------------
# Supernet training


@dataclass
class SupernetTraining:
    """What :func:`train_supernet` did.

    Attributes:
        history: one dict per epoch: ``epoch``, ``train_loss``, ``train_accuracy`` (of the
            first subnet of every step), ``val_accuracy`` / ``val_loss`` (mean over the probe
            subnets, inherited weights, BN recalibrated), ``lr`` (at the epoch's end),
            ``seconds``.
        study: the study holding the training trial.
        trial: the training trial (its ``intermediate`` values are the probe accuracies).
        probes: the fixed subnets evaluated after every epoch.
        resumed_from: the epoch the run continued from (0 when it started afresh).
        seconds: wall time of this call.
    """

    history: list[dict[str, Any]]
    study: Study
    trial: FrozenTrial
    probes: list[dict[str, Any]]
    resumed_from: int = 0
    seconds: float = 0.0


def _probe_archs(supernet: Supernet, rule: str, n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng([seed, 0x9B0BE])
    probes: list[dict[str, Any]] = []
    if rule == "sandwich":
        probes += [supernet.largest(), supernet.smallest()][:n]
    while len(probes) < n:
        probes.append(supernet.sample(rng))
    return probes


def _controller_state(controller: Study, told: list[FrozenTrial]) -> dict[str, Any]:
    return {
        "study": controller.name,
        "n_asked": controller.strategy.n_asked,
        "trials": [frozen_to_mapping(t) for t in told],
    }


def _restore_controller(controller: Study, state: Mapping[str, Any]) -> list[FrozenTrial]:
    """Rebuild the controller strategy from the trials it had been told at the checkpoint
    (trials of an interrupted epoch, if the study kept them, are not replayed)."""
    strategy = controller.strategy
    controller.trials  # noqa: B018 - sync the study first, so later syncs tell nothing stale
    strategy.setup(controller.space, controller.directions)
    told = [frozen_from_mapping(m) for m in state["trials"]]
    for t in told:
        strategy.note(t)
        strategy.tell(t)
    strategy.n_asked = int(state["n_asked"])
    return told


def _check_controller(controller: Any, supernet: Supernet) -> Study:
    from airda.study import Study

    if not isinstance(controller, Study):
        raise TypeError(
            f"controller must be an airda Study over supernet.space, got "
            f"{type(controller).__name__}"
        )
    if controller.space != supernet.space:
        raise ValueError("the controller study's space is not this supernet's space")
    if controller.directions != ("maximize",):
        raise ValueError("the controller study must maximise (its values are accuracies)")
    return controller


def _evaluate_trials(
    study: Study,
    trials: Sequence[Any],
    supernet: Supernet,
    x: torch.Tensor,
    y: torch.Tensor,
    calib: torch.Tensor | None,
    evaluator: Evaluator,
    attrs: Mapping[str, Any] | None = None,
) -> list[FrozenTrial]:
    """Evaluate live trials (subnets) together; a failure fails every trial of the batch with
    the reason, a result that is not a finite accuracy fails its trial."""
    archs = [dict(t.params) for t in trials]
    try:
        results = evaluator(supernet, archs, x, y, calib=calib)
        if len(results) != len(archs):
            raise RuntimeError(
                f"the evaluator returned {len(results)} results for {len(archs)} subnets"
            )
    except (KeyboardInterrupt, SystemExit):
        for t in trials:
            study.tell(t, state=TrialState.FAIL, error="KeyboardInterrupt: interrupted")
        raise
    except Exception as exc:
        tb = tb_module.format_exc()
        return [
            study.tell(t, state=TrialState.FAIL, error=f"{type(exc).__name__}: {exc}", traceback=tb)
            for t in trials
        ]
    out = []
    for t, r in zip(trials, results, strict=True):
        for k, v in (attrs or {}).items():
            t.set_user_attr(k, v)
        if "loss" in r:
            t.set_user_attr("val_loss", float(r["loss"]))
        out.append(study.tell(t, r.get("accuracy")))
    return out


@dataclass
class _Run:
    """What stays fixed during one :func:`train_supernet` call."""

    supernet: Supernet
    config: TrainConfig
    rule: str
    num_random: int
    distill: bool
    controller: Study | None
    controller_steps: int
    controller_batch: int
    reward_size: int
    probes: int
    calib_size: int
    seed: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    evaluator: Evaluator
    calib: torch.Tensor = field(init=False)
    # What a checkpoint must have been written with to be resumed.
    setup: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        rule = self.rule
        self.calib = self.x_train[: self.calib_size]
        self.setup = {
            "rule": rule,
            "config": asdict(self.config),
            "num_random": self.num_random if rule == "sandwich" else None,
            "distill": self.distill,
            "controller_steps": self.controller_steps if rule == "controller" else None,
            "controller_batch": self.controller_batch if rule == "controller" else None,
            "reward_size": self.reward_size if rule == "controller" else None,
            "probes": self.probes,
            "calib_size": self.calib_size,
            "seed": self.seed,
            "n_train": int(self.x_train.shape[0]),
        }


@dataclass
class _State:
    """What a checkpoint saves and a resumed run restores, besides the supernet's weights."""

    opt: torch.optim.Optimizer
    sched: Any
    data_gen: torch.Generator
    rng: np.random.Generator
    history: list[dict[str, Any]] = field(default_factory=list)
    # The controller trials told so far: replaying them rebuilds the controller's strategy.
    told: list[FrozenTrial] = field(default_factory=list)
    start_epoch: int = 0
    previous_trial: dict[str, Any] | None = None


def _check_options(
    supernet: Supernet,
    rule: str,
    num_random: int,
    distill: bool,
    probes: int,
    controller: Any,
    **counts: int,
) -> Study | None:
    """Validate :func:`train_supernet`'s options; return the controller study (or None).

    Args:
        supernet: the supernet to train.
        rule: the sampling rule.
        num_random: random subnets per sandwich step.
        distill: in-place distillation (sandwich rule only).
        probes: the number of probe subnets.
        controller: the controller study, for ``rule="controller"`` only.
        **counts: options that must be ints >= 1, by name.

    Raises:
        ValueError: an option out of range, or one that does not apply to `rule`.
        TypeError: a controller that is not a study.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if isinstance(num_random, bool) or not isinstance(num_random, int) or num_random < 0:
        raise ValueError(f"num_random must be an int >= 0, got {num_random!r}")
    if distill and rule != "sandwich":
        raise ValueError("distill applies to rule='sandwich' (it distils the largest subnet)")
    if isinstance(probes, bool) or not isinstance(probes, int) or probes < 1:
        raise ValueError(f"probes must be an int >= 1, got {probes!r}")
    for name, v in counts.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    if rule == "controller":
        if controller is None:
            raise ValueError("rule='controller' needs a controller study (see enas())")
        return _check_controller(controller, supernet)
    if controller is not None:
        raise ValueError(f"a controller is used by rule='controller', not rule={rule!r}")
    return None


def _fresh_state(run: _Run) -> _State:
    """The optimiser, LR schedule and random streams of a run that starts at epoch 0."""
    config = run.config
    n_steps = len(_batches(run.x_train.shape[0], config.batch_size, torch.Generator()))
    opt, sched = _optimizer(run.supernet.parameters(), config, config.epochs * n_steps)
    return _State(
        opt=opt,
        sched=sched,
        data_gen=torch.Generator().manual_seed(run.seed),
        rng=np.random.Generator(np.random.PCG64([run.seed, 0x5A3D])),
    )


def _resume(state: _State, run: _Run, checkpoint: str | os.PathLike[str]) -> None:
    """Load `checkpoint` into the supernet and `state`, so that training continues exactly
    where the run that wrote it stopped.

    Raises:
        ValueError: the checkpoint belongs to another supernet or another training set-up.
    """
    from airda.nas.checkpoint import load_checkpoint

    saved_state = load_checkpoint(checkpoint, run.supernet)
    saved = saved_state.get("setup") or {}
    setup = run.setup
    if saved != setup:
        diff = sorted(k for k in set(setup) | set(saved) if saved.get(k) != setup[k])
        raise ValueError(
            f"checkpoint {os.fspath(checkpoint)} was written by another training set-up: "
            + ", ".join(f"{k} is {saved.get(k)!r} there, {setup.get(k)!r} here" for k in diff)
        )
    state.opt.load_state_dict(saved_state["optimizer"])
    state.sched.load_state_dict(saved_state["scheduler"])
    state.data_gen.set_state(saved_state["rng"]["data"])
    state.rng.bit_generator.state = saved_state["rng"]["numpy"]
    torch.set_rng_state(saved_state["rng"]["torch"])
    state.history = list(saved_state["history"])
    state.start_epoch = int(saved_state["epoch"])
    state.previous_trial = saved_state.get("trial")
    if run.controller is not None:
        state.told = _restore_controller(run.controller, saved_state["controller"])


def _open_trial(study: Study, run: _Run, state: _State, probe_archs: list[dict[str, Any]]) -> Trial:
    """Ask `study` for the trial that records this run; a resumed run's trial carries the
    curve so far, and closes the trial of the run it continues if that one was killed."""
    trial = study.ask()
    trial.set_user_attr("supernet", dict(run.supernet.config))
    trial.set_user_attr("setup", run.setup)
    previous = state.previous_trial
    if previous is not None:
        trial.set_user_attr("resumed_from", {**previous, "epoch": state.start_epoch})
        if previous.get("study") == study.name:
            # A killed run leaves its trial running: close it, pointing at this one.
            prev = next((t for t in study.trials if t.number == previous["number"]), None)
            if prev is not None and prev.state is TrialState.RUNNING:
                study.tell(
                    prev.number,
                    state=TrialState.FAIL,
                    error=f"interrupted; resumed as trial {trial.number}",
                )
    for h in state.history:
        trial.report(h["epoch"], h["val_accuracy"])
    if state.history:
        trial.set_user_attr("history", state.history)
    trial.set_user_attr("probes", probe_archs)
    return trial


# The three rules differ only in which subnets a training step trains.


def _draw_uniform(run: _Run, state: _State) -> list[dict[str, Any]]:
    """SPOS: one subnet, uniformly at random."""
    return [run.supernet.sample(state.rng)]


def _draw_sandwich(run: _Run, state: _State) -> list[dict[str, Any]]:
    """The sandwich rule: the largest subnet first (the teacher when distilling), the
    smallest, then `num_random` random ones."""
    archs = [run.supernet.largest(), run.supernet.smallest()]
    return archs + [run.supernet.sample(state.rng) for _ in range(run.num_random)]


def _draw_controller(run: _Run, state: _State) -> list[dict[str, Any]]:
    """ENAS: one subnet from the controller's policy (asked from the strategy directly, so
    that training steps do not become trials of the controller study)."""
    assert run.controller is not None
    return run.controller.strategy.ask(1)


_DRAW: dict[str, Callable[[_Run, _State], list[dict[str, Any]]]] = {
    "uniform": _draw_uniform,
    "sandwich": _draw_sandwich,
    "controller": _draw_controller,
}


def _train_step(
    run: _Run,
    state: _State,
    xb: torch.Tensor,
    yb: torch.Tensor,
    archs: list[dict[str, Any]],
    epoch: int,
) -> tuple[float, int]:
    """One optimiser step on the gradients of every subnet of `archs` on one batch.

    Returns:
        The mean loss over the subnets, and the number of samples the first subnet got right.

    Raises:
        FloatingPointError: the loss is not finite.
    """
    supernet = run.supernet
    state.opt.zero_grad(set_to_none=True)
    teacher = None
    step_loss = 0.0
    correct = 0
    for i, arch in enumerate(archs):
        logits = supernet(xb, arch)
        if teacher is not None:
            loss = F.kl_div(F.log_softmax(logits, 1), teacher, reduction="batchmean")
        else:
            loss = F.cross_entropy(logits, yb)
        if run.distill and i == 0:
            teacher = F.softmax(logits.detach(), 1)
        loss.backward()
        step_loss += loss.detach().item()
        if i == 0:
            correct = int((logits.argmax(1) == yb).sum())
    if not math.isfinite(step_loss):
        raise FloatingPointError(f"epoch {epoch}: the training loss is {step_loss} (lower the lr?)")
    if run.config.grad_clip is not None:
        nn.utils.clip_grad_norm_(supernet.parameters(), run.config.grad_clip)
    state.opt.step()
    state.sched.step()
    return step_loss / len(archs), correct


def _train_epoch(run: _Run, state: _State, epoch: int) -> tuple[float, float]:
    """One pass over the training set, each step training the subnets of the run's rule.

    Returns:
        The mean training loss, and the training accuracy of each step's first subnet.
    """
    run.supernet.train()
    if run.controller is not None:
        run.controller.trials  # noqa: B018 - sync: the strategy learns the last rewards
    draw = _DRAW[run.rule]
    loss_sum, correct, seen, n_batches = 0.0, 0, 0, 0
    for idx in _batches(run.x_train.shape[0], run.config.batch_size, state.data_gen):
        xb, yb = run.x_train[idx], run.y_train[idx]
        step_loss, step_correct = _train_step(run, state, xb, yb, draw(run, state), epoch)
        loss_sum += step_loss
        correct += step_correct
        seen += int(yb.numel())
        n_batches += 1
    return loss_sum / max(n_batches, 1), correct / max(seen, 1)


def _reward_controller(run: _Run, state: _State, epoch: int) -> None:
    """ENAS's controller phase: `controller_steps` rounds of `controller_batch` subnets asked
    from the controller study, each rewarded with its accuracy on `reward_size` random
    validation samples."""
    controller = run.controller
    assert controller is not None
    for _ in range(run.controller_steps):
        pick = torch.randperm(run.x_val.shape[0], generator=state.data_gen)[: run.reward_size]
        live = [controller.ask() for _ in range(run.controller_batch)]
        state.told += _evaluate_trials(
            controller,
            live,
            run.supernet,
            run.x_val[pick],
            run.y_val[pick],
            run.calib,
            run.evaluator,
            {"phase": "train", "epoch": epoch},
        )
        controller.trials  # noqa: B018 - sync: tell the rewards to the controller


def _evaluate_epoch(
    run: _Run,
    state: _State,
    probe_archs: list[dict[str, Any]],
    epoch: int,
    train: tuple[float, float],
    started: float,
) -> dict[str, Any]:
    """The metrics of `epoch`: its training loss and accuracy (`train`), and the probes' mean
    validation accuracy and loss with inherited weights."""
    results = run.evaluator(run.supernet, probe_archs, run.x_val, run.y_val, calib=run.calib)
    return {
        "epoch": epoch,
        "train_loss": train[0],
        "train_accuracy": train[1],
        "val_accuracy": float(np.mean([r["accuracy"] for r in results])),
        "val_loss": float(np.mean([r["loss"] for r in results])),
        "lr": float(state.sched.get_last_lr()[0]),
        "seconds": time.perf_counter() - started,
    }


def _save(
    checkpoint: str | os.PathLike[str],
    run: _Run,
    state: _State,
    epoch: int,
    study: Study,
    trial: Trial,
) -> None:
    """Checkpoint the run after `epoch`: everything :func:`_resume` restores."""
    from airda.nas.checkpoint import save_checkpoint

    saved_state = {
        "epoch": epoch + 1,
        "setup": run.setup,
        "optimizer": state.opt.state_dict(),
        "scheduler": state.sched.state_dict(),
        "rng": {
            "data": state.data_gen.get_state(),
            "numpy": state.rng.bit_generator.state,
            "torch": torch.get_rng_state(),
        },
        "history": state.history,
        "trial": {"study": study.name, "number": trial.number},
        "controller": (
            _controller_state(run.controller, state.told) if run.controller is not None else None
        ),
    }
    save_checkpoint(checkpoint, run.supernet, saved_state)
    trial.set_user_attr("checkpoint", os.fspath(checkpoint))


def train_supernet(
    supernet: Supernet,
    data: Any,
    config: TrainConfig | None = None,
    *,
    rule: str = "uniform",
    num_random: int = 2,
    distill: bool = False,
    controller: Study | None = None,
    controller_steps: int = 10,
    controller_batch: int = 1,
    reward_size: int = 256,
    study: Study | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    probes: int = 4,
    calib_size: int = 512,
    evaluator: Evaluator | None = None,
    seed: int = 0,
    callback: Callable[[int, dict[str, Any]], None] | None = None,
) -> SupernetTraining:
    """Train the shared weights of `supernet` on ``data.x_train, data.y_train``.

    Args:
        supernet: the supernet (trained in place).
        data: an object with tensors ``x_train, y_train, x_val, y_val`` (an
            :mod:`airda.nas.data` ``Dataset``).
        config: optimiser, schedule, epochs and batch size (:class:`TrainConfig`).
        rule: ``"uniform"`` (SPOS), ``"sandwich"`` or ``"controller"`` (ENAS), see the
            module docstring.
        num_random: sandwich rule: random subnets per step besides the largest and smallest.
        distill: sandwich rule: the other subnets learn the largest one's soft predictions
            (in-place distillation) instead of the labels.
        controller: ``rule="controller"``: a study over ``supernet.space`` that maximises, with
            the controller as its strategy (:class:`~airda.strategies.Reinforce`); subnets of
            the training steps are drawn from it, and after every epoch `controller_steps`
            rounds of `controller_batch` trials are asked from it, scored by their accuracy on
            `reward_size` random validation samples and told.
        study: the study that records training (one trial; default: a new in-memory study).
        checkpoint: a file path: saved after every epoch; when the file exists, training
            resumes from it (``ValueError`` if it belongs to another supernet or another
            training set-up).
        probes: subnets (fixed for the run; the largest and smallest first for the sandwich
            rule) whose mean validation accuracy is reported after every epoch.
        calib_size: training samples used to re-estimate batch-norm statistics before every
            evaluation with inherited weights.
        evaluator: ``evaluator(supernet, archs, x, y, calib=...) -> [{"accuracy", "loss"}]``;
            default :func:`airda.nas.evaluate_many`.
        seed: seeds the data order, the subnet sampling and the probes.
        callback: ``callback(epoch, metrics)`` after every epoch's checkpoint (an exception
            from it stops training; the checkpoint allows resuming).

    Returns:
        :class:`SupernetTraining`.

    Example:
        >>> import types, torch
        >>> from airda.nas.supernet import ElasticSupernet
        >>> from airda.nas.oneshot import TrainConfig, train_supernet
        >>> x, y = torch.randn(48, 1, 12), torch.randint(0, 2, (48,))
        >>> data = types.SimpleNamespace(x_train=x, y_train=y, x_val=x, y_val=y)
        >>> net = ElasticSupernet(dims=1, in_channels=1, num_classes=2, stem=4,
        ...                       stages=((4, 2, 1),), depths=(1, 2), expand_ratios=(1, 2))
        >>> run = train_supernet(net, data, TrainConfig(epochs=2, batch_size=16),
        ...                      rule="sandwich", distill=True, seed=0)
        >>> [h["epoch"] for h in run.history], run.trial.state.value
        ([0, 1], 'complete')
    """
    import airda

    started = time.perf_counter()
    config = config or TrainConfig()
    controller = _check_options(
        supernet,
        rule,
        num_random,
        distill,
        probes,
        controller,
        controller_steps=controller_steps,
        controller_batch=controller_batch,
        reward_size=reward_size,
        calib_size=calib_size,
    )
    x_train, y_train = _split(data, "train")
    x_val, y_val = _split(data, "val")
    supernet.check_input(x_train[:1])
    supernet.check_input(x_val[:1])
    run = _Run(
        supernet=supernet,
        config=config,
        rule=rule,
        num_random=num_random,
        distill=distill,
        controller=controller,
        controller_steps=controller_steps,
        controller_batch=controller_batch,
        reward_size=reward_size,
        probes=probes,
        calib_size=calib_size,
        seed=seed,
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        evaluator=evaluator or _default_evaluator(),
    )
    state = _fresh_state(run)
    if checkpoint is not None and os.path.exists(checkpoint):
        _resume(state, run, checkpoint)
    if study is None:
        study = airda.create_study(direction="maximize", seed=seed)
    probe_archs = _probe_archs(supernet, rule, probes, seed)
    trial = _open_trial(study, run, state, probe_archs)

    bar = Progress(
        config.epochs, desc=f"supernet ({rule})", unit="epoch", initial=state.start_epoch
    )
    try:
        for epoch in range(state.start_epoch, config.epochs):
            t0 = time.perf_counter()
            train = _train_epoch(run, state, epoch)
            if rule == "controller":
                _reward_controller(run, state, epoch)
            metrics = _evaluate_epoch(run, state, probe_archs, epoch, train, t0)
            state.history.append(metrics)
            trial.report(epoch, metrics["val_accuracy"])
            trial.set_user_attr("history", state.history)
            if checkpoint is not None:
                _save(checkpoint, run, state, epoch, study, trial)
            bar.update(1, val_acc=metrics["val_accuracy"], loss=metrics["train_loss"])
            if callback is not None:
                callback(epoch, metrics)
    except BaseException as exc:
        bar.close()
        study.tell(
            trial,
            state=TrialState.FAIL,
            error=f"{type(exc).__name__}: {exc}",
            traceback=tb_module.format_exc(),
        )
        raise
    bar.close()
    final = state.history[-1]["val_accuracy"] if state.history else float("nan")
    frozen = study.tell(trial, final)
    supernet.eval()
    return SupernetTraining(
        history=state.history,
        study=study,
        trial=frozen,
        probes=probe_archs,
        resumed_from=state.start_epoch,
        seconds=time.perf_counter() - started,
    )


# ---------------------------------------------------------------------------------------------
# Search with inherited weights


def search_subnets(
    supernet: Supernet,
    data: Any,
    *,
    n_trials: int,
    strategy: Strategy | str = "evolution",
    study: Study | None = None,
    batch: int = 10,
    calib_size: int = 512,
    evaluator: Evaluator | None = None,
    seed: int = 0,
    timeout: float | None = None,
) -> Study:
    """Search a trained supernet: a study over ``supernet.space`` whose trials are subnets
    scored by validation accuracy with inherited weights (batch norm recalibrated on
    `calib_size` training samples).

    Args:
        supernet: a trained supernet.
        data: tensors ``x_train`` (calibration), ``x_val, y_val`` (the score).
        n_trials: the study's total of finished trials to reach (a resumed study counts the
            trials it already has).
        strategy: a strategy or its name; ``"evolution"`` by name is regularized evolution
            with a population of 20 and tournaments of 5 (SPOS searches with evolution).
        study: continue this study (its space must be ``supernet.space``, maximised);
            default a new in-memory one.
        batch: subnets asked and evaluated together (an evaluator such as
            ``evaluate_many`` shares work across them).
        calib_size: calibration samples.
        evaluator: as in :func:`train_supernet`.
        seed: the strategy's seed when given by name.
        timeout: stop after this many seconds.

    A subnet proposed again is not re-evaluated: its trial takes the earlier result (user
    attr ``"cached_from"``). An evaluator error fails the trials of its batch, with the reason.

    Example:
        >>> import types, torch
        >>> from airda.nas.supernet import NB201Supernet
        >>> from airda.nas.oneshot import search_subnets
        >>> x, y = torch.randn(32, 1, 8), torch.randint(0, 2, (32,))
        >>> data = types.SimpleNamespace(x_train=x, y_train=y, x_val=x, y_val=y)
        >>> net = NB201Supernet(dims=1, in_channels=1, num_classes=2, C=4, N=1)
        >>> study = search_subnets(net, data, n_trials=6, batch=3, seed=0)
        >>> len(study.trials), 0 <= study.best_value <= 1
        (6, True)
    """
    import airda

    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 0:
        raise ValueError(f"n_trials must be an int >= 0, got {n_trials!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an int >= 1, got {batch!r}")
    x_train, _ = _split(data, "train")
    x_val, y_val = _split(data, "val")
    supernet.check_input(x_val[:1])
    evaluator = evaluator or _default_evaluator()
    calib = x_train[:calib_size]
    if study is None:
        if isinstance(strategy, str) and strategy.lower() in ("evolution", "rea"):
            strategy = get_strategy("rea", seed=seed, population=20, sample_size=5)
        study = airda.create_study(space=supernet.space, strategy=strategy, direction="maximize")
    elif study.space != supernet.space:
        raise ValueError(f"study {study.name!r} is not over this supernet's space")
    elif study.directions != ("maximize",):
        raise ValueError(f"study {study.name!r} must maximise validation accuracy")
    supernet.eval()
    deadline = None if timeout is None else time.perf_counter() + timeout
    done = {candidate_key(t.params): t for t in study.get_trials([TrialState.COMPLETE])}
    while True:
        finished = study.get_trials([TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED])
        remaining = n_trials - len(finished)
        if remaining <= 0 or (deadline is not None and time.perf_counter() > deadline):
            break
        live, fresh = [], []
        for _ in range(min(batch, remaining)):
            t = study.ask()
            key = candidate_key(t.params)
            if key in done:
                t.set_user_attr("cached_from", done[key].number)
                study.tell(t, done[key].values[0])
            else:
                live.append(t)
                fresh.append(key)
        if not live:
            continue
        for key, frozen in zip(
            fresh,
            _evaluate_trials(study, live, supernet, x_val, y_val, calib, evaluator),
            strict=True,
        ):
            if frozen.state is TrialState.COMPLETE:
                done.setdefault(key, frozen)
    return study


# ---------------------------------------------------------------------------------------------
# The complete searches


@dataclass
class OneShotResult:
    """The outcome of :func:`spos` or :func:`enas`.

    Attributes:
        arch: the subnet found (a params dict of ``supernet.space``).
        val_accuracy: its validation accuracy with inherited weights.
        training: the supernet training (:class:`SupernetTraining`).
        search: the study of the final choice (evolution for SPOS; the controller's study for
            ENAS, whose ``"phase": "derive"`` trials are the final candidates).
        seconds: wall time of the whole call (training + search).
        search_seconds: wall time of the search after training.
    """

    arch: dict[str, Any]
    val_accuracy: float
    training: SupernetTraining
    search: Study
    seconds: float
    search_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def _studies(storage: Any, name: str | None, suffix: str, **kwargs: Any) -> tuple[str, Study]:
    import airda

    if name is None:
        name = f"oneshot-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}"
    return name, airda.create_study(
        f"{name}/{suffix}", storage=storage, load_if_exists=True, **kwargs
    )


def spos(
    supernet: Supernet,
    data: Any,
    config: TrainConfig | None = None,
    *,
    n_trials: int = 200,
    rule: str = "uniform",
    num_random: int = 2,
    distill: bool = False,
    strategy: Strategy | str = "evolution",
    batch: int = 10,
    storage: Any = None,
    name: str | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    calib_size: int = 512,
    evaluator: Evaluator | None = None,
    seed: int = 0,
    callback: Callable[[int, dict[str, Any]], None] | None = None,
) -> OneShotResult:
    """SPOS: train the supernet (uniform single paths, or the sandwich rule with
    ``rule="sandwich"``), then search it with `strategy` (:func:`search_subnets`).

    The training is recorded in study ``"{name}/supernet"`` and the search in
    ``"{name}/search"`` of `storage`; calling again with the same `name`, `storage` and
    `checkpoint` resumes both. `callback` is passed to :func:`train_supernet`. Returns the
    best subnet of the search (:class:`OneShotResult`). See the module docstring for an
    example.
    """
    started = time.perf_counter()
    name, train_study = _studies(storage, name, "supernet", direction="maximize", seed=seed)
    training = train_supernet(
        supernet,
        data,
        config,
        rule=rule,
        num_random=num_random,
        distill=distill,
        study=train_study,
        checkpoint=checkpoint,
        calib_size=calib_size,
        evaluator=evaluator,
        seed=seed,
        callback=callback,
    )
    t0 = time.perf_counter()
    if isinstance(strategy, str) and strategy.lower() in ("evolution", "rea"):
        strategy = get_strategy("rea", seed=seed, population=20, sample_size=5)
    _, search_study = _studies(
        storage,
        name,
        "search",
        space=supernet.space,
        strategy=strategy,
        direction="maximize",
        seed=seed,
    )
    search_subnets(
        supernet,
        data,
        n_trials=n_trials,
        study=search_study,
        batch=batch,
        calib_size=calib_size,
        evaluator=evaluator,
        seed=seed,
    )
    best = search_study.best_trial
    assert best.value is not None
    return OneShotResult(
        arch=dict(best.params),
        val_accuracy=best.value,
        training=training,
        search=search_study,
        seconds=time.perf_counter() - started,
        search_seconds=time.perf_counter() - t0,
    )


def enas(
    supernet: Supernet,
    data: Any,
    config: TrainConfig | None = None,
    *,
    controller: Strategy | None = None,
    controller_steps: int = 10,
    controller_batch: int = 1,
    reward_size: int = 256,
    derive: int = 20,
    storage: Any = None,
    name: str | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    calib_size: int = 512,
    evaluator: Evaluator | None = None,
    seed: int = 0,
    callback: Callable[[int, dict[str, Any]], None] | None = None,
) -> OneShotResult:
    """ENAS: a REINFORCE controller samples the subnets trained on the shared weights, and
    learns from their validation accuracy (:func:`train_supernet` with
    ``rule="controller"``); the result is the best, on the whole validation set, of `derive`
    subnets sampled from the trained controller and its most likely subnet.

    Args:
        controller: the controller strategy; default
            ``Reinforce(learning_rate=0.05, entropy=1e-3, seed=seed)``.
        controller_steps, controller_batch, reward_size: see :func:`train_supernet`.
        derive: subnets sampled from the trained controller to choose from.
        storage, name, checkpoint, callback: as in :func:`spos`; the controller's trials
            are in study ``"{name}/controller"``.

    Example:
        >>> import types, torch
        >>> from airda.nas.supernet import NB201Supernet
        >>> from airda.nas.oneshot import TrainConfig, enas
        >>> x, y = torch.randn(32, 1, 8), torch.randint(0, 2, (32,))
        >>> data = types.SimpleNamespace(x_train=x, y_train=y, x_val=x, y_val=y)
        >>> _ = torch.manual_seed(0)
        >>> net = NB201Supernet(dims=1, in_channels=1, num_classes=2, C=4, N=1)
        >>> res = enas(net, data, TrainConfig(epochs=2, batch_size=16), controller_steps=3,
        ...            derive=4, seed=0)
        >>> phases = [t.user_attrs["phase"] for t in res.search.trials]
        >>> phases.count("train"), phases.count("derive")
        (6, 5)
    """
    started = time.perf_counter()
    if isinstance(derive, bool) or not isinstance(derive, int) or derive < 0:
        raise ValueError(f"derive must be an int >= 0, got {derive!r}")
    if controller is None:
        controller = Reinforce(learning_rate=0.05, entropy=1e-3, seed=seed)
    elif not isinstance(controller, Strategy):
        raise TypeError(f"controller must be a Strategy, got {type(controller).__name__}")
    name, train_study = _studies(storage, name, "supernet", direction="maximize", seed=seed)
    _, ctrl_study = _studies(
        storage,
        name,
        "controller",
        space=supernet.space,
        strategy=controller,
        direction="maximize",
        cache=False,
    )
    training = train_supernet(
        supernet,
        data,
        config,
        rule="controller",
        controller=ctrl_study,
        controller_steps=controller_steps,
        controller_batch=controller_batch,
        reward_size=reward_size,
        study=train_study,
        checkpoint=checkpoint,
        calib_size=calib_size,
        evaluator=evaluator,
        seed=seed,
        callback=callback,
    )
    t0 = time.perf_counter()
    x_train, _ = _split(data, "train")
    x_val, y_val = _split(data, "val")
    evaluator = evaluator or _default_evaluator()
    candidates = [t for t in ctrl_study.trials if t.user_attrs.get("phase") == "derive"]
    if len(candidates) < derive + 1:  # not all evaluated yet (a resumed run): evaluate now
        live = [ctrl_study.ask() for _ in range(derive)]
        policy = getattr(controller, "probabilities", None)
        if callable(policy):
            probs = policy()
            likely: dict[str, Any] = {}
            for pname in supernet.space.names:
                if supernet.space.is_active(pname, likely):
                    values = supernet.space[pname].values()
                    likely[pname] = values[int(np.argmax(probs[pname]))]
            live.append(ctrl_study.ask(fixed=likely))
        supernet.eval()
        candidates = _evaluate_trials(
            ctrl_study,
            live,
            supernet,
            x_val,
            y_val,
            x_train[:calib_size],
            evaluator,
            {"phase": "derive"},
        )
    done = [t for t in candidates if t.state is TrialState.COMPLETE]
    if not done:
        raise RuntimeError("no derived subnet could be evaluated; see the controller study")
    best = max(done, key=lambda t: (t.values[0], -t.number))
    return OneShotResult(
        arch=dict(best.params),
        val_accuracy=best.values[0],
        training=training,
        search=ctrl_study,
        seconds=time.perf_counter() - started,
        search_seconds=time.perf_counter() - t0,
    )


# ---------------------------------------------------------------------------------------------
# Standalone training


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Fraction of `x` that `model` (in eval mode) classifies as `y`.

    Example:
        >>> import torch
        >>> accuracy(torch.nn.Linear(2, 2), torch.zeros(0, 2), torch.zeros(0))
        nan
    """
    if x.shape[0] == 0:
        return float("nan")
    was = model.training
    model.eval()
    try:
        correct = sum(
            int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
            for i in range(0, x.shape[0], batch_size)
        )
    finally:
        model.train(was)
    return correct / x.shape[0]


def reinitialise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every submodule with ``reset_parameters`` fresh initial weights (PyTorch's
    defaults, drawn from `seed` without touching the global random state); batch norms also
    forget their running statistics. Returns `model`.

    Example:
        >>> import torch
        >>> a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
        >>> bool((reinitialise(a, 1).weight == reinitialise(b, 1).weight).all())
        True
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in model.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                reset()
    return model


def train_model(
    model: nn.Module,
    data: Any,
    config: TrainConfig | None = None,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Train a standalone classifier (``model(x) -> logits``) on ``data.x_train``; return its
    final ``train_accuracy``, ``val_accuracy``, ``test_accuracy`` (when the data has a test
    split), ``params`` and ``seconds``. The same loop as supernet training (SGD, momentum,
    cosine schedule, cross-entropy), so baselines and found architectures get one budget.

    Example:
        >>> import types, torch
        >>> x = torch.randn(64, 4); y = (x[:, 0] > 0).long()
        >>> data = types.SimpleNamespace(x_train=x, y_train=y, x_val=x, y_val=y)
        >>> _ = torch.manual_seed(0)
        >>> out = train_model(torch.nn.Linear(4, 2), data, TrainConfig(epochs=20, batch_size=16))
        >>> out["val_accuracy"] > 0.9, out["params"]
        (True, 10)
    """
    from airda.nas.cost import count_params

    config = config or TrainConfig()
    x_train, y_train = _split(data, "train")
    x_val, y_val = _split(data, "val")
    started = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    n_steps = len(_batches(x_train.shape[0], config.batch_size, torch.Generator()))
    opt, sched = _optimizer(model.parameters(), config, config.epochs * n_steps)
    for epoch in range(config.epochs):
        model.train()
        for idx in _batches(x_train.shape[0], config.batch_size, gen):
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            if not math.isfinite(loss.detach().item()):
                raise FloatingPointError(
                    f"epoch {epoch}: the training loss is {loss.detach().item()}"
                )
            loss.backward()
            if config.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            sched.step()
    out: dict[str, Any] = {
        "train_accuracy": accuracy(model, x_train, y_train),
        "val_accuracy": accuracy(model, x_val, y_val),
    }
    if hasattr(data, "x_test"):
        x_test, y_test = _split(data, "test")
        out["test_accuracy"] = accuracy(model, x_test, y_test)
    out["params"] = count_params(model)
    out["seconds"] = time.perf_counter() - started
    return out


def retrain(
    supernet: Supernet,
    arch: Mapping[str, Any],
    data: Any,
    config: TrainConfig | None = None,
    *,
    from_scratch: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """Train subnet `arch` as a standalone network (``supernet.extract(arch)``) and report
    its accuracies (:func:`train_model`). `from_scratch` (the standard protocol) re-initialises
    it first; otherwise it is fine-tuned from its inherited weights.

    Example:
        >>> import types, torch
        >>> from airda.nas.supernet import NB201Supernet
        >>> x, y = torch.randn(32, 1, 8), torch.randint(0, 2, (32,))
        >>> data = types.SimpleNamespace(x_train=x, y_train=y, x_val=x, y_val=y)
        >>> net = NB201Supernet(dims=1, in_channels=1, num_classes=2, C=4, N=1)
        >>> out = retrain(net, net.largest(), data, TrainConfig(epochs=1, batch_size=16))
        >>> out["from_scratch"], out["params"] > 0
        (True, True)
    """
    model = supernet.extract(arch)
    if from_scratch:
        reinitialise(model, seed)
    out = train_model(model, data, config, seed=seed)
    out["from_scratch"] = from_scratch
    out["arch"] = dict(supernet.validate(arch))
    return out
