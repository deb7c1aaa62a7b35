"""Small real datasets that need no download: MNIST-1D and scikit-learn's digits.

- :func:`mnist1d`: MNIST-1D (Greydanus, 2020), built by the ``mnist1d`` package's generator
  (``mnist1d.data.make_dataset``; its downloader is never called). Ten digit templates are
  padded, sheared, scaled, translated, corrupted with correlated noise and sampled at 40
  points: sequences of shape ``(1, 40)``. ``pip install mnist1d`` (or ``airda[nas]``).
- :func:`digits`: scikit-learn's bundled 8x8 handwritten digits (1,797 images), scaled to
  [0, 1]: images of shape ``(1, 8, 8)``. Needs scikit-learn.

Both return a :class:`Dataset` of torch tensors with a validation split carved from the
training data, so that a search selects on validation data and reports on an untouched test
split.

Example:
    >>> from airda.nas.data import digits
    >>> data = digits(seed=0)
    >>> data.x_train.shape[1:], data.num_classes, len(data.y_test)
    (torch.Size([1, 8, 8]), 10, 359)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Dataset", "digits", "mnist1d"]


@dataclass(frozen=True)
class Dataset:
    """Train / validation / test splits as torch tensors (inputs float32, labels int64)."""

    name: str
    x_train: Any
    y_train: Any
    x_val: Any
    y_val: Any
    x_test: Any
    y_test: Any
    num_classes: int

    @property
    def dims(self) -> int:
        """1 for sequences ``(N, C, L)``, 2 for images ``(N, C, H, W)``."""
        return int(self.x_train.dim()) - 2

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    def to(self, device: Any) -> Dataset:
        """The same splits on `device`."""
        moved = {k: getattr(self, k).to(device) for k in _SPLITS}
        return Dataset(name=self.name, num_classes=self.num_classes, **moved)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={len(getattr(self, 'y_' + s))}" for s in ("train", "val", "test"))
        return f"Dataset({self.name!r}, {sizes}, input={tuple(self.x_train.shape[1:])})"


_SPLITS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def _split(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    val_fraction: float,
    seed: int,
) -> Dataset:
    import torch

    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    order = np.random.default_rng(seed).permutation(len(y_train))
    n_val = max(1, round(val_fraction * len(y_train)))
    val, train = order[:n_val], order[n_val:]

    def xt(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)

    def yt(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a), dtype=torch.int64)

    return Dataset(
        name=name,
        x_train=xt(x_train[train]),
        y_train=yt(y_train[train]),
        x_val=xt(x_train[val]),
        y_val=yt(y_train[val]),
        x_test=xt(x_test),
        y_test=yt(y_test),
        num_classes=10,
    )


def mnist1d(seed: int = 0, *, num_samples: int = 5000, val_fraction: float = 0.2) -> Dataset:
    """MNIST-1D generated on this machine (no download).

    Args:
        seed: the generator's seed (the paper's dataset uses 42) and the validation split's.
        num_samples: examples generated; 80% train (of which `val_fraction` becomes the
            validation split), 20% test, as the generator splits them.
        val_fraction: share of the generated training examples held out for validation.

    Returns:
        A :class:`Dataset` with inputs ``(N, 1, 40)``: with the defaults, 3,200 train, 800
        validation and 1,000 test sequences.

    Raises:
        ImportError: the ``mnist1d`` package is not installed (``pip install mnist1d``).
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "airda.nas.data.mnist1d needs the mnist1d package: pip install mnist1d"
        ) from e
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 10:
        raise ValueError(f"num_samples must be an int >= 10, got {num_samples!r}")
    args = get_dataset_args()
    args.seed = int(seed)
    args.num_samples = num_samples
    data = make_dataset(args)
    return _split(
        "mnist1d",
        np.asarray(data["x"])[:, None, :],
        np.asarray(data["y"]),
        np.asarray(data["x_test"])[:, None, :],
        np.asarray(data["y_test"]),
        val_fraction,
        seed,
    )


def digits(seed: int = 0, *, test_fraction: float = 0.2, val_fraction: float = 0.2) -> Dataset:
    """scikit-learn's 8x8 digits, pixel values scaled to [0, 1].

    Args:
        seed: seed of the random test and validation splits.
        test_fraction: share of the 1,797 images held out for test.
        val_fraction: share of the rest held out for validation.

    Returns:
        A :class:`Dataset` with inputs ``(N, 1, 8, 8)``: with the defaults, 1,150 train, 288
        validation and 359 test images.

    Raises:
        ImportError: scikit-learn is not installed.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("airda.nas.data.digits needs scikit-learn") from e
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    bunch = load_digits()
    x = (np.asarray(bunch.images, dtype=np.float32) / 16.0)[:, None, :, :]
    y = np.asarray(bunch.target)
    order = np.random.default_rng(seed + 1_000_003).permutation(len(y))
    n_test = round(test_fraction * len(y))
    test, rest = order[:n_test], order[n_test:]
    return _split("digits", x[rest], y[rest], x[test], y[test], val_fraction, seed)
