// CPU entry points of the Pareto op: non-dominated sorting and 2-D/3-D hypervolume. Plain C++
// API used by the bindings. Every objective is minimised; inputs are row-major n x m float64.
#pragma once

#include <cstdint>

namespace airda::cpu {

// Index of the first NaN among `count` values, or -1 when there is none.
int64_t find_nan(const double* values, int64_t count);

// ranks[i] = the non-dominated front of row i: 0 when no row dominates it, otherwise 1 + the
// largest rank of the rows that dominate it (a dominates b: a <= b everywhere, a < b somewhere).
// Equal rows get equal ranks. `values` holds no NaN; m >= 1. Throws std::invalid_argument
// when n does not fit the 32-bit indices of the sort.
void non_dominated_rank(const double* values, int64_t n, int64_t m, int64_t* ranks);

// Volume of the region dominated by the rows and bounded above by `reference` (length m, m is 2
// or 3); rows that are not below the reference in every objective add nothing. No NaN anywhere.
// Infinite when some row is -inf in an objective (or the reference +inf) and adds volume.
double hypervolume(const double* values, int64_t n, int64_t m, const double* reference);

}  // namespace airda::cpu
