// Bindings of the hamming_gram op: its checks of every array beside its m.def, so that no call from
// Python can crash the process; the Python wrapper (airda.ops.hamming_gram) checks values as well.
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>

#include <cstdint>
#include <string>

#include "airda/hamming_gram.h"
#include "bindings/checks.h"
#ifdef AIRDA_WITH_CUDA
#include "cuda/hamming_gram.h"
#endif

namespace py = pybind11;

namespace airda::bindings {
namespace {

void cpu_hamming_gram(const py::array& codes, int64_t units, py::array& out) {
  require_matrix(codes, "codes");
  require_dtype(codes, "codes", 'u', 8);
  const int64_t n = codes.shape(0);
  if (n < 1) throw py::value_error("codes is empty");
  if (units < 1) throw py::value_error("units must be >= 1");
  if (codes.shape(1) != airda::words_for(units)) {
    throw py::value_error("codes has " + std::to_string(codes.shape(1)) +
                          " words per row, but units=" + std::to_string(units) + " needs " +
                          std::to_string(airda::words_for(units)));
  }
  require_matrix(out, "out");
  require_dtype(out, "out", 'i', 8);
  require_shape(out, "out", n, n);
  require_writeable(out, "out");
  const auto* src = static_cast<const uint64_t*>(codes.data());
  auto* dst = static_cast<int64_t*>(out.mutable_data());
  py::gil_scoped_release release;
  airda::cpu::hamming_gram(src, n, units, dst);
}

}  // namespace

void bind_hamming_gram(py::module_& m) {
  m.def("hamming_gram", &cpu_hamming_gram, py::arg("codes"), py::arg("units"), py::arg("out"),
        "out[i, j] = units - popcount(codes[i] ^ codes[j]) into an n x n int64 matrix.");
#ifdef AIRDA_WITH_CUDA
  m.def(
      "cuda_hamming_gram",
      [](std::uintptr_t codes, int64_t n, int64_t units, std::uintptr_t out, int device,
         std::uintptr_t stream) {
        if (n < 1 || units < 1) throw py::value_error("codes is empty");
        if (codes == 0 || out == 0) throw py::value_error("null device pointer");
        py::gil_scoped_release release;
        airda::cuda::hamming_gram(reinterpret_cast<const uint64_t*>(codes), n, units,
                                  reinterpret_cast<int64_t*>(out), device, stream);
      },
      py::arg("codes"), py::arg("n"), py::arg("units"), py::arg("out"), py::arg("device"),
      py::arg("stream"));
#else
  m.def(
      "cuda_hamming_gram",
      [](std::uintptr_t, int64_t, int64_t, std::uintptr_t, int, std::uintptr_t) { no_cuda(); },
      py::arg("codes"), py::arg("n"), py::arg("units"), py::arg("out"), py::arg("device"),
      py::arg("stream"));
#endif
}

}  // namespace airda::bindings
