"""A deep tabular generator: TVAE (Xu et al., NeurIPS 2019), class-conditional, in torch.

The model sees each row as the concatenation of

- per numerical model column, its mode-specific normalisation (:mod:`airda.synth._gmm`): a
  scalar ``alpha`` in [-1, 1] and a one-hot mode of a variational Gaussian mixture;
- per categorical model column, a one-hot category.

An encoder MLP maps a row to a Gaussian over the latent space; a decoder MLP maps a latent vector
back to ``tanh``-squashed scalars (a Gaussian likelihood with a learned width per column) and
softmax logits (modes and categories). The loss is TVAE's: ``loss_factor`` times the
reconstruction negative log-likelihood plus ``kl_weight`` times the KL divergence to N(0, I),
both averaged over the batch.

Class-conditional: one categorical column (``condition_column``; by default the metadata's
target when it is categorical) is given to both encoder and decoder as a one-hot input (a
conditional VAE) and is not generated; sampling draws it from its training frequencies or takes
it from the conditions, so a condition on that column holds exactly, by construction. Other
conditions (other categorical columns, numerical columns) raise an error: the decoder has no way
to honour them without rejection.

The core works on plain arrays (:class:`TVAEModel`); :class:`TVAE` is the
:class:`~airda.synth.Synthesizer` around it.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from airda.synth._base import Synthesizer
from airda.synth._gmm import ModeNormalizer
from airda.synth._metadata import SynthDataError

if TYPE_CHECKING:  # pragma: no cover
    from airda.synth._table import Encoded

__all__ = ["TVAE", "TVAEModel"]

_DISCRETE_SAMPLING = ("sample", "argmax")


def _resolve_device(device: str) -> Any:
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device {device!r} is not a torch device ('auto', 'cpu', 'cuda')"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available on this machine")
    return dev


def _check_hyperparameters(hp: dict[str, Any]) -> None:
    def positive_int(name: str) -> None:
        v = hp[name]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")

    def positive_float(name: str, allow_zero: bool = False) -> None:
        v = hp[name]
        ok = isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and math.isfinite(v)
        if not ok or v < 0 or (v == 0 and not allow_zero):
            raise ValueError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} "
                             f"number, got {v!r}")  # fmt: skip

    for name in ("epochs", "batch_size", "latent_dim", "n_modes", "gmm_max_rows"):
        positive_int(name)
    for name in ("encoder_dims", "decoder_dims"):
        dims = hp[name]
        if not isinstance(dims, (list, tuple)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1 for d in dims
        ):
            raise ValueError(f"{name} must be a sequence of positive integers, got {dims!r}")
    positive_float("learning_rate")
    positive_float("loss_factor")
    positive_float("weight_decay", allow_zero=True)
    positive_float("kl_weight", allow_zero=True)
    if hp["max_seconds"] is not None:
        positive_float("max_seconds")
    if hp["cpu_threads"] is not None:
        positive_int("cpu_threads")
    if hp["discrete_sampling"] not in _DISCRETE_SAMPLING:
        raise ValueError(
            f"discrete_sampling must be one of {_DISCRETE_SAMPLING}, got {hp['discrete_sampling']!r}"
        )


@contextlib.contextmanager
def _torch_threads(n: int | None, device: Any) -> Iterator[None]:
    """Run with `n` intra-op CPU threads (restored after); None or a GPU device: unchanged."""
    import torch

    if n is None or device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _Adam:
    """Adam with L2 weight decay, the update of ``torch.optim.Adam`` (amsgrad off).

    Written out because constructing ``torch.optim.Adam`` imports ``torch._dynamo``, which
    takes 2-5 s on a 2-core machine: longer than fitting a small table.
    """

    def __init__(self, params: list[Any], lr: float, weight_decay: float, betas=(0.9, 0.999)):
        import torch

        self.params = params
        self.lr, self.wd, (self.b1, self.b2), self.eps = lr, weight_decay, betas, 1e-8
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        import torch

        self.t += 1
        c1 = 1 - self.b1**self.t
        c2 = math.sqrt(1 - self.b2**self.t)
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v, strict=True):
                if p.grad is None:
                    continue
                g = p.grad if self.wd == 0 else p.grad.add(p, alpha=self.wd)
                m.lerp_(g, 1 - self.b1)
                v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
                p.addcdiv_(m, v.sqrt().div_(c2).add_(self.eps), value=-self.lr / c1)


def _mlp(sizes: Sequence[int]) -> Any:
    from torch import nn

    layers: list[Any] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class _Net:
    """Encoder and decoder modules (built under a fixed seed, on the CPU, then moved)."""

    def __init__(self, d_in: int, d_cond: int, d_out: int, d_alpha: int, hp: dict[str, Any]):
        import torch
        from torch import nn

        enc_dims = [d_in + d_cond, *hp["encoder_dims"]]
        dec_dims = [hp["latent_dim"] + d_cond, *hp["decoder_dims"]]
        self.encoder = _mlp(enc_dims)
        self.mu = nn.Linear(enc_dims[-1], hp["latent_dim"])
        self.logvar = nn.Linear(enc_dims[-1], hp["latent_dim"])
        self.decoder = nn.Sequential(_mlp(dec_dims), nn.Linear(dec_dims[-1], max(d_out, 1)))
        self.sigma = nn.Parameter(torch.full((d_alpha,), 0.1))
        self.modules = nn.ModuleDict(
            {"encoder": self.encoder, "mu": self.mu, "logvar": self.logvar, "decoder": self.decoder}
        )

    def parameters(self) -> list[Any]:
        return [*self.modules.parameters(), self.sigma]

    def to(self, device: Any) -> _Net:
        import torch

        self.modules.to(device)
        with torch.no_grad():
            self.sigma = torch.nn.Parameter(self.sigma.detach().to(device))
        return self

    def state_dict(self) -> dict[str, Any]:
        sd = {k: v.detach().cpu().numpy() for k, v in self.modules.state_dict().items()}
        sd["sigma"] = self.sigma.detach().cpu().numpy()
        return sd

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        import torch

        self.modules.load_state_dict(
            {k: torch.from_numpy(np.asarray(v)) for k, v in sd.items() if k != "sigma"}
        )
        with torch.no_grad():
            self.sigma.copy_(torch.from_numpy(np.asarray(sd["sigma"])))


class TVAEModel:
    """TVAE on arrays: numbers ``(n, d_num)`` float and category codes ``(n, d_cat)`` int.

    Hyperparameters are those of :class:`TVAE` (see there). :meth:`fit` then :meth:`sample`.

    Args:
        seed: Seeds the mixture subsample, the network's initialisation, the batches and the
            reparameterisation noise: the same seed on the same data gives the same model on CPU.
        **hp: The hyperparameters of :class:`TVAE` except ``condition_column`` and ``device``
            (here ``cond_index``, the categorical column to condition on or None, and
            ``device``, a string).
    """

    def __init__(self, *, seed: int = 0, cond_index: int | None = None, **hp: Any):
        self.seed = int(seed)
        self.cond_index = cond_index
        self.hp = dict(_DEFAULTS)
        unknown = set(hp) - set(_DEFAULTS)
        if unknown:
            raise TypeError(f"unknown TVAE hyperparameter(s): {sorted(unknown)}")
        self.hp.update(hp)
        _check_hyperparameters(self.hp)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if "net_" in state:  # tensors as CPU arrays, so that a CUDA-trained model loads anywhere
            state["net_"] = state["net_"].state_dict()
            state["device_"] = str(state["device_"])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import torch

        self.__dict__.update(state)
        if "net_" in state:
            try:
                self.device_ = _resolve_device(self.hp["device"])
            except ValueError:  # trained on a GPU this machine lacks: sample on the CPU
                self.device_ = torch.device("cpu")
            with torch.random.fork_rng(devices=[]):
                net = _Net(self.d_out_, self.d_cond_, self.d_out_, self.d_num_, self.hp)
            net.load_state_dict(state["net_"])
            self.net_ = net.to(self.device_)

    # ------------------------------------------------------------------ layout
    def _layout(self, cat_sizes: Sequence[int]) -> None:
        d_num = self.d_num_
        others = [j for j in range(len(cat_sizes)) if j != self.cond_index]
        self.other_cats_ = others
        sizes = list(self.normalizer_.n_modes) + [int(cat_sizes[j]) for j in others]
        self.group_sizes_ = sizes
        # Logits of groups of equal size sit side by side, so that the loss reads each size's
        # block as a (batch, groups, size) view: no gather, whose backward is slow on a CPU.
        order = np.argsort(np.asarray(sizes, dtype=np.int64), kind="stable")
        offsets = np.zeros(len(sizes), dtype=np.int64)
        offsets[order] = np.concatenate([[0], np.cumsum(np.asarray(sizes)[order])[:-1]])
        self.group_offsets_ = offsets
        self.d_logits_ = int(sum(sizes))
        self.d_out_ = d_num + self.d_logits_
        self.d_cond_ = int(cat_sizes[self.cond_index]) if self.cond_index is not None else 0

    def _targets(self, modes: np.ndarray, cat: np.ndarray) -> np.ndarray:
        """Codes of every softmax group, ``(n, G)`` int64."""
        return np.concatenate([modes, cat[:, self.other_cats_]], axis=1).astype(np.int64)

    def _one_hot_input(self, alpha: Any, codes: Any) -> Any:
        import torch

        n = alpha.shape[0]
        x = torch.zeros((n, self.d_out_), dtype=torch.float32, device=alpha.device)
        x[:, : self.d_num_] = alpha
        if codes.shape[1]:
            offs = torch.as_tensor(self.group_offsets_, device=alpha.device) + self.d_num_
            rows = torch.arange(n, device=alpha.device)[:, None]
            x[rows, offs[None, :] + codes] = 1.0
        return x

    def _group_index(self, device: Any) -> list[tuple[Any, int, int, int]]:
        """Blocks of equal-size groups: (group ids by offset, first column, groups, size)."""
        import torch

        out = []
        sizes = np.asarray(self.group_sizes_, dtype=np.int64)
        for s in np.unique(sizes):
            gid = np.flatnonzero(sizes == s)
            gid = gid[np.argsort(self.group_offsets_[gid])]
            start = int(self.group_offsets_[gid[0]]) + self.d_num_
            out.append((torch.as_tensor(gid, device=device), start, gid.size, int(s)))
        return out

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        num: np.ndarray,
        cat: np.ndarray,
        cat_sizes: Sequence[int],
        *,
        progress: Any = None,
    ) -> TVAEModel:
        """Fit the mixtures and train the network.

        Args:
            num: Finite numbers, ``(n, d_num)``.
            cat: Category codes in ``[0, cat_sizes[j])``, ``(n, d_cat)``.
            cat_sizes: Number of categories of each categorical column.
            progress: Optional callable ``(epoch, loss)`` called after each epoch.
        """
        t0 = time.perf_counter()
        dev = _resolve_device(self.hp["device"])
        with _torch_threads(self.hp["cpu_threads"], dev):
            return self._fit(num, cat, cat_sizes, progress, t0)

    def _fit(
        self, num: Any, cat: Any, cat_sizes: Sequence[int], progress: Any, t0: float
    ) -> TVAEModel:
        import torch

        num = np.asarray(num, dtype=np.float64)
        cat = np.asarray(cat, dtype=np.int64)
        n = num.shape[0]
        if num.ndim != 2 or cat.ndim != 2 or cat.shape[0] != n:
            raise ValueError(
                f"num and cat must be 2-D with the same rows, got {num.shape} and {cat.shape}"
            )
        if cat.shape[1] != len(cat_sizes):
            raise ValueError(f"cat has {cat.shape[1]} columns but cat_sizes has {len(cat_sizes)}")
        if n == 0:
            raise ValueError("cannot fit on an empty table")
        if not np.all(np.isfinite(num)):
            raise ValueError("num holds NaN or inf; the encoder must remove missing values first")
        for j, s in enumerate(cat_sizes):
            if s < 1 or (n and (cat[:, j].min() < 0 or cat[:, j].max() >= s)):
                raise ValueError(f"categorical column {j}: codes outside [0, {s})")
        if self.cond_index is not None and not 0 <= self.cond_index < len(cat_sizes):
            raise ValueError(f"cond_index {self.cond_index} is not a categorical column")
        hp = self.hp
        self.device_ = _resolve_device(hp["device"])
        rng = np.random.default_rng(self.seed)
        self.d_num_ = num.shape[1]
        self.cat_sizes_ = [int(s) for s in cat_sizes]
        self.normalizer_ = ModeNormalizer(
            n_components=hp["n_modes"], max_rows=hp["gmm_max_rows"]
        ).fit(num, rng)
        alpha, modes = self.normalizer_.transform(num, rng)
        self._layout(cat_sizes)
        if self.cond_index is not None:
            counts = np.bincount(cat[:, self.cond_index], minlength=self.d_cond_)
            self.cond_freq_ = counts / counts.sum()
        else:
            self.cond_freq_ = None

        dev = self.device_
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = _Net(self.d_out_, self.d_cond_, self.d_out_, self.d_num_, hp)
        self.net_ = net.to(dev)
        self.epochs_run_ = 0
        self.loss_history_: list[float] = []
        self.stopped_by_time_ = False
        if self.d_out_ == 0:  # nothing but the condition column to generate
            self.fit_seconds_ = time.perf_counter() - t0
            return self

        a_t = torch.as_tensor(alpha, dtype=torch.float32, device=dev)
        codes_t = torch.as_tensor(self._targets(modes, cat), device=dev)
        if self.cond_index is not None:
            y_all = torch.nn.functional.one_hot(
                torch.as_tensor(cat[:, self.cond_index], device=dev), self.d_cond_
            ).float()
        else:
            y_all = None
        groups = self._group_index(dev)
        opt = _Adam(net.parameters(), lr=hp["learning_rate"], weight_decay=hp["weight_decay"])
        g_cpu = torch.Generator().manual_seed(self.seed)
        g_dev = g_cpu if dev.type == "cpu" else torch.Generator(device=dev).manual_seed(self.seed)
        bs = min(hp["batch_size"], n)
        deadline = None if hp["max_seconds"] is None else t0 + hp["max_seconds"]
        for epoch in range(hp["epochs"]):
            perm = torch.randperm(n, generator=g_cpu).to(dev)
            total, seen = torch.zeros((), device=dev), 0  # summed on the device: no sync a step
            for start in range(0, n, bs):
                idx = perm[start : start + bs]
                x = self._one_hot_input(a_t[idx], codes_t[idx])  # per batch: O(batch) memory
                y = y_all[idx] if y_all is not None else None
                loss = self._loss(net, x, y, a_t[idx], codes_t[idx], groups, g_dev)
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    net.sigma.clamp_(0.01, 1.0)
                total += loss.detach() * idx.shape[0]
                seen += idx.shape[0]
                if deadline is not None and time.perf_counter() >= deadline:
                    self.stopped_by_time_ = True
                    break
            self.epochs_run_ = epoch + 1
            mean_loss = float(total) / seen
            self.loss_history_.append(mean_loss)
            if progress is not None:
                progress(epoch + 1, mean_loss)
            if self.stopped_by_time_:
                break
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _loss(
        self, net: _Net, x: Any, y: Any, alpha: Any, codes: Any, groups: Any, gen: Any
    ) -> Any:
        import torch

        h = net.encoder(torch.cat([x, y], 1) if y is not None else x)
        mu, logvar = net.mu(h), net.logvar(h)
        eps = torch.randn(mu.shape, generator=gen, device=mu.device)
        z = mu + eps * torch.exp(0.5 * logvar)
        out = net.decoder(torch.cat([z, y], 1) if y is not None else z)
        b = x.shape[0]
        rec = out.new_zeros(())
        d = self.d_num_
        if d:
            sig = net.sigma
            rec = rec + (((alpha - torch.tanh(out[:, :d])) ** 2) / (2 * sig**2)).sum() / b
            rec = rec + torch.log(sig).sum()
        for gid, start, g, s in groups:
            logits = out[:, start : start + g * s].reshape(b, g, s)
            target = codes[:, gid].unsqueeze(-1)
            nll = torch.logsumexp(logits, -1) - logits.gather(-1, target).squeeze(-1)
            rec = rec + nll.sum() / b
        kld = -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp()) / b
        return self.hp["loss_factor"] * rec + self.hp["kl_weight"] * kld

    # ------------------------------------------------------------------ sample
    def sample(
        self, n: int, rng: np.random.Generator, cond_codes: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` rows: ``(num (n, d_num) float64, cat (n, d_cat) int64)``.

        Args:
            n: Rows to draw.
            rng: Source of the sampling seed.
            cond_codes: Codes ``(n,)`` of the condition column (exact in the output); None draws
                them from the training frequencies.
        """
        if not hasattr(self, "net_"):
            raise RuntimeError("TVAEModel.sample before fit")
        with _torch_threads(self.hp["cpu_threads"], self.device_):
            return self._sample(n, rng, cond_codes)

    def _sample(
        self, n: int, rng: np.random.Generator, cond_codes: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        import torch

        n = int(n)
        d_cat = len(self.cat_sizes_)
        if cond_codes is not None:
            if self.cond_index is None:
                raise ValueError("this model is not conditional; cond_codes must be None")
            cond_codes = np.asarray(cond_codes, dtype=np.int64).reshape(-1)
            if cond_codes.shape[0] != n:
                raise ValueError(f"cond_codes has {cond_codes.shape[0]} values for {n} rows")
            if cond_codes.size and (cond_codes.min() < 0 or cond_codes.max() >= self.d_cond_):
                raise ValueError(f"cond_codes outside [0, {self.d_cond_})")
        elif self.cond_index is not None:
            cond_codes = rng.choice(self.d_cond_, size=n, p=self.cond_freq_).astype(np.int64)
        seed = int(rng.integers(0, 2**63 - 1))
        dev = self.device_
        gen = torch.Generator(device=dev).manual_seed(seed)
        net = self.net_
        d = self.d_num_
        alpha = np.empty((n, d))
        group_codes = np.empty((n, len(self.group_sizes_)), dtype=np.int64)
        chunk = 8192
        argmax = self.hp["discrete_sampling"] == "argmax"
        with torch.no_grad():
            for s in range(0, n, chunk) if self.d_out_ else ():
                m = min(chunk, n - s)
                z = torch.randn((m, self.hp["latent_dim"]), generator=gen, device=dev)
                if self.cond_index is not None:
                    y = torch.nn.functional.one_hot(
                        torch.as_tensor(cond_codes[s : s + m], device=dev), self.d_cond_
                    ).float()
                    z = torch.cat([z, y], 1)
                out = net.decoder(z)
                a = torch.tanh(out[:, :d])
                a = a + net.sigma * torch.randn(a.shape, generator=gen, device=dev)
                alpha[s : s + m] = a.clamp(-1, 1).double().cpu().numpy()
                for k, (off, size) in enumerate(
                    zip(self.group_offsets_, self.group_sizes_, strict=True)
                ):
                    logits = out[:, d + off : d + off + size]
                    if argmax:
                        c = logits.argmax(1)
                    else:
                        c = torch.multinomial(torch.softmax(logits, 1), 1, generator=gen)[:, 0]
                    group_codes[s : s + m, k] = c.cpu().numpy()
        modes = group_codes[:, :d]
        num = self.normalizer_.inverse(alpha, modes) if d else np.empty((n, 0))
        cat = np.empty((n, d_cat), dtype=np.int64)
        if self.other_cats_:
            cat[:, self.other_cats_] = group_codes[:, d:]
        if self.cond_index is not None:
            cat[:, self.cond_index] = cond_codes
        return num, cat


_DEFAULTS: dict[str, Any] = {
    "epochs": 300,
    "batch_size": 500,
    "latent_dim": 128,
    "encoder_dims": (128, 128),
    "decoder_dims": (128, 128),
    "learning_rate": 1e-3,
    "weight_decay": 1e-5,
    "loss_factor": 2.0,
    "kl_weight": 1.0,
    "n_modes": 10,
    "gmm_max_rows": 10_000,
    "discrete_sampling": "sample",
    "max_seconds": None,
    "device": "auto",
    "cpu_threads": 1,
}


class TVAE(Synthesizer):
    """TVAE: a variational autoencoder for tables, conditional on one categorical column.

    Numerical columns are modelled through mode-specific normalisation (a variational Gaussian
    mixture per column, fitted on at most ``gmm_max_rows`` rows); the network trains on the GPU
    when there is one (``device="auto"``). One categorical column, ``condition_column``, is the
    condition of a conditional VAE: sampling with ``conditions`` on it is exact (e.g. a balanced
    label column for an imbalanced table); conditions on any other column raise
    :class:`~airda.synth.SynthDataError`.

    Args:
        seed: Seeds everything (mixture subsample, initialisation, batches, noise); on the CPU
            the same seed and data give the same samples.
        epochs: Passes over the data (TVAE's default 300).
        batch_size: Rows per step.
        latent_dim: Size of the latent space (TVAE's ``embedding_dim``).
        encoder_dims: Widths of the encoder's hidden layers.
        decoder_dims: Widths of the decoder's hidden layers.
        learning_rate: Adam's step size.
        weight_decay: Adam's L2 penalty (TVAE's ``l2scale``).
        loss_factor: Weight of the reconstruction term.
        kl_weight: Weight of the KL term.
        n_modes: Most mixture components per numerical column.
        gmm_max_rows: Rows (a random subsample) each column's mixture is fitted on.
        discrete_sampling: ``"sample"`` draws modes and categories from the decoder's softmax;
            ``"argmax"`` takes the most likely one, as the original TVAE does.
        max_seconds: Stop training once fitting has taken this long (None: run all
            ``epochs``), for comparisons at equal training time.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
            ``"cuda:1"``, ...
        cpu_threads: Intra-op threads torch uses on the CPU while fitting and sampling (set
            and restored around each call; None keeps torch's setting). One is the default
            because TVAE's layers are too small to gain from more, and on a loaded machine
            extra threads wait on each other (measured 10x slower with 2 threads on a busy
            2-core box).
        condition_column: The categorical column to condition on: ``"auto"`` takes the
            metadata's target when it is categorical or boolean (else none), None conditions on
            nothing.

    Attributes (after fit): ``fit_seconds``, ``epochs_run`` (fewer than ``epochs`` when
    ``max_seconds`` stopped training), ``loss_history`` (mean loss of each epoch),
    ``condition_column_`` (the resolved condition, or None), ``device_``.

    Example:
        >>> import numpy as np, pandas as pd
        >>> from airda.synth import TVAE
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame({"x": rng.normal(size=200), "label": rng.choice(["a", "b"], 200)})
        >>> model = TVAE(epochs=5, seed=0, condition_column="label").fit(df)
        >>> model.sample(6, conditions={"label": "b"})["label"].tolist()
        ['b', 'b', 'b', 'b', 'b', 'b']
    """

    defaults: ClassVar[dict[str, Any]] = {**_DEFAULTS, "condition_column": "auto"}
    numeric_conditions: ClassVar[bool] = False

    def _check_hyperparameters(self, hp: dict[str, Any]) -> None:
        _check_hyperparameters(hp)
        cc = hp["condition_column"]
        if cc is not None and not isinstance(cc, str):
            raise TypeError(f"condition_column must be a column name, 'auto' or None, got {cc!r}")

    @property
    def epochs_run(self) -> int:
        """Epochs trained (fewer than ``epochs`` when ``max_seconds`` stopped the training)."""
        self._check_fitted()
        return self._model.epochs_run_

    @property
    def loss_history(self) -> list[float]:
        """Mean training loss of each epoch."""
        self._check_fitted()
        return list(self._model.loss_history_)

    @property
    def device_(self) -> str:
        """The device the network trained (and samples) on."""
        self._check_fitted()
        return str(self._model.device_)

    def _resolve_condition(self, encoded: Encoded) -> tuple[str | None, int | None]:
        cc = self._hp["condition_column"]
        names = list(encoded.cat_names)
        if cc == "auto":
            target = self.metadata.target if self.metadata is not None else None
            if target is not None and target in names:
                return target, names.index(target)
            return None, None
        if cc is None:
            return None, None
        if cc not in names:
            kind = None
            if self.metadata is not None and cc in self.metadata.columns:
                kind = self.metadata.columns[cc].kind
            why = f"it is {kind}" if kind else "it is not a column of the table"
            raise SynthDataError(
                f"TVAE condition_column {cc!r} must be a categorical or boolean column; {why}",
                cc,
            )
        return cc, names.index(cc)

    def _fit(self, encoded: Encoded) -> None:
        from airda._logging import Progress

        name, index = self._resolve_condition(encoded)
        self.condition_column_ = name
        self._num_names = list(encoded.num_names)
        self._cat_names = list(encoded.cat_names)
        self._cat_sizes = [int(s) for s in encoded.cat_sizes]
        self._num_integer = list(encoded.num_integer)
        hp = {k: v for k, v in self._hp.items() if k != "condition_column"}
        model = TVAEModel(seed=self.seed, cond_index=index, **hp)
        total = hp["epochs"] if hp["max_seconds"] is None else None
        with Progress(total=total, desc="TVAE", unit="epoch") as bar:
            model.fit(
                encoded.num,
                encoded.cat,
                encoded.cat_sizes,
                progress=lambda epoch, loss: bar.update(1, loss=round(loss, 3)),
            )
        self._model = model

    def _sample(
        self,
        n: int,
        cond_cat: dict[int, np.ndarray],
        cond_num: dict[int, np.ndarray],
        rng: np.random.Generator,
    ) -> Encoded:
        from airda.synth._table import Encoded

        if cond_num:
            name = self._num_names[next(iter(cond_num))]
            raise SynthDataError(f"TVAE cannot condition on the numerical column {name!r}", name)
        index = self._model.cond_index
        other = [j for j in cond_cat if j != index]
        if other:
            name = self._cat_names[other[0]]
            hint = (
                f"it conditions on {self.condition_column_!r} only"
                if self.condition_column_ is not None
                else "it was fitted without a condition column"
            )
            raise SynthDataError(
                f"TVAE cannot condition on {name!r}: {hint}; refit with "
                f"condition_column={name!r}, or use GaussianCopula for several conditions",
                name,
            )
        num, cat = self._model.sample(n, rng, cond_cat.get(index) if index is not None else None)
        return Encoded(
            num=num,
            cat=cat,
            num_names=list(self._num_names),
            cat_names=list(self._cat_names),
            cat_sizes=list(self._cat_sizes),
            num_integer=list(self._num_integer),
        )
