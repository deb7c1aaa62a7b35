// CPU entry point of the pair_kernel_means op: the mean of a pairwise kernel over X x Y, X x X
// and Y x Y (the terms of the energy distance and of the squared MMD). Plain C++ API used by the
// bindings; the NumPy reference is python/airda/ops/pair_kernel_means.py.
#pragma once

#include <cstdint>

namespace airda::cpu {

enum class PairKernel : int { kDistance = 0, kRbf = 1 };

// x: n x d, y: m x d, C-contiguous float64. out[0] = mean over (i, j) of k(x_i, y_j), out[1] =
// mean over all n^2 pairs of X (diagonal included), out[2] = the same over Y; k(a, b) = |a - b|
// (kDistance) or exp(-gamma |a - b|^2) (kRbf). Squared distances are summed column by column in
// float64; row sums are added in row order, so the result does not depend on the threads.
void pair_kernel_means(const double* x, int64_t n, const double* y, int64_t m, int64_t d,
                       PairKernel kernel, double gamma, double* out);

}  // namespace airda::cpu
