// CPU kernel of the pack_sign_bits op: the signs of activations packed into 64-bit words, 64
// units per word (OpenMP over rows and words).
#include "airda/pack_sign_bits.h"

#include <omp.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace airda::cpu {
namespace {

// Below this many input elements the OpenMP team costs more than it saves.
constexpr int64_t kParallelPackElems = int64_t{1} << 16;

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

}  // namespace airda::cpu
