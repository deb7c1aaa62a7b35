// CPU entry point of the knn_distances op: exact k-nearest-neighbour Euclidean distances, streamed
// in chunks (memory O(inputs + chunk), never n x m). Plain C++ API used by the bindings; the
// NumPy reference is python/airda/ops/knn_distances.py.
#pragma once

#include <cstdint>

namespace airda::cpu {

// A 2-D float32 or float64 matrix with strides in elements (any sign).
struct KnnMatrix {
  const void* data = nullptr;
  bool f32 = false;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_stride = 0;
  int64_t col_stride = 0;
};

// For each query row the k nearest data rows: out_dist (rows x k, row-major) the float64
// distances sqrt(sum_c (q_c - x_c)^2), summed column by column in float64, ascending; out_idx
// the data row indices, ties broken by the lower index. exclude_self: queries are data, and row
// i is never its own neighbour. Needs 1 <= k <= data.rows (- 1 with exclude_self), queries.cols
// == data.cols, and queries and data of the same float type. Throws std::invalid_argument
// naming the first row with a NaN or an infinity. threads <= 0: OpenMP's default.
void knn_distances(const KnnMatrix& queries, const KnnMatrix& data, int64_t k, bool exclude_self,
                   int threads, double* out_dist, int64_t* out_idx);

}  // namespace airda::cpu
