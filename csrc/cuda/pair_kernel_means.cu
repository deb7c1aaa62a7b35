// CUDA kernel of the pair_kernel_means op: one thread per row of a, rows of b streamed through
// shared memory in tiles of 32 rows x 32 columns, float64 squared distances, then |a - b| or
// exp(-gamma |a - b|^2) summed per row. The caller adds the row sums.
#include "pair_kernel_means.h"

#include <cuda_runtime.h>

#include <stdexcept>

#include "common.cuh"

namespace airda::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kTile = 32;
constexpr int kCols = 32;

__global__ void row_sums_kernel(const double* __restrict__ a, int64_t n,
                                const double* __restrict__ b, int64_t m, int64_t d, bool same,
                                int kernel, double gamma, double* __restrict__ row_sums) {
  __shared__ double bs[kTile][kCols + 1];
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool active = i < n;
  // With `same`, rows j <= i do not count; the block's first row bounds the tiles it needs.
  const int64_t first = same ? static_cast<int64_t>(blockIdx.x) * blockDim.x + 1 : 0;
  const int64_t start = (first / kTile) * kTile;
  double total = 0.0;
  for (int64_t j0 = start; j0 < m; j0 += kTile) {
    double acc[kTile];
#pragma unroll
    for (int t = 0; t < kTile; ++t) acc[t] = 0.0;
    for (int64_t c0 = 0; c0 < d; c0 += kCols) {
      for (int idx = threadIdx.x; idx < kTile * kCols; idx += blockDim.x) {
        const int t = idx / kCols, cc = idx % kCols;
        const int64_t j = j0 + t, c = c0 + cc;
        bs[t][cc] = (j < m && c < d) ? b[j * d + c] : 0.0;
      }
      __syncthreads();
      if (active) {
        const int cmax = d - c0 < kCols ? static_cast<int>(d - c0) : kCols;
        for (int cc = 0; cc < cmax; ++cc) {
          const double av = a[i * d + c0 + cc];
#pragma unroll
          for (int t = 0; t < kTile; ++t) {
            const double diff = av - bs[t][cc];
            acc[t] += diff * diff;
          }
        }
      }
      __syncthreads();
    }
    if (active) {
#pragma unroll
      for (int t = 0; t < kTile; ++t) {
        const int64_t j = j0 + t;
        if (j >= m || (same && j <= i)) continue;
        total += kernel == 0 ? sqrt(acc[t]) : exp(-gamma * acc[t]);
      }
    }
  }
  if (active) row_sums[i] = total;
}

}  // namespace

void pair_kernel_row_sums(const double* a, int64_t n, const double* b, int64_t m, int64_t d,
                          bool same, int kernel, double gamma, double* row_sums, int device,
                          std::uintptr_t stream_handle) {
  DeviceGuard guard(device);
  auto stream = reinterpret_cast<cudaStream_t>(stream_handle);
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  if (blocks > 2147483647LL) {
    throw std::runtime_error("pair_kernel_means: n too large for one launch");
  }
  row_sums_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      a, n, b, m, d, same, kernel, gamma, row_sums);
  check(cudaGetLastError(), "pair_kernel_means kernel launch");
}

}  // namespace airda::cuda
