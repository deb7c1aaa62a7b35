// Entry points of the fused DARTS mixed operation: plain C++ API used by the bindings and shared
// with the CUDA kernels (no pybind11 or CUDA types here).
//
//   w = softmax(alpha)                 (computed in double, max subtracted)
//   out[i] = sum_k w_k * ys[k, i]                                  forward
//   grad_ys[k, i] = w_k * g[i]
//   s_k = sum_i g[i] * ys[k, i];  grad_alpha_k = w_k * (s_k - sum_j w_j s_j)   backward
//
// ys is K rows of n elements, row-major. NaN anywhere propagates as in the plain expression.
#pragma once

#include <cstdint>

namespace airda {

// Elements per partial sum of the backward's dot products. The partials are added in a fixed
// order, so the result depends on n only, not on the thread count or the schedule.
constexpr int64_t kMixedOpChunk = 4096;

// Blocks of the CUDA backward, and so the (blocks x K) float64 partials it needs as workspace.
inline int64_t mixed_op_cuda_blocks(int64_t n) {
  constexpr int64_t kThreads = 256, kMaxBlocks = 1024;
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks);
}
inline int64_t mixed_op_cuda_workspace(int64_t k, int64_t n) { return mixed_op_cuda_blocks(n) * k; }

// Largest K the CUDA kernels take: weights and sums live in shared memory (2 K doubles, within
// the 48 KB a launch gets without opting in).
constexpr int64_t kMixedOpCudaMaxK = 2048;

namespace cpu {

void mixed_op_forward(const float* ys, const float* alpha, int64_t k, int64_t n, float* out);
void mixed_op_forward(const double* ys, const double* alpha, int64_t k, int64_t n, double* out);
void mixed_op_backward(const float* ys, const float* alpha, const float* grad_out, int64_t k,
                       int64_t n, float* grad_ys, float* grad_alpha);
void mixed_op_backward(const double* ys, const double* alpha, const double* grad_out, int64_t k,
                       int64_t n, double* grad_ys, double* grad_alpha);

}  // namespace cpu
}  // namespace airda
