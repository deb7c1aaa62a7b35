"""Type stubs of the compiled module. Use airda.ops rather than calling these directly.

One section per binding file (csrc/bindings/<name>.cpp); tests/test_c_stub.py checks that the
names and parameters here are those of the built module.
"""

import numpy as np
import numpy.typing as npt

# ---- pack_sign_bits ------------------------------------------------------------------------

def pack_sign_bits(x: npt.NDArray[np.generic], kind: str, out: npt.NDArray[np.uint64]) -> None: ...
def cuda_pack_sign_bits(
    x: int, kind: str, n: int, units: int, out: int, device: int, stream: int
) -> None: ...

# ---- hamming_gram --------------------------------------------------------------------------

def hamming_gram(codes: npt.NDArray[np.uint64], units: int, out: npt.NDArray[np.int64]) -> None: ...
def cuda_hamming_gram(
    codes: int, n: int, units: int, out: int, device: int, stream: int
) -> None: ...

# ---- mixed_op (mixed_op_forward, mixed_op_backward) ------------------------------------------

def mixed_op_forward(
    ys: npt.NDArray[np.floating], alpha: npt.NDArray[np.floating], out: npt.NDArray[np.floating]
) -> None: ...
def mixed_op_backward(
    ys: npt.NDArray[np.floating],
    alpha: npt.NDArray[np.floating],
    grad_out: npt.NDArray[np.floating],
    grad_ys: npt.NDArray[np.floating],
    grad_alpha: npt.NDArray[np.floating],
) -> None: ...
def mixed_op_cuda_workspace(k: int, n: int) -> int: ...
def cuda_mixed_op_forward(
    ys: int, alpha: int, kind: str, k: int, n: int, out: int, device: int, stream: int
) -> None: ...
def cuda_mixed_op_backward(
    ys: int,
    alpha: int,
    grad_out: int,
    kind: str,
    k: int,
    n: int,
    grad_ys: int,
    grad_alpha: int,
    work: int,
    device: int,
    stream: int,
) -> None: ...

# ---- grouped_depthwise_conv ----------------------------------------------------------------

def grouped_depthwise_conv(
    xs: list[npt.NDArray[np.floating]],
    weight: npt.NDArray[np.floating],
    ksizes: list[tuple[int, int]],
    stride: int,
    scales: list[npt.NDArray[np.floating] | None],
    shifts: list[npt.NDArray[np.floating] | None],
    act: int,
    outs: list[npt.NDArray[np.floating]],
) -> None: ...

# ---- non_dominated_rank, hypervolume -------------------------------------------------------

def non_dominated_rank(values: npt.NDArray[np.float64], out: npt.NDArray[np.int64]) -> None: ...
def hypervolume(values: npt.NDArray[np.float64], ref: npt.NDArray[np.float64]) -> float: ...

# ---- bootstrap_means -----------------------------------------------------------------------

def bootstrap_means(
    data: npt.NDArray[np.float64],
    n_resamples: int,
    seed: int,
    strata: npt.NDArray[np.int64] | None,
    threads: int,
    out: npt.NDArray[np.float64],
) -> None: ...
def resample_use_avx2(use: int = -1) -> bool: ...

# ---- parzen (parzen_logpdf, parzen_log_norm) -----------------------------------------------

def parzen_logpdf(
    x: npt.NDArray[np.float64],
    mu: npt.NDArray[np.float64],
    sigma: npt.NDArray[np.float64],
    log_weights: npt.NDArray[np.float64],
    log_norm: npt.NDArray[np.float64] | None,
    low: npt.NDArray[np.float64],
    high: npt.NDArray[np.float64],
    cat_x: npt.NDArray[np.int64] | None,
    cat_logp: npt.NDArray[np.float64] | None,
    log_extra: npt.NDArray[np.float64] | None,
    threads: int,
    out: npt.NDArray[np.float64],
) -> None: ...
def parzen_log_norm(
    mu: npt.NDArray[np.float64],
    sigma: npt.NDArray[np.float64],
    low: npt.NDArray[np.float64],
    high: npt.NDArray[np.float64],
    out: npt.NDArray[np.float64],
) -> None: ...

# ---- knn_distances -------------------------------------------------------------------------

def knn_distances(
    queries: npt.NDArray[np.floating],
    data: npt.NDArray[np.floating],
    k: int,
    exclude_self: bool,
    out_dist: npt.NDArray[np.float64],
    out_idx: npt.NDArray[np.int64],
) -> None: ...
def cuda_knn_distances(
    queries: int,
    data: int,
    f32: bool,
    n: int,
    m: int,
    d: int,
    k: int,
    exclude_self: bool,
    out_dist: int,
    out_idx: int,
    device: int,
    stream: int,
) -> None: ...

# ---- pair_kernel_means ---------------------------------------------------------------------

def pair_kernel_means(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    kernel: str,
    gamma: float,
    out: npt.NDArray[np.float64],
) -> None: ...
def cuda_pair_kernel_row_sums(
    a: int,
    n: int,
    b: int,
    m: int,
    d: int,
    same: bool,
    kernel: str,
    gamma: float,
    row_sums: int,
    device: int,
    stream: int,
) -> None: ...

# ---- tpe: TPE's proposal state (airda.strategies.tpe; not an op) ----------------------------

def sorted_bandwidths(
    values: npt.NDArray[np.float64],
    consider_endpoints: bool,
    minimum: float,
    maximum: float,
    out: npt.NDArray[np.float64],
) -> None: ...
def tpe_bandwidths(
    sorted_rows: list[npt.NDArray[np.int64]],
    sorted_vals: list[npt.NDArray[np.float64]],
    index: npt.NDArray[np.int64],
    n: int,
    by_first: bool,
    consider_endpoints: bool,
    minimum: float,
    maximum: float,
    out: npt.NDArray[np.float64],
    values: npt.NDArray[np.float64],
    cache: npt.NDArray[np.float64] | None,
    stale: npt.NDArray[np.uint8] | None,
) -> npt.NDArray[np.int64]: ...
def tpe_default_log_weights(n: int, prior_weight: float, out: npt.NDArray[np.float64]) -> None: ...
def tpe_truncated_draws(
    x: npt.NDArray[np.float64],
    mu: npt.NDArray[np.float64],
    sigma: npt.NDArray[np.float64],
    z: npt.NDArray[np.float64],
) -> int: ...
def tpe_propose_numeric(
    g: NeighbourWidths,
    g_log_w: npt.NDArray[np.float64],
    xt: npt.NDArray[np.float64],
    num: npt.NDArray[np.int64],
    below: npt.NDArray[np.int64],
    l_log_w: npt.NDArray[np.float64],
    consider_endpoints: bool,
    l_minimum: float,
    uniform: npt.NDArray[np.float64],
    z: npt.NDArray[np.float64],
    bins: npt.NDArray[np.float64],
    logint: npt.NDArray[np.bool_] | npt.NDArray[np.uint8],
    lo: npt.NDArray[np.float64],
    hi: npt.NDArray[np.float64],
    low: npt.NDArray[np.float64],
    high: npt.NDArray[np.float64],
    prior_const: float,
    x: npt.NDArray[np.float64],
    score: npt.NDArray[np.float64],
) -> int: ...
def tpe_sorted_insert(
    vals: list[npt.NDArray[np.float64]],
    rows: list[npt.NDArray[np.int64]],
    sizes: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    row: int,
) -> None: ...

class NeighbourWidths:
    """TPE's neighbour bandwidths of one large mixture kept between asks and updated where its
    members changed (bit-identical to a full pass)."""

    def __init__(self, p: int, consider_endpoints: bool, by_row: bool = False) -> None: ...
    def update(
        self,
        sorted_rows: list[npt.NDArray[np.int64]],
        sorted_vals: list[npt.NDArray[np.float64]],
        xt: npt.NDArray[np.float64],
        num: npt.NDArray[np.int64],
        members: npt.NDArray[np.int64],
        n_rows: int,
        minimum: float,
        max_changes: int,
    ) -> int: ...
    def invalidate(self) -> None: ...
    def logpdf(
        self,
        x: npt.NDArray[np.float64],
        log_w: npt.NDArray[np.float64],
        cat_x: npt.NDArray[np.int64] | None,
        cat_logp: npt.NDArray[np.float64] | None,
        log_extra: npt.NDArray[np.float64] | None,
        threads: int,
        out: npt.NDArray[np.float64],
    ) -> None: ...
    def take(self, log_w: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...
    @property
    def mu(self) -> npt.NDArray[np.float64]: ...
    @property
    def sigma(self) -> npt.NDArray[np.float64]: ...
    @property
    def log_norm(self) -> npt.NDArray[np.float64]: ...
    @property
    def rows(self) -> npt.NDArray[np.int64]: ...
    @property
    def perm(self) -> npt.NDArray[np.int64]: ...
    @property
    def size(self) -> int: ...
    @property
    def by_row(self) -> bool: ...
    @property
    def full_passes(self) -> int: ...
    @property
    def incremental_updates(self) -> int: ...
    @property
    def norms_computed(self) -> int: ...

# ---- profiler: the code-variant profiler (airda.codeopt; not an op) ---------------------------

def profile_variant(
    fn: int,
    args: int,
    warmup: int,
    inner: int,
    min_sample_s: float,
    min_samples: int,
    max_samples: int,
    rel_ci: float,
    confidence: float,
    max_time_s: float,
    flush: bool,
    flush_bytes: int,
    clock: int = 0,
    stop_above: float = 1e300,
    stop_below: float = -1.0,
) -> dict[str, object]: ...
def sample_variant(
    fn: int, args: int, n_samples: int, inner: int, flush: bool, flush_bytes: int, clock: int = 0
) -> dict[str, object]: ...
def calibrate_inner(fn: int, args: int, min_sample_s: float, clock: int = 0) -> int: ...
def median_ci_rank(n: int, confidence: float) -> int: ...
def last_level_cache_bytes() -> int: ...

# ---- runtime -------------------------------------------------------------------------------

def omp_max_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def build_info() -> dict[str, object]: ...
def cuda_built() -> bool: ...
def cuda_device_count() -> int: ...
def cuda_driver_version() -> int: ...
def cuda_device_name(device: int) -> str: ...
