// CPU kernels of the sign-code ops: packing activation signs into bits, and the NASWOT Hamming
// Gram matrix by XOR + popcount over the packed words (blocked, OpenMP).
#include "airda/sign_codes.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace airda::cpu {
namespace {

// Below this many input elements the OpenMP team costs more than it saves.
constexpr int64_t kParallelPackElems = int64_t{1} << 16;
constexpr int64_t kParallelGramWork = int64_t{1} << 14;

// Packs the 64 units of one full word. The portable version is a compare-and-shift loop; on
// x86-64 the SSE2 versions (part of the base ISA, so no dispatch) turn 2-8 compares into bits
// per instruction with movemask, about 4x fewer instructions per unit.
template <class T, class Positive>
struct PackWord {
  Positive positive;
  uint64_t operator()(const T* src) const {
    uint64_t word = 0;
    for (int b = 0; b < 64; ++b) word |= static_cast<uint64_t>(positive(src[b])) << b;
    return word;
  }
};

#if defined(__SSE2__)
struct PackWordF32 {
  uint64_t operator()(const float* src) const {
    const __m128 zero = _mm_setzero_ps();
    uint64_t word = 0;
    for (int b = 0; b < 64; b += 4) {
      const int m = _mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(src + b), zero));
      word |= static_cast<uint64_t>(m) << b;
    }
    return word;
  }
};

struct PackWordF64 {
  uint64_t operator()(const double* src) const {
    const __m128d zero = _mm_setzero_pd();
    uint64_t word = 0;
    for (int b = 0; b < 64; b += 2) {
      const int m = _mm_movemask_pd(_mm_cmpgt_pd(_mm_loadu_pd(src + b), zero));
      word |= static_cast<uint64_t>(m) << b;
    }
    return word;
  }
};

// Signed 16-bit compares: 0 < bits (sign clear, non-zero) and not bits > +inf (NaN).
template <uint16_t kInf>
struct PackWordHalf {
  uint64_t operator()(const uint16_t* src) const {
    const __m128i zero = _mm_setzero_si128();
    const __m128i inf = _mm_set1_epi16(static_cast<short>(kInf));
    uint64_t word = 0;
    for (int b = 0; b < 64; b += 8) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + b));
      const __m128i pos = _mm_andnot_si128(_mm_cmpgt_epi16(v, inf), _mm_cmpgt_epi16(v, zero));
      const int m = _mm_movemask_epi8(_mm_packs_epi16(pos, pos)) & 0xFF;
      word |= static_cast<uint64_t>(m) << b;
    }
    return word;
  }
};
#endif

template <class T, class Positive, class FullWord>
void pack_rows(const T* x, int64_t n, int64_t units, uint64_t* out, Positive positive,
               FullWord full_word) {
  const int64_t words = words_for(units);
  const int64_t full = units / 64;  // words whose 64 units all exist
#pragma omp parallel for collapse(2) schedule(static) if (n * units >= kParallelPackElems)
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < words; ++k) {
      const T* src = x + i * units + k * 64;
      uint64_t word = 0;
      if (k < full) {
        word = full_word(src);
      } else {
        const int rem = static_cast<int>(units - k * 64);
        for (int b = 0; b < rem; ++b) word |= static_cast<uint64_t>(positive(src[b])) << b;
      }
      out[i * words + k] = word;
    }
  }
}

template <class T, class Positive>
void pack_rows(const T* x, int64_t n, int64_t units, uint64_t* out, Positive positive) {
  pack_rows(x, n, units, out, positive, PackWord<T, Positive>{positive});
}

// ---- Hamming Gram -------------------------------------------------------------------------
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

void pack_sign_bits(const void* x, FloatKind kind, int64_t n, int64_t units, uint64_t* out) {
  const auto f32 = [](float v) { return v > 0.0f; };
  const auto f64 = [](double v) { return v > 0.0; };
  const auto f16 = [](uint16_t v) { return half_bits_positive(v, kFloat16InfBits); };
  const auto bf16 = [](uint16_t v) { return half_bits_positive(v, kBFloat16InfBits); };
  const auto* x16 = static_cast<const uint16_t*>(x);
  switch (kind) {
#if defined(__SSE2__)
    case FloatKind::kFloat32:
      pack_rows(static_cast<const float*>(x), n, units, out, f32, PackWordF32{});
      break;
    case FloatKind::kFloat64:
      pack_rows(static_cast<const double*>(x), n, units, out, f64, PackWordF64{});
      break;
    case FloatKind::kFloat16:
      pack_rows(x16, n, units, out, f16, PackWordHalf<kFloat16InfBits>{});
      break;
    case FloatKind::kBFloat16:
      pack_rows(x16, n, units, out, bf16, PackWordHalf<kBFloat16InfBits>{});
      break;
#else
    case FloatKind::kFloat32:
      pack_rows(static_cast<const float*>(x), n, units, out, f32);
      break;
    case FloatKind::kFloat64:
      pack_rows(static_cast<const double*>(x), n, units, out, f64);
      break;
    case FloatKind::kFloat16:
      pack_rows(x16, n, units, out, f16);
      break;
    case FloatKind::kBFloat16:
      pack_rows(x16, n, units, out, bf16);
      break;
#endif
  }
}

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

int max_threads() { return omp_get_max_threads(); }

int openmp_version() {
#ifdef _OPENMP
  return _OPENMP;
#else
  return 0;
#endif
}

}  // namespace airda::cpu
