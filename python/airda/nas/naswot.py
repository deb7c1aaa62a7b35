"""The NASWOT score (Mellor et al., "Neural Architecture Search without Training", ICML 2021).

One forward pass of a mini-batch through an untrained network; each ReLU's input is reduced to
a binary code per sample (which units are active), and the score is ``log|det K|`` of the
kernel K[i, j] = number of units, over all ReLUs, on which samples i and j agree. Networks
whose activation patterns tell the samples apart score higher and tend to train better.

The codes are packed 64 units to a word as each ReLU runs, so activations are never kept, and
K is one XOR/popcount Gram matrix over the codes of every layer at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airda.ops.hamming_gram import hamming_gram
from airda.ops.pack_sign_bits import pack_sign_bits

__all__ = ["SignCodeRecorder", "naswot_score"]


def naswot_score(
    model: Any,
    batch: Any,
    *,
    backend: str | None = None,
    activations: Sequence[type] | None = None,
) -> float:
    """Score an untrained network by the diversity of its ReLU activation patterns.

    The forward pass runs under ``torch.no_grad()`` in the model's current mode: the paper
    scores networks in training mode (batch-norm uses batch statistics), so call
    ``model.train()`` first to reproduce it. Hooks are removed afterwards, even on error.

    Args:
        model: any ``torch.nn.Module`` with at least one activation module that runs.
        batch: the input, a tensor whose first dimension is the batch (N >= 1), or a tuple of
            positional inputs.
        backend: force the backend of the sign-code ops (see :func:`airda.ops.pack_sign_bits`).
        activations: module types to hook; default ``(torch.nn.ReLU,)``. Functional calls
            such as ``torch.relu`` inside ``forward`` cannot be hooked and are not counted.

    Returns:
        ``log|det K|`` as a float; ``-inf`` when K is singular (two samples look identical).

    Raises:
        TypeError: `model` is not an ``nn.Module``.
        ValueError: no activation module exists or runs, or activations disagree on the batch
            size.

    Example:
        >>> import torch
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.ReLU(), torch.nn.Linear(64, 3))
        >>> round(naswot_score(net, torch.randn(8, 4)), 1) > 0
        True
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    recorder = SignCodeRecorder(model, activations=activations, backend=backend)
    inputs = tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)
    with recorder, torch.no_grad():
        model(*inputs)
    return recorder.score()


class SignCodeRecorder:
    """Forward hooks that pack each activation module's input signs as the model runs.

    Used as a context manager around one forward pass (the hooks are removed on exit, even on
    error); :meth:`score` then gives the NASWOT score of what ran. The zero-cost evaluator
    (:mod:`airda.nas.proxies`) uses it to score NASWOT on a forward pass it shares with other
    proxies.

    Raises:
        ValueError: at construction, when `model` has no module of the `activations` types.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.ReLU())
        >>> x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
        >>> with SignCodeRecorder(net) as codes:
        ...     loss = net(x).sum()  # any forward pass, with or without gradients
        >>> codes.score() == naswot_score(net, x)
        True
    """

    def __init__(
        self,
        model: Any,
        *,
        activations: Sequence[type] | None = None,
        backend: str | None = None,
    ) -> None:
        import torch

        kinds = tuple(activations) if activations is not None else (torch.nn.ReLU,)
        self._hooked = [(name, m) for name, m in model.named_modules() if isinstance(m, kinds)]
        if not self._hooked:
            names = ", ".join(k.__name__ for k in kinds)
            raise ValueError(
                f"{type(model).__name__} has no {names} module; NASWOT scores the activation "
                "patterns of ReLU modules (functional relu calls cannot be hooked)"
            )
        self._backend = backend
        self._handles: list[Any] = []
        self._codes: list[Any] = []
        self._units = 0
        self._batch_size: int | None = None

    def __enter__(self) -> SignCodeRecorder:
        self._codes, self._units, self._batch_size = [], 0, None
        self._handles = [m.register_forward_hook(self._hook(name)) for name, m in self._hooked]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def _hook(self, name: str):
        def hook(_module: Any, args: tuple[Any, ...], _output: Any) -> None:
            x = args[0].detach()
            if x.dim() == 0:
                raise ValueError(f"activation {name!r} got a scalar input; NASWOT needs a batch")
            rows = x.shape[0]
            if self._batch_size is None:
                self._batch_size = rows
            elif rows != self._batch_size:
                raise ValueError(
                    f"activation {name!r} sees {rows} samples, earlier ones saw "
                    f"{self._batch_size}: NASWOT needs the batch dimension first in every "
                    "activation"
                )
            # Inputs and outputs of a ReLU share signs, so an in-place ReLU is fine here.
            flat = x.reshape(rows, -1)
            if flat.shape[1] == 0:
                return
            self._codes.append(pack_sign_bits(flat.contiguous(), backend=self._backend))
            self._units += flat.shape[1]

        return hook

    def score(self) -> float:
        """``log|det K|`` over the codes recorded by the last forward pass."""
        import torch

        if not self._codes:
            raise ValueError("no activation module ran during the forward pass")
        all_codes = _concat_codes(self._codes)
        # Each layer's codes are padded to whole words with zero bits, which agree between any
        # two samples: K over the padded width exceeds the true K by exactly the padding.
        padded_units = all_codes.shape[1] * 64
        k = hamming_gram(all_codes, padded_units, backend=self._backend)
        k = torch.as_tensor(k).to(device="cpu", dtype=torch.float64)
        k = k - (padded_units - self._units)
        _, logabsdet = torch.linalg.slogdet(k)
        return float(logabsdet)


def _concat_codes(codes: list[Any]) -> Any:
    if len(codes) == 1:
        return codes[0]
    import numpy as np

    if isinstance(codes[0], np.ndarray):
        return np.concatenate(codes, axis=1)
    import torch

    # torch has few kernels for uint64; int64 views share the bits and concatenate anywhere.
    return torch.cat([c.view(torch.int64) for c in codes], dim=1).view(torch.uint64)
