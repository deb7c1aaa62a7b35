// The one pybind11 module of airda, `airda._C`. Each op binds itself in csrc/bindings/<op>.cpp
// (its checks beside its m.def), as do TPE's proposal state (tpe.cpp), the code-variant profiler
// (profiler.cpp) and the runtime (runtime.cpp). Host arrays arrive through the buffer protocol
// and are checked there as well as in the Python wrappers, so that no call from Python can crash
// the process; device data arrives as raw pointers from the wrappers in airda.ops.
#include <pybind11/pybind11.h>

namespace airda::bindings {

void bind_pack_sign_bits(pybind11::module_& m);
void bind_hamming_gram(pybind11::module_& m);
void bind_mixed_op(pybind11::module_& m);
void bind_grouped_depthwise_conv(pybind11::module_& m);
void bind_non_dominated_rank(pybind11::module_& m);
void bind_hypervolume(pybind11::module_& m);
void bind_bootstrap_means(pybind11::module_& m);
void bind_parzen(pybind11::module_& m);
void bind_knn_distances(pybind11::module_& m);
void bind_pair_kernel_means(pybind11::module_& m);
void bind_tpe(pybind11::module_& m);
void bind_profiler(pybind11::module_& m);
void bind_runtime(pybind11::module_& m);

}  // namespace airda::bindings

PYBIND11_MODULE(_C, m) {
  m.doc() = "airda compiled kernels (C++/OpenMP, optional CUDA). Use airda.ops, not this module.";
  namespace b = airda::bindings;
  b::bind_pack_sign_bits(m);
  b::bind_hamming_gram(m);
  b::bind_mixed_op(m);
  b::bind_grouped_depthwise_conv(m);
  b::bind_non_dominated_rank(m);
  b::bind_hypervolume(m);
  b::bind_bootstrap_means(m);
  b::bind_parzen(m);
  b::bind_knn_distances(m);
  b::bind_pair_kernel_means(m);
  b::bind_tpe(m);
  b::bind_profiler(m);
  b::bind_runtime(m);
}
