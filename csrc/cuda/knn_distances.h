// CUDA entry point of the knn_distances op. Plain C++ (no CUDA or pybind11 types), so the
// bindings include it without nvcc. Throws std::runtime_error on a CUDA error, including "no
// driver" on machines without a GPU.
#pragma once

#include <cstdint>

namespace airda::cuda {

// Device pointers to C-contiguous queries (n x d) and data (m x d), float32 (f32) or float64;
// out_dist and out_idx are n x k. Exact float64 distances, summed column by column without
// fused multiply-adds (the reference's order), ascending, ties broken by the lower index;
// exclude_self: queries are data and row i is never its own neighbour. `stream` is a
// cudaStream_t passed as an integer (0 = legacy default stream).
void knn_distances(const void* queries, const void* data, bool f32, int64_t n, int64_t m,
                   int64_t d, int64_t k, bool exclude_self, double* out_dist, int64_t* out_idx,
                   int device, std::uintptr_t stream);

}  // namespace airda::cuda
