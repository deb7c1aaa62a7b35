// CPU kernel of the pair_kernel_means op: sums of |a - b| or exp(-gamma |a - b|^2) over every
// pair of rows of two matrices, in float64. The second matrix is packed column by column so that
// the inner loop runs over its rows with unit stride (vectorised, with an AVX-512/AVX2 clone
// picked at run time); OpenMP over rows of the first, one row sum each, added in row order at the
// end. Pairs of a matrix with itself are counted once (j > i) and doubled. Memory: a copy of the
// second matrix and a row sum per row; never n x m.
#include "airda/pair_kernel_means.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace airda::cpu {
namespace {

constexpr int64_t kChunk = 512;  // columns of the packed matrix per pass (4 KB of sums)

// Sum over j in [j0, j1) of k(a, b_j), b packed column by column (bt[c * ld + j]).
__attribute__((target_clones("avx512f", "avx2", "default"))) double row_sum(
    const double* a, const double* bt, int64_t ld, int64_t j0, int64_t j1, int64_t d,
    int kernel, double gamma) {
  double total = 0.0;
  double acc[kChunk];
  for (int64_t s = j0; s < j1; s += kChunk) {
    const int64_t len = std::min(kChunk, j1 - s);
    for (int64_t t = 0; t < len; ++t) acc[t] = 0.0;
    for (int64_t c = 0; c < d; ++c) {
      const double av = a[c];
      const double* b = bt + c * ld + s;
      for (int64_t t = 0; t < len; ++t) {
        const double diff = av - b[t];
        acc[t] += diff * diff;
      }
    }
    double part = 0.0;
    if (kernel == static_cast<int>(PairKernel::kDistance)) {
      for (int64_t t = 0; t < len; ++t) part += std::sqrt(acc[t]);
    } else {
      for (int64_t t = 0; t < len; ++t) part += std::exp(-gamma * acc[t]);
    }
    total += part;
  }
  return total;
}

std::vector<double> transpose(const double* a, int64_t rows, int64_t d) {
  std::vector<double> t(static_cast<size_t>(rows * d));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < d; ++c) t[c * rows + r] = a[r * d + c];
  return t;
}

// Mean of k over A x B (same: B is A, pairs j > i doubled plus the diagonal k(0)).
double mean_over(const double* a, int64_t n, const double* b, int64_t m, int64_t d, bool same,
                 int kernel, double gamma) {
  const std::vector<double> bt = transpose(b, m, d);
  std::vector<double> rows(static_cast<size_t>(n));
  const bool parallel = static_cast<double>(n) * m * d >= 1e5;
#pragma omp parallel for schedule(dynamic, 4) if (parallel)
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j0 = same ? i + 1 : 0;
    rows[i] = j0 < m ? row_sum(a + i * d, bt.data(), m, j0, m, d, kernel, gamma) : 0.0;
  }
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += rows[i];
  if (same) {
    const double diagonal = kernel == static_cast<int>(PairKernel::kDistance) ? 0.0 : 1.0;
    total = 2.0 * total + diagonal * static_cast<double>(n);
  }
  return total / (static_cast<double>(n) * static_cast<double>(m));
}

}  // namespace

void pair_kernel_means(const double* x, int64_t n, const double* y, int64_t m, int64_t d,
                       PairKernel kernel, double gamma, double* out) {
  const int k = static_cast<int>(kernel);
  out[0] = mean_over(x, n, y, m, d, false, k, gamma);
  out[1] = mean_over(x, n, x, n, d, true, k, gamma);
  out[2] = mean_over(y, m, y, m, d, true, k, gamma);
}

}  // namespace airda::cpu
