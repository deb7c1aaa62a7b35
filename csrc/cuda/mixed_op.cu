// CUDA kernels of the fused DARTS mixed operation. Every block computes softmax(alpha) in double
// into shared memory (K is small), so forward is one launch and one pass over the elements.
// Backward writes grad_ys in the same pass and leaves one partial dot product per block and
// candidate in `work`; a one-block kernel adds them in block order and forms grad_alpha, so the
// result depends on n only (no atomics). --use_fast_math is on for this library: it leaves the
// double-precision softmax alone and keeps NaN propagation, but flushes float32 subnormal
// inputs and products to zero.
#include "mixed_op.h"

#include <cuda_runtime.h>

#include "common.cuh"

namespace airda::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
// Candidates whose dot products a thread carries in registers at once.
constexpr int kKChunk = 8;

// softmax(alpha) into w[0..k) (shared memory); NaN or an infinite maximum give NaN weights.
template <class T>
__device__ void block_softmax(const T* __restrict__ alpha, int64_t k, double* w) {
  for (int64_t j = threadIdx.x; j < k; j += blockDim.x) w[j] = static_cast<double>(alpha[j]);
  __syncthreads();
  if (threadIdx.x == 0) {
    double m = w[0];
    for (int64_t j = 1; j < k; ++j) {
      if (isnan(w[j]) || w[j] > m) m = w[j];
    }
    double sum = 0.0;
    for (int64_t j = 0; j < k; ++j) {
      w[j] = exp(w[j] - m);
      sum += w[j];
    }
    for (int64_t j = 0; j < k; ++j) w[j] /= sum;
  }
  __syncthreads();
}

template <class T>
__global__ void forward_kernel(const T* __restrict__ ys, const T* __restrict__ alpha, int64_t k,
                               int64_t n, T* __restrict__ out) {
  extern __shared__ double w[];
  block_softmax(alpha, k, w);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    T acc = static_cast<T>(w[0]) * ys[i];
    for (int64_t j = 1; j < k; ++j) acc += static_cast<T>(w[j]) * ys[j * n + i];
    out[i] = acc;
  }
}

__device__ double block_sum(double v, double* scratch) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // scratch may still be read by the previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  double total = 0.0;
  if (threadIdx.x == 0)
    for (int i = 0; i < kWarps; ++i) total += scratch[i];
  return total;  // valid in thread 0
}

template <class T>
__global__ void backward_kernel(const T* __restrict__ ys, const T* __restrict__ alpha,
                                const T* __restrict__ g, int64_t k, int64_t n,
                                T* __restrict__ grad_ys, double* __restrict__ partial) {
  extern __shared__ double w[];
  __shared__ double scratch[kWarps];
  block_softmax(alpha, k, w);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t j0 = 0; j0 < k; j0 += kKChunk) {
    double acc[kKChunk] = {};
    for (int64_t i = first; i < n; i += stride) {
      const T gi = g[i];
#pragma unroll
      for (int c = 0; c < kKChunk; ++c) {
        const int64_t j = j0 + c;
        if (j < k) {
          const int64_t at = j * n + i;
          grad_ys[at] = static_cast<T>(w[j]) * gi;
          acc[c] += static_cast<double>(gi) * static_cast<double>(ys[at]);
        }
      }
    }
#pragma unroll
    for (int c = 0; c < kKChunk; ++c) {
      const double total = block_sum(acc[c], scratch);
      if (threadIdx.x == 0 && j0 + c < k) partial[blockIdx.x * k + j0 + c] = total;
    }
  }
}

// One block: s_j = sum over blocks of partial[b, j] in block order; grad_alpha from s and w.
template <class T>
__global__ void finish_kernel(const T* __restrict__ alpha, const double* __restrict__ partial,
                              int64_t k, int64_t blocks, T* __restrict__ grad_alpha) {
  extern __shared__ double w[];
  double* s = w + k;
  block_softmax(alpha, k, w);
  for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
    double total = 0.0;
    for (int64_t b = 0; b < blocks; ++b) total += partial[b * k + j];
    s[j] = total;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double mean = 0.0;
    for (int64_t j = 0; j < k; ++j) mean += w[j] * s[j];
    for (int64_t j = 0; j < k; ++j) grad_alpha[j] = static_cast<T>(w[j] * (s[j] - mean));
  }
}

void check_k(int64_t k) {
  if (k < 1 || k > kMixedOpCudaMaxK)
    throw std::invalid_argument("mixed_op: the CUDA kernels take 1 <= K <= " +
                                std::to_string(kMixedOpCudaMaxK) + " candidates, got " +
                                std::to_string(k));
}

template <class T>
void launch_forward(const void* ys, const void* alpha, int64_t k, int64_t n, void* out,
                    cudaStream_t stream) {
  if (n == 0) return;
  const auto blocks = static_cast<unsigned>(mixed_op_cuda_blocks(n) * 4);
  forward_kernel<T><<<blocks, kThreads, k * sizeof(double), stream>>>(
      static_cast<const T*>(ys), static_cast<const T*>(alpha), k, n, static_cast<T*>(out));
  check(cudaGetLastError(), "mixed_op forward kernel launch");
}

template <class T>
void launch_backward(const void* ys, const void* alpha, const void* g, int64_t k, int64_t n,
                     void* grad_ys, void* grad_alpha, double* work, cudaStream_t stream) {
  const int64_t blocks = mixed_op_cuda_blocks(n);
  backward_kernel<T><<<static_cast<unsigned>(blocks), kThreads, k * sizeof(double), stream>>>(
      static_cast<const T*>(ys), static_cast<const T*>(alpha), static_cast<const T*>(g), k, n,
      static_cast<T*>(grad_ys), work);
  check(cudaGetLastError(), "mixed_op backward kernel launch");
  finish_kernel<T><<<1, kThreads, 2 * k * sizeof(double), stream>>>(
      static_cast<const T*>(alpha), work, k, blocks, static_cast<T*>(grad_alpha));
  check(cudaGetLastError(), "mixed_op finish kernel launch");
}

}  // namespace

void mixed_op_forward(const void* ys, const void* alpha, FloatKind kind, int64_t k, int64_t n,
                      void* out, int device, std::uintptr_t stream_handle) {
  check_k(k);
  DeviceGuard guard(device);
  auto stream = reinterpret_cast<cudaStream_t>(stream_handle);
  if (kind == FloatKind::kFloat32) {
    launch_forward<float>(ys, alpha, k, n, out, stream);
  } else if (kind == FloatKind::kFloat64) {
    launch_forward<double>(ys, alpha, k, n, out, stream);
  } else {
    throw std::invalid_argument("mixed_op takes float32 or float64");
  }
}

void mixed_op_backward(const void* ys, const void* alpha, const void* grad_out, FloatKind kind,
                       int64_t k, int64_t n, void* grad_ys, void* grad_alpha, double* work,
                       int device, std::uintptr_t stream_handle) {
  check_k(k);
  DeviceGuard guard(device);
  auto stream = reinterpret_cast<cudaStream_t>(stream_handle);
  if (kind == FloatKind::kFloat32) {
    launch_backward<float>(ys, alpha, grad_out, k, n, grad_ys, grad_alpha, work, stream);
  } else if (kind == FloatKind::kFloat64) {
    launch_backward<double>(ys, alpha, grad_out, k, n, grad_ys, grad_alpha, work, stream);
  } else {
    throw std::invalid_argument("mixed_op takes float32 or float64");
  }
}

}  // namespace airda::cuda
