"""Model cost (parameters, FLOPs) and the NB201 network, against NASLib's recorded numbers."""

from __future__ import annotations

import json
import os
import time

import pytest
import torch
from torch import nn

from airda.nas import build_model, count_flops, count_params
from airda.nas.nb201 import NUM_ARCHS, Arch
from airda.nas.nb201_model import NB201Cell, NB201Network, ResNetReduction
from tests.nas.shared_data import shared_data_file

# torchstat (which produced the recorded FLOPs) counts (8+1)*(8+1) instead of 8*8 per channel
# for the final 8x8 global pool of 64 channels; see airda.nas.cost.
GLOBAL_POOL_QUIRK = 64 * (81 - 64)

# Set to 1 to check all 725 CIFAR-10 architectures instead of every fourth (about 4x longer).
FULL = os.environ.get("AIRDA_NB201_FULL_COST_CHECK") == "1"


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny forward passes: on a busy machine extra threads only contend (100x slower seen).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def naslib_records():
    path = shared_data_file("nasbench201", "naslib_zc_nasbench201.json")
    return json.loads(path.read_text())


# ---- the FLOP convention on single modules ------------------------------------------------------


def test_conv_and_linear():
    conv = nn.Conv2d(4, 6, 3, padding=1, bias=False)
    assert count_flops(conv, (1, 4, 5, 5)) == 6 * 25 * 4 * 9
    biased = nn.Conv2d(4, 6, 3, padding=1, stride=2, bias=True)
    assert count_flops(biased, (1, 4, 5, 5)) == 6 * 9 * (4 * 9 + 1)
    grouped = nn.Conv2d(4, 6, 1, groups=2, bias=False)
    assert count_flops(grouped, (2, 4, 3, 3)) == 2 * 6 * 9 * 2  # batch of 2
    conv1d = nn.Conv1d(3, 5, 3, bias=False)
    assert count_flops(conv1d, (1, 3, 10)) == 5 * 8 * 3 * 3
    assert count_flops(nn.Linear(7, 3), (1, 7)) == 21  # no bias term
    assert count_flops(nn.Linear(7, 3), (4, 5, 7)) == 4 * 5 * 21
    deconv = nn.ConvTranspose2d(2, 3, 2, stride=2, bias=False)
    assert count_flops(deconv, (1, 2, 4, 4)) == 2 * 16 * 3 * 4


def test_norms_activations_pools():
    assert count_flops(nn.BatchNorm2d(3), (1, 3, 4, 4)) == 2 * 48
    assert count_flops(nn.BatchNorm2d(3, affine=False), (1, 3, 4, 4)) == 48
    assert count_flops(nn.LayerNorm(8), (2, 8)) == 32
    assert count_flops(nn.ReLU(), (1, 3, 4, 4)) == 48
    assert count_flops(nn.GELU(), (2, 5)) == 10
    pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    assert count_flops(pool, (1, 3, 4, 4)) == 48 * 9
    assert count_flops(nn.MaxPool2d(2), (1, 3, 4, 4)) == 12 * 4
    assert count_flops(nn.AvgPool2d((1, 3)), (1, 1, 3, 6)) == 6 * 3
    assert count_flops(nn.AdaptiveAvgPool2d(1), (1, 64, 8, 8)) == 64 * 64
    # Overlapping adaptive windows: 5 -> 3 gives windows of sizes 2, 3, 2 along each axis.
    assert count_flops(nn.AdaptiveMaxPool2d(3), (1, 2, 5, 5)) == 2 * 7 * 7
    assert count_flops(nn.AdaptiveAvgPool1d(2), (1, 2, 4)) == 2 * 4
    assert count_flops(nn.Identity(), (1, 3)) == 0
    assert count_flops(nn.Dropout(), (1, 3)) == 0


def test_every_call_of_a_shared_module_counts():
    relu = nn.ReLU()
    net = nn.Sequential(relu, relu)
    assert count_flops(net, (1, 10)) == 20


def test_count_flops_leaves_the_model_as_it_was():
    net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    net.train()
    net[1].eval()
    before = {name: m.training for name, m in net.named_modules()}
    state = {k: v.clone() for k, v in net.state_dict().items()}
    count_flops(net, (1, 4))  # a batch of 1 in training mode would fail in BatchNorm1d
    assert {name: m.training for name, m in net.named_modules()} == before
    assert all(not m._forward_hooks for m in net.modules())
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k])  # eval mode: running statistics untouched


def test_count_flops_restores_on_error():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            self.fc(x)
            raise RuntimeError("boom")

    net = Broken().train()
    with pytest.raises(RuntimeError, match="boom"):
        count_flops(net, (1, 2))
    assert net.training
    assert all(not m._forward_hooks for m in net.modules())


def test_inputs_argument_and_errors():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 2), nn.Linear(5, 2)

        def forward(self, x, y):
            return self.a(x) + self.b(y)

    assert count_flops(TwoInputs(), inputs=(torch.zeros(1, 3), torch.zeros(1, 5))) == 16
    assert count_flops(nn.Linear(3, 2), inputs=torch.zeros(2, 3)) == 12
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        count_flops(lambda x: x)
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        count_params("model")
    for shape in ((), (1, 0, 3), (1, 2.5)):
        with pytest.raises(ValueError, match="input_shape"):
            count_flops(nn.ReLU(), shape)
    assert count_flops(nn.ReLU(), (2, 3)) == 6  # no parameters: zeros on the CPU


def test_count_params():
    shared = nn.Linear(3, 3)
    net = nn.Sequential(shared, nn.ReLU(), shared, nn.Linear(3, 1, bias=False))
    assert count_params(net) == 12 + 3
    net[3].weight.requires_grad_(False)
    assert count_params(net, trainable_only=True) == 12


# ---- the NB201 network ------------------------------------------------------------------------


def test_network_structure_and_shapes():
    a = Arch.from_string(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    )
    model = build_model(a, num_classes=7, C=8, N=2)
    assert isinstance(model, NB201Network)
    assert model.training
    cells = list(model.cells)
    assert [type(c) for c in cells] == [NB201Cell] * 2 + [ResNetReduction] + [NB201Cell] * 2 + [
        ResNetReduction
    ] + [NB201Cell] * 2
    x = torch.randn(3, 3, 16, 16)
    assert model(x).shape == (3, 7)
    assert model.features(x).shape == (3, 32)
    # The cell's edges follow EDGES; conv edges are ReLU-Conv-BN with affine BatchNorm.
    conv3 = cells[0].edges[0]
    assert [type(m) for m in conv3] == [nn.ReLU, nn.Conv2d, nn.BatchNorm2d]
    assert conv3[1].kernel_size == (3, 3)
    assert conv3[1].bias is None
    assert conv3[2].affine
    assert conv3[2].track_running_stats
    pool = cells[0].edges[2]
    assert isinstance(pool, nn.AvgPool2d)
    assert not pool.count_include_pad
    assert isinstance(cells[0].edges[3], nn.Identity)
    model(x).sum().backward()
    assert model.classifier.weight.grad is not None


def test_the_all_none_network_runs():
    model = build_model(Arch(("none",) * 6)).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert torch.isfinite(out).all()


def test_build_model_rejects_bad_arguments():
    a = Arch.from_index(123)
    with pytest.raises(ValueError, match="num_classes"):
        build_model(a, num_classes=0)
    with pytest.raises(ValueError, match="C must be"):
        build_model(a, C=2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="N must be"):
        build_model(a, N=-1)
    with pytest.raises(ValueError, match="malformed"):
        build_model("|none~0|")


def test_model_accepts_every_arch_form():
    a = Arch.from_index(4321)
    n = count_params(build_model(a, N=1))
    for form in (a.to_string(), a.to_params(), list(a.ops)):
        assert count_params(build_model(form, N=1)) == n


# ---- against the benchmark's records ------------------------------------------------------------


def test_params_and_flops_match_naslib_records(naslib_records):
    """Parameters equal NASLib's records exactly and FLOPs up to the global-pool quirk, on every
    fourth of the 725 CIFAR-10 architectures (182; all with AIRDA_NB201_FULL_COST_CHECK=1)."""
    entries = list(naslib_records["cifar10"].items())
    assert len(entries) == 725
    sample = entries if FULL else entries[::4]
    start = time.perf_counter()
    for key, record in sample:
        model = build_model(Arch.from_naslib(key))
        assert count_params(model) == round(record["params"]["score"] * 1e6), key
        flops = count_flops(model, (1, 3, 32, 32))
        recorded = record["flops"]["score"] * 1e6
        assert abs(flops - recorded) <= 0.01 * recorded, key  # the acceptance bound
        assert flops - round(recorded) == -GLOBAL_POOL_QUIRK, key  # in fact exact
    assert len(sample) >= 150
    assert time.perf_counter() - start < 120


@pytest.mark.parametrize(
    ("dataset", "num_classes", "side"), [("cifar100", 100, 32), ("ImageNet16-120", 120, 16)]
)
def test_other_datasets_heads_and_resolutions(naslib_records, dataset, num_classes, side):
    for key, record in list(naslib_records[dataset].items())[:: 725 // 12]:
        model = build_model(Arch.from_naslib(key), num_classes=num_classes)
        assert count_params(model) == round(record["params"]["score"] * 1e6), key
        flops = count_flops(model, (1, 3, side, side))
        # The global pool sees 8x8 (CIFAR) or 4x4 (ImageNet16) maps of 64 channels.
        quirk = 64 * ((side // 4 + 1) ** 2 - (side // 4) ** 2)
        assert flops - round(record["flops"]["score"] * 1e6) == -quirk, key


def test_sizes_span_the_space():
    smallest = count_params(build_model(Arch(("none",) * 6)))
    largest = count_params(build_model(Arch(("nor_conv_3x3",) * 6)))
    # Published NB201 extremes on CIFAR-10: 0.073306 M and 1.531546 M parameters.
    assert (smallest, largest) == (73306, 1531546)
    assert NUM_ARCHS == 15625
