"""parzen_logpdf / parzen_log_norm: the reference against scipy's truncated normal and a direct
sum, the cpu backend against the reference on awkward shapes and values, and every bad input a
clear error (also straight into airda._C)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from airda import ops
from airda.ops import (
    parzen_log_norm,
    parzen_log_norm_reference,
    parzen_logpdf,
    parzen_logpdf_reference,
)
from tests.helpers import require_backend


def mixture(n_cand, n_comp, d, *, seed=0, sigma_scale=0.2, shared=False, n_cat=0, choices=3):
    rng = np.random.default_rng([n_cand, n_comp, d, seed])
    low = rng.normal(size=d) - 1.0
    high = low + rng.random(d) * 3 + 0.1
    mu = low + (high - low) * rng.random((n_comp, d))
    sigma = (high - low) * (sigma_scale * (rng.random(d if shared else (n_comp, d)) + 0.01))
    x = low + (high - low) * rng.random((n_cand, d))
    log_w = np.log(rng.random(n_comp) + 1e-3)
    kw = {}
    if n_cat:
        p = rng.random((n_comp, n_cat, choices)) + 0.05
        kw["cat_logp"] = np.log(p / p.sum(axis=2, keepdims=True))
        kw["cat_x"] = rng.integers(0, choices, (n_cand, n_cat))
    return x, mu, sigma, log_w, low, high, kw


def close(a, b, rtol=1e-12):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    assert np.array_equal(np.isneginf(a), np.isneginf(b))
    finite = np.isfinite(b)
    np.testing.assert_allclose(
        a[finite], b[finite], rtol=rtol, atol=1e-12 * np.abs(b[finite]).max(initial=1)
    )


def test_reference_matches_scipy_truncnorm():
    stats = pytest.importorskip("scipy.stats")
    x, mu, sigma, log_w, low, high, _ = mixture(7, 5, 3)
    got = parzen_logpdf_reference(x, mu, sigma, log_w, low, high)
    w = np.exp(log_w)
    dens = np.zeros(len(x))
    for k in range(len(mu)):
        a, b = (low - mu[k]) / sigma[k], (high - mu[k]) / sigma[k]
        dens += w[k] * np.prod(stats.truncnorm.pdf(x, a, b, loc=mu[k], scale=sigma[k]), axis=1)
    np.testing.assert_allclose(got, np.log(dens), rtol=1e-11)


def test_reference_log_norm_matches_scipy_in_far_tails():
    special = pytest.importorskip("scipy.special")
    # Bounds far in one tail of the normal: the mass underflows a naive 1 - cdf.
    mu = np.array([[0.0], [0.0], [0.0], [0.0]])
    sigma = np.array([[1.0], [1e-3], [1e6], [1e-30]])
    low, high = np.array([0.0]), np.array([1.0])
    got = parzen_log_norm_reference(mu, sigma, low, high)
    a, b = (low - mu) / sigma, (high - mu) / sigma
    mass = np.log(special.ndtr(b) - special.ndtr(a))[:, 0]
    want = -(np.log(sigma[:, 0]) + 0.5 * math.log(2 * math.pi) + mass)
    # scipy differences ndtr(b) - ndtr(a) directly: 1e-10 absolute where sigma is huge
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
    # Lower tail only (mirrored): the mean at the upper bound, a window far below it.
    far = parzen_log_norm_reference(
        np.array([[40.0]]), np.array([1.0]), np.array([0.0]), np.array([40.0])
    )
    assert np.isfinite(far).all()


SHAPES = [
    (0, 1, 1),
    (1, 1, 1),
    (3, 1, 2),
    (5, 7, 1),
    (24, 26, 10),
    (24, 1001, 10),
    (13, 97, 37),
    (2, 5000, 3),
    (65, 2000, 5),  # enough work for the OpenMP team
]


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize(("n_cand", "n_comp", "d"), SHAPES)
def test_cpu_matches_reference(n_cand, n_comp, d, shared):
    require_backend("cpu")
    x, mu, sigma, log_w, low, high, _ = mixture(n_cand, n_comp, d, shared=shared)
    close(
        parzen_logpdf(x, mu, sigma, log_w, low, high, backend="cpu"),
        parzen_logpdf_reference(x, mu, sigma, log_w, low, high),
    )
    close(
        parzen_log_norm(mu, sigma, low, high, backend="cpu"),
        parzen_log_norm_reference(mu, sigma, low, high),
    )


@pytest.mark.parametrize("scale", [1e-9, 1e-4, 1.0, 1e4, 1e9])
def test_cpu_matches_reference_huge_and_small_sigma(scale):
    require_backend("cpu")
    x, mu, sigma, log_w, low, high, _ = mixture(11, 17, 4, sigma_scale=scale)
    x[:3] = mu[:3]  # some candidates exactly on a mean, so tiny sigmas still give finite terms
    close(
        parzen_logpdf(x, mu, sigma, log_w, low, high, backend="cpu"),
        parzen_logpdf_reference(x, mu, sigma, log_w, low, high),
        rtol=1e-10,
    )


@pytest.mark.parametrize("sort", [False, True])
@pytest.mark.parametrize(("n_cand", "n_comp", "d"), [(0, 3, 2), (1, 1, 1), (7, 1, 3), *SHAPES])
def test_log_extra_matches_reference(n_cand, n_comp, d, sort):
    """log_extra is one more term of every sum, also where it dominates (then most components
    are skipped by the cpu backend) and where it is -inf."""
    require_backend("cpu")
    x, mu, sigma, log_w, low, high, _ = mixture(n_cand, n_comp, d, sigma_scale=0.01)
    if sort:  # the order the cpu backend skips best
        order = np.argsort(mu[:, 0], kind="stable")
        mu, sigma, log_w = mu[order], sigma[order], log_w[order]
    rng = np.random.default_rng(n_comp)
    extra = rng.normal(0.0, 30.0, n_cand)
    extra[::3] = -np.inf
    if n_cand > 1:
        x[1] = mu[0]  # on a mean: that component dominates
        extra[1] = 1000.0  # and here the extra term
    if n_cand > 2:
        x[2, 0] = high[0] + 1.0  # outside: -inf whatever the extra term
    want = parzen_logpdf_reference(x, mu, sigma, log_w, low, high, log_extra=extra)
    close(parzen_logpdf(x, mu, sigma, log_w, low, high, log_extra=extra, backend="cpu"), want)
    plain = parzen_logpdf_reference(x, mu, sigma, log_w, low, high)
    inside = np.all((x >= low) & (x <= high), axis=1)
    close(want[inside], np.logaddexp(plain, extra)[inside])


@pytest.mark.parametrize("d", [1, 3, 10])
def test_skipping_far_components_is_exact(d):
    """Narrow components spread over the box, sorted or not: most are more than 60 below a
    candidate's largest term, and skipping them changes nothing beyond rounding."""
    require_backend("cpu")
    rng = np.random.default_rng(d)
    n_comp = 3001
    low, high = np.zeros(d), np.ones(d)
    mu = rng.random((n_comp, d))
    sigma = rng.uniform(0.005, 0.05, (n_comp, d))
    log_w = rng.normal(0.0, 5.0, n_comp)
    log_w[::17] = -np.inf
    x = np.vstack((rng.random((20, d)), mu[:5] + 1e-3 * (mu[:5] < 0.5)))
    for order in (np.arange(n_comp), np.argsort(mu[:, 0], kind="stable")):
        args = (x, mu[order], sigma[order], log_w[order], low, high)
        close(parzen_logpdf(*args, backend="cpu"), parzen_logpdf_reference(*args))
        extra = parzen_logpdf_reference(*args) - 30.0
        close(
            parzen_logpdf(*args, log_extra=extra, backend="cpu"),
            parzen_logpdf_reference(*args, log_extra=extra),
        )


def test_skipping_respects_positive_categorical_terms():
    """cat_logp may hold values above 0 (unnormalised tables): a component far away in the
    numeric dimensions but with a large categorical term must still count."""
    require_backend("cpu")
    d, n_comp = 2, 200
    low, high = np.zeros(d), np.ones(d)
    mu = np.column_stack((np.linspace(0, 1, n_comp), np.full(n_comp, 0.5)))
    sigma = np.full(d, 0.01)
    log_w = np.zeros(n_comp)
    cat_logp = np.full((n_comp, 1, 2), -1.0)
    cat_logp[-1, 0, 1] = 6000.0  # the far component wins through its category
    x = np.array([[0.0, 0.5], [0.0, 0.5]])
    cat_x = np.array([[0], [1]])
    args = (x, mu, sigma, log_w, low, high)
    kw = {"cat_x": cat_x, "cat_logp": cat_logp}
    want = parzen_logpdf_reference(*args, **kw)
    close(parzen_logpdf(*args, backend="cpu", **kw), want)
    assert want[1] > want[0] + 100


def test_points_at_and_beyond_bounds():
    require_backend("cpu")
    x, mu, sigma, log_w, low, high, _ = mixture(6, 9, 3)
    mu[0], mu[1] = low, high  # means on the bounds
    x[0], x[1] = low, high  # candidates on the bounds: inside
    x[2, 1] = high[1] + 1e-9  # just outside: density 0
    x[3, 0] = -np.inf
    x[4, 2] = np.inf
    for backend in ("cpu", "reference"):
        out = parzen_logpdf(x, mu, sigma, log_w, low, high, backend=backend)
        assert np.isfinite(out[[0, 1, 5]]).all()
        assert (out[2:5] == -np.inf).all()
    close(
        parzen_logpdf(x, mu, sigma, log_w, low, high, backend="cpu"),
        parzen_logpdf_reference(x, mu, sigma, log_w, low, high),
    )


def test_very_negative_and_infinite_log_weights():
    require_backend("cpu")
    x, mu, sigma, log_w, low, high, _ = mixture(8, 6, 2)
    log_w[:] = -1e300
    log_w[2] = -np.inf
    close(
        parzen_logpdf(x, mu, sigma, log_w, low, high, backend="cpu"),
        parzen_logpdf_reference(x, mu, sigma, log_w, low, high),
    )
    # Shifting every log-weight by c shifts log p by c.
    x, mu, sigma, log_w, low, high, _ = mixture(8, 6, 2)
    base = parzen_logpdf(x, mu, sigma, log_w, low, high, backend="cpu")
    close(parzen_logpdf(x, mu, sigma, log_w - 700.0, low, high, backend="cpu"), base - 700.0)
    none = parzen_logpdf(x, mu, sigma, np.full(6, -np.inf), low, high, backend="cpu")
    assert (none == -np.inf).all()


@pytest.mark.parametrize(("d", "n_cat"), [(0, 1), (2, 1), (3, 4), (0, 3)])
def test_categorical_dimensions(d, n_cat):
    require_backend("cpu")
    x, mu, sigma, log_w, low, high, kw = mixture(9, 31, d, n_cat=n_cat, choices=5)
    close(
        parzen_logpdf(x, mu, sigma, log_w, low, high, backend="cpu", **kw),
        parzen_logpdf_reference(x, mu, sigma, log_w, low, high, **kw),
    )
    # Probability 0 for a candidate's category in every component: log p = -inf.
    kw["cat_logp"][:, 0, kw["cat_x"][0, 0]] = -np.inf
    out = parzen_logpdf(x, mu, sigma, log_w, low, high, backend="cpu", **kw)
    assert out[0] == -np.inf


def test_log_norm_argument_is_used():
    require_backend("cpu")
    x, mu, sigma, log_w, low, high, _ = mixture(5, 40, 3)
    norm = parzen_log_norm(mu, sigma, low, high)
    for backend in ("cpu", "reference"):
        close(
            parzen_logpdf(x, mu, sigma, log_w, low, high, log_norm=norm, backend=backend),
            parzen_logpdf_reference(x, mu, sigma, log_w, low, high),
        )


def test_densities_integrate_to_one():
    # 1-D mixture on [low, high]: a fine midpoint rule of exp(log p) gives 1.
    _x, mu, sigma, log_w, low, high, _ = mixture(1, 4, 1)
    grid = np.linspace(low[0], high[0], 200001)
    mid = ((grid[1:] + grid[:-1]) / 2)[:, None]
    p = np.exp(parzen_logpdf(mid, mu, sigma, log_w - np.logaddexp.reduce(log_w), low, high))
    assert abs(p.sum() * (grid[1] - grid[0]) - 1.0) < 1e-6


def test_torch_input_gives_torch_output():
    torch = pytest.importorskip("torch")
    x, mu, sigma, log_w, low, high, _ = mixture(4, 3, 2)
    out = parzen_logpdf(torch.from_numpy(x), mu, sigma, log_w, low, high)
    assert isinstance(out, torch.Tensor)
    close(out.numpy(), parzen_logpdf_reference(x, mu, sigma, log_w, low, high))


BAD = [
    ({"mu": np.zeros((0, 2))}, ValueError, "at least one component"),
    ({"x": np.zeros((3, 3))}, ValueError, "columns"),
    ({"x": np.array([[np.nan, 0.5]])}, ValueError, "NaN"),
    ({"sigma": np.zeros(2)}, ValueError, "sigma must be finite and > 0"),
    ({"sigma": np.ones((3, 2))}, ValueError, "sigma must have shape"),
    ({"low": np.array([1.0, 0.0])}, ValueError, "low < high"),
    ({"high": np.array([np.inf, 1.0])}, ValueError, "finite"),
    ({"mu": np.full((2, 2), 2.0)}, ValueError, "mu must lie in"),
    ({"log_weights": np.array([np.nan, 0.0])}, ValueError, "log_weights"),
    ({"log_weights": np.zeros(3)}, ValueError, "log_weights must have shape"),
    ({"x": np.array(["a"])}, TypeError, "dtype"),
    ({"x": [[0.5, 0.5]]}, TypeError, "numpy.ndarray"),
    ({"cat_x": np.zeros((1, 1), dtype=np.int64)}, ValueError, "together"),
    ({"cat_x": np.full((1, 1), 3), "cat_logp": np.zeros((2, 1, 3))}, ValueError, r"\[0, 3\)"),
    ({"log_norm": np.zeros(5)}, ValueError, "log_norm"),
    ({"log_extra": np.zeros(2)}, ValueError, "log_extra must have shape"),
    ({"log_extra": np.array([np.nan])}, ValueError, "log_extra must be numbers"),
    ({"log_extra": np.array([np.inf])}, ValueError, "log_extra must be numbers"),
    ({"x": None}, TypeError, "x must be a numpy.ndarray or a torch.Tensor, got NoneType"),
    ({"x": np.broadcast_to(0.5, (2**31, 2))}, MemoryError, r"x of shape \(2147483648, 2\)"),
    ({"mu": np.broadcast_to(0.5, (2, 2**31))}, MemoryError, r"mu of shape \(2, 2147483648\)"),
]


@pytest.mark.parametrize(("change", "error", "match"), BAD)
def test_bad_input_is_a_clear_error(change, error, match):
    args = {
        "x": np.array([[0.5, 0.5]]),
        "mu": np.array([[0.2, 0.3], [0.7, 0.9]]),
        "sigma": np.array([0.1, 0.2]),
        "log_weights": np.zeros(2),
        "low": np.zeros(2),
        "high": np.ones(2),
    } | change
    kw = {k: args.pop(k) for k in ("cat_x", "cat_logp", "log_norm", "log_extra") if k in args}
    with pytest.raises(error, match=match):
        parzen_logpdf(*args.values(), **kw)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_awkward_arrays_are_read_as_values_or_refused_by_name(backend):
    torch = pytest.importorskip("torch")
    require_backend(backend)
    x, mu, sigma, log_w, low, high, kw = mixture(5, 3, 2, n_cat=1)
    want = parzen_logpdf_reference(x, mu, sigma, log_w, low, high, **kw)
    swapped = [a.astype(a.dtype.newbyteorder(">")) for a in (x, mu, sigma, log_w, low, high)]
    kw_swapped = {k: v.astype(v.dtype.newbyteorder(">")) for k, v in kw.items()}
    close(parzen_logpdf(*swapped, **kw_swapped, backend=backend), want)
    close(
        parzen_log_norm(*swapped[1:3], *swapped[4:], backend=backend),
        parzen_log_norm_reference(mu, sigma, low, high),
    )
    with pytest.raises(ValueError, match="mu: cannot take a torch array on meta"):
        parzen_logpdf(x, torch.zeros(3, 2, device="meta"), sigma, log_w, low, high, backend=backend)
    with pytest.raises(TypeError, match=r"sigma is a torch tensor of layout torch\.sparse_coo"):
        parzen_log_norm(mu, torch.from_numpy(sigma).to_sparse(), low, high, backend=backend)
    with pytest.raises(TypeError, match=r"x must be a numpy\.ndarray or a torch\.Tensor"):
        parzen_logpdf_reference(None, mu, sigma, log_w, low, high)


def test_native_checks_shapes_itself():
    require_backend("cpu")
    from airda._native import native

    c = native()
    out = np.empty(1)
    with pytest.raises(ValueError, match="mu"):
        c.parzen_logpdf(
            np.zeros((1, 2)),
            np.zeros((2, 3)),
            np.ones(3),
            np.zeros(2),
            None,
            np.zeros(2),
            np.ones(2),
            None,
            None,
            None,
            0,
            out,
        )
    with pytest.raises(TypeError, match="dtype"):
        c.parzen_logpdf(
            np.zeros((1, 2), np.float32),
            np.zeros((2, 2)),
            np.ones(2),
            np.zeros(2),
            None,
            np.zeros(2),
            np.ones(2),
            None,
            None,
            None,
            0,
            out,
        )
    with pytest.raises(ValueError, match="cat_x holds code"):
        c.parzen_logpdf(
            np.zeros((1, 2)),
            np.zeros((2, 2)),
            np.ones(2),
            np.zeros(2),
            None,
            np.zeros(2),
            np.ones(2),
            np.full((1, 1), 9),
            np.zeros((2, 1, 3)),
            None,
            0,
            out,
        )
    with pytest.raises(ValueError, match="log_extra"):
        c.parzen_logpdf(
            np.zeros((1, 2)),
            np.zeros((2, 2)),
            np.ones(2),
            np.zeros(2),
            None,
            np.zeros(2),
            np.ones(2),
            None,
            None,
            np.zeros(3),
            0,
            out,
        )


def test_registered():
    table = ops.available()
    assert table["parzen_logpdf"]["reference"].usable
    assert "parzen_log_norm" in table


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize(("n_cand", "n_comp", "d"), [(1, 2, 2), (5, 3, 7), (24, 1001, 10)])
def test_native_takes_column_major_means_and_widths(n_cand, n_comp, d, shared):
    """airda._C.parzen_logpdf reads transposed (Fortran-order) mu and sigma without copying them
    (TPE keeps its observations so); the result is the reference's."""
    require_backend("cpu")
    from airda._native import native

    x, mu, sigma, log_w, low, high, _ = mixture(n_cand, n_comp, d, shared=shared)
    want = parzen_logpdf_reference(x, mu, sigma, log_w, low, high)
    mu_f = np.asfortranarray(mu)
    sigma_f = sigma if shared else np.asfortranarray(sigma)
    for norm in (None, parzen_log_norm_reference(mu, sigma, low, high)):
        out = np.empty(n_cand)
        native().parzen_logpdf(x, mu_f, sigma_f, log_w, norm, low, high, None, None, None, 0, out)
        close(out, want)
    if not shared:
        with pytest.raises(ValueError, match="column-major"):
            native().parzen_logpdf(x, mu_f, sigma, log_w, None, low, high, None, None, None, 0, out)


@pytest.mark.parametrize(("n_comp", "d", "spare"), [(1, 1, 3), (1, 4, 5), (2, 3, 1), (67, 5, 61)])
def test_native_takes_column_views_of_wider_buffers(n_comp, d, spare):
    """mu and sigma as the first n_comp columns of wider (d, capacity) buffers (TPE's kept g
    state): the same densities as from compact arrays, bit for bit, with the column strides of
    mu and sigma different; any other layout of sigma is a clear error."""
    require_backend("cpu")
    from airda._native import native

    x, mu, sigma, log_w, low, high, _ = mixture(9, n_comp, d)
    mu_buf = np.full((d, n_comp + spare), np.nan)
    sigma_buf = np.full((d, n_comp + 2 * spare), np.nan)
    mu_buf[:, :n_comp], sigma_buf[:, :n_comp] = mu.T, sigma.T
    mu_v, sigma_v = mu_buf[:, :n_comp].T, sigma_buf[:, :n_comp].T
    for norm in (None, parzen_log_norm_reference(mu, sigma, low, high)):
        want, out = np.empty(9), np.empty(9)
        args = (log_w, norm, low, high, None, None, None, 0)
        native().parzen_logpdf(x, np.asfortranarray(mu), np.asfortranarray(sigma), *args, want)
        native().parzen_logpdf(x, mu_v, sigma_v, *args, out)
        np.testing.assert_array_equal(out, want)
        close(out, parzen_logpdf_reference(x, mu, sigma, log_w, low, high))
    if d > 1:
        with pytest.raises(ValueError, match="column-major"):
            native().parzen_logpdf(x, mu_v, sigma, log_w, None, low, high, None, None, None, 0, out)
