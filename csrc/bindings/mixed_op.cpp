// Bindings of the fused DARTS mixed operation (mixed_op_forward, mixed_op_backward): its checks of
// every array beside its m.def, so that no call from Python can crash the process; the Python
// wrapper (airda.ops.mixed_op) checks values as well.
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>

#include <cstdint>
#include <string>

#include "airda/mixed_op.h"
#include "bindings/checks.h"
#ifdef AIRDA_WITH_CUDA
#include "cuda/mixed_op.h"
#endif

namespace py = pybind11;

namespace airda::bindings {
namespace {

// ys (k, n), alpha (k,), out/grad_out (n,), grad_ys (k, n)

// Checks every array of a mixed-op call; returns whether they are float64 (else float32).
bool check_mixed(const py::array& ys, const py::array& alpha, int64_t& k, int64_t& n) {
  require_matrix(ys, "ys");
  const bool f64 = ys.dtype().kind() == 'f' && ys.itemsize() == 8;
  if (!f64) require_dtype(ys, "ys", 'f', 4);
  k = ys.shape(0);
  n = ys.shape(1);
  if (k < 1) throw py::value_error("ys has no candidates (K = 0)");
  require_vector(alpha, "alpha", k);
  require_dtype(alpha, "alpha", 'f', ys.itemsize());
  return f64;
}

void cpu_mixed_op_forward(const py::array& ys, const py::array& alpha, py::array& out) {
  int64_t k = 0, n = 0;
  const bool f64 = check_mixed(ys, alpha, k, n);
  require_vector(out, "out", n);
  require_dtype(out, "out", 'f', ys.itemsize());
  require_writeable(out, "out");
  const void* y = ys.data();
  const void* a = alpha.data();
  void* o = out.mutable_data();
  py::gil_scoped_release release;
  if (f64) {
    airda::cpu::mixed_op_forward(static_cast<const double*>(y), static_cast<const double*>(a),
                                 k, n, static_cast<double*>(o));
  } else {
    airda::cpu::mixed_op_forward(static_cast<const float*>(y), static_cast<const float*>(a), k,
                                 n, static_cast<float*>(o));
  }
}

void cpu_mixed_op_backward(const py::array& ys, const py::array& alpha,
                           const py::array& grad_out, py::array& grad_ys,
                           py::array& grad_alpha) {
  int64_t k = 0, n = 0;
  const bool f64 = check_mixed(ys, alpha, k, n);
  const py::ssize_t size = ys.itemsize();
  require_vector(grad_out, "grad_out", n);
  require_dtype(grad_out, "grad_out", 'f', size);
  require_matrix(grad_ys, "grad_ys");
  require_shape(grad_ys, "grad_ys", k, n);
  require_dtype(grad_ys, "grad_ys", 'f', size);
  require_writeable(grad_ys, "grad_ys");
  require_vector(grad_alpha, "grad_alpha", k);
  require_dtype(grad_alpha, "grad_alpha", 'f', size);
  require_writeable(grad_alpha, "grad_alpha");
  const void* y = ys.data();
  const void* a = alpha.data();
  const void* g = grad_out.data();
  void* gy = grad_ys.mutable_data();
  void* ga = grad_alpha.mutable_data();
  py::gil_scoped_release release;
  if (f64) {
    airda::cpu::mixed_op_backward(static_cast<const double*>(y), static_cast<const double*>(a),
                                  static_cast<const double*>(g), k, n, static_cast<double*>(gy),
                                  static_cast<double*>(ga));
  } else {
    airda::cpu::mixed_op_backward(static_cast<const float*>(y), static_cast<const float*>(a),
                                  static_cast<const float*>(g), k, n, static_cast<float*>(gy),
                                  static_cast<float*>(ga));
  }
}

}  // namespace

void bind_mixed_op(py::module_& m) {
  m.def("mixed_op_forward", &cpu_mixed_op_forward, py::arg("ys"), py::arg("alpha"),
        py::arg("out"),
        "out (n,) = sum_k softmax(alpha)_k ys[k] for C-contiguous ys (K, n) and alpha (K,), all "
        "float32 or all float64.");
  m.def("mixed_op_backward", &cpu_mixed_op_backward, py::arg("ys"), py::arg("alpha"),
        py::arg("grad_out"), py::arg("grad_ys"), py::arg("grad_alpha"),
        "Gradients of mixed_op_forward given grad_out (n,), into grad_ys (K, n) and "
        "grad_alpha (K,). The sums do not depend on the thread count.");
  m.def("mixed_op_cuda_workspace", &airda::mixed_op_cuda_workspace, py::arg("k"), py::arg("n"),
        "float64 entries of the workspace cuda_mixed_op_backward needs.");
#ifdef AIRDA_WITH_CUDA
  m.def(
      "cuda_mixed_op_forward",
      [](std::uintptr_t ys, std::uintptr_t alpha, const std::string& kind, int64_t k, int64_t n,
         std::uintptr_t out, int device, std::uintptr_t stream) {
        const airda::FloatKind f = parse_kind(kind);
        if (k < 1 || n < 0) throw py::value_error("need K >= 1 candidates and n >= 0");
        // An empty tensor may have a null data pointer; only alpha (K >= 1) must exist then.
        if (alpha == 0 || (n > 0 && (ys == 0 || out == 0)))
          throw py::value_error("null device pointer");
        py::gil_scoped_release release;
        airda::cuda::mixed_op_forward(reinterpret_cast<const void*>(ys),
                                      reinterpret_cast<const void*>(alpha), f, k, n,
                                      reinterpret_cast<void*>(out), device, stream);
      },
      py::arg("ys"), py::arg("alpha"), py::arg("kind"), py::arg("k"), py::arg("n"),
      py::arg("out"), py::arg("device"), py::arg("stream"));
  m.def(
      "cuda_mixed_op_backward",
      [](std::uintptr_t ys, std::uintptr_t alpha, std::uintptr_t grad_out,
         const std::string& kind, int64_t k, int64_t n, std::uintptr_t grad_ys,
         std::uintptr_t grad_alpha, std::uintptr_t work, int device, std::uintptr_t stream) {
        const airda::FloatKind f = parse_kind(kind);
        if (k < 1 || n < 0) throw py::value_error("need K >= 1 candidates and n >= 0");
        if (alpha == 0 || grad_alpha == 0 || work == 0 ||
            (n > 0 && (ys == 0 || grad_out == 0 || grad_ys == 0)))
          throw py::value_error("null device pointer");
        py::gil_scoped_release release;
        airda::cuda::mixed_op_backward(
            reinterpret_cast<const void*>(ys), reinterpret_cast<const void*>(alpha),
            reinterpret_cast<const void*>(grad_out), f, k, n, reinterpret_cast<void*>(grad_ys),
            reinterpret_cast<void*>(grad_alpha), reinterpret_cast<double*>(work), device,
            stream);
      },
      py::arg("ys"), py::arg("alpha"), py::arg("grad_out"), py::arg("kind"), py::arg("k"),
      py::arg("n"), py::arg("grad_ys"), py::arg("grad_alpha"), py::arg("work"),
      py::arg("device"), py::arg("stream"));
#else
  m.def(
      "cuda_mixed_op_forward",
      [](std::uintptr_t, std::uintptr_t, const std::string&, int64_t, int64_t, std::uintptr_t,
         int, std::uintptr_t) { no_cuda(); },
      py::arg("ys"), py::arg("alpha"), py::arg("kind"), py::arg("k"), py::arg("n"),
      py::arg("out"), py::arg("device"), py::arg("stream"));
  m.def(
      "cuda_mixed_op_backward",
      [](std::uintptr_t, std::uintptr_t, std::uintptr_t, const std::string&, int64_t, int64_t,
         std::uintptr_t, std::uintptr_t, std::uintptr_t, int, std::uintptr_t) { no_cuda(); },
      py::arg("ys"), py::arg("alpha"), py::arg("grad_out"), py::arg("kind"), py::arg("k"),
      py::arg("n"), py::arg("grad_ys"), py::arg("grad_alpha"), py::arg("work"),
      py::arg("device"), py::arg("stream"));
#endif
}

}  // namespace airda::bindings
