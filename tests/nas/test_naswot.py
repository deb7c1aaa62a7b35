"""naswot_score against the paper's own float formulation, on every backend."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from airda.nas import naswot_score
from tests.helpers import COMPILED_BACKENDS, device_for, require_backend


def paper_naswot(model: nn.Module, x: torch.Tensor) -> float:
    """The NASWOT paper's computation: per ReLU, K += C C^T + (1-C)(1-C)^T; slogdet(K)."""
    k = torch.zeros(x.shape[0], x.shape[0], dtype=torch.float64)

    def hook(_m, args, _out):
        nonlocal k
        c = (args[0].detach().reshape(args[0].shape[0], -1) > 0).double().cpu()
        k = k + c @ c.T + (1 - c) @ (1 - c).T

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return float(torch.linalg.slogdet(k)[1])


def small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(inplace=True),
        nn.Conv2d(8, 13, 3, padding=1, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(13 * 5 * 5, 37),
        nn.ReLU(),
        nn.Linear(37, 10),
    )


def batch(n: int = 12, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, 9, 9, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("backend", [*COMPILED_BACKENDS, "reference", None])
def test_matches_the_papers_formulation(backend):
    if backend is not None and backend != "reference":
        require_backend(backend)
    device = device_for(backend) if backend else "cpu"
    model, x = small_cnn().to(device), batch().to(device)
    expected = paper_naswot(small_cnn(), batch())
    got = naswot_score(model, x, backend=backend)
    assert math.isfinite(got)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-9)


def test_deterministic_and_leaves_no_hooks():
    model, x = small_cnn().eval(), batch()
    first = naswot_score(model, x)
    assert naswot_score(model, x) == first
    assert all(not m._forward_hooks for m in model.modules())


def test_hooks_are_removed_when_the_forward_pass_fails():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.ReLU()

        def forward(self, x):
            self.act(x)
            raise RuntimeError("user model failed")

    model = Broken()
    with pytest.raises(RuntimeError, match="user model failed"):
        naswot_score(model, torch.randn(4, 5))
    assert not model.act._forward_hooks


def test_identical_samples_give_minus_infinity():
    x = torch.randn(1, 3, 9, 9).repeat(4, 1, 1, 1)
    assert naswot_score(small_cnn(), x) == -math.inf


def test_tuple_batch_and_custom_activation_types():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(5, 70)
            self.b = nn.Linear(3, 70)
            self.act = nn.ReLU6()

        def forward(self, u, v):
            return self.act(self.a(u) + self.b(v))

    torch.manual_seed(0)
    model = TwoInputs()
    u, v = torch.randn(6, 5), torch.randn(6, 3)
    with pytest.raises(ValueError, match="has no ReLU module"):
        naswot_score(model, (u, v))
    score = naswot_score(model, (u, v), activations=(nn.ReLU6,))
    h = (model.a(u) + model.b(v)).detach()
    c = (h > 0).double()
    k = c @ c.T + (1 - c) @ (1 - c).T
    assert score == pytest.approx(float(torch.linalg.slogdet(k)[1]), rel=1e-12)


def test_model_without_relu_is_a_value_error():
    with pytest.raises(ValueError, match="has no ReLU module"):
        naswot_score(nn.Sequential(nn.Linear(3, 3), nn.Tanh()), torch.randn(4, 3))


def test_relu_that_never_runs_is_a_value_error():
    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.lin(x)

    with pytest.raises(ValueError, match="no activation module ran"):
        naswot_score(Unused(), torch.randn(4, 3))


def test_not_a_module_is_a_type_error():
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        naswot_score(lambda x: x, torch.randn(4, 3))


def test_inconsistent_batch_dimension_is_a_value_error():
    class SeqFirst(nn.Module):
        def __init__(self):
            super().__init__()
            self.act1 = nn.ReLU()
            self.act2 = nn.ReLU()

        def forward(self, x):
            return self.act2(self.act1(x).transpose(0, 1))

    with pytest.raises(ValueError, match="sees 7 samples, earlier ones saw 4"):
        naswot_score(SeqFirst(), torch.randn(4, 7))


def test_half_precision_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 200), nn.ReLU(), nn.Linear(200, 3))
    x = torch.randn(10, 16)
    expected = paper_naswot(model, x)
    # bfloat16 activations change some signs near zero: the score moves only a little.
    got = naswot_score(model.to(torch.bfloat16), x.to(torch.bfloat16))
    assert math.isfinite(got)
    assert got == pytest.approx(expected, rel=0.05)
