// The checks every binding of airda._C makes of the arrays it is given, as pybind11 errors
// (ValueError, TypeError), so that no call from Python can crash the process; and what a module
// built without CUDA answers to a CUDA call. Included by the csrc/bindings/*.cpp files only.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#include "airda/bits.h"
#include "airda/scan.h"

namespace airda::bindings {

namespace py = pybind11;

inline airda::FloatKind parse_kind(const std::string& kind) {
  if (kind == "float32") return airda::FloatKind::kFloat32;
  if (kind == "float64") return airda::FloatKind::kFloat64;
  if (kind == "float16") return airda::FloatKind::kFloat16;
  if (kind == "bfloat16") return airda::FloatKind::kBFloat16;
  throw py::value_error("unknown float kind '" + kind +
                        "' (expected float32, float64, float16 or bfloat16)");
}

inline void require_matrix(const py::array& a, const char* name) {
  if (a.ndim() != 2) {
    throw py::value_error(std::string(name) + " must be 2-D, got " + std::to_string(a.ndim()) +
                          "-D");
  }
  if (!(a.flags() & py::array::c_style)) {
    throw py::value_error(std::string(name) + " must be C-contiguous");
  }
}

inline void require_dtype(const py::array& a, const char* name, char kind,
                          py::ssize_t itemsize) {
  if (a.dtype().kind() != kind || a.itemsize() != itemsize) {
    throw py::type_error(std::string(name) + " has dtype " +
                         py::str(static_cast<py::object>(a.dtype())).cast<std::string>() +
                         ", expected kind '" + kind + "' of " + std::to_string(itemsize) +
                         " bytes");
  }
}

inline void require_shape(const py::array& a, const char* name, py::ssize_t rows,
                          py::ssize_t cols) {
  if (a.shape(0) != rows || a.shape(1) != cols) {
    throw py::value_error(std::string(name) + " must have shape (" + std::to_string(rows) +
                          ", " + std::to_string(cols) + "), got (" +
                          std::to_string(a.shape(0)) + ", " + std::to_string(a.shape(1)) + ")");
  }
}

inline void require_writeable(const py::array& a, const char* name) {
  if (!a.writeable()) throw py::value_error(std::string(name) + " must be writeable");
}

inline void require_vector(const py::array& a, const char* name, py::ssize_t len) {
  if (a.ndim() != 1 || a.shape(0) != len) {
    throw py::value_error(std::string(name) + " must have shape (" + std::to_string(len) + ",)");
  }
  if (!(a.flags() & py::array::c_style)) {
    throw py::value_error(std::string(name) + " must be C-contiguous");
  }
}

inline const double* f64_data(const py::array& a, const char* name, py::ssize_t ndim) {
  if (a.ndim() != ndim) {
    throw py::value_error(std::string(name) + " must be " + std::to_string(ndim) + "-D, got " +
                          std::to_string(a.ndim()) + "-D");
  }
  if (!(a.flags() & py::array::c_style)) {
    throw py::value_error(std::string(name) + " must be C-contiguous");
  }
  require_dtype(a, name, 'f', 8);
  return static_cast<const double*>(a.data());
}

inline void require_len(const py::array& a, const char* name, py::ssize_t axis,
                        py::ssize_t size) {
  if (a.shape(axis) != size) {
    throw py::value_error(std::string(name) + " has " + std::to_string(a.shape(axis)) +
                          " entries along axis " + std::to_string(axis) + ", expected " +
                          std::to_string(size));
  }
}

// The objectives of the Pareto ops (non_dominated_rank, hypervolume).
// values: C-contiguous (n, m) float64 with m >= 1 and no NaN; returns (n, m).
inline std::pair<int64_t, int64_t> require_objectives(const py::array& values) {
  require_matrix(values, "values");
  require_dtype(values, "values", 'f', 8);
  const int64_t n = values.shape(0), m = values.shape(1);
  if (m < 1) throw py::value_error("values has no objectives (m = 0); it needs m >= 1 columns");
  const int64_t at = airda::cpu::find_nan(static_cast<const double*>(values.data()), n * m);
  if (at >= 0) {
    throw py::value_error("values contains NaN (first at row " + std::to_string(at / m) +
                          ", column " + std::to_string(at % m) + ")");
  }
  return {n, m};
}

#ifdef AIRDA_WITH_CUDA
inline constexpr bool kCudaBuilt = true;
#else
inline constexpr bool kCudaBuilt = false;
// What every CUDA entry point of a module built without CUDA raises.
[[noreturn]] inline void no_cuda() {
  throw std::runtime_error(
      "airda._C was built without CUDA (no CUDA compiler at build time, or AIRDA_CUDA=OFF)");
}
#endif

}  // namespace airda::bindings
