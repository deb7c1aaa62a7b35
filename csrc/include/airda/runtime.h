// The OpenMP runtime of the CPU kernels: plain C++ API used by the bindings.
#pragma once

namespace airda::cpu {

// omp_get_max_threads(): the team size of a kernel's parallel regions.
int max_threads();
// The _OPENMP date the module was compiled with (e.g. 201511), 0 without OpenMP.
int openmp_version();

}  // namespace airda::cpu
