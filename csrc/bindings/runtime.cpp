// Bindings of the runtime: the OpenMP thread count of the CPU kernels, how the module was built,
// and the CUDA devices (airda.ops._registry asks them which backends can run here).
#include <pybind11/pybind11.h>

#include <omp.h>

#include <string>

#include "airda/runtime.h"
#include "bindings/checks.h"
#ifdef AIRDA_WITH_CUDA
#include "cuda/runtime.h"
#endif

namespace py = pybind11;

namespace airda::bindings {
namespace {

int cuda_device_count() {
#ifdef AIRDA_WITH_CUDA
  return airda::cuda::device_count();
#else
  no_cuda();
#endif
}

py::dict build_info() {
  py::dict info;
  info["compiler"] = std::string(
#if defined(__clang__)
      "clang " __clang_version__
#elif defined(__GNUC__)
      "gcc " __VERSION__
#else
      "unknown"
#endif
  );
  info["openmp"] = airda::cpu::openmp_version();
  info["cuda_built"] = kCudaBuilt;
#ifdef AIRDA_WITH_CUDA
  info["cuda_architectures"] = std::string(AIRDA_CUDA_ARCHITECTURES);
  info["cuda_runtime_version"] = airda::cuda::runtime_version();
#else
  info["cuda_architectures"] = std::string();
  info["cuda_runtime_version"] = 0;
#endif
  return info;
}

}  // namespace

void bind_runtime(py::module_& m) {
  m.def("omp_max_threads", &airda::cpu::max_threads);
  m.def(
      "set_num_threads", [](int n) {
        if (n < 1) throw py::value_error("number of threads must be >= 1");
        omp_set_num_threads(n);
      },
      py::arg("n"), "Set the OpenMP thread count of the CPU kernels.");
  m.def("build_info", &build_info);
  m.def("cuda_built", [] { return kCudaBuilt; });
  m.def("cuda_device_count", &cuda_device_count,
        "Number of CUDA devices; raises RuntimeError with the CUDA error when none is usable.");
#ifdef AIRDA_WITH_CUDA
  m.def("cuda_driver_version", &airda::cuda::driver_version);
  m.def("cuda_device_name", &airda::cuda::device_name, py::arg("device"));
#else
  m.def("cuda_driver_version", [] { return 0; });
  m.def("cuda_device_name", [](int) -> std::string { no_cuda(); }, py::arg("device"));
#endif
}

}  // namespace airda::bindings
