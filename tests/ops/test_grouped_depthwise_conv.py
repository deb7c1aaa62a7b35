"""grouped_depthwise_conv: every backend against the reference (per-group torch convolutions)
on awkward shapes, both dtypes, 1-D and 2-D, strides 1 and 2, folded affine maps and each
activation; NaN propagation; the bad-input errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from airda.ops import grouped_depthwise_conv, grouped_depthwise_conv_reference
from tests.helpers import COMPILED_BACKENDS, device_for, require_backend

BACKENDS = ("reference", *COMPILED_BACKENDS)
DTYPES = (torch.float32, torch.float64)
# (batch, spatial, channels per group, kernel sizes per group, weight (C, K))
CASES = [
    (1, (1, 1), (1,), (1,), (1, 1)),
    (2, (5, 7), (3, 1, 4), (3, 1, 5), (4, 5)),
    (3, (9, 8), (7, 2, 7), (7, 3, 5), (7, 7)),
    (2, (17,), (5, 3), (7, 3), (6, 7)),
    (1, (2,), (1, 2), (5, 1), (2, 5)),
    (0, (4, 4), (2,), (3,), (2, 3)),
    (2, (3, 3), (0, 2), (3, 3), (2, 3)),
]


def make(case, dtype, seed=0, affine=True):
    batch, spatial, chans, ks, (c_max, k_max) = case
    gen = torch.Generator().manual_seed(seed)
    dims = len(spatial)
    wshape = (c_max, k_max, k_max) if dims == 2 else (c_max, k_max)
    weight = (torch.randn(wshape, generator=gen, dtype=torch.float64) * 2).to(dtype)
    xs = [
        (torch.randn((batch, c, *spatial), generator=gen, dtype=torch.float64) * 3).to(dtype)
        for c in chans
    ]
    if not affine:
        return xs, weight, list(ks), None, None
    scales = [torch.randn(c, generator=gen, dtype=torch.float64).to(dtype) for c in chans]
    shifts = [torch.randn(c, generator=gen, dtype=torch.float64).to(dtype) for c in chans]
    return xs, weight, list(ks), scales, shifts


def tolerance(dtype, xs, weight, ks):
    # a few ulps of the largest sum of |tap * input| a group forms (the plain conv's error)
    eps = torch.finfo(dtype).eps
    big = max((x.abs().max().item() if x.numel() else 0.0) for x in xs)
    return 16 * eps * (weight.abs().max().item() * big * max(ks) ** 2 + 1) * 4


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).removeprefix("torch."))
@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("stride", [1, 2])
def test_backend_matches_reference(backend, dtype, case, stride):
    require_backend(backend)
    activation = ("none", "relu", "relu6", "hardswish")[(case + stride) % 4]
    xs, weight, ks, scales, shifts = make(CASES[case], dtype, seed=case)
    want = grouped_depthwise_conv_reference(
        [x.double() for x in xs],
        weight.double(),
        ks,
        stride=stride,
        scales=[s.double() for s in scales],
        shifts=[s.double() for s in shifts],
        activation=activation,
    )
    device = device_for(backend)
    got = grouped_depthwise_conv(
        [x.to(device) for x in xs],
        weight.to(device),
        ks,
        stride=stride,
        scales=[s.to(device) for s in scales],
        shifts=[s.to(device) for s in shifts],
        activation=activation,
        backend=backend,
    )
    tol = tolerance(dtype, xs, weight, ks)
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == dtype
        assert a.device.type == device
        assert a.shape == b.shape
        if b.numel():
            assert (a.cpu().double() - b).abs().max().item() <= tol


@pytest.mark.parametrize("backend", COMPILED_BACKENDS)
def test_without_affine_and_non_contiguous_input(backend):
    require_backend(backend)
    device = device_for(backend)
    xs, weight, ks, _, _ = make(CASES[2], torch.float32, affine=False)
    xs = [x.transpose(2, 3).contiguous().transpose(2, 3) for x in xs]  # not C-contiguous
    assert not xs[0].is_contiguous()
    got = grouped_depthwise_conv([x.to(device) for x in xs], weight.to(device), ks, backend=backend)
    want = grouped_depthwise_conv_reference(xs, weight, ks)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("backend", COMPILED_BACKENDS)
def test_weight_with_singleton_dim_and_crop(backend):
    """(C, 1, K, K) conv weights are taken as is; kernel k uses the centre crop."""
    require_backend(backend)
    device = device_for(backend)
    weight = torch.zeros(2, 1, 5, 5)
    weight[:, 0, 2, 2] = 1.0  # the centre tap only: a 1x1 crop is the identity
    weight[:, 0, 0, 0] = 100.0  # outside the 3x3 crop
    x = torch.randn(2, 2, 6, 6)
    one, three = grouped_depthwise_conv(
        [x.to(device), x.to(device)], weight.to(device), [1, 3], backend=backend
    )
    torch.testing.assert_close(one.cpu(), x)
    torch.testing.assert_close(three.cpu(), x)


@pytest.mark.parametrize("backend", COMPILED_BACKENDS)
def test_nan_and_inf_propagate(backend):
    require_backend(backend)
    device = device_for(backend)
    xs, weight, ks, scales, shifts = make(CASES[1], torch.float32)
    xs[0][0, 1, 2, 3] = float("nan")
    xs[2][1, 0, 0, 0] = float("inf")
    for activation in ("none", "relu6"):
        want = grouped_depthwise_conv_reference(
            xs, weight, ks, scales=scales, shifts=shifts, activation=activation
        )
        got = grouped_depthwise_conv(
            [x.to(device) for x in xs],
            weight.to(device),
            ks,
            scales=[s.to(device) for s in scales],
            shifts=[s.to(device) for s in shifts],
            activation=activation,
            backend=backend,
        )
        for a, b in zip(got, want, strict=True):
            a = a.cpu()
            assert torch.equal(a.isnan(), b.isnan())
            finite = b.isfinite()
            assert torch.equal(a.isinf(), b.isinf())
            torch.testing.assert_close(a[finite], b[finite], rtol=1e-5, atol=1e-4)


def test_empty_group_list():
    assert grouped_depthwise_conv([], torch.zeros(2, 3, 3), []) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kernel_sizes": [3]}, ValueError, "kernel_sizes has 1 entries"),
        ({"kernel_sizes": [3, 4]}, ValueError, r"kernel_sizes\[1\]"),
        ({"kernel_sizes": [3, 7]}, ValueError, r"kernel_sizes\[1\]"),
        ({"stride": 0}, ValueError, "stride"),
        ({"activation": "gelu"}, ValueError, "activation"),
        ({"scales": [torch.ones(2), torch.ones(4)]}, ValueError, "both scales and shifts"),
        (
            {"scales": [torch.ones(2), torch.ones(3)], "shifts": [torch.ones(2), torch.ones(4)]},
            ValueError,
            r"scales\[1\] must be a tensor of shape \(4,\)",
        ),
        ({"xs": [torch.zeros(2, 2, 5, 5), torch.zeros(2, 6, 5, 5)]}, ValueError, "only 5"),
        ({"xs": [torch.zeros(2, 2, 5, 5), torch.zeros(3, 4, 5, 5)]}, ValueError, "batch"),
        ({"xs": [torch.zeros(2, 2, 5, 5), torch.zeros(2, 4, 5)]}, ValueError, "2-D"),
        ({"xs": [torch.zeros(2, 2, 5, 5), torch.zeros(2, 4, 5, 5).double()]}, TypeError, "dtype"),
        ({"xs": [torch.zeros(2, 2, 0, 5), torch.zeros(2, 4, 0, 5)]}, ValueError, "empty"),
        ({"weight": torch.zeros(5, 5, 5).numpy()}, TypeError, "torch tensors"),
        ({"weight": torch.zeros(5, 5, 3)}, ValueError, "square"),
        ({"weight": torch.zeros(5, 5, 5, dtype=torch.int64)}, TypeError, "float32"),
        ({"xs": None}, TypeError, "xs must be a sequence, got NoneType"),
        ({"kernel_sizes": 3}, TypeError, "kernel_sizes must be a sequence, got int"),
        ({"kernel_sizes": "35"}, TypeError, "kernel_sizes must be a sequence, got str"),
        ({"weight": torch.zeros(5, 5, 5).to_sparse()}, TypeError, "weight is a torch tensor of"),
        ({"weight": torch.zeros(5, 5, 5, device="meta")}, ValueError, "weight: cannot take"),
        (
            {"xs": [torch.zeros(2, 2, 5, 5).to_sparse(), torch.zeros(2, 4, 5, 5)]},
            TypeError,
            r"xs\[0\] is a torch tensor of layout torch.sparse_coo",
        ),
        (
            {"xs": [torch.zeros(1, 1, 5, 5).expand(2**31, c, 5, 5) for c in (2, 4)]},
            MemoryError,
            r"the outputs need 1\.2e\+03 GiB.*stride = 1",
        ),
        (
            {"xs": [torch.zeros(2, 2, 5, 5), torch.zeros(1, 1, 5, 5).expand(2, 4, 5, 5)]},
            None,
            None,
        ),
    ],
)
def test_bad_input(kwargs, error, match):
    args = {
        "xs": [torch.zeros(2, 2, 5, 5), torch.zeros(2, 4, 5, 5)],
        "weight": torch.zeros(5, 5, 5),
        "kernel_sizes": [3, 5],
    }
    args.update(kwargs)
    if error is None:  # not an error: a zero-stride input is copied where a kernel needs it
        got = grouped_depthwise_conv(args["xs"], args["weight"], args["kernel_sizes"])
        assert [tuple(o.shape) for o in got] == [(2, 2, 5, 5), (2, 4, 5, 5)]
        return
    with pytest.raises(error, match=match):
        grouped_depthwise_conv(args.pop("xs"), args.pop("weight"), args.pop("kernel_sizes"), **args)


def run_isolated(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter at the repository's root: a call that crashed the
    process before its fix fails the test instead of ending the session."""
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=root,
        check=False,
    )


HUGE_STRIDES = (2**31, 2**63 - 1, 2**64, 2**100)


def check_huge_strides(backend: str) -> None:
    device = device_for(backend)
    for case in (CASES[2], CASES[3]):  # 2-D and 1-D
        xs, weight, ks, scales, shifts = make(case, torch.float64)
        want = grouped_depthwise_conv_reference(
            xs, weight, ks, stride=1000, scales=scales, shifts=shifts
        )
        for stride in HUGE_STRIDES:
            got = grouped_depthwise_conv(
                [x.to(device) for x in xs],
                weight.to(device),
                ks,
                stride=stride,
                scales=[s.to(device) for s in scales],
                shifts=[s.to(device) for s in shifts],
                backend=backend,
            )
            for a, b in zip(got, want, strict=True):
                assert a.shape[2:] == (1,) * (a.dim() - 2), a.shape
                torch.testing.assert_close(a.cpu(), b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_any_stride_past_the_input_gives_one_output_row_and_column(backend):
    """Strides beyond the input give what stride 1000 gives: one row and column. They used to
    abort the process in the C++ kernel (std::bad_alloc: hence a subprocess for cpu) and to
    overflow int32 in Triton."""
    require_backend(backend)
    if backend != "cpu":
        check_huge_strides(backend)
        return
    proc = run_isolated(
        """
        from tests.ops.test_grouped_depthwise_conv import check_huge_strides
        check_huge_strides("cpu")
        print("ok")
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "ok"


def test_cpu_work_memory_is_checked_before_it_is_allocated():
    """A stride wider than the input but shorter than its height makes the C++ kernel's phase
    buffer stride x height per plane; one that cannot fit is refused, naming the arguments,
    instead of aborting the process from inside an OpenMP region."""
    require_backend("cpu")
    proc = run_isolated(
        """
        import resource
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, hard))
        import torch
        from airda.ops import grouped_depthwise_conv

        x = torch.ones(1, 3, 40_000, 1)
        try:
            grouped_depthwise_conv([x], torch.ones(3, 3, 3), [3], stride=39_999, backend="cpu")
        except MemoryError as exc:
            print(exc)
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cpu backend needs" in proc.stdout
    assert "kernel_sizes[0] = 3 and stride = 39999" in proc.stdout


# Triton's interpreter computes with NumPy, which warns about inf * 0.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("backend", BACKENDS)
def test_non_finite_weight_taps_on_the_padding_give_nan(backend):
    """The padding is zeros in the input: a NaN or inf tap over it adds NaN in every backend
    (PyTorch's convolution skipped such taps, so the reference disagreed with the kernels)."""
    require_backend(backend)
    xs, weight, ks, scales, shifts = make(CASES[1], torch.float32)  # k = 3, 1, 5 of a 5 x 5
    weight[0, 0, 0] = float("nan")  # a corner: only k = 5 reads it, over the padding mostly
    weight[1, 1, 1] = float("inf")  # inside the 3 x 3 crop
    want = grouped_depthwise_conv_reference(xs, weight, ks, scales=scales, shifts=shifts)
    assert want[2][:, 0].isnan().all()  # every output of channel 0 sums the corner tap
    device = device_for(backend)
    got = grouped_depthwise_conv(
        [x.to(device) for x in xs],
        weight.to(device),
        ks,
        scales=[s.to(device) for s in scales],
        shifts=[s.to(device) for s in shifts],
        backend=backend,
    )
    for a, b in zip(got, want, strict=True):
        a = a.cpu()
        assert torch.equal(a.isnan(), b.isnan())
        assert torch.equal(a.isinf(), b.isinf())
        finite = b.isfinite()
        torch.testing.assert_close(a[finite], b[finite], rtol=1e-5, atol=1e-4)


def test_cpu_does_not_depend_on_thread_count():
    require_backend("cpu")
    from airda._native import native

    xs, weight, ks, scales, shifts = make(CASES[2], torch.float32)
    xs = [x.repeat(40, 1, 1, 1) for x in xs]
    before = native().omp_max_threads()
    try:
        native().set_num_threads(1)
        one = grouped_depthwise_conv(xs, weight, ks, scales=scales, shifts=shifts, backend="cpu")
        native().set_num_threads(2)
        two = grouped_depthwise_conv(xs, weight, ks, scales=scales, shifts=shifts, backend="cpu")
    finally:
        native().set_num_threads(before)
    for a, b in zip(one, two, strict=True):
        assert torch.equal(a, b)


# ---- the Triton launcher: launches per call, inputs read in place, tiling -------------------


def _triton_case(dtype=torch.float32, spatial=(10, 11), affine=True):
    """Groups in mixed kernel-size order; inputs a channel prefix of a wider tensor, an
    expanded batch (stride 0), a 1-channel group and a plain tensor."""
    gen = torch.Generator().manual_seed(5)

    def randn(*shape):
        return torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)

    base = randn(2, 9, *spatial)
    xs = [base[:, :5], randn(2, 4, *spatial), randn(1, 6, *spatial).expand(2, -1, -1, -1)]
    xs += [base[:, :1], base]
    ks = [7, 3, 5, 3, 7]
    weight = randn(9, 7, 7)
    if not affine:
        return xs, weight, ks, None, None
    return xs, weight, ks, [randn(x.shape[1]) for x in xs], [randn(x.shape[1]) for x in xs]


@pytest.mark.parametrize(
    ("dtype", "spatial", "tile", "stride"),
    [
        (torch.float32, (10, 11), None, 1),
        (torch.float32, (10, 11), None, 2),
        (torch.float64, (10, 11), None, 1),
        (torch.float32, (2, 9), 8, 1),  # 2 row tiles x 2 column tiles per plane
        (torch.float64, (2, 2), 8, 1),  # 2 channels per program, up to 5 channel blocks
        (torch.float64, (2, 2), 8, 2),
    ],
    ids=str,
)
def test_triton_strided_inputs_and_small_tiles(monkeypatch, dtype, spatial, tile, stride):
    """Inputs read in place with their strides; small tiles split planes into several tiles
    per row and column, and channels into several blocks."""
    require_backend("triton")
    kernels = pytest.importorskip("airda.kernels.grouped_depthwise_conv")
    if tile is not None:
        monkeypatch.setattr(kernels, "_TILE", tile)
    xs, weight, ks, scales, shifts = _triton_case(dtype, spatial)
    if tile is not None:  # many small programs: slow on the interpreter
        xs, ks, scales, shifts = xs[:3], ks[:3], scales[:3], shifts[:3]
    assert not xs[0].is_contiguous()
    assert xs[2].stride(0) == 0
    assert all(kernels.inner_dense(x) for x in xs)
    device = device_for("triton")
    got = grouped_depthwise_conv(
        [x.to(device) for x in xs],
        weight.to(device),
        ks,
        stride=stride,
        scales=[s.to(device) for s in scales],
        shifts=[s.to(device) for s in shifts],
        activation="hardswish",
        backend="triton",
    )
    want = grouped_depthwise_conv_reference(
        [x.double() for x in xs],
        weight.double(),
        ks,
        stride=stride,
        scales=[s.double() for s in scales],
        shifts=[s.double() for s in shifts],
        activation="hardswish",
    )
    tol = tolerance(dtype, xs, weight, ks)
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
        assert a.is_contiguous()
        assert (a.cpu().double() - b).abs().max().item() <= tol


def test_triton_launches_once_per_kernel_size_without_copies(monkeypatch):
    """Three kernel sizes: three launches; no concatenation or copy of the inputs."""
    require_backend("triton")
    from torch.utils._python_dispatch import TorchDispatchMode

    kernels = pytest.importorskip("airda.kernels.grouped_depthwise_conv")
    real = kernels.grouped_depthwise_conv_kernel
    log: list = []

    class Recorder:
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                log.append(("launch", (kwargs["KH"], kwargs["KW"])))
                log.append(("inside", True))
                try:
                    return real[grid](*args, **kwargs)
                finally:
                    log.append(("inside", False))

            return launch

    class Ops(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            inside = [v for kind, v in log if kind == "inside"]
            if not (inside and inside[-1]):
                log.append(("op", str(func)))
            return func(*args, **(kwargs or {}))

    monkeypatch.setattr(kernels, "grouped_depthwise_conv_kernel", Recorder())
    xs, weight, ks, scales, shifts = _triton_case(spatial=(4, 5))
    device = device_for("triton")
    xs = [x.to(device) for x in xs]
    weight = weight.to(device)
    scales = [s.to(device) for s in scales]
    shifts = [s.to(device) for s in shifts]
    with Ops():
        grouped_depthwise_conv(
            xs, weight, ks, scales=scales, shifts=shifts, activation="relu", backend="triton"
        )
    assert [v for kind, v in log if kind == "launch"] == [(3, 3), (5, 5), (7, 7)]
    ops_seen = {v for kind, v in log if kind == "op"}
    assert not ops_seen & {"aten.cat.default", "aten.clone.default", "aten.copy_.default"}, ops_seen
