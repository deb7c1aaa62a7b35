// CUDA kernel of the knn_distances op: one thread per query, data streamed through shared memory
// in tiles of 32 rows x 32 columns, exact float64 squared distances (explicitly rounded
// operations: no fused multiply-add, the reference's column order) and a sorted top-k per query
// kept in its rows of the outputs, entered only by rows that beat its k-th best (held in a
// register). Memory: the outputs and 8 KB of shared memory per block; never n x m.
#include "knn_distances.h"

#include <cuda_runtime.h>

#include <stdexcept>

#include "common.cuh"

namespace airda::cuda {
namespace {

constexpr int kThreads = 128;  // queries per block
constexpr int kTile = 32;      // data rows per shared-memory tile
constexpr int kCols = 32;      // columns per shared-memory stage

template <typename T>
__global__ void knn_kernel(const T* __restrict__ q, const T* __restrict__ x, int64_t n,
                           int64_t m, int64_t d, int64_t k, bool exclude_self,
                           double* __restrict__ out_dist, int64_t* __restrict__ out_idx) {
  __shared__ double xs[kTile][kCols + 1];
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool active = i < n;
  double* bd = out_dist + (active ? i : 0) * k;
  int64_t* bi = out_idx + (active ? i : 0) * k;
  int64_t count = 0;
  double thr = __longlong_as_double(0x7ff0000000000000LL);  // +inf
  for (int64_t j0 = 0; j0 < m; j0 += kTile) {
    double acc[kTile];
#pragma unroll
    for (int t = 0; t < kTile; ++t) acc[t] = 0.0;
    for (int64_t c0 = 0; c0 < d; c0 += kCols) {
      for (int idx = threadIdx.x; idx < kTile * kCols; idx += blockDim.x) {
        const int t = idx / kCols, cc = idx % kCols;
        const int64_t j = j0 + t, c = c0 + cc;
        xs[t][cc] = (j < m && c < d) ? static_cast<double>(x[j * d + c]) : 0.0;
      }
      __syncthreads();
      if (active) {
        const int cmax = d - c0 < kCols ? static_cast<int>(d - c0) : kCols;
        for (int cc = 0; cc < cmax; ++cc) {
          const double qv = static_cast<double>(q[i * d + c0 + cc]);
#pragma unroll
          for (int t = 0; t < kTile; ++t) {
            const double diff = __dsub_rn(qv, xs[t][cc]);
            acc[t] = __dadd_rn(acc[t], __dmul_rn(diff, diff));
          }
        }
      }
      __syncthreads();
    }
    if (active) {
#pragma unroll
      for (int t = 0; t < kTile; ++t) {
        const int64_t j = j0 + t;
        if (j >= m || (exclude_self && j == i)) continue;
        const double e = acc[t];
        if (count < k || e < thr) {
          // Rows arrive in ascending order: (e, j) goes after every entry of equal distance.
          int64_t pos = count < k ? count : k - 1;
          while (pos > 0 && bd[pos - 1] > e) {
            bd[pos] = bd[pos - 1];
            bi[pos] = bi[pos - 1];
            --pos;
          }
          bd[pos] = e;
          bi[pos] = j;
          if (count < k) ++count;
          if (count == k) thr = bd[k - 1];
        }
      }
    }
  }
  if (active) {
    for (int64_t o = 0; o < k; ++o) bd[o] = __dsqrt_rn(bd[o]);
  }
}

}  // namespace

void knn_distances(const void* queries, const void* data, bool f32, int64_t n, int64_t m,
                   int64_t d, int64_t k, bool exclude_self, double* out_dist, int64_t* out_idx,
                   int device, std::uintptr_t stream_handle) {
  DeviceGuard guard(device);
  auto stream = reinterpret_cast<cudaStream_t>(stream_handle);
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  if (blocks > 2147483647LL) throw std::runtime_error("knn_distances: n too large for one launch");
  if (f32) {
    knn_kernel<float><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
        static_cast<const float*>(queries), static_cast<const float*>(data), n, m, d, k,
        exclude_self, out_dist, out_idx);
  } else {
    knn_kernel<double><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
        static_cast<const double*>(queries), static_cast<const double*>(data), n, m, d, k,
        exclude_self, out_dist, out_idx);
  }
  check(cudaGetLastError(), "knn_distances kernel launch");
}

}  // namespace airda::cuda
