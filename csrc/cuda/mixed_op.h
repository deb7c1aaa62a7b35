// CUDA entry points of the fused DARTS mixed operation (see airda/mixed_op.h). Plain C++, so
// the bindings include it without nvcc. Errors become std::runtime_error.
#pragma once

#include <cstdint>

#include "airda/bits.h"
#include "airda/mixed_op.h"

namespace airda::cuda {

// Device pointers; ys (k, n), alpha (k,), out (n,); kind is kFloat32 or kFloat64.
void mixed_op_forward(const void* ys, const void* alpha, FloatKind kind, int64_t k, int64_t n,
                      void* out, int device, std::uintptr_t stream);
// grad_out (n,), grad_ys (k, n), grad_alpha (k,); work holds mixed_op_cuda_workspace(k, n)
// doubles (the per-block partial dot products, added in a fixed order by one block).
void mixed_op_backward(const void* ys, const void* alpha, const void* grad_out, FloatKind kind,
                       int64_t k, int64_t n, void* grad_ys, void* grad_alpha, double* work,
                       int device, std::uintptr_t stream);

}  // namespace airda::cuda
