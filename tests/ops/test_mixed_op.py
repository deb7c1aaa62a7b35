"""mixed_op (fused DARTS mixed operation): every backend against the reference on awkward
shapes, the bad-input errors, and the autograd function against autograd of the unfused
expression."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from airda import ops
from airda._native import native
from airda.nas import mixed_op
from airda.ops import (
    mixed_op_backward,
    mixed_op_backward_reference,
    mixed_op_forward,
    mixed_op_forward_reference,
)
from tests.helpers import COMPILED_BACKENDS, device_for, require_backend

SHAPES = ((), (0,), (1,), (7,), (3, 0, 2), (2, 3, 5), (1_000_003,))
K_VALUES = (1, 5, 8)
DTYPES = (torch.float32, torch.float64)


@functools.cache
def inputs(k: int, shape: tuple[int, ...], dtype: torch.dtype):
    """ys (K, *S), alpha (K,), g (S); values of mixed scale so that cancellation shows."""
    gen = torch.Generator().manual_seed(k * 1009 + len(shape) * 31 + int(np.prod(shape)))
    ys = torch.randn((k, *shape), generator=gen, dtype=torch.float64) * 3.0
    alpha = torch.randn(k, generator=gen, dtype=torch.float64) * 2.0
    g = torch.randn(shape, generator=gen, dtype=torch.float64)
    return ys.to(dtype), alpha.to(dtype), g.to(dtype)


def unfused(ys: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return (torch.softmax(alpha, 0).view(-1, *[1] * (ys.dim() - 1)) * ys).sum(0)


def check_close(got, exact, in_dtype, scale: float, eps: float) -> None:
    """`got` is within twice the error of the reference in the input dtype, or a few ulps of
    `scale` (flash-attention's oracle: no worse than the plain computation)."""
    got = torch.as_tensor(got).cpu().double()
    exact = torch.as_tensor(exact).double()
    in_dtype = torch.as_tensor(in_dtype).double()
    assert got.shape == exact.shape
    if got.numel() == 0:
        return
    err = (got - exact).abs().max().item()
    ref_err = (in_dtype - exact).abs().max().item()
    assert err <= 2 * ref_err + 8 * eps * scale, (err, ref_err, scale)


def amax(t: torch.Tensor) -> float:
    return t.abs().max().item() if t.numel() else 0.0


def run_backend(backend: str, k: int, shape, dtype):
    require_backend(backend)
    ys, alpha, g = inputs(k, shape, dtype)
    device = device_for(backend)
    out = mixed_op_forward(ys.to(device), alpha.to(device), backend=backend)
    grad_ys, grad_alpha = mixed_op_backward(
        ys.to(device), alpha.to(device), g.to(device), backend=backend
    )
    for t in (out, grad_ys, grad_alpha):
        assert isinstance(t, torch.Tensor)
        assert t.dtype == dtype
        assert t.device.type == device
    return (ys, alpha, g), out, grad_ys, grad_alpha


@pytest.mark.parametrize("backend", COMPILED_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).removeprefix("torch."))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("k", K_VALUES)
def test_backend_matches_reference(backend, dtype, shape, k):
    if k == 8 and int(np.prod(shape)) > 100_000:
        pytest.skip("large S is covered with K = 1 and 5; keeps the suite fast")
    (ys, alpha, g), out, grad_ys, grad_alpha = run_backend(backend, k, shape, dtype)
    eps = torch.finfo(dtype).eps
    y64, a64, g64 = ys.double(), alpha.double(), g.double()
    assert out.shape == shape
    assert grad_ys.shape == (k, *shape)
    assert grad_alpha.shape == (k,)
    ref_out = mixed_op_forward_reference(ys, alpha)
    check_close(out, mixed_op_forward_reference(y64, a64), ref_out, amax(ys), eps)
    ref_gy, ref_ga = mixed_op_backward_reference(ys, alpha, g)
    exact_gy, exact_ga = mixed_op_backward_reference(y64, a64, g64)
    check_close(grad_ys, exact_gy, ref_gy, amax(g), eps)
    dot_scale = amax((y64.abs() * g64.abs()).reshape(k, -1).sum(1))
    check_close(grad_alpha, exact_ga, ref_ga, dot_scale, eps)


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_cpu_keeps_the_library(lib):
    require_backend("cpu")
    ys, alpha, g = inputs(5, (7,), torch.float64)
    if lib == "numpy":
        ys, alpha, g = ys.numpy(), alpha.numpy(), g.numpy()
    out = mixed_op_forward(ys, alpha, backend="cpu")
    grad_ys, grad_alpha = mixed_op_backward(ys, alpha, g, backend="cpu")
    kind = np.ndarray if lib == "numpy" else torch.Tensor
    assert all(isinstance(t, kind) for t in (out, grad_ys, grad_alpha))
    np.testing.assert_allclose(np.asarray(out), np.asarray(mixed_op_forward_reference(ys, alpha)))


def test_reference_matches_definition():
    ys, alpha, g = inputs(3, (4,), torch.float64)
    w = [float(v) for v in torch.softmax(alpha, 0)]
    out = mixed_op_forward_reference(ys, alpha)
    np.testing.assert_allclose(out, sum(w[k] * ys[k] for k in range(3)), rtol=1e-15)
    grad_ys, grad_alpha = mixed_op_backward_reference(ys, alpha, g)
    s = [float((g * ys[k]).sum()) for k in range(3)]
    mean = sum(wk * sk for wk, sk in zip(w, s, strict=True))
    np.testing.assert_allclose(grad_alpha, [w[k] * (s[k] - mean) for k in range(3)], rtol=1e-13)
    np.testing.assert_allclose(grad_ys[1], w[1] * g, rtol=1e-15)


@pytest.mark.parametrize("backend", ["reference", *COMPILED_BACKENDS])
def test_nan_and_inf_propagate_as_in_the_reference(backend):
    require_backend(backend)
    device = device_for(backend)
    ys, alpha, g = (t.clone() for t in inputs(5, (2, 9), torch.float32))
    ys[2, 1, 3] = float("nan")
    alpha_cases = [alpha, alpha.clone().index_fill_(0, torch.tensor([1]), -float("inf"))]
    alpha_cases.append(alpha.clone().index_fill_(0, torch.tensor([4]), float("inf")))
    for a in alpha_cases:
        out = mixed_op_forward(ys.to(device), a.to(device), backend=backend).cpu()
        grad_ys, grad_alpha = mixed_op_backward(
            ys.to(device), a.to(device), g.to(device), backend=backend
        )
        ref_out = mixed_op_forward_reference(ys, a)
        ref_gy, ref_ga = mixed_op_backward_reference(ys, a, g)
        for got, ref in ((out, ref_out), (grad_ys.cpu(), ref_gy), (grad_alpha.cpu(), ref_ga)):
            assert torch.equal(got.isnan(), ref.isnan())
            finite = ~ref.isnan()
            torch.testing.assert_close(got[finite], ref[finite], rtol=1e-5, atol=1e-5)


def test_cpu_backward_does_not_depend_on_thread_count():
    require_backend("cpu")
    ys, alpha, g = inputs(5, (1_000_003,), torch.float32)
    before = native().omp_max_threads()
    try:
        native().set_num_threads(1)
        one = mixed_op_backward(ys, alpha, g, backend="cpu")
        native().set_num_threads(3)
        three = mixed_op_backward(ys, alpha, g, backend="cpu")
    finally:
        native().set_num_threads(before)
    assert torch.equal(one[0], three[0])
    assert torch.equal(one[1], three[1])


@pytest.mark.parametrize("backend", ["reference", *COMPILED_BACKENDS])
def test_non_contiguous_input_is_copied(backend):
    require_backend(backend)
    device = device_for(backend)
    ys, alpha, g = inputs(4, (6, 5), torch.float64)
    ys_t = ys.transpose(1, 2).contiguous().transpose(1, 2).to(device)  # same values, strided
    g_t = g.t().contiguous().t().to(device)
    assert not ys_t.is_contiguous()
    assert not g_t.is_contiguous()
    a = alpha.to(device)
    out = mixed_op_forward(ys_t, a, backend=backend).cpu()
    torch.testing.assert_close(out, mixed_op_forward_reference(ys, alpha))
    grad_ys, grad_alpha = mixed_op_backward(ys_t, a, g_t, backend=backend)
    ref_gy, ref_ga = mixed_op_backward_reference(ys, alpha, g)
    torch.testing.assert_close(grad_ys.cpu(), ref_gy)
    torch.testing.assert_close(grad_alpha.cpu(), ref_ga)
    expanded = torch.ones((), dtype=torch.float64, device=device).expand(6, 5)  # stride 0
    grad_ys, _ = mixed_op_backward(ys.to(device), a, expanded, backend=backend)
    torch.testing.assert_close(grad_ys.cpu()[:, 0, 0], torch.softmax(alpha, 0))


def test_bad_input_gets_a_clear_error():
    ys = np.zeros((3, 4), dtype=np.float32)
    alpha = np.zeros(3, dtype=np.float32)
    with pytest.raises(TypeError, match="alpha has dtype float64 but ys has float32"):
        mixed_op_forward(ys, alpha.astype(np.float64))
    with pytest.raises(ValueError, match=r"alpha must have shape \(3,\).*got \(4,\)"):
        mixed_op_forward(ys, np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError, match=r"alpha must have shape \(3,\)"):
        mixed_op_forward(ys, np.zeros((3, 1), dtype=np.float32))
    with pytest.raises(ValueError, match="K >= 1"):
        mixed_op_forward(np.zeros((0, 4), dtype=np.float32), np.zeros(0, dtype=np.float32))
    with pytest.raises(ValueError, match="K >= 1"):
        mixed_op_forward(np.array(1.0, dtype=np.float32), alpha)
    with pytest.raises(TypeError, match="ys has dtype int64"):
        mixed_op_forward(np.zeros((3, 4), dtype=np.int64), alpha)
    with pytest.raises(TypeError, match="ys has dtype float16"):
        mixed_op_forward(ys.astype(np.float16), alpha.astype(np.float16))
    with pytest.raises(TypeError, match="alpha is a torch array on cpu but ys is a numpy"):
        mixed_op_forward(ys, torch.zeros(3))
    with pytest.raises(TypeError, match=r"must be a numpy\.ndarray or a torch\.Tensor"):
        mixed_op_forward(ys, [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"grad_out must have shape \(4,\)"):
        mixed_op_backward(ys, alpha, np.zeros(5, dtype=np.float32))
    with pytest.raises(TypeError, match="grad_out has dtype float64"):
        mixed_op_backward(ys, alpha, np.zeros(4))


def require_host_backend(backend: str) -> None:
    """Skip unless `backend` takes NumPy arrays here (Triton does only on its interpreter)."""
    require_backend(backend)
    if device_for(backend) != "cpu":
        pytest.skip(f"backend {backend!r} takes device tensors only here")


@pytest.mark.parametrize("backend", ["reference", "cpu", "triton"])
@pytest.mark.parametrize("swapped", ["ys", "alpha", "grad_out"])
def test_non_native_byte_order_is_read_as_values(backend, swapped):
    require_host_backend(backend)
    native_args = [t.numpy() for t in inputs(3, (2, 5), torch.float64)]
    args = [
        a.astype(">f8") if name == swapped else a
        for name, a in zip(("ys", "alpha", "grad_out"), native_args, strict=True)
    ]
    np.testing.assert_allclose(
        mixed_op_forward(args[0], args[1], backend=backend),
        mixed_op_forward_reference(native_args[0], native_args[1]),
        rtol=1e-13,
    )
    got = mixed_op_backward(*args, backend=backend)
    for a, b in zip(got, mixed_op_backward_reference(*native_args), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("backend", ["reference", "cpu", "triton"])
def test_matrix_inputs_are_taken_as_plain_arrays(backend):
    require_host_backend(backend)
    ys, alpha, g = (t.numpy() for t in inputs(2, (4,), torch.float64))
    out = mixed_op_forward(np.asmatrix(ys), alpha, backend=backend)  # its * is a matrix product
    assert type(out) is np.ndarray
    np.testing.assert_allclose(out, mixed_op_forward_reference(ys, alpha), rtol=1e-13)
    grad_ys, grad_alpha = mixed_op_backward(np.asmatrix(ys), alpha, g, backend=backend)
    want_ys, want_alpha = mixed_op_backward_reference(ys, alpha, g)
    np.testing.assert_allclose(grad_ys, want_ys, rtol=1e-13)
    np.testing.assert_allclose(grad_alpha, want_alpha, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("backend", ["reference", "cpu", "triton"])
@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_backward_without_grad_out_names_it(backend, lib):
    require_host_backend(backend)
    ys, alpha, _ = inputs(3, (2,), torch.float64)
    if lib == "numpy":
        ys, alpha = ys.numpy(), alpha.numpy()
    with pytest.raises(TypeError, match=r"grad_out must be a numpy\.ndarray or a torch\.Tensor"):
        mixed_op_backward(ys, alpha, None, backend=backend)


def test_copies_that_cannot_fit_name_the_argument():
    ys = np.broadcast_to(np.float64(1.0), (2, 2**40))  # 16 TiB once contiguous
    with pytest.raises(MemoryError, match=r"ys of shape \(2, 1099511627776\)"):
        mixed_op_forward(ys, np.zeros(2))
    with pytest.raises(MemoryError, match="ys of shape"):
        mixed_op_forward(torch.ones(2, 1).expand(2, 2**40), torch.zeros(2, dtype=torch.float32))


def test_compiled_module_checks_its_arrays():
    require_backend("cpu")
    c = native()
    ys = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(TypeError, match="alpha"):
        c.mixed_op_forward(ys, np.zeros(3), np.empty(4, dtype=np.float32))
    with pytest.raises(ValueError, match="out must have shape"):
        c.mixed_op_forward(ys, np.zeros(3, dtype=np.float32), np.empty(5, dtype=np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        c.mixed_op_forward(ys.T, np.zeros(4, dtype=np.float32), np.empty(3, dtype=np.float32))


def test_op_is_registered():
    table = ops.available()
    for name in ("mixed_op_forward", "mixed_op_backward"):
        assert set(table[name]) == {"cpu", "cuda", "triton", "reference"}
        assert table[name]["reference"].usable


# ---- the autograd function ------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["reference", *COMPILED_BACKENDS])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3, 4)], ids=str)
@pytest.mark.parametrize("k", [1, 5])
def test_autograd_matches_unfused_expression(backend, shape, k):
    require_backend(backend)
    device = device_for(backend)
    ys, alpha, _ = inputs(k, shape, torch.float64)
    ys = ys.to(device).requires_grad_()
    alpha = alpha.to(device).requires_grad_()

    def fused(y, a):
        return mixed_op(y, a, backend=backend)

    assert torch.autograd.gradcheck(fused, (ys, alpha))
    g = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(k))
    g = g.to(device)
    expected = torch.autograd.grad(unfused(ys, alpha), (ys, alpha), g)
    got = torch.autograd.grad(fused(ys, alpha), (ys, alpha), g)
    torch.testing.assert_close(fused(ys, alpha), unfused(ys, alpha))
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b)


def test_autograd_only_computes_needed_gradients():
    ys, alpha, _ = inputs(3, (4,), torch.float32)
    alpha = alpha.clone().requires_grad_()
    mixed_op(ys, alpha).sum().backward()
    torch.testing.assert_close(alpha.grad, torch.autograd.grad(unfused(ys, alpha).sum(), alpha)[0])
    assert ys.grad is None


def test_ops_return_results_outside_autograd():
    ys, alpha, g = inputs(3, (4,), torch.float64)
    ys, alpha = ys.clone().requires_grad_(), alpha.clone().requires_grad_()
    for backend in ("reference", "cpu"):
        require_backend(backend)
        assert not ops.mixed_op_forward(ys, alpha, backend=backend).requires_grad
        assert not any(t.requires_grad for t in ops.mixed_op_backward(ys, alpha, g))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_precision_runs_the_unfused_expression(dtype):
    ys, alpha, _ = inputs(3, (4,), torch.float32)
    ys, alpha = ys.to(dtype).requires_grad_(), alpha.to(dtype).requires_grad_()
    out = mixed_op(ys, alpha)
    assert out.dtype == dtype
    torch.testing.assert_close(out, unfused(ys, alpha))
    out.sum().backward()
    assert alpha.grad is not None
    with pytest.raises(TypeError, match="expected float32 or float64"):
        mixed_op(ys, alpha, backend="cpu")


# ---- the Triton launchers: launches per call, host work, the multi-tile paths ---------------


class _LaunchRecorder:
    """Stands in for a jit kernel: counts launches and marks the time spent inside them."""

    def __init__(self, kernel, name, log):
        self.kernel, self.name, self.log = getattr(kernel, "kernel", kernel), name, log

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.log.append(("launch", self.name))
            self.log.append(("inside", True))
            try:
                return self.kernel[grid](*args, **kwargs)
            finally:
                self.log.append(("inside", False))

        return launch


def _record_triton_call(monkeypatch, call):
    """(kernel launches, torch ops outside the kernels) of call()."""
    from torch.utils._python_dispatch import TorchDispatchMode

    kernels = pytest.importorskip("airda.kernels.mixed_op")
    log: list = []
    for name in ("mixed_op_forward_kernel", "mixed_op_backward_kernel", "mixed_op_finish_kernel"):
        monkeypatch.setattr(kernels, name, _LaunchRecorder(getattr(kernels, name), name, log))

    class Ops(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            inside = [v for kind, v in log if kind == "inside"]
            if not (inside and inside[-1]):
                log.append(("op", str(func)))
            return func(*args, **(kwargs or {}))

    with Ops():
        call()
    launches = [v for kind, v in log if kind == "launch"]
    return launches, {v for kind, v in log if kind == "op"}


@pytest.mark.parametrize("shape", [(0,), (7,), (3, 50)], ids=str)
def test_triton_launches_and_host_work(monkeypatch, shape):
    """Forward is one launch, backward two (one when n is 0), with no torch arithmetic."""
    require_backend("triton")
    device = device_for("triton")
    ys, alpha, g = (t.to(device) for t in inputs(5, shape, torch.float32))
    allowed = {
        "aten.detach.default",
        "aten.view.default",
        "aten.empty.memory_format",
        "aten.empty_like.default",
    }
    launches, torch_ops = _record_triton_call(
        monkeypatch, lambda: mixed_op_forward(ys, alpha, backend="triton")
    )
    assert launches == (["mixed_op_forward_kernel"] if ys[0].numel() else [])
    assert torch_ops <= allowed, torch_ops - allowed
    launches, torch_ops = _record_triton_call(
        monkeypatch, lambda: mixed_op_backward(ys, alpha, g, backend="triton")
    )
    main = ["mixed_op_backward_kernel"] if ys[0].numel() else []
    assert launches == [*main, "mixed_op_finish_kernel"]
    assert torch_ops <= allowed, torch_ops - allowed


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).removeprefix("torch."))
@pytest.mark.parametrize("k", [1, 3, 8])
def test_triton_many_tiles_per_program_and_many_chunks(monkeypatch, k, dtype):
    """Small blocks and program caps: each backward program adds several tiles, and the
    finishing kernel several chunks of partials; the result still matches, and repeats bit for
    bit."""
    require_backend("triton")
    kernels = pytest.importorskip("airda.kernels.mixed_op")
    monkeypatch.setattr(kernels, "_BLOCK_CAP", 16)
    monkeypatch.setattr(kernels, "_MAX_PROGRAMS", 5)
    monkeypatch.setattr(kernels, "_CHUNK_ELEMENTS", 2 * triton_next_pow2(k))
    device = device_for("triton")
    ys, alpha, g = inputs(k, (9, 23), dtype)  # 207 elements: 13 tiles on 5 programs
    y, a, gd = ys.to(device), alpha.to(device), g.to(device)
    out = mixed_op_forward(y, a, backend="triton")
    grad_ys, grad_alpha = mixed_op_backward(y, a, gd, backend="triton")
    eps = torch.finfo(dtype).eps
    y64, a64, g64 = ys.double(), alpha.double(), g.double()
    check_close(out, mixed_op_forward_reference(y64, a64), mixed_op_forward_reference(ys, alpha),
                amax(ys), eps)  # fmt: skip
    ref_gy, ref_ga = mixed_op_backward_reference(ys, alpha, g)
    exact_gy, exact_ga = mixed_op_backward_reference(y64, a64, g64)
    check_close(grad_ys, exact_gy, ref_gy, amax(g), eps)
    dot_scale = amax((y64.abs() * g64.abs()).reshape(k, -1).sum(1))
    check_close(grad_alpha, exact_ga, ref_ga, dot_scale, eps)
    again = mixed_op_backward(y, a, gd, backend="triton")
    assert torch.equal(again[0], grad_ys)
    assert torch.equal(again[1], grad_alpha)


def triton_next_pow2(k: int) -> int:
    return 1 << (k - 1).bit_length()


def test_triton_refuses_too_many_candidates():
    require_backend("triton")
    kernels = pytest.importorskip("airda.kernels.mixed_op")
    k = kernels.MAX_K + 1
    device = device_for("triton")
    ys, alpha, g = torch.zeros(k, 3, device=device), torch.zeros(k, device=device), None
    with pytest.raises(ValueError, match=f"K <= {kernels.MAX_K} candidates, got {k}"):
        mixed_op_forward(ys, alpha, backend="triton")
    g = torch.zeros(3, device=device)
    with pytest.raises(ValueError, match=f"K <= {kernels.MAX_K}"):
        mixed_op_backward(ys, alpha, g, backend="triton")
