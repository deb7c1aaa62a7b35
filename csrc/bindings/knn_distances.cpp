// Bindings of the knn_distances op: its checks of every array beside its m.def, so that no call
// from Python can crash the process; the Python wrapper (airda.ops.knn_distances) checks values
// as well.
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>

#include <cstdint>
#include <string>

#include "airda/knn_distances.h"
#include "bindings/checks.h"
#ifdef AIRDA_WITH_CUDA
#include "cuda/knn_distances.h"
#endif

namespace py = pybind11;

namespace airda::bindings {
namespace {

// A 2-D float32/float64 host array with any strides that are whole elements.
airda::cpu::KnnMatrix strided_matrix(const py::array& a, const char* name) {
  if (a.ndim() != 2) {
    throw py::value_error(std::string(name) + " must be 2-D, got " + std::to_string(a.ndim()) +
                          "-D");
  }
  const bool f32 = a.dtype().kind() == 'f' && a.itemsize() == 4;
  const bool f64 = a.dtype().kind() == 'f' && a.itemsize() == 8;
  if (!f32 && !f64) {
    throw py::type_error(std::string(name) + " must be float32 or float64");
  }
  if (a.shape(0) < 1 || a.shape(1) < 1) throw py::value_error(std::string(name) + " is empty");
  const py::ssize_t item = a.itemsize();
  if (a.strides(0) % item != 0 || a.strides(1) % item != 0) {
    throw py::value_error(std::string(name) + " has strides that are not whole elements");
  }
  airda::cpu::KnnMatrix m;
  m.data = a.data();
  m.f32 = f32;
  m.rows = a.shape(0);
  m.cols = a.shape(1);
  m.row_stride = a.strides(0) / item;
  m.col_stride = a.strides(1) / item;
  return m;
}

void cpu_knn_distances(const py::array& queries, const py::array& data, int64_t k,
                       bool exclude_self, py::array& out_dist, py::array& out_idx) {
  const auto q = strided_matrix(queries, "queries");
  const auto x = strided_matrix(data, "data");
  if (q.f32 != x.f32) throw py::type_error("queries and data must have the same dtype");
  if (q.cols != x.cols) {
    throw py::value_error("queries has " + std::to_string(q.cols) + " columns but data has " +
                          std::to_string(x.cols));
  }
  const int64_t available = exclude_self ? x.rows - 1 : x.rows;
  if (k < 1 || k > available) {
    throw py::value_error("k must be in [1, " + std::to_string(available) + "], got " +
                          std::to_string(k));
  }
  if (exclude_self && q.rows != x.rows) {
    throw py::value_error("exclude_self needs queries to be data (the same rows)");
  }
  require_matrix(out_dist, "out_dist");
  require_dtype(out_dist, "out_dist", 'f', 8);
  require_shape(out_dist, "out_dist", q.rows, k);
  require_writeable(out_dist, "out_dist");
  require_matrix(out_idx, "out_idx");
  require_dtype(out_idx, "out_idx", 'i', 8);
  require_shape(out_idx, "out_idx", q.rows, k);
  require_writeable(out_idx, "out_idx");
  auto* dist = static_cast<double*>(out_dist.mutable_data());
  auto* idx = static_cast<int64_t*>(out_idx.mutable_data());
  py::gil_scoped_release release;
  airda::cpu::knn_distances(q, x, k, exclude_self, 0, dist, idx);
}

}  // namespace

void bind_knn_distances(py::module_& m) {
  m.def("knn_distances", &cpu_knn_distances, py::arg("queries"), py::arg("data"), py::arg("k"),
        py::arg("exclude_self"), py::arg("out_dist"), py::arg("out_idx"),
        "The k nearest data rows of each query row: exact float64 distances (ascending, ties by "
        "the lower index) into out_dist and their indices into out_idx, both (n, k).");
#ifdef AIRDA_WITH_CUDA
  m.def(
      "cuda_knn_distances",
      [](std::uintptr_t queries, std::uintptr_t data, bool f32, int64_t n, int64_t m_rows,
         int64_t d, int64_t k, bool exclude_self, std::uintptr_t out_dist,
         std::uintptr_t out_idx, int device, std::uintptr_t stream) {
        if (n < 1 || m_rows < 1 || d < 1) throw py::value_error("queries or data is empty");
        const int64_t available = exclude_self ? m_rows - 1 : m_rows;
        if (k < 1 || k > available) throw py::value_error("k out of range");
        if (queries == 0 || data == 0 || out_dist == 0 || out_idx == 0) {
          throw py::value_error("null device pointer");
        }
        py::gil_scoped_release release;
        airda::cuda::knn_distances(reinterpret_cast<const void*>(queries),
                                   reinterpret_cast<const void*>(data), f32, n, m_rows, d, k,
                                   exclude_self, reinterpret_cast<double*>(out_dist),
                                   reinterpret_cast<int64_t*>(out_idx), device, stream);
      },
      py::arg("queries"), py::arg("data"), py::arg("f32"), py::arg("n"), py::arg("m"),
      py::arg("d"), py::arg("k"), py::arg("exclude_self"), py::arg("out_dist"),
      py::arg("out_idx"), py::arg("device"), py::arg("stream"));
#else
  m.def(
      "cuda_knn_distances",
      [](std::uintptr_t, std::uintptr_t, bool, int64_t, int64_t, int64_t, int64_t, bool,
         std::uintptr_t, std::uintptr_t, int, std::uintptr_t) { no_cuda(); },
      py::arg("queries"), py::arg("data"), py::arg("f32"), py::arg("n"), py::arg("m"),
      py::arg("d"), py::arg("k"), py::arg("exclude_self"), py::arg("out_dist"),
      py::arg("out_idx"), py::arg("device"), py::arg("stream"));
#endif
}

}  // namespace airda::bindings
