// CUDA entry point of the pair_kernel_means op. Plain C++ (no CUDA or pybind11 types), so the
// bindings include it without nvcc. Throws std::runtime_error on a CUDA error.
#pragma once

#include <cstdint>

namespace airda::cuda {

// Device pointers: a (n x d) and b (m x d), C-contiguous float64; row_sums (n) receives, per row
// i of a, the sum over rows j of b of k(a_i, b_j), k = |a - b| (kernel 0) or exp(-gamma |a -
// b|^2) (kernel 1); with `same` (b is a) only j > i. `stream` is a cudaStream_t as an integer.
void pair_kernel_row_sums(const double* a, int64_t n, const double* b, int64_t m, int64_t d,
                          bool same, int kernel, double gamma, double* row_sums, int device,
                          std::uintptr_t stream);

}  // namespace airda::cuda
