"""Zero-cost proxies: each against its definition computed another way, shared passes against
each proxy alone, determinism, model state, and errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from airda.nas import naswot_score
from airda.nas.proxies import (
    PROXIES,
    ProxyError,
    ZeroCostEvaluator,
    _gaussian_state,
    _zen_value,
    proxy_names,
    zero_cost_scores,
)

BATCH_PROXIES = ("snip", "grad_norm", "fisher", "grasp", "jacob_cov", "naswot")
PASS_PROXIES = ("synflow", *BATCH_PROXIES, "zen")


def small_cnn(seed: int = 0, *, inplace: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(inplace=inplace),  # in place right after a conv: fisher's taps must cope
        nn.Conv2d(8, 6, 3, padding=1, stride=2, bias=False),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 5),
    )


def mlp(seed: int = 0, dtype=torch.float64, act: type = nn.ReLU) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 7), act(), nn.Linear(7, 4)).to(dtype)


def images(n: int = 10, seed: int = 1, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(n, 3, 2, 2, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def labels(n: int = 10, classes: int = 4, seed: int = 2) -> torch.Tensor:
    return torch.randint(0, classes, (n,), generator=torch.Generator().manual_seed(seed))


# -- the API -------------------------------------------------------------------------------


def test_proxy_names():
    assert proxy_names() == PROXIES
    assert set(PROXIES) == {*PASS_PROXIES, "params", "flops"}


def test_unknown_proxy_is_a_value_error_listing_the_valid_ones():
    with pytest.raises(ValueError, match=r"'synflw'.*valid: synflow, snip, grad_norm"):
        ZeroCostEvaluator(("synflw", "snip"))
    with pytest.raises(ValueError, match="named twice"):
        ZeroCostEvaluator(("snip", "snip"))
    with pytest.raises(ValueError, match="no proxy"):
        ZeroCostEvaluator(())


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("batch_size", 0),
        ("batch_size", 2.5),
        ("seed", -1),
        ("input_shape", (3, 0)),
        ("zen_mixup", 0),
    ],
)
def test_bad_options_are_value_errors(option, value):
    with pytest.raises(ValueError, match=option):
        ZeroCostEvaluator("snip", **{option: value})


def test_a_single_name_and_the_order_of_the_result():
    assert list(ZeroCostEvaluator("snip").score(small_cnn())) == ["snip"]
    order = ("naswot", "synflow", "grad_norm")
    assert list(ZeroCostEvaluator(order, batch_size=8).score(small_cnn())) == list(order)


# -- shared passes against each proxy alone -------------------------------------------------


@pytest.mark.parametrize("inplace", [False, True])
def test_the_shared_suite_equals_each_proxy_alone(inplace):
    model = small_cnn(inplace=inplace)
    suite = ZeroCostEvaluator(PASS_PROXIES, batch_size=12).score(model)
    separate = ZeroCostEvaluator(PASS_PROXIES, batch_size=12, shared=False).score(model)
    for proxy in PASS_PROXIES:
        alone = ZeroCostEvaluator(proxy, batch_size=12).score(model)[proxy]
        assert math.isfinite(alone), proxy
        # Bit-equal here; ~1e-6 is what the contract promises.
        assert suite[proxy] == pytest.approx(alone, rel=1e-6, abs=1e-12), proxy
        assert separate[proxy] == alone, proxy


def test_in_place_activation_after_a_conv_changes_nothing():
    x = images(12)
    plain = ZeroCostEvaluator(BATCH_PROXIES).score(small_cnn(), x)
    in_place = ZeroCostEvaluator(BATCH_PROXIES).score(small_cnn(inplace=True), x)
    assert in_place == pytest.approx(plain, rel=1e-12)


# -- determinism and the model's state -------------------------------------------------------


def test_deterministic_for_a_seed_and_different_for_another():
    model = small_cnn()
    first = ZeroCostEvaluator(PASS_PROXIES, batch_size=8, seed=3).score(model)
    assert ZeroCostEvaluator(PASS_PROXIES, batch_size=8, seed=3).score(model) == first
    other = ZeroCostEvaluator(PASS_PROXIES, batch_size=8, seed=4).score(model)
    # synflow reads only the weights; everything drawn from the seed moves the rest
    assert other["synflow"] == first["synflow"]
    assert all(other[p] != first[p] for p in PASS_PROXIES if p != "synflow")


def test_the_global_rng_is_not_used_or_moved():
    model = small_cnn()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = ZeroCostEvaluator(PASS_PROXIES, batch_size=8).score(model)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(999)
    assert ZeroCostEvaluator(PASS_PROXIES, batch_size=8).score(model) == first


def test_dropout_draws_from_the_seed_in_every_pass():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(12, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 4)
    )
    torch.manual_seed(1)
    state = torch.get_rng_state()
    first = ZeroCostEvaluator(PASS_PROXIES, batch_size=8, input_shape=(12,)).score(model)
    assert torch.equal(torch.get_rng_state(), state)
    again = ZeroCostEvaluator(PASS_PROXIES, batch_size=8, input_shape=(12,)).score(model)
    separate = ZeroCostEvaluator(PASS_PROXIES, batch_size=8, input_shape=(12,), shared=False).score(
        model
    )
    assert again == first
    assert separate == pytest.approx(first, rel=1e-6)


def test_the_model_is_left_as_it_was():
    model = small_cnn().eval()
    model[0].weight.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ZeroCostEvaluator(PASS_PROXIES, batch_size=8).score(model)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights, signs, BN stats
    assert not any(m.training for m in model.modules())
    assert not model[0].weight.requires_grad
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks for m in model.modules())


def test_a_builder_is_called_under_the_seed():
    first = ZeroCostEvaluator(PASS_PROXIES, batch_size=8, seed=5).score(small_cnn_builder)
    torch.manual_seed(77)
    again = ZeroCostEvaluator(PASS_PROXIES, batch_size=8, seed=5).score(small_cnn_builder)
    assert again == first
    other = ZeroCostEvaluator(["synflow"], seed=6).score(small_cnn_builder)
    assert other["synflow"] != first["synflow"]  # another seed, another initialisation


def small_cnn_builder() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 30 * 30, 3)
    )


def test_given_targets_and_a_custom_loss():
    model, x = mlp(), images(dtype=torch.float64)
    y = labels()
    given = ZeroCostEvaluator("snip").score(model, x, y)["snip"]
    drawn = ZeroCostEvaluator("snip").score(model, x)["snip"]
    assert given != drawn
    onehot = F.one_hot(y, 4).double()
    mse = ZeroCostEvaluator("snip", loss=F.mse_loss).score(model, x, onehot)["snip"]
    assert mse != given
    assert mse > 0


# -- each proxy against its definition --------------------------------------------------------


def linear_chain(*widths: int, bn: bool = False) -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in itertools.pairwise(widths):
        layers.append(nn.Linear(a, b, bias=False))
        if bn:
            layers.append(nn.BatchNorm1d(b))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers[:-1])


def test_synflow_of_a_linear_chain_has_a_closed_form():
    # R(|W|) = 1' |W3| |W2| |W1| 1 is linear in each layer, so Σ_l Σ |W_l ⊙ ∂R/∂W_l| = 3 R.
    model = linear_chain(12, 9, 7, 4)
    w1, w2, w3 = (m.weight.detach().double().abs() for m in model if isinstance(m, nn.Linear))
    r = float(torch.ones(4, dtype=torch.float64) @ w3 @ w2 @ w1 @ torch.ones(12).double())
    got = ZeroCostEvaluator("synflow", input_shape=(3, 2, 2)).score(model)["synflow"]
    assert got == pytest.approx(3 * r, rel=1e-12)
    # batch norm is bypassed, signs do not matter, and the model keeps its signs
    with_bn = linear_chain(12, 9, 7, 4, bn=True)
    assert ZeroCostEvaluator("synflow", input_shape=(12,)).score(with_bn)["synflow"] == (
        pytest.approx(3 * r, rel=1e-12)
    )
    with torch.no_grad():
        model[1].weight.neg_()
    signs = model[1].weight.sign().clone()
    assert ZeroCostEvaluator("synflow", input_shape=(12,)).score(model)["synflow"] == (
        pytest.approx(3 * r, rel=1e-12)
    )
    assert torch.equal(model[1].weight.sign(), signs)


def test_synflow_counts_weights_not_biases_by_hand_on_a_conv_net():
    model = small_cnn().double()
    net = small_cnn().double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    # the same network, with batch norm replaced by identity, by hand
    h = torch.ones(1, 3, 6, 6, dtype=torch.float64)
    weights = [net[0].weight, net[2].weight, net[7].weight]
    for w in weights:
        w.requires_grad_(True)
    h = net[1](net[0](h))
    h = net[4](net[2](h))
    out = net[7](net[6](net[5](h)))
    grads = torch.autograd.grad(out.sum(), weights)
    expected = sum(
        float((w.detach() * g).abs().sum()) for w, g in zip(weights, grads, strict=False)
    )
    got = ZeroCostEvaluator("synflow", input_shape=(3, 6, 6)).score(model)["synflow"]
    assert got == pytest.approx(expected, rel=1e-12)


def mlp_by_hand(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """The MLP's forward and its cross-entropy backward, written out: (weights, activations,
    weight gradients, activation gradients)."""
    lin1, lin2 = model[1], model[3]
    w1, b1, w2, b2 = (t.detach() for t in (lin1.weight, lin1.bias, lin2.weight, lin2.bias))
    xf = x.reshape(x.shape[0], -1)
    z1 = xf @ w1.T + b1
    h = z1.clamp(min=0)
    z2 = h @ w2.T + b2
    p = torch.softmax(z2, dim=1)
    delta2 = (p - F.one_hot(y, z2.shape[1]).to(p.dtype)) / x.shape[0]  # dL/dz2
    delta1 = (delta2 @ w2) * (z1 > 0).to(p.dtype)  # dL/dz1
    return (w1, w2), (z1, z2), (delta1.T @ xf, delta2.T @ h), (delta1, delta2)


def test_snip_grad_norm_and_fisher_against_the_hand_written_backward():
    model, x, y = mlp(), images(dtype=torch.float64), labels()
    (w1, w2), (z1, z2), (g1, g2), (d1, d2) = mlp_by_hand(model, x, y)
    got = ZeroCostEvaluator(("snip", "grad_norm", "fisher")).score(model, x, y)
    assert got["snip"] == pytest.approx(float((w1 * g1).abs().sum() + (w2 * g2).abs().sum()))
    assert got["grad_norm"] == pytest.approx(float(g1.norm() + g2.norm()), rel=1e-12)
    # fisher: per output unit 0.5 * mean_n (a * dL/da)^2, once per weight of that unit
    fisher = sum(
        float(0.5 * (a * d).pow(2).mean(0).sum() * fan_in)
        for a, d, fan_in in ((z1, d1, 12), (z2, d2, 7))
    )
    assert got["fisher"] == pytest.approx(fisher, rel=1e-12)


def test_fisher_of_a_conv_net_against_retained_gradients():
    model = small_cnn().double()
    x, y = images(9, dtype=torch.float64), labels(9, classes=5)
    convs = [model[0], model[2], model[7]]
    outs = []

    def keep(_module, _args, out):
        out.retain_grad()
        outs.append(out)

    handles = [m.register_forward_hook(keep) for m in convs]
    model.train()
    F.cross_entropy(model(x), y).backward()
    for h in handles:
        h.remove()
    expected = 0.0
    for m, out in zip(convs, outs, strict=False):
        a, grad = out.detach(), out.grad
        per_channel = (a * grad).sum(dim=tuple(range(2, a.dim()))) if a.dim() > 2 else a * grad
        expected += float(0.5 * per_channel.pow(2).mean(0).sum()) * m.weight[0].numel()
    model.zero_grad()
    got = ZeroCostEvaluator("fisher").score(model, x, y)["fisher"]
    assert got == pytest.approx(expected, rel=1e-12)


def test_grasp_against_an_explicit_hessian():
    model = mlp(act=nn.Tanh)
    x, y = images(dtype=torch.float64), labels()
    params = [model[1].weight, model[3].weight]
    shapes = [p.shape for p in params]
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    sizes = [p.numel() for p in params]

    def loss_of(theta):
        w1, w2 = (t.reshape(s) for t, s in zip(theta.split(sizes), shapes, strict=False))
        h = torch.tanh(x.reshape(x.shape[0], -1) @ w1.T + model[1].bias)
        return F.cross_entropy(h @ w2.T + model[3].bias, y)

    hessian = torch.autograd.functional.hessian(loss_of, flat)
    g = torch.autograd.functional.jacobian(loss_of, flat)
    expected = float(-(flat * (hessian @ g)).sum())
    got = ZeroCostEvaluator("grasp").score(model, x, y)["grasp"]
    assert got == pytest.approx(expected, rel=1e-10)


def naslib_jacob_cov_score(jacobian: np.ndarray) -> float:
    """Mellor et al. v1 as NASLib writes it (np.linalg.eig of the correlation matrix)."""
    v = np.linalg.eig(np.corrcoef(jacobian))[0].real
    k = 1e-5
    return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


def test_jacob_cov_against_an_explicit_jacobian_loop():
    model = mlp()
    x = images(dtype=torch.float64)
    rows = []
    for i in range(x.shape[0]):  # one sample at a time: d(sum of its outputs)/d(its input)
        xi = x[i : i + 1].clone().requires_grad_(True)
        model(xi).sum().backward()
        rows.append(xi.grad.reshape(-1).numpy())
    model.zero_grad()
    expected = naslib_jacob_cov_score(np.stack(rows))
    got = ZeroCostEvaluator("jacob_cov").score(model, x)["jacob_cov"]
    assert got == pytest.approx(expected, rel=1e-9)


def test_jacob_cov_of_a_degenerate_jacobian_is_nan_and_needs_two_samples():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    with torch.no_grad():
        model[1].weight.fill_(1.0)  # every input gradient is the same constant row
    assert math.isnan(ZeroCostEvaluator("jacob_cov").score(model, images())["jacob_cov"])
    with pytest.raises(ProxyError, match="at least 2"):
        ZeroCostEvaluator("jacob_cov").score(mlp(), images(1, dtype=torch.float64))


def test_naswot_equals_naswot_score_in_training_mode():
    model, x = small_cnn(), images(12)
    expected = naswot_score(model.train(), x)
    got = ZeroCostEvaluator("naswot").score(model.eval(), x)["naswot"]
    assert got == expected


def test_zen_by_hand_on_a_one_conv_net():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
    )
    with torch.no_grad():
        net[1].running_var.fill_(7.0)  # stale statistics, which the score must not read
    before = {k: v.clone() for k, v in net.state_dict().items()}
    state = _gaussian_state(net, torch.Generator().manual_seed(1))
    assert torch.equal(state["1.weight"], torch.ones(4))
    assert not state["0.bias"].any()
    assert torch.equal(state["1.running_var"], torch.ones(4))
    gen = torch.Generator().manual_seed(2)
    a, b = torch.randn(6, 3, 5, 5, generator=gen), torch.randn(6, 3, 5, 5, generator=gen)
    w = state["0.weight"].clone()

    def features(x):
        z = F.conv2d(x, w, padding=1)
        mean, var = z.mean((0, 2, 3), keepdim=True), z.var((0, 2, 3), unbiased=False, keepdim=True)
        return torch.relu((z - mean) / torch.sqrt(var + 1e-5)), z.var((0, 2, 3))

    f1, v1 = features(a)
    f2, v2 = features(a + 0.01 * b)
    running_var = 0.9 * (0.9 * 1 + 0.1 * v1) + 0.1 * v2  # momentum 0.1 from a fresh 1
    expected = math.log(float((f1 - f2).abs().sum((1, 2, 3)).mean())) + 0.5 * math.log(
        float(running_var.mean())
    )
    assert _zen_value(net, state, a, b, 0.01) == pytest.approx(expected, rel=1e-5)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_zen_reinitialises_a_copy_and_ignores_the_models_weights():
    first, second = small_cnn(0), small_cnn(1)
    ev = ZeroCostEvaluator("zen", batch_size=8)
    assert ev.score(first) == ev.score(second)  # same architecture, same seed


def test_params_counts_every_parameter():
    model = small_cnn()
    expected = sum(p.numel() for p in model.parameters())
    assert ZeroCostEvaluator("params").score(model) == {"params": float(expected)}


# -- errors ----------------------------------------------------------------------------------


class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.act = nn.ReLU()

    def forward(self, x):
        raise RuntimeError("user model failed")


@pytest.mark.parametrize("proxy", PASS_PROXIES)
def test_a_failing_forward_names_the_candidate(proxy):
    with pytest.raises(ProxyError, match=r"candidate arch-7: proxies .*user model failed") as e:
        ZeroCostEvaluator(proxy, input_shape=(3,)).score(Broken(), name="arch-7")
    assert e.value.candidate == "arch-7"
    assert proxy in e.value.proxies
    assert isinstance(e.value.__cause__, RuntimeError)


def test_unnamed_candidates_are_named_by_class_or_builder():
    with pytest.raises(ProxyError, match="candidate Broken"):
        ZeroCostEvaluator("snip", input_shape=(3,)).score(Broken())

    def build_arch_3():
        raise KeyError("no such op")

    with pytest.raises(ProxyError, match=r"build_arch_3.*building the model failed.*no such op"):
        ZeroCostEvaluator("snip").score(build_arch_3)
    with pytest.raises(ProxyError, match="returned int"):
        ZeroCostEvaluator("snip").score(lambda: 3)
    with pytest.raises(TypeError, match="Module or a callable"):
        ZeroCostEvaluator("snip").score(3)


def test_random_labels_need_class_outputs():
    model = nn.Sequential(nn.Conv2d(3, 2, 1))
    with pytest.raises(ProxyError, match="pass targets"):
        ZeroCostEvaluator("snip", batch_size=4).score(model)


def test_zero_cost_scores_function():
    model, x, y = mlp(), images(dtype=torch.float64), labels()
    expected = ZeroCostEvaluator(("snip", "naswot"), seed=2).score(model, x, y)
    assert zero_cost_scores(model, x, y, proxies=("snip", "naswot"), seed=2) == expected


@pytest.mark.gpu
def test_gpu_matches_cpu_and_is_repeatable():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    model = small_cnn()
    cpu = ZeroCostEvaluator(PASS_PROXIES, batch_size=16).score(model)
    gpu_model = small_cnn().cuda()
    gpu = ZeroCostEvaluator(PASS_PROXIES, batch_size=16).score(gpu_model)
    assert ZeroCostEvaluator(PASS_PROXIES, batch_size=16).score(gpu_model) == pytest.approx(
        gpu, rel=1e-6
    )
    for proxy in PASS_PROXIES:
        assert gpu[proxy] == pytest.approx(cpu[proxy], rel=1e-3), proxy
