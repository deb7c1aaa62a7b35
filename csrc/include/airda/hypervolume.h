// CPU entry point of the hypervolume op (2-D and 3-D, every objective minimised): plain C++ API
// used by the bindings. Inputs are row-major n x m float64.
#pragma once

#include <cstdint>

namespace airda::cpu {

// Volume of the region dominated by the rows and bounded above by `reference` (length m, m is 2
// or 3); rows that are not below the reference in every objective add nothing. No NaN anywhere.
// Infinite when some row is -inf in an objective (or the reference +inf) and adds volume.
double hypervolume(const double* values, int64_t n, int64_t m, const double* reference);

}  // namespace airda::cpu
