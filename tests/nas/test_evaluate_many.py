"""evaluate_many: the same results as evaluate_loop (each subnet extracted, recalibrated and
evaluated in turn) for random and evolutionary populations of both supernets, 1-D and 2-D,
with and without recalibration and grouping; the prefix tree; the supernet left untouched;
bad input named."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from airda.nas.evaluate import _Trie, evaluate_loop, evaluate_many  # noqa: E402
from airda.nas.nb201 import EDGE_NAMES  # noqa: E402
from airda.nas.supernet import ElasticSupernet, NB201Supernet  # noqa: E402

TOLERANCE = 1e-5


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _perturb(net):
    """Trained-looking batch norms (running statistics and affine parameters not 0/1), so that
    using the wrong statistics shows."""
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if hasattr(m, "running_mean") and isinstance(m.running_mean, torch.Tensor):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return net.eval()


def _nb201(dims):
    torch.manual_seed(0)
    return _perturb(NB201Supernet(dims=dims, in_channels=2, num_classes=7, C=4, N=2))


def _elastic(dims):
    torch.manual_seed(0)
    return _perturb(
        ElasticSupernet(
            dims=dims,
            in_channels=2,
            num_classes=7,
            stem=4,
            stages=((4, 3, 1), (8, 2, 2)),
            kernel_sizes=(1, 3, 5),
            expand_ratios=(1, 2, 3),
            depths=(1, 2, 3),
        )
    )


def _data(dims, n=13, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (n, 2, 9) if dims == 1 else (n, 2, 7, 6)
    return torch.randn(shape, generator=g), torch.randint(0, 7, (n,), generator=g)


def _population(net, size, seed=0):
    """A few random parents and children one mutation away, plus a repeat and the extremes."""
    rng = np.random.default_rng(seed)
    pop = [net.sample(rng) for _ in range(3)]
    while len(pop) < size:
        pop.append(net.mutate(pop[int(rng.integers(len(pop)))], rng))
    return [*pop, pop[1], net.largest(), net.smallest()]


def _compare(many, loop):
    assert len(many) == len(loop)
    for r, s in zip(many, loop, strict=True):
        assert abs(r["loss"] - s["loss"]) <= TOLERANCE
        assert abs(r["accuracy"] - s["accuracy"]) <= TOLERANCE
        if "logits" in s:
            # float32 through a dozen layers: a few ulps of the largest logit
            scale = s["logits"].abs().max().item()
            torch.testing.assert_close(r["logits"], s["logits"], rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("make", [_nb201, _elastic], ids=["nb201", "elastic"])
@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("recalibrate", [False, True], ids=["running", "recalibrated"])
@pytest.mark.parametrize("group", [False, True], ids=["plain", "grouped"])
def test_matches_the_loop(make, dims, recalibrate, group):
    net = make(dims)
    archs = _population(net, 8)
    x, y = _data(dims)
    calib = _data(dims, n=11, seed=1)[0] if recalibrate else None
    # batch 5: several evaluation batches, and calibration batches of unequal size
    many = evaluate_many(
        net, archs, x, y, calib=calib, batch_size=5, group=group, return_logits=True
    )
    loop = evaluate_loop(net, archs, x, y, calib=calib, batch_size=5, return_logits=True)
    _compare(many, loop)


def test_nb201_dead_nodes_and_all_none():
    """Cells whose nodes get no input (zeros, which a conv + batch norm turns into its bias)."""
    net = _nb201(2)
    none = dict.fromkeys(EDGE_NAMES, "none")
    dead = {**none, "0->2": "nor_conv_3x3", "1->3": "nor_conv_1x1", "1->2": "avg_pool_3x3"}
    skip = {**none, "0->1": "skip_connect", "1->3": "nor_conv_3x3", "2->3": "nor_conv_1x1"}
    archs = [none, dead, skip]
    x, y = _data(2)
    calib = _data(2, seed=2)[0]
    loop = evaluate_loop(net, archs, x, y, calib=calib, return_logits=True)
    for group in (False, True):
        many = evaluate_many(
            net, archs, x, y, calib=calib, group=group, channels_last=False, return_logits=True
        )
        _compare(many, loop)
    # A dead node's conv output is a constant per channel: its batch variance is rounding
    # noise, which the batch norm scales up by up to 1 / sqrt(eps) (~316x). The channels-last
    # convolutions round differently, so here the logits agree to the 1e-5 (absolute),
    # not to a few ulps; loss and accuracy as everywhere.
    fast = evaluate_many(net, archs, x, y, calib=calib, return_logits=True)
    for r, s in zip(fast, loop, strict=True):
        assert abs(r["loss"] - s["loss"]) <= TOLERANCE
        assert abs(r["accuracy"] - s["accuracy"]) <= TOLERANCE
        assert (r["logits"] - s["logits"]).abs().max().item() <= TOLERANCE


@pytest.mark.parametrize("make", [_nb201, _elastic], ids=["nb201", "elastic"])
def test_channels_last_is_the_cpu_default_and_matches(make):
    net = make(2)
    archs = _population(net, 6)
    x, y = _data(2)
    calib = _data(2, seed=3)[0]
    loop = evaluate_loop(net, archs, x, y, calib=calib, return_logits=True)
    for channels_last in (None, True, False):
        many = evaluate_many(
            net, archs, x, y, calib=calib, channels_last=channels_last, return_logits=True
        )
        _compare(many, loop)
    net1 = make(1)
    with pytest.raises(ValueError, match="channels_last needs 4-D"):
        evaluate_many(net1, [net1.largest()], *_data(1), channels_last=True)


def test_supernet_is_left_untouched():
    net = _elastic(2)
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = _data(2)
    evaluate_many(net, _population(net, 5), x, y, calib=x)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(m.training for m in net.modules())
    assert all(getattr(m, "override", None) is None for m in net.modules())
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in net.modules())


def test_trie_shares_prefixes():
    paths = [(None, 1, 2), (None, 1, 3), (None, 2, 3), (None, 1, 2)]
    trie = _Trie.build(paths)
    assert [len(level) for level in trie.levels] == [1, 2, 3]
    assert trie.leaf_of[0] == trie.leaf_of[3]
    assert trie.nodes() == 6
    net = _elastic(2)
    archs = _population(net, 12)
    trie = _Trie.build([net.path(a) for a in archs])
    assert trie.nodes() < len(archs) * len(net.layers)


def test_wide_levels_are_sliced(monkeypatch):
    """A level larger than the memory bound is processed in slices, with the same results."""
    import airda.nas.evaluate as ev

    monkeypatch.setattr(ev, "_LEVEL_BYTES", 1)
    net = _nb201(1)
    archs = _population(net, 6)
    x, y = _data(1)
    _compare(evaluate_many(net, archs, x, y, calib=x), evaluate_loop(net, archs, x, y, calib=x))


def test_empty_population():
    net = _nb201(1)
    x, y = _data(1)
    assert evaluate_many(net, [], x, y) == []


def test_bad_input_is_named():
    net = _elastic(2)
    x, y = _data(2)
    good = net.sample(np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"archs\[1\].*s0_b0_k"):
        evaluate_many(net, [good, {**good, "s0_b0_k": 4}], x, y)
    with pytest.raises(ValueError, match=r"archs\[0\]"):
        evaluate_many(net, [{"nope": 1}], x, y)
    with pytest.raises(ValueError, match="channels"):
        evaluate_many(net, [good], torch.randn(4, 3, 7, 6), y[:4])
    with pytest.raises(ValueError, match="shape"):
        evaluate_many(net, [good], torch.randn(4, 2, 7), y[:4])
    with pytest.raises(ValueError, match=r"y must be a tensor of shape \(13,\)"):
        evaluate_many(net, [good], x, y[:4])
    with pytest.raises(ValueError, match="integer class labels"):
        evaluate_many(net, [good], x, y.float())
    with pytest.raises(ValueError, match="outside"):
        evaluate_many(net, [good], x, y + 7)
    with pytest.raises(ValueError, match="calib"):
        evaluate_many(net, [good], x, y, calib=torch.randn(4, 2, 5, 5))
    with pytest.raises(ValueError, match="calib"):
        evaluate_many(net, [good], x, y, calib=torch.randn(4, 3, 7, 6))
    with pytest.raises(ValueError, match="calib is empty"):
        evaluate_many(net, [good], x, y, calib=x[:0])
    with pytest.raises(ValueError, match="batch_size"):
        evaluate_many(net, [good], x, y, batch_size=0)
    with pytest.raises(TypeError, match="Supernet"):
        evaluate_many(torch.nn.Linear(2, 2), [good], x, y)


def test_grouped_with_the_triton_depthwise_kernel(monkeypatch):
    """The grouped elastic path on the Triton grouped depthwise convolution (the GPU's backend;
    the CPU interpreter here): the same results as the loop."""
    from airda.ops import backend_status
    from airda.ops.grouped_depthwise_conv import _OP

    if not backend_status("triton").usable:
        pytest.skip(f"triton cannot run here: {backend_status('triton').reason}")
    triton_impl, calls = _OP.impls["triton"], []

    def counted(xs, *args):
        calls.append(len(xs))
        return triton_impl(xs, *args)

    counted.reads_strided = True
    monkeypatch.setitem(_OP.impls, "cpu", counted)
    net = _elastic(2)
    archs = _population(net, 4)
    x, y = _data(2, n=5)
    loop = evaluate_loop(net, archs, x, y, calib=x[:3], return_logits=True)
    many = evaluate_many(
        net, archs, x, y, calib=x[:3], group=True, channels_last=False, return_logits=True
    )
    _compare(many, loop)
    assert max(calls) > 1  # groups of several subnets went through the kernel
