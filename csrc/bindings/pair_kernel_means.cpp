// Bindings of the pair_kernel_means op: its checks of every array beside its m.def, so that no
// call from Python can crash the process; the Python wrapper (airda.ops.pair_kernel_means)
// checks values as well.
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "airda/pair_kernel_means.h"
#include "bindings/checks.h"
#ifdef AIRDA_WITH_CUDA
#include "cuda/pair_kernel_means.h"
#endif

namespace py = pybind11;

namespace airda::bindings {
namespace {

int parse_pair_kernel(const std::string& kernel, double gamma) {
  if (kernel == "distance") return static_cast<int>(airda::cpu::PairKernel::kDistance);
  if (kernel == "rbf") {
    if (!(gamma > 0.0) || !std::isfinite(gamma)) {
      throw py::value_error("gamma must be a finite number > 0 for the rbf kernel");
    }
    return static_cast<int>(airda::cpu::PairKernel::kRbf);
  }
  throw py::value_error("unknown kernel '" + kernel + "' (expected 'distance' or 'rbf')");
}

void cpu_pair_kernel_means(const py::array& x, const py::array& y, const std::string& kernel,
                           double gamma, py::array& out) {
  const double* px = f64_data(x, "x", 2);
  const double* py_ = f64_data(y, "y", 2);
  const int64_t n = x.shape(0), m = y.shape(0), d = x.shape(1);
  if (n < 1 || m < 1 || d < 1) throw py::value_error("x and y must be non-empty");
  if (y.shape(1) != d) {
    throw py::value_error("x has " + std::to_string(d) + " columns but y has " +
                          std::to_string(y.shape(1)));
  }
  const int k = parse_pair_kernel(kernel, gamma);
  require_vector(out, "out", 3);
  require_dtype(out, "out", 'f', 8);
  require_writeable(out, "out");
  auto* po = static_cast<double*>(out.mutable_data());
  py::gil_scoped_release release;
  airda::cpu::pair_kernel_means(px, n, py_, m, d, static_cast<airda::cpu::PairKernel>(k), gamma,
                                po);
}

}  // namespace

void bind_pair_kernel_means(py::module_& m) {
  m.def("pair_kernel_means", &cpu_pair_kernel_means, py::arg("x"), py::arg("y"),
        py::arg("kernel"), py::arg("gamma"), py::arg("out"),
        "out = the means of the kernel over X x Y, X x X and Y x Y (diagonals included); "
        "kernel 'distance' (|a - b|) or 'rbf' (exp(-gamma |a - b|^2)).");
#ifdef AIRDA_WITH_CUDA
  m.def(
      "cuda_pair_kernel_row_sums",
      [](std::uintptr_t a, int64_t n, std::uintptr_t b, int64_t m_rows, int64_t d, bool same,
         const std::string& kernel, double gamma, std::uintptr_t row_sums, int device,
         std::uintptr_t stream) {
        if (n < 1 || m_rows < 1 || d < 1) throw py::value_error("a or b is empty");
        if (a == 0 || b == 0 || row_sums == 0) throw py::value_error("null device pointer");
        const int k = parse_pair_kernel(kernel, gamma);
        py::gil_scoped_release release;
        airda::cuda::pair_kernel_row_sums(
            reinterpret_cast<const double*>(a), n, reinterpret_cast<const double*>(b), m_rows, d,
            same, k, gamma, reinterpret_cast<double*>(row_sums), device, stream);
      },
      py::arg("a"), py::arg("n"), py::arg("b"), py::arg("m"), py::arg("d"), py::arg("same"),
      py::arg("kernel"), py::arg("gamma"), py::arg("row_sums"), py::arg("device"),
      py::arg("stream"));
#else
  m.def(
      "cuda_pair_kernel_row_sums",
      [](std::uintptr_t, int64_t, std::uintptr_t, int64_t, int64_t, bool, const std::string&,
         double, std::uintptr_t, int, std::uintptr_t) { no_cuda(); },
      py::arg("a"), py::arg("n"), py::arg("b"), py::arg("m"), py::arg("d"), py::arg("same"),
      py::arg("kernel"), py::arg("gamma"), py::arg("row_sums"), py::arg("device"),
      py::arg("stream"));
#endif
}

}  // namespace airda::bindings
