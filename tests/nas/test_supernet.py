"""Supernets: subnets share weights, extraction copies them exactly, bad input is named."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import airda.nas  # noqa: E402
from airda.nas import checkpoint, count_params, evaluate, supernet  # noqa: E402
from airda.nas.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from airda.nas.evaluate import evaluate_loop, recalibrate_bn  # noqa: E402
from airda.nas.nb201 import EDGE_NAMES, OPS, Arch  # noqa: E402
from airda.nas.supernet import ElasticSupernet, NB201Supernet, SuperBatchNorm  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _input(dims: int, channels: int, batch: int = 5, size: int = 11) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    shape = (batch, channels, size) if dims == 1 else (batch, channels, size, size - 2)
    return torch.randn(shape, generator=g)


def _nb201(dims: int) -> NB201Supernet:
    return NB201Supernet(dims=dims, in_channels=2, num_classes=7, C=4, N=2)


def _elastic(dims: int) -> ElasticSupernet:
    return ElasticSupernet(
        dims=dims,
        in_channels=2,
        num_classes=7,
        stem=4,
        stages=((4, 3, 1), (6, 2, 2)),
        kernel_sizes=(3, 5),
        expand_ratios=(1, 2),
        depths=(1, 2, 3),
    )


def _shake_stats(net: torch.nn.Module) -> None:
    """Non-trivial running statistics and affine parameters everywhere."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, SuperBatchNorm):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)


SUPERNETS = [
    pytest.param(_nb201, 1, id="nb201-1d"),
    pytest.param(_nb201, 2, id="nb201-2d"),
    pytest.param(_elastic, 1, id="elastic-1d"),
    pytest.param(_elastic, 2, id="elastic-2d"),
]


@pytest.mark.parametrize(("make", "dims"), SUPERNETS)
def test_extracted_subnet_equals_the_supernet_path(make, dims):
    net = make(dims)
    _shake_stats(net)
    net.eval()
    x = _input(dims, 2)
    rng = np.random.default_rng(0)
    archs = [net.sample(rng) for _ in range(6)] + [net.largest(), net.smallest()]
    for arch in archs:
        sub = net.extract(arch).eval()
        with torch.no_grad():
            torch.testing.assert_close(sub(x), net(x, arch), atol=1e-5, rtol=1e-5)
        assert sub.arch == net.validate(arch)
    # Extraction copies: training the copy leaves the supernet alone.
    sub = net.extract(archs[0])
    before = [p.clone() for p in net.parameters()]
    with torch.no_grad():
        for p in sub.parameters():
            p.add_(1.0)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


@pytest.mark.parametrize(("make", "dims"), SUPERNETS)
def test_extracted_subnet_keeps_the_supernets_device_and_dtype(make, dims):
    # The meta device stands in for a GPU: a subnet built on the default device would fail
    # beside CUDA inputs ("weight is on cpu"), as evaluate_loop did on the first GPU run.
    rng = np.random.default_rng(0)
    for to in (torch.float64, "meta"):
        net = make(dims).to(to)
        want = next(net.parameters())
        for arch in (net.sample(rng), net.largest(), net.smallest()):
            sub = net.extract(arch)
            for t in (*sub.parameters(), *sub.buffers()):
                assert t.device == want.device
                if t.is_floating_point():
                    assert t.dtype == want.dtype
    net = make(dims).double()
    _shake_stats(net)
    net.eval()
    arch = net.sample(rng)
    x = _input(dims, 2).double()
    with torch.no_grad():
        torch.testing.assert_close(net.extract(arch).eval()(x), net(x, arch))


def test_extracted_elastic_subnets_have_their_own_size():
    net = _elastic(2)
    big, small = count_params(net.extract(net.largest())), count_params(net.extract(net.smallest()))
    assert small < big == count_params(net)  # the largest subnet holds every weight
    # Only active blocks are kept, with cropped kernels and sliced channels.
    sub = net.extract(net.smallest())
    convs = [m for m in sub.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert convs
    assert all(m.kernel_size == (3, 3) for m in convs)
    assert len(convs) == 2  # depth 1 in both stages


def test_nb201_subnet_with_dead_nodes():
    net = _nb201(2)
    _shake_stats(net)
    net.eval()
    x = _input(2, 2)
    arch = dict.fromkeys(EDGE_NAMES, "none")
    arch["1->3"] = "nor_conv_3x3"  # node 1 has no input: the conv sees zeros
    with torch.no_grad():
        out = net(x, arch)
        torch.testing.assert_close(net.extract(arch).eval()(x), out)
    assert torch.isfinite(out).all()


def test_nb201_accepts_arch_strings_and_objects():
    net = _nb201(1)
    arch = Arch(("nor_conv_3x3", "skip_connect", "none", "avg_pool_3x3", "nor_conv_1x1", "none"))
    assert net.validate(arch.to_string()) == net.validate(arch) == arch.to_params()


def test_forward_weighted_reduces_to_discrete_paths():
    net = _nb201(2)
    _shake_stats(net)
    net.eval()
    x = _input(2, 2)
    arch = net.sample(np.random.default_rng(4))
    index = torch.tensor([OPS.index(arch[e]) for e in EDGE_NAMES])
    one_hot = torch.nn.functional.one_hot(index, len(OPS)).float()
    with torch.no_grad():
        expected = net(x, arch)
        # GDAS's hard forward with one-hot weights is the discrete subnet.
        torch.testing.assert_close(net.forward_weighted(x, one_hot, hard=index), expected)
        # DARTS' softmax with one dominating logit per edge tends to it.
        torch.testing.assert_close(
            net.forward_weighted(x, one_hot * 60.0), expected, atol=1e-4, rtol=1e-4
        )


def test_forward_weighted_gradients_reach_the_weights():
    net = _nb201(1)
    x = _input(1, 2)
    alpha = torch.zeros(6, len(OPS), requires_grad=True)
    net.forward_weighted(x, alpha).sum().backward()
    assert alpha.grad is not None
    assert alpha.grad.abs().sum() > 0
    weights = torch.softmax(torch.randn(6, len(OPS)), 1).requires_grad_()
    hard = weights.argmax(1)
    net.forward_weighted(x, weights, hard=hard).sum().backward()
    chosen = torch.zeros_like(weights, dtype=torch.bool)
    chosen[torch.arange(6), hard] = True
    assert (weights.grad[~chosen] == 0).all()
    assert weights.grad[chosen].abs().sum() > 0


def test_elastic_space_is_conditional():
    net = _elastic(1)
    space = net.space
    arch = net.smallest()
    assert arch["s0_depth"] == 1
    assert "s0_b1_k" not in arch
    assert "s0_b0_k" in arch
    assert set(space.params["s1_depth"].values()) == {1, 2}
    keys = net.path(net.largest())
    assert keys[0] is None
    assert keys[-1] is None
    assert sum(k is not None for k in keys) == 5
    assert net.path(net.smallest()).count(None) == len(keys) - 2


@pytest.mark.parametrize(("make", "dims"), SUPERNETS)
def test_bad_arch_is_named(make, dims):
    net = make(dims)
    arch = net.sample(np.random.default_rng(0))
    name = next(iter(arch))
    with pytest.raises(ValueError, match=name):
        net(_input(dims, 2), {k: v for k, v in arch.items() if k != name})
    with pytest.raises(ValueError, match="not in the"):
        net.extract({**arch, name: "conv_9x9"})
    with pytest.raises(ValueError, match="unknown"):
        net.path({**arch, "bogus": 1})
    with pytest.raises(ValueError, match="dict"):
        net.validate(3.5)


def test_inactive_elastic_choice_is_named():
    net = _elastic(2)
    arch = {**net.smallest(), "s0_b2_k": 3}
    with pytest.raises(ValueError, match=r"s0_b2_k.*inactive"):
        net.validate(arch)


@pytest.mark.parametrize(("make", "dims"), SUPERNETS)
def test_mismatched_input_is_named(make, dims):
    net = make(dims)
    arch = net.sample(np.random.default_rng(0))
    with pytest.raises(ValueError, match="in_channels=2"):
        net(_input(dims, 3), arch)
    with pytest.raises(ValueError, match=f"dims={dims}"):
        net(_input(3 - dims, 2), arch)
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        net(np.zeros((2, 2, 8)), arch)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="dims"):
        NB201Supernet(dims=3)
    with pytest.raises(ValueError, match="C must be"):
        NB201Supernet(C=0)
    with pytest.raises(ValueError, match="odd"):
        ElasticSupernet(kernel_sizes=(3, 4))
    with pytest.raises(ValueError, match="max depth 5"):
        ElasticSupernet(stages=((8, 5, 1),), depths=(2, 3))


def test_checkpoint_round_trip_and_mismatch(tmp_path):
    net = _elastic(2)
    _shake_stats(net)
    path = save_checkpoint(tmp_path / "a" / "ckpt.pt", net, {"epoch": 7, "rng": [1, 2]})
    other = _elastic(2)
    state = load_checkpoint(path, other)
    assert state == {"epoch": 7, "rng": [1, 2]}
    for a, b in zip(net.state_dict().values(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="another supernet: kind is 'elastic' there"):
        load_checkpoint(path, _nb201(2))
    wider = ElasticSupernet(
        dims=2, in_channels=2, num_classes=7, stem=4, stages=((4, 3, 1), (6, 2, 2)),
        kernel_sizes=(3, 5, 7), expand_ratios=(1, 2), depths=(1, 2, 3),
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"kernel_sizes is \[3, 5\] there, \[3, 5, 7\] here"):
        load_checkpoint(path, wider)
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_checkpoint(bad, net)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt", net)


def test_super_batch_norm_updates_only_the_prefix():
    bn = SuperBatchNorm(6)
    bn.train()
    x = torch.randn(8, 4, 5) * 3 + 2
    bn(x)
    assert not torch.allclose(bn.running_mean[:4], torch.zeros(4))
    assert torch.equal(bn.running_mean[4:], torch.zeros(2))
    assert torch.equal(bn.running_var[4:], torch.ones(2))
    with pytest.raises(ValueError, match="7 channels"):
        bn(torch.randn(2, 7, 3))


@pytest.mark.parametrize(("make", "dims"), SUPERNETS)
def test_recalibration_of_subnet_and_supernet_agree(make, dims):
    net = make(dims)
    _shake_stats(net)
    calib = _input(dims, 2, batch=12)
    x = _input(dims, 2, batch=4, size=13)
    arch = net.sample(np.random.default_rng(2))
    sub = recalibrate_bn(net.extract(arch), calib, batch_size=5)
    recalibrate_bn(net, calib, arch=arch, batch_size=5)
    assert not sub.training
    assert not net.training
    with torch.no_grad():
        torch.testing.assert_close(sub(x), net(x, arch), atol=1e-5, rtol=1e-5)
    # The cumulative average over batches: with one batch, the batch statistics.
    bn = next(m for m in sub.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    assert bn.momentum == 0.1


def test_evaluate_loop_matches_direct_evaluation():
    net = _nb201(2)
    _shake_stats(net)
    x = _input(2, 2, batch=9)
    y = torch.arange(9) % 7
    archs = [net.sample(np.random.default_rng(s)) for s in range(3)]
    results = evaluate_loop(net, archs, x, y, batch_size=4, return_logits=True)
    net.eval()
    for arch, r in zip(archs, results, strict=True):
        with torch.no_grad():
            logits = net(x, arch)
        torch.testing.assert_close(r["logits"], logits, atol=1e-5, rtol=1e-5)
        assert r["accuracy"] == pytest.approx(float((logits.argmax(1) == y).float().mean()))
        expected_loss = float(torch.nn.functional.cross_entropy(logits, y))
        assert r["loss"] == pytest.approx(expected_loss, rel=1e-5)
    with pytest.raises(ValueError, match="y must have shape"):
        evaluate_loop(net, archs, x, y[:3])
    with pytest.raises(ValueError, match="calib is empty"):
        evaluate_loop(net, archs, x, y, calib=x[:0])


@pytest.mark.parametrize(
    ("name", "home"),
    [
        ("evaluate_loop", evaluate),
        ("recalibrate_bn", evaluate),
        ("save_checkpoint", checkpoint),
        ("load_checkpoint", checkpoint),
    ],
)
def test_moved_names_still_import_from_supernet_with_a_warning(name, home):
    with pytest.warns(DeprecationWarning, match=rf"supernet\.{name} .* {home.__name__}"):
        old = getattr(supernet, name)
    assert old is getattr(home, name) is getattr(airda.nas, name)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        supernet.nothing  # noqa: B018
