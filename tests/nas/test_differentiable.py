"""DARTS (first and second order) and GDAS on small supernets: the second-order gradient
against exact autograd, resumption, study reporting, derivation and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

import airda
import airda.nas
from airda.nas.differentiable import DARTS, GDAS, derive_arch
from airda.nas.nb201 import EDGE_NAMES, OPS

torch.set_num_threads(1)


class TinyWeighted(nn.Module):
    """A supernet-like net, twice differentiable (the unfused mixture): 2 edges x 3 ops.

    As NB201Supernet.forward_weighted, `weights` are logits when `hard` is None."""

    edge_names = ("e0", "e1")
    ops = ("a", "b", "c")
    num_edges = 2

    def __init__(self) -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            nn.ModuleList(nn.Linear(4, 4) for _ in self.ops) for _ in self.edge_names
        )
        self.head = nn.Linear(4, 3)

    def forward_weighted(self, x, weights, hard=None):
        w = torch.softmax(weights, -1)
        for e, ops in enumerate(self.edges):
            x = sum(w[e, k] * torch.tanh(op(x)) for k, op in enumerate(ops))
        return self.head(x)

    forward = forward_weighted


def exact_unrolled_grad(net, alpha, batches, xi, wd, momentum, buffers):
    """d/d alpha of L_val(w - xi (momentum buf + grad_w L_train(w, alpha) + wd w), alpha)."""
    xt, yt, xv, yv = batches
    names = [n for n, _ in net.named_parameters()]
    w = {n: p.detach().clone().requires_grad_(True) for n, p in net.named_parameters()}
    a = alpha.detach().clone().requires_grad_(True)

    def loss(params, x, y):
        out = functional_call(net, params, (x, a))
        return nn.functional.cross_entropy(out, y)

    grads = torch.autograd.grad(loss(w, xt, yt), [w[n] for n in names], create_graph=True)
    w2 = {
        n: w[n] - xi * (momentum * buffers[i] + grads[i] + wd * w[n]) for i, n in enumerate(names)
    }
    return torch.autograd.grad(loss(w2, xv, yv), a)[0]


def tiny_batches(seed=0):
    g = torch.Generator().manual_seed(seed)
    xt, xv = (
        torch.randn(16, 4, generator=g, dtype=torch.float64),
        torch.randn(16, 4, generator=g, dtype=torch.float64),
    )
    yt, yv = torch.randint(0, 3, (16,), generator=g), torch.randint(0, 3, (16,), generator=g)
    return xt, yt, xv, yv


@pytest.mark.parametrize("with_momentum", [False, True])
def test_second_order_gradient_matches_exact_autograd(with_momentum):
    torch.manual_seed(0)
    net = TinyWeighted().double()
    search = DARTS(net, order=2, w_weight_decay=1e-2, w_momentum=0.9)
    search.alpha = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    xt, yt, xv, yv = tiny_batches()
    params = list(net.parameters())
    w_opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-2)
    if with_momentum:  # a real step fills the momentum buffers
        nn.functional.cross_entropy(net(xt, search.alpha.detach()), yt).backward()
        w_opt.step()
        w_opt.zero_grad()
    buffers = [
        w_opt.state[p]["momentum_buffer"] if with_momentum else torch.zeros_like(p) for p in params
    ]
    before = [p.detach().clone() for p in params]
    xi = 2.0  # large, so that the second-order term matters
    approx = search.unrolled_alpha_grad(xt, yt, xv, yv, xi=xi, w_opt=w_opt)
    exact = exact_unrolled_grad(net, search.alpha, (xt, yt, xv, yv), xi, 1e-2, 0.9, buffers)
    first = torch.autograd.grad(
        nn.functional.cross_entropy(net(xv, search.alpha), yv), search.alpha
    )[0]
    # The weights are restored.
    assert all(torch.equal(p, b) for p, b in zip(net.parameters(), before, strict=True))
    # The finite difference's error is far below the second-order term itself.
    term = (exact - first).norm()
    assert term > 0.2 * exact.norm()
    assert (approx - exact).norm() < 1e-3 * term
    torch.testing.assert_close(approx, exact, rtol=1e-4, atol=1e-7)


def test_derive_arch_argmax_and_errors():
    alpha = np.zeros((6, 5))
    for e in range(6):
        alpha[e, (e + 1) % 5] = 1.0
    arch = derive_arch(alpha)
    assert arch == {name: OPS[(e + 1) % 5] for e, name in enumerate(EDGE_NAMES)}
    assert derive_arch(torch.tensor(alpha)) == arch
    assert derive_arch(np.zeros((6, 5)))["0->1"] == "none"  # ties: the first op
    alpha[3, 0] = 5.0  # none wins edge 0->3 unless excluded
    assert derive_arch(alpha)["0->3"] == "none"
    assert derive_arch(alpha, exclude=("none",))["0->3"] == OPS[4]
    with pytest.raises(ValueError, match="exclude"):
        derive_arch(alpha, exclude=("conv",))
    with pytest.raises(ValueError, match=r"shape \(5, 5\)"):
        derive_arch(np.zeros((5, 5)))
    alpha[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        derive_arch(alpha)


def test_bad_hyperparameters():
    net = TinyWeighted()
    with pytest.raises(ValueError, match="order"):
        DARTS(net, order=3)
    with pytest.raises(ValueError, match="batch_size"):
        DARTS(net, batch_size=1)
    with pytest.raises(ValueError, match="alpha_lr"):
        DARTS(net, alpha_lr=-1.0)
    with pytest.raises(ValueError, match="tau_min"):
        GDAS(net, tau_max=1.0, tau_min=2.0)
    with pytest.raises(TypeError, match="forward_weighted"):
        DARTS(nn.Linear(2, 2))


def test_gdas_sample_is_hard_with_soft_gradient():
    search = GDAS(TinyWeighted(), seed=0)
    search.alpha = torch.randn(2, 3, requires_grad=True)
    gen = torch.Generator().manual_seed(0)
    weights, index = search.sample(1.0, gen)
    assert torch.equal(weights.detach().argmax(-1), index)
    torch.testing.assert_close(weights.detach().sum(-1), torch.ones(2))
    torch.testing.assert_close(weights.detach().max(-1).values, torch.ones(2))
    (weights[0, index[0]] * 3.0).backward()
    assert search.alpha.grad is not None
    assert search.alpha.grad[0].abs().sum() > 0
    assert search.alpha.grad[1].abs().sum() == 0
    assert search.tau(0, 5) == 10.0
    assert search.tau(4, 5) == pytest.approx(0.1)


# ---- on the real supernet ------------------------------------------------------------------


def tiny_supernet(seed=0, dims=1, C=4):
    from airda.nas.supernet import NB201Supernet

    torch.manual_seed(seed)
    return NB201Supernet(dims=dims, in_channels=1, num_classes=3, C=C, N=1)


def tiny_data(dims=1, n=40, seed=1):
    g = torch.Generator().manual_seed(seed)
    shape = (n, 1, 12) if dims == 1 else (n, 1, 8, 8)
    x = torch.randn(shape, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    # A learnable signal: the class shifts the mean.
    x = x + y.view(-1, *[1] * (x.dim() - 1)).float()
    return x[: n // 2], y[: n // 2], x[n // 2 :], y[n // 2 :]


METHODS = {
    "darts1": lambda net, **kw: DARTS(net, order=1, **kw),
    "darts2": lambda net, **kw: DARTS(net, order=2, **kw),
    "gdas": lambda net, **kw: GDAS(net, **kw),
}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_search_reports_to_a_study_and_derives_an_arch(method):
    net = tiny_supernet()
    search = METHODS[method](net, batch_size=8, seed=0)
    study = airda.create_study(direction="maximize")
    trial = study.ask()
    result = search.fit(*tiny_data(), epochs=2, trial=trial)
    study.tell(trial, result.history[-1]["val_accuracy"])
    frozen = study.trials[0]
    assert sorted(frozen.intermediate) == [1, 2]
    assert frozen.user_attrs["arch_epoch_2"] == result.arch == frozen.user_attrs["arch"]
    assert net.validate(result.arch) == result.arch
    assert result.alpha.shape == (6, 5)
    assert np.isfinite(result.alpha).all()
    assert not np.allclose(result.alpha, result.alpha[0, 0])  # alpha moved
    for rec in result.history:
        assert 0.0 <= rec["val_accuracy"] <= 1.0
        assert np.isfinite(rec["train_loss"])
    np.testing.assert_allclose(result.probabilities.sum(1), 1.0)
    assert "none" not in result.derive(exclude=("none",)).values()
    assert result.history[-1]["degenerate"] == airda.nas.is_degenerate(result.arch)


def test_search_on_the_2d_supernet():
    net = tiny_supernet(dims=2)
    result = DARTS(net, order=1, batch_size=8).fit(*tiny_data(dims=2), epochs=1)
    assert net.validate(result.arch) == result.arch


def test_search_is_deterministic():
    a = GDAS(tiny_supernet(), batch_size=8, seed=3).fit(*tiny_data(), epochs=2)
    b = GDAS(tiny_supernet(), batch_size=8, seed=3).fit(*tiny_data(), epochs=2)
    np.testing.assert_array_equal(a.alpha, b.alpha)


class Stop(Exception):
    pass


@pytest.mark.parametrize("method", sorted(METHODS))
def test_interrupted_run_resumed_equals_uninterrupted(method, tmp_path):
    data = tiny_data()
    net_a = tiny_supernet()
    full = METHODS[method](net_a, batch_size=8, seed=0).fit(*data, epochs=3)

    def stop_after_one(rec):
        if rec["epoch"] == 1:
            raise Stop

    ckpt = tmp_path / "run.pt"
    with pytest.raises(Stop):
        METHODS[method](tiny_supernet(), batch_size=8, seed=0).fit(
            *data, epochs=3, checkpoint=ckpt, callback=stop_after_one
        )
    # A fresh process: another init of the supernet, the global RNG moved on.
    torch.manual_seed(1234)
    net_b = tiny_supernet(seed=99)
    study = airda.create_study(direction="maximize")
    trial = study.ask()
    resumed = METHODS[method](net_b, batch_size=8, seed=0).fit(
        *data, epochs=3, checkpoint=ckpt, trial=trial
    )
    assert resumed.resumed_from == 1
    np.testing.assert_array_equal(resumed.alpha, full.alpha)
    for (name, pa), pb in zip(net_a.state_dict().items(), net_b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.history]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in full.history]
    assert sorted(study.trials[0].intermediate) == [1, 2, 3]  # epoch 1 re-reported
    # A finished checkpoint resumes to the same result without training.
    again = METHODS[method](tiny_supernet(), batch_size=8, seed=0).fit(
        *data, epochs=3, checkpoint=ckpt
    )
    np.testing.assert_array_equal(again.alpha, full.alpha)
    assert again.resumed_from == 3


def test_checkpoint_of_another_supernet_or_run_is_refused(tmp_path):
    data = tiny_data()
    ckpt = tmp_path / "run.pt"
    DARTS(tiny_supernet(), batch_size=8).fit(*data, epochs=1, checkpoint=ckpt)
    with pytest.raises(ValueError, match="C"):
        DARTS(tiny_supernet(C=6), batch_size=8).fit(*data, epochs=1, checkpoint=ckpt)
    with pytest.raises(ValueError, match="method"):
        GDAS(tiny_supernet(), batch_size=8).fit(*data, epochs=1, checkpoint=ckpt)
    with pytest.raises(ValueError, match="epochs"):
        DARTS(tiny_supernet(), batch_size=8).fit(*data, epochs=2, checkpoint=ckpt)


def test_bad_data():
    net = tiny_supernet()
    xt, yt, xv, yv = tiny_data()
    search = DARTS(net, batch_size=8)
    with pytest.raises(ValueError, match="y_train"):
        search.fit(xt, yt[:-1], xv, yv, epochs=1)
    with pytest.raises(TypeError, match="y_val"):
        search.fit(xt, yt, xv, yv.float(), epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        search.fit(xt, yt, xv, yv, epochs=0)
    with pytest.raises(ValueError, match=r"x_train: .* takes input"):  # 2-D data, 1-D net
        search.fit(torch.randn(20, 1, 8, 8), yt, xv, yv, epochs=1)


def test_single_path_evaluation_recalibrates_and_restores_bn():
    net = tiny_supernet()
    xt, yt, xv, yv = tiny_data()
    search = GDAS(net, batch_size=8, calib_size=16)
    result = search.fit(xt, yt, xv, yv, epochs=1)
    rec = result.history[-1]
    assert rec["val_accuracy"] == rec["arch_accuracy"]  # GDAS evaluates its argmax path
    before = {k: v.clone() for k, v in net.state_dict().items()}
    hard = search._hard_of(result.arch)
    plain = search._evaluate(xv, yv, search._one_hot(hard), hard)
    calibrated = search._evaluate(xv, yv, search._one_hot(hard), hard, xt[:16])
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert calibrated == search._evaluate(xv, yv, search._one_hot(hard), hard, xt[:16])
    assert calibrated != plain  # other statistics, other loss
