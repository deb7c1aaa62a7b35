"""The offline datasets: shapes, splits that do not overlap, determinism."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def _no_overlap(data) -> None:
    def rows(x):
        return {tuple(r.flatten().tolist()) for r in x}

    train, val, test = rows(data.x_train), rows(data.x_val), rows(data.x_test)
    assert not (train & val)
    assert not (train & test)
    assert not (val & test)


def test_digits():
    pytest.importorskip("sklearn", reason="digits needs scikit-learn")
    from airda.nas.data import digits

    data = digits(seed=1)
    assert data.x_train.shape[1:] == (1, 8, 8)
    assert data.dims == 2
    assert data.in_channels == 1
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == 1797
    assert data.x_train.dtype == torch.float32
    assert data.y_train.dtype == torch.int64
    assert float(data.x_train.min()) >= 0.0
    assert float(data.x_train.max()) <= 1.0
    assert set(data.y_train.tolist()) == set(range(10))
    _no_overlap(data)
    again = digits(seed=1)
    assert torch.equal(again.x_val, data.x_val)
    assert not torch.equal(digits(seed=2).y_test, data.y_test)
    assert "digits" in repr(data)
    with pytest.raises(ValueError, match="val_fraction"):
        digits(val_fraction=1.5)


def test_mnist1d_is_generated_offline():
    pytest.importorskip("mnist1d", reason="pip install mnist1d")
    from airda.nas.data import mnist1d

    data = mnist1d(seed=0, num_samples=500)
    assert data.x_train.shape[1:] == (1, 40)
    assert data.dims == 1
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (320, 80, 100)
    _no_overlap(data)
    assert torch.equal(mnist1d(seed=0, num_samples=500).x_test, data.x_test)
    with pytest.raises(ValueError, match="num_samples"):
        mnist1d(num_samples=3)
