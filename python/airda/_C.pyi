"""Type stubs of the compiled module. Use airda.ops rather than calling these directly."""

import numpy as np
import numpy.typing as npt

def pack_sign_bits(x: npt.NDArray[np.generic], kind: str, out: npt.NDArray[np.uint64]) -> None: ...
def hamming_gram(codes: npt.NDArray[np.uint64], units: int, out: npt.NDArray[np.int64]) -> None: ...
def non_dominated_rank(values: npt.NDArray[np.float64], out: npt.NDArray[np.int64]) -> None: ...
def hypervolume(values: npt.NDArray[np.float64], ref: npt.NDArray[np.float64]) -> float: ...
def bootstrap_means(
    data: npt.NDArray[np.float64],
    n_resamples: int,
    seed: int,
    strata: npt.NDArray[np.int64] | None,
    threads: int,
    out: npt.NDArray[np.float64],
) -> None: ...
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
def parzen_log_norm(
    mu: npt.NDArray[np.float64],
    sigma: npt.NDArray[np.float64],
    low: npt.NDArray[np.float64],
    high: npt.NDArray[np.float64],
    out: npt.NDArray[np.float64],
) -> None: ...
def resample_use_avx2(use: int = -1) -> bool: ...
def omp_max_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def build_info() -> dict[str, object]: ...
def cuda_built() -> bool: ...
def cuda_device_count() -> int: ...
def cuda_driver_version() -> int: ...
def cuda_device_name(device: int) -> str: ...
def cuda_pack_sign_bits(
    x: int, kind: str, n: int, units: int, out: int, device: int, stream: int
) -> None: ...
def cuda_hamming_gram(
    codes: int, n: int, units: int, out: int, device: int, stream: int
) -> None: ...
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
) -> dict[str, object]: ...
def sample_variant(
    fn: int, args: int, n_samples: int, inner: int, flush: bool, flush_bytes: int, clock: int = 0
) -> dict[str, object]: ...
def calibrate_inner(fn: int, args: int, min_sample_s: float, clock: int = 0) -> int: ...
def median_ci_rank(n: int, confidence: float) -> int: ...
def last_level_cache_bytes() -> int: ...
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
