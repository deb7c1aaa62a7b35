// CPU entry point of the non_dominated_rank op (non-dominated sorting, every objective
// minimised): plain C++ API used by the bindings. Inputs are row-major n x m float64.
#pragma once

#include <cstdint>

namespace airda::cpu {

// ranks[i] = the non-dominated front of row i: 0 when no row dominates it, otherwise 1 + the
// largest rank of the rows that dominate it (a dominates b: a <= b everywhere, a < b somewhere).
// Equal rows get equal ranks. `values` holds no NaN; m >= 1. Throws std::invalid_argument
// when n does not fit the 32-bit indices of the sort.
void non_dominated_rank(const double* values, int64_t n, int64_t m, int64_t* ranks);

}  // namespace airda::cpu
