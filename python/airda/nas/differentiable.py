"""Differentiable architecture search on a weight-sharing supernet: DARTS and GDAS.

Both methods keep one table of architecture logits ``alpha`` of shape ``(edges, ops)``, shared
by every cell of the supernet as in the NAS-Bench-201 baselines, and alternate, on each pair of
mini-batches, an architecture step on the validation split with a weight step on the training
split (Algorithm 1 of DARTS: the architecture step first).

- :class:`DARTS` (Liu, Simonyan & Yang, ICLR 2019): every edge outputs the softmax-weighted sum
  of its candidate ops (``supernet.forward_weighted(x, alpha)``: the logits go to the fused
  mixed op, which applies the softmax).
  ``order=1`` takes the validation gradient of ``alpha`` at the current weights. ``order=2``
  differentiates through one virtual SGD step of the weights,
  ``w' = w - xi * (momentum * buffer + grad_w L_train(w, alpha) + weight_decay * w)`` with
  ``xi`` the current weight learning rate, as the paper's released code does, and replaces
  the Hessian-vector product in ``grad_alpha L_val(w', alpha) - xi * grad2_{alpha,w}
  L_train(w, alpha) grad_w' L_val(w', alpha)`` by the central difference of
  ``grad_alpha L_train`` at ``w +- eps * grad_w' L_val``, ``eps = 0.01 / ||grad_w' L_val||``.
- :class:`GDAS` (Dong & Yang, CVPR 2019): each forward pass draws one op per edge from the
  Gumbel-softmax of ``alpha`` at a temperature annealed linearly from ``tau_max`` to
  ``tau_min`` over the epochs; only the drawn op runs
  (``forward_weighted(x, weights, hard=index)``), and its output is scaled by the
  straight-through weight ``one_hot - p.detach() + p`` (value 1, gradient that of the soft
  probability ``p``), so ``alpha`` learns from the validation loss through the sampled path.

:func:`derive_arch` turns ``alpha`` into the discrete architecture: the op of largest logit on
every edge, ``none`` included (the NAS-Bench-201 convention).

Each epoch is reported to an optional study trial (``trial.report(epoch, val_accuracy)``; the
derived arch as the user attribute ``arch_epoch_<epoch>``) and saved to an optional checkpoint
(:func:`airda.nas.checkpoint.save_checkpoint`: the supernet's weights and BN statistics, alpha,
both optimizers, the LR schedule, the random generators, the epoch and the history). ``fit``
with an existing checkpoint resumes after its last epoch; the resumed run computes exactly
what the uninterrupted one would have (same data order, same Gumbel draws, same updates).

torch is imported by the methods that need it, not when this module is imported.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from airda._logging import Progress

__all__ = ["DARTS", "GDAS", "DifferentiableSearch", "SearchResult", "derive_arch"]


def derive_arch(
    alpha: Any,
    edge_names: Sequence[str] | None = None,
    ops: Sequence[str] | None = None,
    *,
    exclude: Sequence[str] = (),
) -> dict[str, str]:
    """The discrete architecture of architecture logits: the largest logit's op per edge.

    The default is the NAS-Bench-201 convention (every op competes, ``none`` included);
    ``exclude=("none",)`` is the DARTS paper's (the zero op is never selected).

    Args:
        alpha: logits of shape ``(edges, ops)`` (a torch tensor, NumPy array or nested lists).
        edge_names: the space's parameter per row; default the NAS-Bench-201 edges
            ``"0->1", "0->2", "1->2", "0->3", "1->3", "2->3"``.
        ops: the op per column; default :data:`airda.nas.nb201.OPS`.
        exclude: ops never chosen.

    Returns:
        ``{edge_name: op}``, a params dict of the supernet's space. Ties go to the first op.

    Raises:
        ValueError: if the shape does not match the edges and ops, alpha is not finite, or
            `exclude` names an unknown op or every op.

    Example:
        >>> from airda.nas.differentiable import derive_arch
        >>> alpha = [[0, 0, 0, 1, 0]] * 3 + [[0, 2, 0, 0, 0]] * 3
        >>> derive_arch(alpha)["0->1"], derive_arch(alpha)["2->3"]
        ('nor_conv_3x3', 'skip_connect')
        >>> derive_arch([[3, 0, 0, 1, 0]] * 6, exclude=("none",))["0->1"]
        'nor_conv_3x3'
    """
    from airda.nas.nb201 import EDGE_NAMES, OPS

    names = tuple(EDGE_NAMES if edge_names is None else edge_names)
    choices = tuple(OPS if ops is None else ops)
    if hasattr(alpha, "detach"):
        alpha = alpha.detach().cpu().double().numpy()
    a = np.asarray(alpha, dtype=np.float64)
    if a.shape != (len(names), len(choices)):
        raise ValueError(
            f"alpha has shape {a.shape}; expected (edges, ops) = ({len(names)}, {len(choices)})"
        )
    if not np.isfinite(a).all():
        raise ValueError("alpha has NaN or infinite entries: the search diverged")
    unknown = [op for op in exclude if op not in choices]
    if unknown or len(set(exclude)) >= len(choices):
        raise ValueError(f"exclude={tuple(exclude)!r}: unknown ops {unknown} or no op left")
    a = a.copy()
    for op in exclude:
        a[:, choices.index(op)] = -np.inf
    return {name: choices[int(k)] for name, k in zip(names, a.argmax(axis=1), strict=True)}


@dataclass
class SearchResult:
    """What a differentiable search returns.

    Attributes:
        arch: the derived architecture (params of ``supernet.space``) after the last epoch.
        alpha: the final architecture logits, a float64 array ``(edges, ops)``.
        history: one dict per epoch: ``epoch``, ``lr``, ``train_loss``, ``train_accuracy``,
            ``val_loss``, ``val_accuracy`` (the relaxed supernet: DARTS' softmax mixture,
            GDAS' argmax path), ``arch_accuracy`` (the derived arch with the shared weights
            and batch-norm statistics re-estimated on training data),
            ``arch``, ``degenerate`` (an NB201 cell with no input-output path: a network that
            cannot learn), ``seconds`` (that epoch's wall clock), ``tau`` (GDAS).
        seconds: the wall clock of every epoch together (also across a resume).
        resumed_from: the epoch a checkpoint resumed from (0 for a fresh run).
        edge_names, ops: the rows and columns of alpha.
    """

    arch: dict[str, str]
    alpha: np.ndarray
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: int = 0
    edge_names: tuple[str, ...] = ()
    ops: tuple[str, ...] = ()

    def derive(self, exclude: Sequence[str] = ()) -> dict[str, str]:
        """The architecture of the final alpha, e.g. ``exclude=("none",)`` (DARTS' rule)."""
        return derive_arch(self.alpha, self.edge_names, self.ops, exclude=exclude)

    @property
    def probabilities(self) -> np.ndarray:
        """``softmax(alpha)`` per edge."""
        e = np.exp(self.alpha - self.alpha.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def _check_hparams(hp: Mapping[str, Any]) -> None:
    def positive(name: str, strict: bool = True) -> None:
        v = hp[name]
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        if not ok or (v <= 0 if strict else v < 0):
            raise ValueError(
                f"{name} must be a {'positive' if strict else 'non-negative'} "
                f"finite number, got {v!r}"
            )

    bs = hp["batch_size"]
    if isinstance(bs, bool) or not isinstance(bs, int) or bs < 2:
        raise ValueError(f"batch_size must be an int >= 2 (batch norm), got {bs!r}")
    for name in ("w_lr", "alpha_lr"):
        positive(name)
    for name in (
        "w_lr_min",
        "w_momentum",
        "w_weight_decay",
        "alpha_weight_decay",
        "alpha_init_std",
    ):
        positive(name, strict=False)
    if hp["grad_clip"] is not None:
        positive("grad_clip")
    betas = hp["alpha_betas"]
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise ValueError(f"alpha_betas must be two numbers in [0, 1), got {betas!r}")
    seed = hp["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


class DifferentiableSearch:
    """The loop DARTS and GDAS share; use :class:`DARTS` or :class:`GDAS`.

    Args:
        supernet: an :class:`airda.nas.supernet.NB201Supernet` (or a module with
            ``forward_weighted(x, weights, hard=None)``, ``num_edges``, ``ops`` and ``space``).
        batch_size: mini-batch of both splits (>= 2: batch norm in training mode).
        w_lr, w_lr_min, w_momentum, w_weight_decay, grad_clip: the weights' SGD with momentum,
            its learning rate annealed by a cosine from `w_lr` to `w_lr_min` over the epochs,
            and the gradient-norm clip (None: no clip). DARTS' values by default.
        alpha_lr, alpha_betas, alpha_weight_decay: Adam on alpha (DARTS / NAS-Bench-201:
            3e-4, (0.5, 0.999), 1e-3).
        alpha_init_std: alpha starts as ``alpha_init_std * N(0, 1)`` (1e-3 as in DARTS).
        seed: seeds alpha's initialisation, the data order and GDAS' Gumbel draws (one
            ``torch.Generator``; the supernet's own initialisation is the caller's).
        eval_batch_size: batch of the per-epoch validation passes.
        calib_size: training samples (the first ones) on which the batch-norm statistics of a
            single path are re-estimated before it is evaluated after each epoch.
    """

    method = "differentiable"

    def __init__(
        self,
        supernet: Any,
        *,
        batch_size: int = 64,
        w_lr: float = 0.025,
        w_lr_min: float = 0.001,
        w_momentum: float = 0.9,
        w_weight_decay: float = 3e-4,
        grad_clip: float | None = 5.0,
        alpha_lr: float = 3e-4,
        alpha_betas: tuple[float, float] = (0.5, 0.999),
        alpha_weight_decay: float = 1e-3,
        alpha_init_std: float = 1e-3,
        seed: int = 0,
        eval_batch_size: int = 256,
        calib_size: int = 512,
    ):
        for attr in ("forward_weighted", "parameters"):
            if not callable(getattr(supernet, attr, None)):
                raise TypeError(
                    f"supernet must have a {attr}() method (an NB201Supernet), "
                    f"got {type(supernet).__name__}"
                )
        self.supernet = supernet
        self.hparams: dict[str, Any] = {
            "batch_size": batch_size,
            "w_lr": w_lr,
            "w_lr_min": w_lr_min,
            "w_momentum": w_momentum,
            "w_weight_decay": w_weight_decay,
            "grad_clip": grad_clip,
            "alpha_lr": alpha_lr,
            "alpha_betas": tuple(float(b) for b in alpha_betas),
            "alpha_weight_decay": alpha_weight_decay,
            "alpha_init_std": alpha_init_std,
            "seed": seed,
        }
        _check_hparams(self.hparams)
        if (
            isinstance(eval_batch_size, bool)
            or not isinstance(eval_batch_size, int)
            or (eval_batch_size < 1)
        ):
            raise ValueError(f"eval_batch_size must be a positive int, got {eval_batch_size!r}")
        self.eval_batch_size = eval_batch_size
        if isinstance(calib_size, bool) or not isinstance(calib_size, int) or calib_size < 2:
            raise ValueError(f"calib_size must be an int >= 2, got {calib_size!r}")
        self.calib_size = calib_size
        self.edge_names, self.ops = self._edges_and_ops(supernet)
        self.alpha: Any = None  # a torch tensor once fit has started

    # ---- what subclasses define ----------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The method and its hyperparameters (stored in checkpoints, compared on resume)."""
        return {"method": self.method, **self.hparams}

    def _alpha_grad(self, ctx: dict[str, Any], xt: Any, yt: Any, xv: Any, yv: Any) -> Any:
        raise NotImplementedError

    def _train_weights(self, ctx: dict[str, Any]) -> tuple[Any, Any]:
        """(weights, hard) of the forward pass of a weight step."""
        raise NotImplementedError

    def _eval_weights(self) -> tuple[Any, Any]:
        """(weights, hard) of the relaxed supernet evaluated after each epoch."""
        raise NotImplementedError

    def _epoch_extras(self, ctx: dict[str, Any]) -> dict[str, Any]:
        return {}

    # ---- helpers -------------------------------------------------------------------------
    @staticmethod
    def _edges_and_ops(supernet: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
        from airda.nas.nb201 import EDGE_NAMES, OPS

        ops = tuple(getattr(supernet, "ops", OPS))
        names = tuple(getattr(supernet, "edge_names", EDGE_NAMES))
        num_edges = getattr(supernet, "num_edges", len(names))
        if num_edges != len(names):
            raise ValueError(f"supernet has {num_edges} edges but {len(names)} edge names {names}")
        return names, ops

    def derive(self, exclude: Sequence[str] = ()) -> dict[str, str]:
        """The discrete architecture of the current alpha (see :func:`derive_arch`)."""
        if self.alpha is None:
            raise RuntimeError("derive() before fit(): alpha is not initialised")
        return derive_arch(self.alpha, self.edge_names, self.ops, exclude=exclude)

    def _loss(self, x: Any, y: Any, weights: Any, hard: Any = None) -> Any:
        import torch.nn.functional as F

        return F.cross_entropy(self.supernet.forward_weighted(x, weights, hard=hard), y)

    def _weight_params(self) -> list[Any]:
        return [p for p in self.supernet.parameters() if p.requires_grad]

    def _check_data(self, x: Any, y: Any, split: str) -> tuple[Any, Any]:
        import torch

        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise TypeError(f"x_{split} and y_{split} must be torch tensors")
        if x.shape[0] != y.shape[0] or y.dim() != 1:
            raise ValueError(
                f"x_{split} has {x.shape[0]} samples, y_{split} has shape {tuple(y.shape)}: "
                "expected labels of shape (samples,)"
            )
        if x.shape[0] < 2:
            raise ValueError(f"the {split} split needs at least 2 samples, got {x.shape[0]}")
        check = getattr(self.supernet, "check_input", None)
        if check is not None:
            try:
                check(x[:1])
            except ValueError as e:
                raise ValueError(f"x_{split}: {e}") from None
        if y.dtype.is_floating_point or y.dtype == torch.bool:
            raise TypeError(f"y_{split} must hold integer class labels, got {y.dtype}")
        return x, y.long()

    # ---- the loop ------------------------------------------------------------------------
    def fit(
        self,
        x_train: Any,
        y_train: Any,
        x_val: Any,
        y_val: Any,
        *,
        epochs: int,
        trial: Any = None,
        checkpoint: str | os.PathLike[str] | None = None,
        callback: Callable[[dict[str, Any]], None] | None = None,
    ) -> SearchResult:
        """Search for `epochs` epochs (one epoch = one pass over the training split).

        Args:
            x_train, y_train: the split the weights are trained on (tensors; labels int).
            x_val, y_val: the split alpha is trained on and each epoch is evaluated on.
            epochs: the length of the run (it also sets the LR and temperature schedules).
            trial: an :class:`airda.Trial` to report each epoch to: ``report(epoch,
                val_accuracy)`` and user attributes ``arch_epoch_<epoch>`` (the derived arch)
                and ``arch`` (the latest).
            checkpoint: a file path. If it exists the run resumes from it (it must come from
                the same supernet, method, hyperparameters, epochs and data sizes; otherwise
                ValueError names what differs); it is rewritten after every epoch.
            callback: called with each epoch's history record after it is saved.

        Returns:
            A :class:`SearchResult`; the supernet keeps the searched weights and
            :attr:`alpha` the final logits.
        """
        import torch

        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive int, got {epochs!r}")
        x_train, y_train = self._check_data(x_train, y_train, "train")
        x_val, y_val = self._check_data(x_val, y_val, "val")
        hp = self.hparams
        net = self.supernet
        first = next(iter(net.parameters()))
        device, dtype = first.device, first.dtype
        x_train, y_train = x_train.to(device, dtype), y_train.to(device)
        x_val, y_val = x_val.to(device, dtype), y_val.to(device)

        gen = torch.Generator().manual_seed(hp["seed"])
        alpha = hp["alpha_init_std"] * torch.randn(
            len(self.edge_names), len(self.ops), generator=gen, dtype=torch.float64
        )
        self.alpha = alpha.to(device, dtype).requires_grad_(True)
        w_opt = torch.optim.SGD(
            self._weight_params(),
            lr=hp["w_lr"],
            momentum=hp["w_momentum"],
            weight_decay=hp["w_weight_decay"],
        )
        a_opt = torch.optim.Adam(
            [self.alpha],
            lr=hp["alpha_lr"],
            betas=hp["alpha_betas"],
            weight_decay=hp["alpha_weight_decay"],
        )
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            w_opt, T_max=epochs, eta_min=hp["w_lr_min"]
        )
        run = {
            **self.config(),
            "epochs": epochs,
            "n_train": int(x_train.shape[0]),
            "n_val": int(x_val.shape[0]),
        }
        history: list[dict[str, Any]] = []
        start = 0
        if checkpoint is not None and os.path.exists(checkpoint):
            from airda.nas.checkpoint import load_checkpoint

            state = load_checkpoint(checkpoint, net)
            saved = state.get("run", {})
            diff = sorted(k for k in set(saved) | set(run) if saved.get(k) != run.get(k))
            if diff:
                raise ValueError(
                    f"checkpoint {os.fspath(checkpoint)!r} is of another run: "
                    + ", ".join(f"{k}={saved.get(k)!r} (this run: {run.get(k)!r})" for k in diff)
                )
            with torch.no_grad():
                self.alpha.copy_(state["alpha"].to(device, dtype))
            w_opt.load_state_dict(state["w_opt"])
            a_opt.load_state_dict(state["a_opt"])
            sched.load_state_dict(state["sched"])
            gen.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            history = list(state["history"])
            start = int(state["epoch"])
            if trial is not None:
                for rec in history:
                    self._report(trial, rec)

        ctx: dict[str, Any] = {"gen": gen, "w_opt": w_opt, "a_opt": a_opt, "epochs": epochs}
        name = f"{type(self).__name__} search"
        with Progress(epochs, desc=name, unit="epoch", initial=start) as bar:
            for epoch in range(start, epochs):
                t0 = time.perf_counter()
                ctx["epoch"] = epoch
                lr = w_opt.param_groups[0]["lr"]
                ctx["lr"] = lr
                train_loss, train_acc = self._train_epoch(ctx, x_train, y_train, x_val, y_val)
                sched.step()
                # Single paths are evaluated with BN statistics of their own (the supernet's
                # running statistics are those of the mixture, or of many sampled paths).
                calib = x_train[: self.calib_size]
                weights, hard = self._eval_weights()
                val_loss, val_acc = self._evaluate(
                    x_val, y_val, weights, hard, calib if hard is not None else None
                )
                arch = self.derive()
                hard = self._hard_of(arch)
                _, arch_acc = self._evaluate(x_val, y_val, self._one_hot(hard), hard, calib)
                rec = {
                    "epoch": epoch + 1,
                    "lr": lr,
                    "train_loss": train_loss,
                    "train_accuracy": train_acc,
                    "val_loss": val_loss,
                    "val_accuracy": val_acc,
                    "arch_accuracy": arch_acc,
                    "arch": arch,
                    "degenerate": self._degenerate(arch),
                    **self._epoch_extras(ctx),
                    "seconds": time.perf_counter() - t0,
                }
                history.append(rec)
                if checkpoint is not None:
                    from airda.nas.checkpoint import save_checkpoint

                    save_checkpoint(
                        checkpoint,
                        net,
                        {
                            "run": run,
                            "epoch": epoch + 1,
                            "alpha": self.alpha.detach().cpu().clone(),
                            "w_opt": w_opt.state_dict(),
                            "a_opt": a_opt.state_dict(),
                            "sched": sched.state_dict(),
                            "generator": gen.get_state(),
                            "torch_rng": torch.get_rng_state(),
                            "history": history,
                        },
                    )
                if trial is not None:
                    self._report(trial, rec)
                bar.update(1, val_acc=val_acc, arch_acc=arch_acc)
                if callback is not None:
                    callback(rec)
        return SearchResult(
            arch=self.derive(),
            alpha=self.alpha.detach().cpu().double().numpy().copy(),
            history=history,
            seconds=float(sum(r["seconds"] for r in history)),
            resumed_from=start,
            edge_names=self.edge_names,
            ops=self.ops,
        )

    def _degenerate(self, arch: Mapping[str, str]) -> bool | None:
        """Whether an NB201 cell has no input-output path (None for other spaces)."""
        from airda.nas.nb201 import EDGE_NAMES, OPS, is_degenerate

        if self.edge_names != tuple(EDGE_NAMES) or self.ops != tuple(OPS):
            return None
        return bool(is_degenerate(dict(arch)))

    @staticmethod
    def _report(trial: Any, rec: Mapping[str, Any]) -> None:
        trial.report(int(rec["epoch"]), float(rec["val_accuracy"]))
        trial.set_user_attr(f"arch_epoch_{rec['epoch']}", dict(rec["arch"]))
        trial.set_user_attr("arch", dict(rec["arch"]))

    def _hard_of(self, arch: Mapping[str, str]) -> Any:
        import torch

        return torch.tensor(
            [self.ops.index(arch[e]) for e in self.edge_names],
            dtype=torch.long,
            device=self.alpha.device,
        )

    def _one_hot(self, hard: Any) -> Any:
        import torch

        return torch.nn.functional.one_hot(hard, len(self.ops)).to(self.alpha.dtype)

    def _batches(self, n: int, gen: Any) -> list[Any]:
        import torch

        count = max(1, n // self.hparams["batch_size"])
        return list(torch.tensor_split(torch.randperm(n, generator=gen), count))

    def _train_epoch(
        self, ctx: dict[str, Any], x_train: Any, y_train: Any, x_val: Any, y_val: Any
    ) -> tuple[float, float]:
        import torch

        gen = ctx["gen"]
        net = self.supernet
        hp = self.hparams
        train = self._batches(x_train.shape[0], gen)
        val: list[Any] = []
        while len(val) < len(train):
            val += self._batches(x_val.shape[0], gen)
        params = self._weight_params()
        device = x_train.device
        total_loss, total_correct, total = 0.0, 0, 0
        net.train()
        for it, iv in zip(train, val, strict=False):
            it, iv = it.to(device), iv.to(device)
            xt, yt, xv, yv = x_train[it], y_train[it], x_val[iv], y_val[iv]
            # Architecture step: the weights' side (BN running statistics) is left unchanged.
            buffers = [b.detach().clone() for b in net.buffers()]
            ctx["a_opt"].zero_grad(set_to_none=True)
            self.alpha.grad = self._alpha_grad(ctx, xt, yt, xv, yv)
            with torch.no_grad():
                for b, saved in zip(net.buffers(), buffers, strict=True):
                    b.copy_(saved)
            ctx["a_opt"].step()
            # Weight step.
            ctx["w_opt"].zero_grad(set_to_none=True)
            weights, hard = self._train_weights(ctx)
            logits = net.forward_weighted(xt, weights, hard=hard)
            loss = torch.nn.functional.cross_entropy(logits, yt)
            loss.backward()
            if hp["grad_clip"] is not None:
                torch.nn.utils.clip_grad_norm_(params, hp["grad_clip"])
            ctx["w_opt"].step()
            total_loss += float(loss.detach()) * len(yt)
            total_correct += int((logits.detach().argmax(1) == yt).sum())
            total += len(yt)
        if not math.isfinite(total_loss):
            raise FloatingPointError(
                f"{self.method}: the training loss is {total_loss} at epoch {ctx['epoch'] + 1}"
            )
        return total_loss / total, total_correct / total

    def _evaluate(
        self, x: Any, y: Any, weights: Any, hard: Any, calib: Any = None
    ) -> tuple[float, float]:
        """Eval-mode loss and accuracy; with `calib`, a single path is evaluated with batch-norm
        statistics re-estimated on `calib` (those of the supernet are restored afterwards)."""
        import torch

        net = self.supernet
        was_training = net.training
        saved = [b.detach().clone() for b in net.buffers()] if calib is not None else None
        loss_sum, correct = 0.0, 0
        try:
            with torch.no_grad():
                if calib is not None:
                    self._recalibrate(calib, weights, hard)
                net.eval()
                for i in range(0, x.shape[0], self.eval_batch_size):
                    xb, yb = x[i : i + self.eval_batch_size], y[i : i + self.eval_batch_size]
                    logits = net.forward_weighted(xb, weights, hard=hard)
                    loss_sum += float(
                        torch.nn.functional.cross_entropy(logits, yb, reduction="sum")
                    )
                    correct += int((logits.argmax(1) == yb).sum())
        finally:
            if saved is not None:
                with torch.no_grad():
                    for buf, old in zip(net.buffers(), saved, strict=True):
                        buf.copy_(old)
            net.train(was_training)
        return loss_sum / x.shape[0], correct / x.shape[0]

    def _recalibrate(self, calib: Any, weights: Any, hard: Any) -> None:
        """Batch-norm running statistics of one path: reset, then the cumulative average over
        `calib` in training mode (as SPOS does before evaluating a subnet)."""
        net = self.supernet
        norms = [m for m in net.modules() if hasattr(m, "reset_running_stats")]
        momenta = [m.momentum for m in norms]
        try:
            for m in norms:
                m.reset_running_stats()
                m.momentum = None
            net.train()
            for i in range(0, calib.shape[0], self.eval_batch_size):
                net.forward_weighted(calib[i : i + self.eval_batch_size], weights, hard=hard)
        finally:
            for m, momentum in zip(norms, momenta, strict=True):
                m.momentum = momentum


class DARTS(DifferentiableSearch):
    """DARTS: softmax-relaxed edges, bilevel first- or second-order alpha gradient.

    Args:
        supernet: see :class:`DifferentiableSearch`.
        order: 1 (alpha's gradient at the current weights) or 2 (through one unrolled weight
            step, the finite-difference Hessian-vector product of the paper).
        **kwargs: the hyperparameters of :class:`DifferentiableSearch`.

    Example:
        >>> import torch
        >>> from airda.nas.supernet import NB201Supernet
        >>> from airda.nas.differentiable import DARTS
        >>> _ = torch.manual_seed(0)
        >>> net = NB201Supernet(dims=1, in_channels=1, num_classes=3, C=4, N=1)
        >>> x, y = torch.randn(32, 1, 12), torch.randint(0, 3, (32,))
        >>> search = DARTS(net, order=2, batch_size=8, seed=0)
        >>> result = search.fit(x[:16], y[:16], x[16:], y[16:], epochs=2)
        >>> net.validate(result.arch) == result.arch, len(result.history)
        (True, 2)
    """

    def __init__(self, supernet: Any, *, order: int = 1, **kwargs: Any):
        super().__init__(supernet, **kwargs)
        if order not in (1, 2) or isinstance(order, bool):
            raise ValueError(f"order must be 1 or 2, got {order!r}")
        self.order = order
        self.method = f"darts{order}"

    def _relaxed(self) -> Any:
        # forward_weighted without `hard` takes the logits (the fused op applies the softmax).
        return self.alpha

    def _train_weights(self, ctx: dict[str, Any]) -> tuple[Any, Any]:
        return self._relaxed().detach(), None

    def _eval_weights(self) -> tuple[Any, Any]:
        return self._relaxed().detach(), None

    def _alpha_grad(self, ctx: dict[str, Any], xt: Any, yt: Any, xv: Any, yv: Any) -> Any:
        import torch

        if self.order == 1:
            return torch.autograd.grad(self._loss(xv, yv, self._relaxed()), self.alpha)[0]
        return self.unrolled_alpha_grad(xt, yt, xv, yv, xi=ctx["lr"], w_opt=ctx["w_opt"])

    def unrolled_alpha_grad(
        self, xt: Any, yt: Any, xv: Any, yv: Any, *, xi: float, w_opt: Any = None
    ) -> Any:
        """The second-order DARTS gradient of alpha on one (train, val) batch pair.

        ``grad_alpha L_val(w', alpha) - xi * [grad_alpha L_train(w+) - grad_alpha
        L_train(w-)] / (2 eps)`` with ``w' = w - xi * (momentum * buffer + grad_w L_train +
        weight_decay * w)`` (the momentum buffer of `w_opt`, if it has one), ``w+- = w +- eps
        * v``, ``v = grad_w' L_val(w', alpha)``, ``eps = 0.01 / ||v||``. The weights are
        restored afterwards (BN running statistics are the caller's to keep or restore).
        """
        import torch

        if self.alpha is None:
            raise RuntimeError("alpha is not initialised: call fit() first")
        hp = self.hparams
        params = self._weight_params()
        w0 = [p.detach().clone() for p in params]
        relaxed = self._relaxed()
        try:
            # The virtual step w' (alpha fixed).
            grads = torch.autograd.grad(
                self._loss(xt, yt, relaxed.detach()), params, allow_unused=True
            )
            with torch.no_grad():
                for p, g, w in zip(params, grads, w0, strict=True):
                    step = hp["w_weight_decay"] * w
                    if g is not None:
                        step = step + g
                    buf = None if w_opt is None else w_opt.state.get(p, {}).get("momentum_buffer")
                    if buf is not None:
                        step = step + hp["w_momentum"] * buf
                    p.copy_(w - xi * step)
            # grad_alpha and v = grad_w' of L_val at w'.
            out = torch.autograd.grad(
                self._loss(xv, yv, relaxed), [self.alpha, *params], allow_unused=True
            )
            d_alpha = out[0]
            v = [
                torch.zeros_like(p) if g is None else g
                for p, g in zip(params, out[1:], strict=True)
            ]
            norm = torch.sqrt(sum((g.double() ** 2).sum() for g in v))
            if not torch.isfinite(norm):
                raise FloatingPointError("DARTS: the validation gradient is not finite")
            if float(norm) == 0.0:
                return d_alpha.detach()
            eps = 0.01 / float(norm)
            hess = []
            for sign in (1.0, -1.0):
                with torch.no_grad():
                    for p, w, g in zip(params, w0, v, strict=True):
                        p.copy_(w + sign * eps * g)
                hess.append(torch.autograd.grad(self._loss(xt, yt, self._relaxed()), self.alpha)[0])
            return (d_alpha - xi * (hess[0] - hess[1]) / (2 * eps)).detach()
        finally:
            with torch.no_grad():
                for p, w in zip(params, w0, strict=True):
                    p.copy_(w)


class GDAS(DifferentiableSearch):
    """GDAS: one Gumbel-softmax sampled op per edge, hard forward, straight-through gradient.

    Args:
        supernet: see :class:`DifferentiableSearch`.
        tau_max, tau_min: the Gumbel-softmax temperature, annealed linearly over the epochs
            from `tau_max` (first epoch) to `tau_min` (last epoch); GDAS uses 10 and 0.1.
        **kwargs: the hyperparameters of :class:`DifferentiableSearch`.

    Example:
        >>> import torch
        >>> from airda.nas.supernet import NB201Supernet
        >>> from airda.nas.differentiable import GDAS
        >>> _ = torch.manual_seed(0)
        >>> net = NB201Supernet(dims=1, in_channels=1, num_classes=3, C=4, N=1)
        >>> x, y = torch.randn(32, 1, 12), torch.randint(0, 3, (32,))
        >>> result = GDAS(net, batch_size=8, seed=0).fit(x[:16], y[:16], x[16:], y[16:], epochs=2)
        >>> [round(r["tau"], 2) for r in result.history]
        [10.0, 0.1]
    """

    method = "gdas"

    def __init__(
        self, supernet: Any, *, tau_max: float = 10.0, tau_min: float = 0.1, **kwargs: Any
    ):
        super().__init__(supernet, **kwargs)
        for name, v in (("tau_max", tau_max), ("tau_min", tau_min)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf:
                raise ValueError(f"{name} must be a positive finite number, got {v!r}")
        if tau_min > tau_max:
            raise ValueError(f"tau_min {tau_min} is above tau_max {tau_max}")
        self.hparams["tau_max"] = float(tau_max)
        self.hparams["tau_min"] = float(tau_min)

    def tau(self, epoch: int, epochs: int) -> float:
        """The temperature of (0-based) `epoch` of `epochs`."""
        hi, lo = self.hparams["tau_max"], self.hparams["tau_min"]
        return hi if epochs == 1 else hi - (hi - lo) * epoch / (epochs - 1)

    def sample(self, tau: float, gen: Any) -> tuple[Any, Any]:
        """One Gumbel-softmax draw: (straight-through weights (edges, ops), index (edges,)).

        The weights are one-hot in value; their gradient is that of the soft probabilities.
        """
        import torch

        shape = tuple(self.alpha.shape)
        # Gumbel(0, 1) = -log(Exp(1)); redraw the rare infinite sample as GDAS does.
        while True:
            g = -torch.empty(shape, dtype=torch.float64).exponential_(generator=gen).log()
            if torch.isfinite(g).all():
                break
        g = g.to(self.alpha.device, self.alpha.dtype)
        soft = torch.softmax((torch.log_softmax(self.alpha, -1) + g) / tau, dim=-1)
        index = soft.detach().argmax(-1)
        one_hot = torch.nn.functional.one_hot(index, shape[1]).to(soft.dtype)
        return one_hot - soft.detach() + soft, index

    def _alpha_grad(self, ctx: dict[str, Any], xt: Any, yt: Any, xv: Any, yv: Any) -> Any:
        import torch

        weights, hard = self.sample(ctx["tau"], ctx["gen"])
        return torch.autograd.grad(self._loss(xv, yv, weights, hard), self.alpha)[0]

    def _train_epoch(self, ctx: dict[str, Any], *data: Any) -> tuple[float, float]:
        ctx["tau"] = self.tau(ctx["epoch"], ctx["epochs"])
        return super()._train_epoch(ctx, *data)

    def _train_weights(self, ctx: dict[str, Any]) -> tuple[Any, Any]:
        weights, hard = self.sample(ctx["tau"], ctx["gen"])
        return weights.detach(), hard

    def _eval_weights(self) -> tuple[Any, Any]:
        hard = self.alpha.detach().argmax(-1)
        return self._one_hot(hard), hard

    def _epoch_extras(self, ctx: dict[str, Any]) -> dict[str, Any]:
        return {"tau": ctx["tau"]}
