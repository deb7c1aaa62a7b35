// The OpenMP runtime the CPU kernels run on, as the bindings report it.
#include "airda/runtime.h"

#include <omp.h>

namespace airda::cpu {

int max_threads() { return omp_get_max_threads(); }

int openmp_version() {
#ifdef _OPENMP
  return _OPENMP;
#else
  return 0;
#endif
}

}  // namespace airda::cpu
