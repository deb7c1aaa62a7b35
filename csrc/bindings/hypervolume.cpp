// Bindings of the hypervolume op: its checks of every array beside its m.def, so that no call from
// Python can crash the process; the Python wrapper (airda.ops.hypervolume) checks values as well.
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>

#include <cstdint>
#include <string>

#include "airda/hypervolume.h"
#include "bindings/checks.h"

namespace py = pybind11;

namespace airda::bindings {
namespace {

double cpu_hypervolume(const py::array& values, const py::array& ref) {
  const auto [n, m] = require_objectives(values);
  if (m != 2 && m != 3) {
    throw py::value_error("hypervolume supports only 2 and 3 objectives for now, got m = " +
                          std::to_string(m));
  }
  if (ref.ndim() != 1 || ref.shape(0) != m) {
    throw py::value_error("ref must have shape (" + std::to_string(m) +
                          ",), one value per objective");
  }
  if (!(ref.flags() & py::array::c_style)) throw py::value_error("ref must be C-contiguous");
  require_dtype(ref, "ref", 'f', 8);
  const auto* point = static_cast<const double*>(ref.data());
  if (airda::cpu::find_nan(point, m) >= 0) throw py::value_error("ref contains NaN");
  const auto* src = static_cast<const double*>(values.data());
  py::gil_scoped_release release;
  return airda::cpu::hypervolume(src, n, m, point);
}

}  // namespace

void bind_hypervolume(py::module_& m) {
  m.def("hypervolume", &cpu_hypervolume, py::arg("values"), py::arg("ref"),
        "Hypervolume dominated by the rows of an (n, m) float64 matrix, m in {2, 3}, bounded by "
        "ref (m,) float64.");
}

}  // namespace airda::bindings
