// CPU kernel of the resampling op: the means of k paired rows over bootstrap resamples.
//
// The random stream is counter-based, so that any resample can be generated on its own, by any
// thread, and the NumPy reference (python/airda/ops/resample.py) can produce the same indices:
//   mix(x)      = the SplitMix64 finaliser (xor-shift 30, * 0xBF58476D1CE4E5B9, xor-shift 27,
//                 * 0x94D049BB133111EB, xor-shift 31), all arithmetic mod 2^64
//   seed_mix    = mix(seed)
//   key(r)      = mix(seed_mix + r)                       resample r
//   z(r, j)     = mix(key(r) + (j + 1) * 0x9E3779B97F4A7C15)   draw j of resample r
//   draw        = floor(z * m / 2^64), m the size of the population drawn from (n, or the
//                 stratum of position j), i.e. the high word of the 128-bit product.
//
// Sums are taken in a fixed order that the reference repeats exactly: value j goes to lane
// j mod 4, each lane adds its values in increasing j, and the total is
// (lane0 + lane1) + (lane2 + lane3); the mean is total / n. Four lanes also break the chain of
// dependent additions, so the loop is bound by the hashing, not by the adder's latency.
//
// Speed: each draw is two 64-bit multiplies of the hash, one 128-bit multiply and one gather.
// The body is unrolled eight draws deep so that their hashes and cache misses overlap, and the
// k rows are gathered from a row-interleaved (n, k) copy, so that one draw touches one cache
// line. OpenMP splits the resamples, each written by one thread: the result does not depend on
// the thread count or the schedule.
#include "airda/resample.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace airda::cpu {
namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;
constexpr int kLanes = 4;
constexpr int kUnroll = 8;
// Below this many draws in all, one thread finishes before a team would start.
constexpr int64_t kParallelDraws = int64_t{1} << 16;
// Draws per scheduling chunk: large enough to amortise the scheduler, small enough to balance.
constexpr int64_t kChunkDraws = int64_t{1} << 20;

inline uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// floor(z * m / 2^64): a draw in [0, m), biased by at most m / 2^64.
inline uint64_t scale(uint64_t z, uint64_t m) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(z) * m) >> 64);
}

// Where draw j lands in the gathered copy: anywhere among n values, or inside j's stratum,
// whose positions the copy holds contiguously.
struct Plain {
  uint64_t n;
  uint64_t at(int64_t, uint64_t z) const { return scale(z, n); }
};

struct Span {
  uint32_t start;
  uint32_t size;
};

struct Stratified {
  const Span* spans;
  uint64_t at(int64_t j, uint64_t z) const {
    const Span s = spans[j];
    return s.start + scale(z, s.size);
  }
};

// The means of the rows of `x`, an (n, k) row-interleaved copy, over resample `key`. K > 0 is
// the row count known at compile time; K == 0 reads it from `k` (with `acc` of 4k doubles).
template <int K, typename Where>
void resample_means(const double* x, int64_t k_dynamic, int64_t n, uint64_t key,
                    const Where& where, double* acc, double* out) {
  const int64_t k = K > 0 ? K : k_dynamic;
  double fixed[kLanes * (K > 0 ? K : 1)];
  double* a = K > 0 ? fixed : acc;
  for (int64_t t = 0; t < kLanes * k; ++t) a[t] = 0.0;

  uint64_t counter = key;  // key + j * golden; the draw adds one more golden first
  int64_t j = 0;
  for (; j + kUnroll <= n; j += kUnroll) {
    const double* p[kUnroll];
    for (int u = 0; u < kUnroll; ++u) {
      counter += kGolden;
      p[u] = x + where.at(j + u, mix(counter)) * k;
    }
    // lane u % 4: lane 0 takes j, then j + 4, in that order
    for (int u = 0; u < kUnroll; ++u) {
      double* lane = a + (u % kLanes) * k;
      for (int64_t i = 0; i < k; ++i) lane[i] += p[u][i];
    }
  }
  for (; j < n; ++j) {
    counter += kGolden;
    const double* p = x + where.at(j, mix(counter)) * k;
    double* lane = a + (j % kLanes) * k;
    for (int64_t i = 0; i < k; ++i) lane[i] += p[i];
  }
  const double count = static_cast<double>(n);
  for (int64_t i = 0; i < k; ++i) {
    out[i] = ((a[i] + a[k + i]) + (a[2 * k + i] + a[3 * k + i])) / count;
  }
}

template <int K, typename Where>
void run_resamples(const double* x, int64_t k, int64_t n, int64_t n_resamples, uint64_t seed,
                   const Where& where, int threads, double* out) {
  const uint64_t seed_mix = mix(seed);
  const int64_t chunk = std::max<int64_t>(1, kChunkDraws / n);
#pragma omp parallel num_threads(threads)
  {
    std::vector<double> acc(K > 0 ? 0 : static_cast<size_t>(kLanes * k));
#pragma omp for schedule(dynamic, chunk)
    for (int64_t r = 0; r < n_resamples; ++r) {
      const uint64_t key = mix(seed_mix + static_cast<uint64_t>(r));
      resample_means<K>(x, k, n, key, where, acc.data(), out + r * k);
    }
  }
}

template <typename Where>
void dispatch_rows(const double* x, int64_t k, int64_t n, int64_t n_resamples, uint64_t seed,
                   const Where& where, int threads, double* out) {
  switch (k) {
    case 1:
      return run_resamples<1>(x, k, n, n_resamples, seed, where, threads, out);
    case 2:
      return run_resamples<2>(x, k, n, n_resamples, seed, where, threads, out);
    case 3:
      return run_resamples<3>(x, k, n, n_resamples, seed, where, threads, out);
    case 4:
      return run_resamples<4>(x, k, n, n_resamples, seed, where, threads, out);
    default:
      return run_resamples<0>(x, k, n, n_resamples, seed, where, threads, out);
  }
}

}  // namespace

int64_t find_nonfinite(const double* values, int64_t count) {
  for (int64_t t = 0; t < count; ++t) {
    if (!std::isfinite(values[t])) return t;
  }
  return -1;
}

void check_strata(const Strata& strata, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const int64_t start = strata.start[j], size = strata.size[j];
    if (size < 1 || start < 0 || start > n - size) {
      throw std::invalid_argument("strata: position " + std::to_string(j) +
                                  " draws from an empty or out-of-range span");
    }
    if (strata.order[j] < 0 || strata.order[j] >= n) {
      throw std::invalid_argument("strata: order[" + std::to_string(j) + "] is not in [0, n)");
    }
  }
}

void bootstrap_means(const double* data, int64_t k, int64_t n, int64_t n_resamples,
                     uint64_t seed, const Strata* strata, int threads, double* out) {
  if (k < 1 || n < 1 || n > kMaxResamplePopulation || n_resamples < 0) {
    throw std::invalid_argument("bootstrap_means: need k >= 1, 1 <= n < 2^32, n_resamples >= 0");
  }
  if (n_resamples == 0) return;
  if (threads <= 0) threads = omp_get_max_threads();
  if (n * n_resamples < kParallelDraws) threads = 1;

  // The gathered copy: (n, k) row-interleaved, in stratum order when stratified. A single row
  // drawn from everywhere is read in place.
  std::vector<double> copy;
  const double* x = data;
  if (strata != nullptr || k > 1) {
    copy.resize(static_cast<size_t>(n * k));
    for (int64_t p = 0; p < n; ++p) {
      const int64_t source = strata != nullptr ? strata->order[p] : p;
      for (int64_t i = 0; i < k; ++i) copy[p * k + i] = data[i * n + source];
    }
    x = copy.data();
  }
  if (strata == nullptr) {
    dispatch_rows(x, k, n, n_resamples, seed, Plain{static_cast<uint64_t>(n)}, threads, out);
    return;
  }
  std::vector<Span> spans(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    spans[j] = {static_cast<uint32_t>(strata->start[j]), static_cast<uint32_t>(strata->size[j])};
  }
  dispatch_rows(x, k, n, n_resamples, seed, Stratified{spans.data()}, threads, out);
}

}  // namespace airda::cpu
