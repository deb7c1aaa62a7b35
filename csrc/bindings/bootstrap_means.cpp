// Bindings of the bootstrap_means op: its checks of every array beside its m.def, so that no call
// from Python can crash the process; the Python wrapper (airda.ops.bootstrap_means) checks values
// as well.
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>

#include <cstdint>
#include <string>

#include "airda/bootstrap_means.h"
#include "bindings/checks.h"

namespace py = pybind11;

namespace airda::bindings {
namespace {

// data: C-contiguous (k, n) float64, finite; strata: None or C-contiguous (3, n) int64 whose
// rows are the kernel's order, start and size; out: (n_resamples, k) float64.
void cpu_bootstrap_means(const py::array& data, int64_t n_resamples, uint64_t seed,
                         const py::object& strata, int threads, py::array& out) {
  require_matrix(data, "data");
  require_dtype(data, "data", 'f', 8);
  const int64_t k = data.shape(0), n = data.shape(1);
  if (k < 1 || n < 1) throw py::value_error("data is empty; it needs k >= 1 rows of n >= 1");
  if (n > airda::cpu::kMaxResamplePopulation) {
    throw py::value_error("data has n = " + std::to_string(n) + " scores; at most 2^32 - 1");
  }
  if (n_resamples < 1) throw py::value_error("n_resamples must be >= 1");
  const auto* src = static_cast<const double*>(data.data());
  const int64_t at = airda::cpu::find_nonfinite(src, k * n);
  if (at >= 0) {
    throw py::value_error("data is not finite at row " + std::to_string(at / n) + ", index " +
                          std::to_string(at % n));
  }
  require_matrix(out, "out");
  require_dtype(out, "out", 'f', 8);
  require_shape(out, "out", n_resamples, k);
  require_writeable(out, "out");
  airda::cpu::Strata parts;
  py::array strata_array;
  if (!strata.is_none()) {
    strata_array = py::array::ensure(strata);
    if (!strata_array) throw py::type_error("strata must be None or an int64 array");
    require_matrix(strata_array, "strata");
    require_dtype(strata_array, "strata", 'i', 8);
    require_shape(strata_array, "strata", 3, n);
    const auto* rows = static_cast<const int64_t*>(strata_array.data());
    parts = {rows, rows + n, rows + 2 * n};
    airda::cpu::check_strata(parts, n);  // std::invalid_argument arrives as ValueError
  }
  auto* dst = static_cast<double*>(out.mutable_data());
  const airda::cpu::Strata* use = strata.is_none() ? nullptr : &parts;
  py::gil_scoped_release release;
  airda::cpu::bootstrap_means(src, k, n, n_resamples, seed, use, threads, dst);
}

}  // namespace

void bind_bootstrap_means(py::module_& m) {
  m.def("bootstrap_means", &cpu_bootstrap_means, py::arg("data"), py::arg("n_resamples"),
        py::arg("seed"), py::arg("strata"), py::arg("threads"), py::arg("out"),
        "Means of the k rows of a C-contiguous (k, n) float64 matrix over n_resamples paired "
        "bootstrap resamples of airda's counter-based stream, into out (n_resamples, k). strata: "
        "None or (3, n) int64 rows order, start, size. threads <= 0: the OpenMP default.");
  m.def(
      "resample_use_avx2", &airda::cpu::resample_use_avx2, py::arg("use") = -1,
      "Whether bootstrap draws are hashed with AVX2 (same indices either way); use = 0 or 1 "
      "switches it for the process (1 only where the CPU has AVX2), -1 only asks.");
}

}  // namespace airda::bindings
