"""Compiled operations with reference implementations and per-call backend choice.

Each op has a NumPy reference and backends ``cpu`` (C++/OpenMP in ``airda._C``), ``cuda``
(``airda._C`` built with nvcc) and ``triton`` (``airda.kernels``); the Pareto ops
(:func:`non_dominated_rank`, :func:`hypervolume`) and the paired bootstrap
(:func:`bootstrap_means`, with :func:`bootstrap_indices` giving its resamples to NumPy code) have
``cpu`` only; the fused DARTS mixed operation (:func:`mixed_op_forward`,
:func:`mixed_op_backward`) has all four; the grouped depthwise convolution of elastic blocks
(:func:`grouped_depthwise_conv`, torch tensors only) has ``cpu`` and ``triton``; the exact
k-nearest-neighbour distances (:func:`knn_distances`) and the pairwise kernel means behind
:func:`energy_distance` and :func:`mmd` (:func:`pair_kernel_means`) have all four. The backend follows the
data: host arrays run on ``cpu``, CUDA tensors on ``cuda`` then ``triton``. Force one with
``backend=`` or ``AIRDA_BACKEND``; :func:`available` says which can run here.

Example:
    >>> import numpy as np
    >>> from airda import ops
    >>> x = np.random.default_rng(0).standard_normal((4, 100)).astype(np.float32)
    >>> k = ops.hamming_gram(ops.pack_sign_bits(x), 100)
    >>> k.shape, int(k[0, 0])
    ((4, 4), 100)
"""

from airda.ops._registry import (
    BACKENDS,
    BackendStatus,
    BackendUnavailableError,
    available,
    backend_status,
)
from airda.ops.bootstrap_means import (
    bootstrap_indices,
    bootstrap_means,
    bootstrap_means_reference,
)
from airda.ops.grouped_depthwise_conv import (
    grouped_depthwise_conv,
    grouped_depthwise_conv_reference,
)
from airda.ops.hamming_gram import hamming_gram, hamming_gram_reference
from airda.ops.hypervolume import hypervolume, hypervolume_reference
from airda.ops.knn_distances import knn_distances, knn_distances_reference
from airda.ops.mixed_op import (
    mixed_op_backward,
    mixed_op_backward_reference,
    mixed_op_forward,
    mixed_op_forward_reference,
)
from airda.ops.non_dominated_rank import non_dominated_rank, non_dominated_rank_reference
from airda.ops.pack_sign_bits import (
    pack_sign_bits,
    pack_sign_bits_reference,
    unpack_sign_bits,
    words_for,
)
from airda.ops.pair_kernel_means import (
    energy_distance,
    median_heuristic_gamma,
    mmd,
    pair_kernel_means,
    pair_kernel_means_reference,
)
from airda.ops.parzen import (
    parzen_log_norm,
    parzen_log_norm_reference,
    parzen_logpdf,
    parzen_logpdf_reference,
)

__all__ = [
    "BACKENDS",
    "BackendStatus",
    "BackendUnavailableError",
    "available",
    "backend_status",
    "bootstrap_indices",
    "bootstrap_means",
    "bootstrap_means_reference",
    "energy_distance",
    "grouped_depthwise_conv",
    "grouped_depthwise_conv_reference",
    "hamming_gram",
    "hamming_gram_reference",
    "hypervolume",
    "hypervolume_reference",
    "knn_distances",
    "knn_distances_reference",
    "median_heuristic_gamma",
    "mixed_op_backward",
    "mixed_op_backward_reference",
    "mixed_op_forward",
    "mixed_op_forward_reference",
    "mmd",
    "non_dominated_rank",
    "non_dominated_rank_reference",
    "pack_sign_bits",
    "pack_sign_bits_reference",
    "pair_kernel_means",
    "pair_kernel_means_reference",
    "parzen_log_norm",
    "parzen_log_norm_reference",
    "parzen_logpdf",
    "parzen_logpdf_reference",
    "unpack_sign_bits",
    "words_for",
]
