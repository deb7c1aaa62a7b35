// Scans of float64 arrays that the bindings make before a kernel trusts its input (the Pareto
// ops refuse NaN). Plain C++, inline.
#pragma once

#include <cmath>
#include <cstdint>

namespace airda::cpu {

// Below this many values one thread scans faster than a team.
inline constexpr int64_t kParallelScanValues = int64_t{1} << 18;

// Index of the first NaN among `count` values, or -1 when there is none.
inline int64_t find_nan(const double* values, int64_t count) {
  int64_t first = count;
#pragma omp parallel for reduction(min : first) schedule(static) if (count >= kParallelScanValues)
  for (int64_t i = 0; i < count; ++i) {
    if (std::isnan(values[i]) && i < first) first = i;
  }
  return first == count ? -1 : first;
}

}  // namespace airda::cpu
