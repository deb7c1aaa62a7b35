// Bindings of the non_dominated_rank op: its checks of every array beside its m.def, so that no
// call from Python can crash the process; the Python wrapper (airda.ops.non_dominated_rank) checks
// values as well.
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>

#include <cstdint>
#include <string>

#include "airda/non_dominated_rank.h"
#include "bindings/checks.h"

namespace py = pybind11;

namespace airda::bindings {
namespace {

void cpu_non_dominated_rank(const py::array& values, py::array& out) {
  const auto [n, m] = require_objectives(values);
  if (out.ndim() != 1 || out.shape(0) != n) {
    throw py::value_error("out must have shape (" + std::to_string(n) + ",)");
  }
  if (!(out.flags() & py::array::c_style)) throw py::value_error("out must be C-contiguous");
  require_dtype(out, "out", 'i', 8);
  require_writeable(out, "out");
  const auto* src = static_cast<const double*>(values.data());
  auto* dst = static_cast<int64_t*>(out.mutable_data());
  py::gil_scoped_release release;
  airda::cpu::non_dominated_rank(src, n, m, dst);
}

}  // namespace

void bind_non_dominated_rank(py::module_& m) {
  m.def("non_dominated_rank", &cpu_non_dominated_rank, py::arg("values"), py::arg("out"),
        "Non-dominated front of each row of a C-contiguous (n, m) float64 matrix (minimised, no "
        "NaN) into out (n,) int64; 0 = not dominated.");
}

}  // namespace airda::bindings
