// CPU entry points of the bootstrap_means op: bootstrap means over a counter-based random stream.
// Plain C++ API used by the bindings. The stream is defined in python/airda/ops/bootstrap_means.py
// (and repeated in bootstrap_means.cpp); the two must give the same indices bit for bit.
#pragma once

#include <cstdint>

namespace airda::cpu {

// Largest population a draw may come from: the NumPy reference multiplies 32-bit halves.
constexpr int64_t kMaxResamplePopulation = (int64_t{1} << 32) - 1;

// Index of the first value among `count` that is not finite (NaN or +-inf), or -1.
int64_t find_nonfinite(const double* values, int64_t count);

// Strata in the form the kernel reads: position j draws from the `size[j]` entries
// `order[start[j]] ... order[start[j] + size[j] - 1]`, the positions of j's stratum in
// ascending order. All three arrays have n entries.
struct Strata {
  const int64_t* order = nullptr;
  const int64_t* start = nullptr;
  const int64_t* size = nullptr;
};

// Throws std::invalid_argument unless every position draws from a non-empty range of `order`
// that lies inside [0, n) and `order` holds positions in [0, n).
void check_strata(const Strata& strata, int64_t n);

// out[r * k + i] = mean over j < n of data[i * n + idx(r, j)], for r < n_resamples, where
// idx(r, j) is draw j of resample r of the stream keyed by `seed` (see bootstrap_means.cpp).
// data is k rows of n finite values, row-major; strata is null (plain bootstrap) or checked.
// `threads` <= 0 takes the OpenMP default. The result does not depend on the thread count.
void bootstrap_means(const double* data, int64_t k, int64_t n, int64_t n_resamples,
                     uint64_t seed, const Strata* strata, int threads, double* out);

// Whether draws are hashed four at a time with AVX2 (where the CPU has it; the same indices
// either way). use = 0 or 1 switches it (1 only takes effect with AVX2), -1 only asks.
bool resample_use_avx2(int use);

}  // namespace airda::cpu
