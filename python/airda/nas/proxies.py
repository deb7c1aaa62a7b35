"""Zero-cost proxies: scores of an untrained network that rank architectures before training.

One evaluator computes any subset of ten proxies for a torch model on one batch, and shares the
passes through the network between them wherever the math allows:

- one forward pass of the batch, in training mode, feeds ``naswot`` (the ReLU sign codes), the
  loss gradient with respect to every conv / linear weight (``snip``, ``grad_norm``, and the
  gradient g of ``grasp``) and to every conv / linear output (``fisher``), all from ONE
  backward pass; ``grasp``'s Hessian-vector product Hg is a second backward through that graph
  and ``jacob_cov``'s input Jacobian a third, so the batch goes forward once for six proxies;
- ``synflow`` needs its own pass (float64 ``|θ|`` swapped in with ``torch.func.functional_call``,
  batch norm bypassed, one input of ones), and ``zen`` its own two (Gaussian weights swapped in
  the same way, two Gaussian inputs); neither copies nor changes the model;
- ``params`` and ``flops`` are counted by :mod:`airda.nas.cost`.

Definitions (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021, as NASLib
implements them; L is the loss of the batch, the sums run over the weights W of every
``Conv*d`` and ``Linear`` module):

========== =================================================================================
synflow    Σ |θ ⊙ ∂R/∂θ| with every parameter and buffer replaced by its absolute value,
           float64, batch norm bypassed, R = the sum of the outputs for one input of ones
snip       Σ |W ⊙ ∂L/∂W|
grad_norm  Σ over layers of the Frobenius norm ||∂L/∂W||
fisher     per conv / linear output a (N x C x ...): per channel 0.5 · mean over the batch of
           (Σ over the spatial positions of a · ∂L/∂a)², each channel's value counted once
           per weight of that channel (NASLib spreads it over the channel's weights), summed
grasp      Σ -W ⊙ (H g), g = ∂L/∂W held constant, H g = ∂(g · ∂L/∂W)/∂W
jacob_cov  -Σ_i [log(λ_i + k) + 1/(λ_i + k)], k = 1e-5, λ the eigenvalues of the correlation
           matrix of the per-sample input gradients of the summed outputs (Mellor et al. v1)
naswot     log|det K| of the ReLU sign-code kernel (:func:`airda.nas.naswot_score`)
zen        log E‖f(x) - f(x + 0.01 ε)‖₁ + Σ log sqrt(mean running variance) over batch norms,
           f the features before global average pooling (the input of the last adaptive
           average pooling module, else the output), with conv / linear weights drawn from
           N(0, 1), biases 0, batch norm weights 1 and fresh running statistics, in training
           mode (Lin et al., ICCV 2021, as its code and NASLib compute it)
params     the parameter count
flops      the forward pass's FLOPs for one sample (:func:`airda.nas.cost.count_flops`)
========== =================================================================================

The scores depend on the model's initial weights (all but ``zen``, which draws its own from the
seed) and are taken as given: seed the initialisation, or pass a builder, which the evaluator
calls under its seed. Everything the evaluator draws (the inputs, the labels, zen's weights and
inputs, the model's own randomness such as dropout) comes from the seed, so a seed gives the
same scores run after run. The inputs default to Gaussian noise, not images: NASLib's recorded
scores used a CIFAR-10 batch, so the data-dependent proxies rank alike but not identically.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["PROXIES", "ProxyError", "ZeroCostEvaluator", "proxy_names", "zero_cost_scores"]

PROXIES = (
    "synflow",
    "snip",
    "grad_norm",
    "fisher",
    "grasp",
    "jacob_cov",
    "naswot",
    "zen",
    "params",
    "flops",
)
# Proxies computed from the batch's forward pass in training mode (one shared pass).
_DATA = frozenset({"snip", "grad_norm", "fisher", "grasp", "jacob_cov", "naswot"})
_JACOB_COV_K = 1e-5
# Independent random streams spawned from the seed.
_INPUTS, _LABELS, _ZEN, _INIT, _MODEL = range(5)


def proxy_names() -> tuple[str, ...]:
    """The proxies a :class:`ZeroCostEvaluator` can compute, in their canonical order.

    Example:
        >>> proxy_names()[:3]
        ('synflow', 'snip', 'grad_norm')
    """
    return PROXIES


class ProxyError(RuntimeError):
    """A candidate could not be scored: building it, or a pass through it, raised.

    Attributes:
        candidate: the candidate's name (the ``name`` given to :meth:`ZeroCostEvaluator.score`,
            else the builder's or the model class's name).
        proxies: the proxies whose pass failed; empty when building the model failed.
    """

    def __init__(self, candidate: str, proxies: Sequence[str], cause: BaseException) -> None:
        self.candidate = candidate
        self.proxies = tuple(proxies)
        what = f"proxies {', '.join(self.proxies)}" if self.proxies else "building the model"
        super().__init__(f"candidate {candidate}: {what} failed: {type(cause).__name__}: {cause}")


class ZeroCostEvaluator:
    """Zero-cost proxy scores of untrained networks, the passes shared between proxies.

    Args:
        proxies: names from :func:`proxy_names` (a single name or an iterable); default all.
        batch_size: the number of random inputs drawn when :meth:`score` gets none.
        input_shape: the shape of one random input, default a 32 x 32 RGB image ``(3, 32, 32)``.
        seed: the seed of every random draw (inputs, labels, zen's weights and inputs, and a
            builder's initialisation).
        device: where to score (``"cpu"``, ``"cuda"``, ...); default the model's device. A
            model elsewhere is moved there (``Module.to``, in place).
        loss: ``loss(outputs, targets) -> scalar tensor``; default cross-entropy.
        shared: share the forward / backward passes between proxies, each backward pass
            computing only what the proxies read (the default). ``False`` runs NASLib's
            passes, one proxy at a time: a forward and a backward pass of its own per proxy,
            each backward computing the gradient of every parameter as NASLib's
            ``loss.backward()`` does, grasp's gradient g in a pass apart from its Hessian-vector
            pass, each proxy on a copy of the network that is collected afterwards (NASLib's
            measure wrapper). The same scores, bit for bit on CPU; the reference that sharing
            is checked and timed against.
        naswot_backend: force the backend of naswot's sign-code ops
            (see :func:`airda.ops.pack_sign_bits`).
        zen_mixup: the perturbation scale of zen (0.01 in the paper).

    The batch proxies run in training mode (batch norm uses batch statistics), as NASLib scores
    them; the model's modes, buffers (batch-norm running statistics), ``requires_grad`` flags
    and ``.grad`` fields are left as they were. On CUDA, cuDNN runs in deterministic mode;
    some CUDA backward kernels (adaptive average pooling) still accumulate with atomics, so GPU
    scores can differ in the last bits from run to run, and from CPU scores by rounding.

    Raises:
        ValueError: an unknown proxy name (the message lists the valid ones), or a bad option.

    Example:
        >>> import torch
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = torch.nn.Sequential(
        ...     torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        ...     torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10))
        >>> evaluator = ZeroCostEvaluator(("synflow", "snip", "naswot"), batch_size=16)
        >>> scores = evaluator.score(net)
        >>> sorted(scores)
        ['naswot', 'snip', 'synflow']
        >>> scores == evaluator.score(net)  # the same seed, the same scores
        True
    """

    def __init__(
        self,
        proxies: str | Iterable[str] | None = None,
        *,
        batch_size: int = 64,
        input_shape: Sequence[int] = (3, 32, 32),
        seed: int = 0,
        device: Any = None,
        loss: Callable[[Any, Any], Any] | None = None,
        shared: bool = True,
        naswot_backend: str | None = None,
        zen_mixup: float = 0.01,
    ) -> None:
        self.proxies = _check_proxies(proxies)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        shape = tuple(input_shape)
        if not shape or not all(isinstance(d, int) and d > 0 for d in shape):
            raise ValueError(f"input_shape must be positive ints, got {input_shape!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        if not zen_mixup > 0:
            raise ValueError(f"zen_mixup must be positive, got {zen_mixup!r}")
        self.batch_size = batch_size
        self.input_shape = shape
        self.seed = seed
        self.device = device
        self.loss = loss
        self.shared = bool(shared)
        self.naswot_backend = naswot_backend
        self.zen_mixup = float(zen_mixup)

    def __repr__(self) -> str:
        return (
            f"ZeroCostEvaluator({self.proxies!r}, batch_size={self.batch_size}, "
            f"seed={self.seed}, shared={self.shared})"
        )

    def score(
        self,
        model_or_builder: Any,
        inputs: Any = None,
        targets: Any = None,
        *,
        name: str | None = None,
    ) -> dict[str, float]:
        """Score one candidate.

        Args:
            model_or_builder: a ``torch.nn.Module``, or a callable that builds one (called
                with no arguments, with torch's CPU generator seeded from `seed` and restored
                afterwards, so that its initialisation is reproducible).
            inputs: the batch, a tensor whose first dimension is the batch; default
                ``batch_size`` standard-normal inputs of ``input_shape`` drawn from the seed.
            targets: the labels the loss compares the outputs with; default random class
                indices drawn from the seed, the number of classes read off the output's last
                dimension.
            name: how errors name the candidate (e.g. an architecture string).

        Returns:
            ``{proxy: score}`` in the evaluator's proxy order. Scores are floats and can be
            ``-inf`` (naswot on a singular kernel) or ``nan`` (jacob_cov of a degenerate
            Jacobian), as the definitions give.

        Raises:
            ProxyError: building the model, or a pass through it, raised; the message names
                the candidate and the proxies.
            TypeError: the argument is neither a module nor a callable.
        """
        import torch

        label = name if name is not None else _describe(model_or_builder)
        if isinstance(model_or_builder, torch.nn.Module):
            model = model_or_builder
        elif callable(model_or_builder):
            model = self._build(model_or_builder, label)
        else:
            raise TypeError(
                "score() takes a torch.nn.Module or a callable that builds one, got "
                f"{type(model_or_builder).__name__}"
            )
        device = torch.device(self.device) if self.device is not None else _model_device(model)
        if _model_device(model) != device:
            model.to(device)
        x = self._inputs(inputs, model, device)
        y = None if targets is None else torch.as_tensor(targets).to(device)
        wanted = set(self.proxies)
        results: dict[str, float] = {}
        with _deterministic(device):
            data = [p for p in PROXIES if p in wanted and p in _DATA]
            groups = [data] if self.shared and data else [[p] for p in data]
            for group in groups:
                results.update(self._measure(label, group, self._batch_pass, model, x, y, group))
            if "synflow" in wanted:
                results.update(self._measure(label, ["synflow"], self._synflow, model, x))
            if "zen" in wanted:
                results.update(self._measure(label, ["zen"], self._zen, model, x))
            if "params" in wanted:
                results.update(self._guard(label, ["params"], self._params, model))
            if "flops" in wanted:
                results.update(self._guard(label, ["flops"], self._flops, model, x))
        return {p: results[p] for p in self.proxies}

    # -- the passes ------------------------------------------------------------------------

    def _measure(
        self, label: str, proxies: list[str], fn: Callable[..., dict[str, float]], model, *args
    ) -> dict[str, float]:
        """`fn` on the model, shared; one proxy at a time, on a copy of the model that is
        collected afterwards, as NASLib's measure wrapper does for every network proxy
        (``get_prunable_copy``, then ``del`` and ``gc.collect()``): the copy has the same
        weights and buffers, so the scores are the same, bit for bit."""
        if self.shared:
            return self._guard(label, proxies, fn, model, *args)
        import copy
        import gc

        net = self._guard(label, proxies, copy.deepcopy, model)
        try:
            return self._guard(label, proxies, fn, net, *args)
        finally:
            del net
            gc.collect()

    def _guard(self, label: str, proxies: list[str], fn: Callable[..., dict[str, float]], *args):
        try:
            return fn(*args)
        except Exception as e:
            raise ProxyError(label, proxies, e) from e

    def _build(self, builder: Callable[[], Any], label: str) -> Any:
        import torch

        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(_stream_seed(self.seed, _INIT))
                model = builder()
        except Exception as e:
            raise ProxyError(label, (), e) from e
        if not isinstance(model, torch.nn.Module):
            raise ProxyError(
                label, (), TypeError(f"the builder returned {type(model).__name__}, not a Module")
            )
        return model

    def _inputs(self, inputs: Any, model: Any, device: Any) -> Any:
        import torch

        dtype = _model_dtype(model)
        if inputs is not None:
            x = torch.as_tensor(inputs)
            if x.dim() < 1 or x.shape[0] < 1:
                raise ValueError(f"inputs need a batch dimension, got shape {tuple(x.shape)}")
            return x.to(device=device, dtype=dtype if x.is_floating_point() else x.dtype)
        gen = torch.Generator().manual_seed(_stream_seed(self.seed, _INPUTS))
        x = torch.randn((self.batch_size, *self.input_shape), generator=gen)
        return x.to(device=device, dtype=dtype)

    def _rng(self, device: Any) -> Any:
        """torch's global generators (CPU, and `device`'s if CUDA) seeded from the seed while
        the context lasts, and restored after: a model's own randomness (dropout) draws the
        same numbers in every pass, and the caller's random state does not move."""
        import contextlib

        import torch

        cuda = device.type == "cuda"

        @contextlib.contextmanager
        def seeded():
            devices = []
            if cuda:
                devices = [
                    device.index if device.index is not None else torch.cuda.current_device()
                ]
            with torch.random.fork_rng(devices=devices):
                seed = _stream_seed(self.seed, _MODEL)
                torch.default_generator.manual_seed(seed)
                if cuda:
                    with torch.cuda.device(devices[0]):
                        torch.cuda.manual_seed(seed)
                yield

        return seeded()

    def _labels(self, outputs: Any) -> Any:
        import torch

        if outputs.dim() != 2:
            raise ValueError(
                f"the model's output has shape {tuple(outputs.shape)}: random labels need "
                "(batch, classes) outputs; pass targets"
            )
        gen = torch.Generator().manual_seed(_stream_seed(self.seed, _LABELS))
        labels = torch.randint(0, outputs.shape[1], (outputs.shape[0],), generator=gen)
        return labels.to(outputs.device)

    def _batch_pass(self, model: Any, x: Any, y: Any, wanted: list[str]) -> dict[str, float]:
        """snip, grad_norm, fisher, grasp, jacob_cov and naswot from one forward pass.

        Shared, each backward pass computes only what the proxies read. One proxy at a time
        (``shared=False``), the passes are NASLib's: every backward computes the gradient of
        every parameter (as its ``loss.backward()`` does), and grasp takes g from a pass of its
        own before it runs the batch forward again for H g.
        """
        import torch
        import torch.nn.functional as F

        from airda.nas.naswot import SignCodeRecorder

        layers = _weight_layers(model)
        weights = [m.weight for m in layers]
        need_weights = bool({"snip", "grad_norm", "grasp"} & set(wanted))
        need_loss = need_weights or "fisher" in wanted
        grasp, jacob = "grasp" in wanted, "jacob_cov" in wanted
        if need_loss and not layers:
            raise ValueError(f"{type(model).__name__} has no Conv or Linear module")
        recorder = (
            SignCodeRecorder(model, backend=self.naswot_backend) if "naswot" in wanted else None
        )
        loss_fn = self.loss if self.loss is not None else F.cross_entropy
        naslib = not self.shared
        results: dict[str, float] = {}
        with _Preserved(model, weights):
            model.train()
            for w in weights:
                w.requires_grad_(True)
            ids = {id(w) for w in weights}
            # the parameters NASLib's full backward passes also differentiate
            others = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
            others = others if naslib else []
            g_first = None
            if grasp and naslib:
                with self._rng(x.device), torch.enable_grad():
                    out = model(x)
                    loss = loss_fn(out, y if y is not None else self._labels(out))
                    g_first = torch.autograd.grad(loss, weights, allow_unused=True)
            acts = _OutputTaps(layers) if "fisher" in wanted else None
            x_in = x.detach().requires_grad_(True) if jacob else x
            with self._rng(x.device), torch.enable_grad():
                out = _forward(model, x_in, acts, recorder)
            if acts is not None and acts.modified():
                # An in-place op downstream overwrote a recorded output: tap copies instead.
                acts = _OutputTaps(layers, copies=True)
                with self._rng(x.device), torch.enable_grad():
                    out = _forward(model, x_in, acts, recorder)
            if recorder is not None:
                results["naswot"] = recorder.score()
            if need_loss:
                targets = y if y is not None else self._labels(out)
                with torch.enable_grad():
                    loss = loss_fn(out, targets)
                with_weights = need_weights or naslib
                wrt = [
                    *(weights if with_weights else []),
                    *(others if not grasp else []),  # NASLib's grasp: weights only here
                    *(acts.tensors() if acts else []),
                ]
                grads = torch.autograd.grad(
                    loss, wrt, retain_graph=grasp or jacob, create_graph=grasp, allow_unused=True
                )
                w_grads = list(grads[: len(weights)]) if with_weights else []
                if "snip" in wanted:
                    results["snip"] = _total(
                        (w.detach() * g.detach()).abs().sum()
                        for w, g in zip(weights, w_grads, strict=False)
                        if g is not None
                    )
                if "grad_norm" in wanted:
                    results["grad_norm"] = _total(
                        g.detach().norm() for g in w_grads if g is not None
                    )
                if acts is not None:
                    results["fisher"] = acts.fisher(grads[len(grads) - len(acts.taps) :])
                if grasp:
                    results["grasp"] = _grasp(weights, w_grads, g_first, others, retain=jacob)
            if jacob:
                with torch.enable_grad():
                    gx = torch.autograd.grad(
                        out,
                        [x_in, *(weights if naslib else []), *others],
                        grad_outputs=torch.ones_like(out),
                        allow_unused=True,
                    )[0]
                # An output that does not depend on the input has a zero Jacobian (nan score).
                results["jacob_cov"] = _jacob_cov(gx if gx is not None else torch.zeros_like(x))
        return results

    def _synflow(self, model: Any, x: Any) -> dict[str, float]:
        import torch
        from torch.func import functional_call

        # |θ| in float64 for every parameter and buffer, swapped in by functional_call: the
        # model is neither copied (slow for deep module trees) nor changed.
        state = {
            k: v.detach().to(torch.float64).abs() if v.is_floating_point() else v
            for k, v in _named_state(model).items()
        }
        keys = _weight_keys(model)
        # NASLib's pass differentiates every parameter; the shared one only the weights read
        extra = [] if self.shared else [k for k, _ in model.named_parameters() if k not in keys]
        for k in [*keys, *extra]:
            state[k].requires_grad_(True)
        ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
        with _Preserved(model, buffers=False), _bypassed_batch_norm(model), torch.enable_grad():
            model.eval()
            with self._rng(x.device):
                out = functional_call(model, state, (ones,))
            grads = torch.autograd.grad(
                out.sum(), [state[k] for k in [*keys, *extra]], allow_unused=True
            )[: len(keys)]
        score = _total(
            (state[k].detach() * g).abs().sum()
            for k, g in zip(keys, grads, strict=False)
            if g is not None
        )
        return {"synflow": score}

    def _zen(self, model: Any, x: Any) -> dict[str, float]:
        import torch

        gen = torch.Generator().manual_seed(_stream_seed(self.seed, _ZEN))
        state = _gaussian_state(model, gen)
        first = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
        second = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
        with self._rng(x.device):
            return {"zen": _zen_value(model, state, first, second, self.zen_mixup)}

    def _params(self, model: Any) -> dict[str, float]:
        from airda.nas.cost import count_params

        return {"params": float(count_params(model))}

    def _flops(self, model: Any, x: Any) -> dict[str, float]:
        from airda.nas.cost import count_flops

        return {"flops": float(count_flops(model, (1, *x.shape[1:])))}


def zero_cost_scores(
    model: Any,
    inputs: Any = None,
    targets: Any = None,
    proxies: str | Iterable[str] | None = None,
    **options: Any,
) -> dict[str, float]:
    """Zero-cost proxy scores of one model: ``ZeroCostEvaluator(proxies, **options).score(...)``.

    Example:
        >>> import torch
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 16),
        ...                           torch.nn.ReLU(), torch.nn.Linear(16, 4))
        >>> x = torch.randn(8, 3, 2, 2, generator=torch.Generator().manual_seed(1))
        >>> scores = zero_cost_scores(net, x, proxies=("grad_norm", "jacob_cov"))
        >>> list(scores), all(isinstance(v, float) for v in scores.values())
        (['grad_norm', 'jacob_cov'], True)
    """
    return ZeroCostEvaluator(proxies, **options).score(model, inputs, targets)


# -- helpers ---------------------------------------------------------------------------------


def _check_proxies(proxies: str | Iterable[str] | None) -> tuple[str, ...]:
    if proxies is None:
        return PROXIES
    names = (proxies,) if isinstance(proxies, str) else tuple(proxies)
    unknown = [p for p in names if p not in PROXIES]
    if unknown:
        raise ValueError(
            f"unknown proxy name(s) {', '.join(map(repr, unknown))}; valid: {', '.join(PROXIES)}"
        )
    if not names:
        raise ValueError(f"no proxy asked for; valid: {', '.join(PROXIES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"a proxy is named twice in {names!r}")
    return names


@functools.cache
def _stream_seed(seed: int, stream: int) -> int:
    import numpy as np

    child = np.random.SeedSequence(seed).spawn(stream + 1)[stream]
    return int(child.generate_state(1, np.uint64)[0] >> np.uint64(1))


def _describe(obj: Any) -> str:
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    return repr(name) if name else type(obj).__name__


def _model_device(model: Any) -> Any:
    import torch

    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _model_dtype(model: Any) -> Any:
    import torch

    for t in model.parameters():
        if t.is_floating_point():
            return t.dtype
    return torch.get_default_dtype()


def _weight_layers(model: Any) -> list[Any]:
    from torch import nn

    return [
        m
        for m in model.modules()
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)) and m.weight is not None
    ]


def _identity(x: Any, *args: Any, **kwargs: Any) -> Any:
    return x


def _total(parts: Iterable[Any]) -> float:
    """The float64 sum of per-layer scalar tensors, with one device sync."""
    import torch

    parts = list(parts)
    if not parts:
        return 0.0
    return float(torch.stack([p.to(torch.float64) for p in parts]).sum())


def _forward(model: Any, x: Any, acts: Any, recorder: Any) -> Any:
    import contextlib

    with contextlib.ExitStack() as stack:
        if acts is not None:
            stack.enter_context(acts)
        if recorder is not None:
            stack.enter_context(recorder)
        return model(x)


def _grasp(
    weights: list[Any],
    grads: list[Any],
    constant: Sequence[Any] | None,
    others: Sequence[Any],
    *,
    retain: bool,
) -> float:
    """Σ -W ⊙ H g from the differentiable gradients `grads`; g is `constant` (the gradient of
    an earlier pass) when given, else the gradients' own values. H g is also computed for
    `others` (NASLib's passes differentiate every parameter), and not read."""
    import torch

    held = constant if constant is not None else [None] * len(grads)
    triples = [
        (w, g, c if c is not None else g.detach())
        for w, g, c in zip(weights, grads, held, strict=True)
        if g is not None and g.requires_grad
    ]
    if not triples:
        return 0.0
    z = sum((c * g).sum() for _, g, c in triples)
    hg = torch.autograd.grad(
        z, [*(w for w, _, _ in triples), *others], retain_graph=retain, allow_unused=True
    )
    return _total(
        (-w.detach() * h).sum()
        for (w, _, _), h in zip(triples, hg[: len(triples)], strict=True)
        if h is not None
    )


def _jacob_cov(gx: Any) -> float:
    import numpy as np

    jac = gx.detach().reshape(gx.shape[0], -1).to("cpu").double().numpy()
    if jac.shape[0] < 2:
        raise ValueError("jacob_cov needs a batch of at least 2 inputs")
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.corrcoef(jac)
        if not np.all(np.isfinite(corr)):
            return math.nan  # an input whose gradient is constant has no correlation
        # The correlation matrix is symmetric: eigvalsh, where NASLib calls eig (the same
        # eigenvalues to rounding, and never a complex pair from rounding noise).
        eig = np.linalg.eigvalsh(corr)
        return float(-np.sum(np.log(eig + _JACOB_COV_K) + 1.0 / (eig + _JACOB_COV_K)))


def _named_state(model: Any) -> dict[str, Any]:
    """Every parameter and buffer by name (a tied tensor once, under its first name)."""
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


def _weight_keys(model: Any) -> list[str]:
    """The state names of the conv / linear weights, one per module (as NASLib counts them)."""
    names = {id(p): k for k, p in model.named_parameters()}
    return [names[id(m.weight)] for m in _weight_layers(model) if id(m.weight) in names]


def _bypassed_batch_norm(model: Any) -> Any:
    """Batch norm as the identity while the context lasts (synflow scores the network
    without it, as NASLib does)."""
    import contextlib

    from torch import nn

    @contextlib.contextmanager
    def bypass():
        patched = []
        try:
            for m in model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    patched.append((m, m.__dict__.get("forward")))
                    m.forward = _identity
            yield
        finally:
            for m, own in patched:
                if own is None:
                    del m.forward
                else:
                    m.forward = own

    return bypass()


def _gaussian_state(model: Any, gen: Any) -> dict[str, Any]:
    """Zen-NAS's initialisation, as a new state for functional_call: conv / linear weights
    N(0, 1) drawn in module order, their biases 0, norm weights 1 and biases 0, batch-norm
    running statistics as in a freshly built network; other tensors copied."""
    import torch
    from torch import nn

    state = {k: v.detach().clone() for k, v in _named_state(model).items()}
    names = {id(t): k for k, t in _named_state(model).items()}
    drawn: set[str] = set()

    def key(t: Any) -> str | None:
        return names.get(id(t)) if t is not None else None

    for m in model.modules():
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
            w = key(m.weight)
            if w is not None and w not in drawn:
                drawn.add(w)
                state[w] = torch.randn(m.weight.shape, generator=gen, dtype=m.weight.dtype).to(
                    m.weight.device
                )
            if key(m.bias) is not None:
                state[key(m.bias)].zero_()
        elif isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm)):
            if key(m.weight) is not None:
                state[key(m.weight)].fill_(1.0)
            if key(m.bias) is not None:
                state[key(m.bias)].zero_()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            for buffer, fresh in (
                ("running_mean", 0),
                ("running_var", 1),
                ("num_batches_tracked", 0),
            ):
                k = key(getattr(m, buffer, None))
                if k is not None:
                    state[k].fill_(fresh)
    return state


def _zen_value(model: Any, state: dict[str, Any], first: Any, second: Any, mixup: float) -> float:
    """The Zen-score of `model` with the tensors of `state` swapped in (updated: batch-norm
    running statistics), in training mode, on the inputs `first` and `first + mixup * second`."""
    import torch
    from torch import nn
    from torch.func import functional_call

    tap = _PoolInputTap(model)
    with _Preserved(model, buffers=False), torch.no_grad():
        model.train()
        features = tap.features(lambda x: functional_call(model, state, (x,)), first)
        mixed = tap.features(lambda x: functional_call(model, state, (x,)), first + mixup * second)
        diff = (features - mixed).abs().flatten(1).sum(1).mean()
    names = {id(t): k for k, t in model.named_buffers()}
    log_bn = 0.0
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m.running_var) in names:
            log_bn += 0.5 * _log(float(state[names[id(m.running_var)]].mean()))
    return _log(float(diff)) + log_bn


def _log(x: float) -> float:
    """log, -inf at 0 (torch.log's value; a network whose features ignore the input)."""
    return math.log(x) if x > 0 else -math.inf if x == 0 else math.nan


class _OutputTaps:
    """Forward hooks that keep each conv / linear output, for its gradient (fisher)."""

    def __init__(self, layers: list[Any], *, copies: bool = False) -> None:
        self._layers = layers
        self._copies = copies
        self._handles: list[Any] = []
        # (layer index, output tensor, its version when recorded)
        self.taps: list[tuple[int, Any, int]] = []

    def __enter__(self) -> _OutputTaps:
        self.taps = []
        self._handles = [m.register_forward_hook(self._hook(i)) for i, m in enumerate(self._layers)]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def _hook(self, index: int):
        def hook(_module: Any, _args: Any, output: Any) -> Any:
            self.taps.append((index, output, output._version))
            # The copy goes downstream, the tapped output stays as the layer computed it.
            return output.clone() if self._copies else None

        return hook

    def modified(self) -> bool:
        return any(t._version != v for _, t, v in self.taps)

    def tensors(self) -> list[Any]:
        return [t for _, t, _ in self.taps]

    def fisher(self, grads: Sequence[Any]) -> float:
        per_layer: dict[int, Any] = {}
        for (index, act, _), grad in zip(self.taps, grads, strict=False):
            if grad is None:
                continue
            act, grad = act.detach(), grad.detach()
            g_nk = (act * grad).sum(tuple(range(2, act.dim()))) if act.dim() > 2 else act * grad
            del_k = g_nk.pow(2).mean(0).mul(0.5)
            per_layer[index] = per_layer[index] + del_k if index in per_layer else del_k
        parts = []
        for index, channel in per_layer.items():
            weight = self._layers[index].weight
            per_channel = math.prod(weight.shape[1:])
            parts.append(channel.abs().sum() * per_channel)
        return _total(parts)


class _PoolInputTap:
    """The features before global average pooling: the input of the last adaptive average
    pooling module to run, else the model's output."""

    def __init__(self, net: Any) -> None:
        from torch import nn

        pools = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
        self._pools = [m for m in net.modules() if isinstance(m, pools)]

    def features(self, forward: Callable[[Any], Any], x: Any) -> Any:
        seen: list[Any] = []
        handles = [
            m.register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
            for m in self._pools
        ]
        try:
            out = forward(x)
        finally:
            for h in handles:
                h.remove()
        return seen[-1] if seen else out


class _Preserved:
    """Restores a model's training modes, its buffers (unless ``buffers=False``) and the
    ``requires_grad`` flags of `weights` on exit."""

    def __init__(self, model: Any, weights: Sequence[Any] = (), *, buffers: bool = True) -> None:
        self._model = model
        self._weights = weights
        self._keep_buffers = buffers

    def __enter__(self) -> _Preserved:
        self._modes = [(m, m.training) for m in self._model.modules()]
        self._buffers = (
            [(b, b.detach().clone()) for b in self._model.buffers()] if self._keep_buffers else []
        )
        self._flags = [(w, w.requires_grad) for w in self._weights]
        return self

    def __exit__(self, *exc: object) -> None:
        import torch

        for m, mode in self._modes:
            m.training = mode
        with torch.no_grad():
            for b, saved in self._buffers:
                b.copy_(saved)
        for w, flag in self._flags:
            w.requires_grad_(flag)


def _deterministic(device: Any) -> Any:
    import contextlib

    import torch

    if getattr(device, "type", str(device)) != "cuda":
        return contextlib.nullcontext()
    cudnn = torch.backends.cudnn
    return cudnn.flags(
        enabled=cudnn.enabled, benchmark=False, deterministic=True, allow_tf32=cudnn.allow_tf32
    )
