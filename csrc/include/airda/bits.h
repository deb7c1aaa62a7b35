// Bit-level helpers shared by the CPU and CUDA kernels of the sign-code ops.
// Plain C++ (no pybind11), so that nvcc can include it.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define AIRDA_HD __host__ __device__ __forceinline__
#else
#define AIRDA_HD inline
#endif

namespace airda {

// Element types that pack_sign_bits accepts. 16-bit types travel as raw bit patterns, so that
// neither side needs a half-precision type.
enum class FloatKind : int { kFloat32 = 0, kFloat64 = 1, kFloat16 = 2, kBFloat16 = 3 };

constexpr uint16_t kFloat16InfBits = 0x7C00;
constexpr uint16_t kBFloat16InfBits = 0x7F80;

// `x > 0` on the bit pattern of a 16-bit IEEE-style float: sign clear, not zero, not NaN
// (NaN patterns lie above infinity once the sign bit is clear).
AIRDA_HD bool half_bits_positive(uint16_t bits, uint16_t inf_bits) {
  return static_cast<int16_t>(bits) > 0 && bits <= inf_bits;
}

// Mask of the bits of the last 64-bit word that hold real units; padding bits are ignored by
// every kernel, so codes with stray padding bits still give the right Gram matrix.
AIRDA_HD uint64_t tail_mask(int64_t units) {
  const int rem = static_cast<int>(units % 64);
  return rem == 0 ? ~uint64_t{0} : ((uint64_t{1} << rem) - 1);
}

AIRDA_HD int64_t words_for(int64_t units) { return (units + 63) / 64; }

}  // namespace airda
