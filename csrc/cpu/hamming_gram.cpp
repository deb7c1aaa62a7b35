// CPU kernel of the hamming_gram op: the NASWOT Hamming Gram matrix of packed sign codes, by XOR
// + popcount over their words (register tiles, cache blocks, OpenMP over strips of rows).
#include "airda/hamming_gram.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "airda/bits.h"

namespace airda::cpu {
namespace {

// Below this much work (n * n * words) the OpenMP team costs more than it saves.
constexpr int64_t kParallelGramWork = int64_t{1} << 14;

// Register tile of R x R row pairs; each step loads 2R words and does R*R XOR+popcounts.
constexpr int R = 4;
// Words per cache block: the R rows of the A strip stay in L1 while every B strip streams by.
constexpr int64_t KC = 512;

// Body of the micro-kernel; always inlined into callers compiled with or without hardware
// popcount, so one source serves both instruction sets.
template <int RI, int RJ>
__attribute__((always_inline)) inline void micro_tile(const uint64_t* const* a,
                                                      const uint64_t* const* b, int64_t k0,
                                                      int64_t k1, uint64_t (*acc)[R]) {
  uint64_t s[RI][RJ] = {};
  for (int64_t k = k0; k < k1; ++k) {
    uint64_t av[RI], bv[RJ];
    for (int r = 0; r < RI; ++r) av[r] = a[r][k];
    for (int c = 0; c < RJ; ++c) bv[c] = b[c][k];
    for (int r = 0; r < RI; ++r)
      for (int c = 0; c < RJ; ++c) s[r][c] += __builtin_popcountll(av[r] ^ bv[c]);
  }
  for (int r = 0; r < RI; ++r)
    for (int c = 0; c < RJ; ++c) acc[r][c] += s[r][c];
}

__attribute__((always_inline)) inline void tile_any(const uint64_t* const* a,
                                                    const uint64_t* const* b, int ri, int rj,
                                                    int64_t k0, int64_t k1, uint64_t (*acc)[R]) {
  if (ri == R && rj == R) {
    micro_tile<R, R>(a, b, k0, k1, acc);
    return;
  }
  // Edge tiles (n not a multiple of R): plain loops, a small share of the work.
  for (int r = 0; r < ri; ++r)
    for (int c = 0; c < rj; ++c) {
      uint64_t s = 0;
      for (int64_t k = k0; k < k1; ++k) s += __builtin_popcountll(a[r][k] ^ b[c][k]);
      acc[r][c] += s;
    }
}

// One strip of R rows against every row at or after it: all of the Gram work for tile row `ti`.
// Free of OpenMP, so that the always-inlined kernels take the instruction set of each caller
// (GCC outlines parallel regions before inlining, which would drop the target attribute).
__attribute__((always_inline)) inline void strip_body(const uint64_t* codes, int64_t n,
                                                      int64_t units, int64_t ti,
                                                      uint64_t* acc_rows, int64_t* out) {
  const int64_t words = words_for(units);
  const int64_t tiles = (n + R - 1) / R;
  const uint64_t mask = tail_mask(units);
  // The last word is handled apart, masked, so that padding bits never count.
  const int64_t body_words = words - 1;
  const int64_t i0 = ti * R;
  const int ri = static_cast<int>(std::min<int64_t>(R, n - i0));
  const uint64_t* a[R];
  for (int r = 0; r < R; ++r) a[r] = codes + std::min<int64_t>(i0 + r, n - 1) * words;
  std::fill(acc_rows, acc_rows + R * n, 0);
  for (int64_t k0 = 0; k0 < body_words; k0 += KC) {
    const int64_t k1 = std::min(body_words, k0 + KC);
    for (int64_t tj = ti; tj < tiles; ++tj) {
      const int64_t j0 = tj * R;
      const int rj = static_cast<int>(std::min<int64_t>(R, n - j0));
      const uint64_t* b[R];
      for (int c = 0; c < R; ++c) b[c] = codes + std::min<int64_t>(j0 + c, n - 1) * words;
      uint64_t acc[R][R] = {};
      tile_any(a, b, ri, rj, k0, k1, acc);
      for (int r = 0; r < ri; ++r)
        for (int c = 0; c < rj; ++c) acc_rows[r * n + j0 + c] += acc[r][c];
    }
  }
  for (int r = 0; r < ri; ++r) {
    const int64_t i = i0 + r;
    const uint64_t ai = codes[i * words + body_words] & mask;
    for (int64_t j = i; j < n; ++j) {
      const uint64_t bj = codes[j * words + body_words] & mask;
      const uint64_t h = acc_rows[r * n + j] + __builtin_popcountll(ai ^ bj);
      const int64_t k = units - static_cast<int64_t>(h);
      out[i * n + j] = k;
      out[j * n + i] = k;
    }
  }
}

using StripFn = void (*)(const uint64_t*, int64_t, int64_t, int64_t, uint64_t*, int64_t*);

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("popcnt"))) void strip_popcnt(const uint64_t* codes, int64_t n,
                                                    int64_t units, int64_t ti,
                                                    uint64_t* acc_rows, int64_t* out) {
  strip_body(codes, n, units, ti, acc_rows, out);
}
#endif

void strip_portable(const uint64_t* codes, int64_t n, int64_t units, int64_t ti,
                    uint64_t* acc_rows, int64_t* out) {
  strip_body(codes, n, units, ti, acc_rows, out);
}

StripFn pick_strip() {
#if defined(__x86_64__) || defined(__i386__)
  if (__builtin_cpu_supports("popcnt")) return strip_popcnt;
#endif
  return strip_portable;
}

}  // namespace

void hamming_gram(const uint64_t* codes, int64_t n, int64_t units, int64_t* out) {
  static const StripFn strip = pick_strip();
  const int64_t tiles = (n + R - 1) / R;
  const bool parallel = n * n * words_for(units) >= kParallelGramWork;
#pragma omp parallel if (parallel)
  {
    std::vector<uint64_t> acc_rows(static_cast<size_t>(R * n));
    // Strips shrink towards the end of the triangle: hand them out one at a time.
#pragma omp for schedule(dynamic, 1)
    for (int64_t ti = 0; ti < tiles; ++ti) strip(codes, n, units, ti, acc_rows.data(), out);
  }
}

}  // namespace airda::cpu
