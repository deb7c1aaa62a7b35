// CPU kernel of the bootstrap_means op: the means of k paired rows over bootstrap resamples.
//
// The random stream is counter-based, so that any resample can be generated on its own, by any
// thread, and the NumPy reference (python/airda/ops/bootstrap_means.py) can produce the same
// indices:
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
// Speed: a draw is two 64-bit multiplies of the hash, one 128-bit multiply and one gather. The
// scalar hash alone took longer than the gather from a few MB of L2/L3 (about 1.5 ns against 0.5
// ns per draw on a 2.45 GHz Zen 3). So draws are made in blocks of 256, hashed four at a time
// with AVX2 where the CPU has it (about 0.8 ns; chosen at run time, and the scalar code gives
// the same indices), then gathered, the independent loads of a block overlapping. The k rows are
// gathered from a row-interleaved (n, k) copy, so that one draw touches one cache line. OpenMP
// splits the resamples, each written by one thread: the result does not depend on the thread
// count or the schedule. Two rows of a draw are added by one SSE2 instruction.
#include "airda/bootstrap_means.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define AIRDA_RESAMPLE_AVX2 1
#endif

namespace airda::cpu {
namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;
constexpr uint64_t kMix1 = 0xBF58476D1CE4E5B9ULL;
constexpr uint64_t kMix2 = 0x94D049BB133111EBULL;
constexpr int kLanes = 4;
// Draws made at once before they are gathered: a multiple of 8 (two AVX2 vectors) whose
// indices stay in L1.
constexpr int kBlock = 256;
// Below this many draws in all, one thread finishes before a team would start.
constexpr int64_t kParallelDraws = int64_t{1} << 16;
// Draws per scheduling chunk: large enough to amortise the scheduler, small enough to balance.
constexpr int64_t kChunkDraws = int64_t{1} << 20;

inline uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * kMix1;
  z = (z ^ (z >> 27)) * kMix2;
  return z ^ (z >> 31);
}

// floor(z * m / 2^64): a draw in [0, m), biased by at most m / 2^64.
inline uint64_t scale(uint64_t z, uint64_t m) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(z) * m) >> 64);
}

#if defined(__SSE2__)
// Two doubles added lane by lane in one instruction.
struct Pair {
  __m128d v = _mm_setzero_pd();
  static Pair load(const double* p) { return {_mm_loadu_pd(p)}; }
  Pair operator+(Pair other) const { return {_mm_add_pd(v, other.v)}; }
  double get(int i) const {
    alignas(16) double both[2];
    _mm_store_pd(both, v);
    return both[i];
  }
};
#else
struct Pair {
  double first = 0.0, second = 0.0;
  static Pair load(const double* p) { return {p[0], p[1]}; }
  Pair operator+(Pair other) const { return {first + other.first, second + other.second}; }
  double get(int i) const { return i == 0 ? first : second; }
};
#endif

// What a draw picks from: all n values, or (start != nullptr) the size[j] values from start[j]
// of the stratum-ordered copy, for position j.
struct Population {
  uint64_t n;
  const uint32_t* start;
  const uint32_t* size;
};

// u[t] = where draw j0 + t lands in the gathered copy, t < count; `base` = key + j0 * golden.
// u has room for count rounded up to 8.
using DrawBlock = void (*)(uint64_t base, int64_t j0, int count, const Population& pop,
                           uint64_t* u);

void draw_block_scalar(uint64_t base, int64_t j0, int count, const Population& pop,
                       uint64_t* u) {
  uint64_t counter = base;
  if (pop.start == nullptr) {
    for (int t = 0; t < count; ++t) {
      counter += kGolden;
      u[t] = scale(mix(counter), pop.n);
    }
    return;
  }
  for (int t = 0; t < count; ++t) {
    counter += kGolden;
    u[t] = pop.start[j0 + t] + scale(mix(counter), pop.size[j0 + t]);
  }
}

#ifdef AIRDA_RESAMPLE_AVX2
// AVX2 has no 64-bit multiply: x * c mod 2^64 from three 32 x 32 -> 64-bit products. Four
// lanes hash in about half the time of the scalar code's three 64-bit multiplies per draw.
__attribute__((target("avx2"))) inline __m256i mul64(__m256i x, __m256i c_lo, __m256i c_hi) {
  const __m256i low = _mm256_mul_epu32(x, c_lo);
  const __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(x, 32), c_lo),
                                         _mm256_mul_epu32(x, c_hi));
  return _mm256_add_epi64(low, _mm256_slli_epi64(cross, 32));
}

__attribute__((target("avx2"))) inline __m256i mix4(__m256i z) {
  const __m256i a_lo = _mm256_set1_epi64x(static_cast<int64_t>(kMix1 & 0xFFFFFFFFULL));
  const __m256i a_hi = _mm256_set1_epi64x(static_cast<int64_t>(kMix1 >> 32));
  const __m256i b_lo = _mm256_set1_epi64x(static_cast<int64_t>(kMix2 & 0xFFFFFFFFULL));
  const __m256i b_hi = _mm256_set1_epi64x(static_cast<int64_t>(kMix2 >> 32));
  z = mul64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 30)), a_lo, a_hi);
  z = mul64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 27)), b_lo, b_hi);
  return _mm256_xor_si256(z, _mm256_srli_epi64(z, 31));
}

// floor(z * m / 2^64) for m < 2^32 from 32-bit halves, as the NumPy reference computes it.
__attribute__((target("avx2"))) inline __m256i scale4(__m256i z, __m256i m) {
  const __m256i high = _mm256_mul_epu32(_mm256_srli_epi64(z, 32), m);
  const __m256i low = _mm256_srli_epi64(_mm256_mul_epu32(z, m), 32);
  return _mm256_srli_epi64(_mm256_add_epi64(high, low), 32);
}

// Four uint32 widened to the 64-bit lanes.
__attribute__((target("avx2"))) inline __m256i load4(const uint32_t* p) {
  return _mm256_cvtepu32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

__attribute__((target("avx2"))) void draw_block_avx2(uint64_t base, int64_t j0, int count,
                                                     const Population& pop, uint64_t* u) {
  const auto lane = [base](uint64_t t) { return static_cast<int64_t>(base + t * kGolden); };
  __m256i c0 = _mm256_setr_epi64x(lane(1), lane(2), lane(3), lane(4));
  __m256i c1 = _mm256_setr_epi64x(lane(5), lane(6), lane(7), lane(8));
  const __m256i step = _mm256_set1_epi64x(static_cast<int64_t>(8 * kGolden));
  if (pop.start == nullptr) {
    const __m256i m = _mm256_set1_epi64x(static_cast<int64_t>(pop.n));
    for (int t = 0; t < count; t += 8) {  // past count: harmless extra draws, u has room
      _mm256_store_si256(reinterpret_cast<__m256i*>(u + t), scale4(mix4(c0), m));
      _mm256_store_si256(reinterpret_cast<__m256i*>(u + t + 4), scale4(mix4(c1), m));
      c0 = _mm256_add_epi64(c0, step);
      c1 = _mm256_add_epi64(c1, step);
    }
    return;
  }
  int t = 0;
  for (; t + 8 <= count; t += 8) {
    const uint32_t* start = pop.start + j0 + t;
    const uint32_t* size = pop.size + j0 + t;
    _mm256_store_si256(reinterpret_cast<__m256i*>(u + t),
                       _mm256_add_epi64(load4(start), scale4(mix4(c0), load4(size))));
    _mm256_store_si256(reinterpret_cast<__m256i*>(u + t + 4),
                       _mm256_add_epi64(load4(start + 4), scale4(mix4(c1), load4(size + 4))));
    c0 = _mm256_add_epi64(c0, step);
    c1 = _mm256_add_epi64(c1, step);
  }
  if (t < count) {  // the strata arrays end at n: the last few draws one at a time
    draw_block_scalar(base + static_cast<uint64_t>(t) * kGolden, j0 + t, count - t, pop, u + t);
  }
}

bool cpu_has_avx2() {
  __builtin_cpu_init();  // it may run before libgcc's own constructor, from a static initialiser
  return __builtin_cpu_supports("avx2");
}
#else
bool cpu_has_avx2() { return false; }
#endif

std::atomic<bool> g_use_avx2{cpu_has_avx2()};

DrawBlock draw_kernel() {
#ifdef AIRDA_RESAMPLE_AVX2
  if (g_use_avx2.load(std::memory_order_relaxed)) return draw_block_avx2;
#endif
  return draw_block_scalar;
}

// Per-lane sums of K rows. An even K adds pairs of rows with one SSE2 instruction on x86-64
// (half the loads and adds of the scalar code; each element is still rounded alone, so the sums
// are the same). K == 0: k rows known at run time, in `dynamic` (4k doubles).
template <int K>
struct LaneSums {
  static constexpr bool kPaired = K > 0 && K % 2 == 0;
  static constexpr int kSlots = K > 0 ? (kPaired ? K / 2 : K) : 1;
  using Slot = std::conditional_t<kPaired, Pair, double>;
  Slot fixed[kLanes][kSlots];
  double* dynamic;
  int64_t k;

  LaneSums(int64_t k_dynamic, double* storage) : dynamic(storage), k(K > 0 ? K : k_dynamic) {
    if constexpr (K > 0) {
      for (auto& lane : fixed) {
        for (auto& slot : lane) slot = Slot{};
      }
    } else {
      for (int64_t t = 0; t < kLanes * k; ++t) dynamic[t] = 0.0;
    }
  }

  void add(int lane, const double* p) {
    if constexpr (K == 0) {
      for (int64_t i = 0; i < k; ++i) dynamic[lane * k + i] += p[i];
    } else if constexpr (kPaired) {
      for (int s = 0; s < kSlots; ++s) fixed[lane][s] = fixed[lane][s] + Pair::load(p + 2 * s);
    } else {
      for (int i = 0; i < K; ++i) fixed[lane][i] += p[i];
    }
  }

  double lane_sum(int lane, int64_t i) const {
    if constexpr (K == 0) {
      return dynamic[lane * k + i];
    } else if constexpr (kPaired) {
      return fixed[lane][i / 2].get(static_cast<int>(i % 2));
    } else {
      return fixed[lane][i];
    }
  }
};

// The means of the rows of `x`, an (n, k) row-interleaved copy, over the resample with `key`.
template <int K>
void resample_means(const double* x, int64_t k_dynamic, int64_t n, uint64_t key,
                    const Population& pop, DrawBlock draw, double* storage, double* out) {
  LaneSums<K> sums(k_dynamic, storage);
  const int64_t k = sums.k;
  alignas(32) uint64_t u[kBlock + 8];
  for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
    const int count = static_cast<int>(std::min<int64_t>(kBlock, n - j0));
    draw(key + static_cast<uint64_t>(j0) * kGolden, j0, count, pop, u);
    // j0 is a multiple of 4, so draw j0 + t goes to lane t % 4; lane 0 adds t, t + 4, ...
    int t = 0;
    for (; t + kLanes <= count; t += kLanes) {
      for (int l = 0; l < kLanes; ++l) sums.add(l, x + u[t + l] * k);
    }
    for (; t < count; ++t) sums.add(t % kLanes, x + u[t] * k);
  }
  const double count = static_cast<double>(n);
  for (int64_t i = 0; i < k; ++i) {
    out[i] = ((sums.lane_sum(0, i) + sums.lane_sum(1, i)) +
              (sums.lane_sum(2, i) + sums.lane_sum(3, i))) /
             count;
  }
}

template <int K>
void run_resamples(const double* x, int64_t k, int64_t n, int64_t n_resamples, uint64_t seed,
                   const Population& pop, int threads, double* out) {
  const uint64_t seed_mix = mix(seed);
  const int64_t chunk = std::max<int64_t>(1, kChunkDraws / n);
  const DrawBlock draw = draw_kernel();
#pragma omp parallel num_threads(threads)
  {
    std::vector<double> acc(K > 0 ? 0 : static_cast<size_t>(kLanes * k));
#pragma omp for schedule(dynamic, chunk)
    for (int64_t r = 0; r < n_resamples; ++r) {
      const uint64_t key = mix(seed_mix + static_cast<uint64_t>(r));
      resample_means<K>(x, k, n, key, pop, draw, acc.data(), out + r * k);
    }
  }
}

}  // namespace

bool resample_use_avx2(int use) {
  if (use >= 0) g_use_avx2.store(use > 0 && cpu_has_avx2());
  return g_use_avx2.load();
}

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
  if (n_resamples < kParallelDraws / n) threads = 1;  // too little work for a team

  // The gathered copy: (n, k) row-interleaved, so that a draw reads one cache line, and in
  // stratum order when stratified. A single row drawn from everywhere is read in place.
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
  Population pop{static_cast<uint64_t>(n), nullptr, nullptr};
  std::vector<uint32_t> spans;
  if (strata != nullptr) {
    spans.resize(static_cast<size_t>(2 * n));
    for (int64_t j = 0; j < n; ++j) {
      spans[j] = static_cast<uint32_t>(strata->start[j]);
      spans[n + j] = static_cast<uint32_t>(strata->size[j]);
    }
    pop.start = spans.data();
    pop.size = spans.data() + n;
  }
  switch (k) {
    case 1:
      return run_resamples<1>(x, k, n, n_resamples, seed, pop, threads, out);
    case 2:
      return run_resamples<2>(x, k, n, n_resamples, seed, pop, threads, out);
    case 3:
      return run_resamples<3>(x, k, n, n_resamples, seed, pop, threads, out);
    case 4:
      return run_resamples<4>(x, k, n, n_resamples, seed, pop, threads, out);
    default:
      return run_resamples<0>(x, k, n, n_resamples, seed, pop, threads, out);
  }
}

}  // namespace airda::cpu
