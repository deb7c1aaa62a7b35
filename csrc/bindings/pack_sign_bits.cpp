// Bindings of the pack_sign_bits op: its checks of every array beside its m.def, so that no call
// from Python can crash the process; the Python wrapper (airda.ops.pack_sign_bits) checks values as
// well.
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>

#include <cstdint>
#include <string>

#include "airda/pack_sign_bits.h"
#include "bindings/checks.h"
#ifdef AIRDA_WITH_CUDA
#include "cuda/pack_sign_bits.h"
#endif

namespace py = pybind11;

namespace airda::bindings {
namespace {

py::ssize_t kind_itemsize(airda::FloatKind kind) {
  switch (kind) {
    case airda::FloatKind::kFloat32:
      return 4;
    case airda::FloatKind::kFloat64:
      return 8;
    default:
      return 2;
  }
}

void cpu_pack_sign_bits(const py::array& x, const std::string& kind_name, py::array& out) {
  const airda::FloatKind kind = parse_kind(kind_name);
  require_matrix(x, "x");
  if (x.itemsize() != kind_itemsize(kind)) {
    throw py::type_error("x has " + std::to_string(x.itemsize()) + "-byte items, but " +
                         kind_name + " needs " + std::to_string(kind_itemsize(kind)));
  }
  const int64_t n = x.shape(0), units = x.shape(1);
  if (n < 1 || units < 1) throw py::value_error("x is empty");
  require_matrix(out, "out");
  require_dtype(out, "out", 'u', 8);
  require_shape(out, "out", n, airda::words_for(units));
  require_writeable(out, "out");
  const void* src = x.data();
  auto* dst = static_cast<uint64_t*>(out.mutable_data());
  py::gil_scoped_release release;
  airda::cpu::pack_sign_bits(src, kind, n, units, dst);
}

}  // namespace

void bind_pack_sign_bits(py::module_& m) {
  m.def("pack_sign_bits", &cpu_pack_sign_bits, py::arg("x"), py::arg("kind"), py::arg("out"),
        "Pack (x > 0) of a C-contiguous n x units float matrix into out (n x ceil(units/64) "
        "uint64). 16-bit kinds take their raw bits as uint16.");
#ifdef AIRDA_WITH_CUDA
  m.def(
      "cuda_pack_sign_bits",
      [](std::uintptr_t x, const std::string& kind, int64_t n, int64_t units, std::uintptr_t out,
         int device, std::uintptr_t stream) {
        const airda::FloatKind k = parse_kind(kind);
        if (n < 1 || units < 1) throw py::value_error("x is empty");
        if (x == 0 || out == 0) throw py::value_error("null device pointer");
        py::gil_scoped_release release;
        airda::cuda::pack_sign_bits(reinterpret_cast<const void*>(x), k, n, units,
                                    reinterpret_cast<uint64_t*>(out), device, stream);
      },
      py::arg("x"), py::arg("kind"), py::arg("n"), py::arg("units"), py::arg("out"),
      py::arg("device"), py::arg("stream"));
#else
  m.def(
      "cuda_pack_sign_bits",
      [](std::uintptr_t, const std::string&, int64_t, int64_t, std::uintptr_t, int,
         std::uintptr_t) { no_cuda(); },
      py::arg("x"), py::arg("kind"), py::arg("n"), py::arg("units"), py::arg("out"),
      py::arg("device"), py::arg("stream"));
#endif
}

}  // namespace airda::bindings
