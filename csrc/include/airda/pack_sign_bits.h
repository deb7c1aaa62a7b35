// CPU entry point of the pack_sign_bits op (NASWOT's binary codes): plain C++ API used by the
// bindings.
#pragma once

#include <cstdint>

#include "airda/bits.h"

namespace airda::cpu {

// out[i, k] bit b = (x[i, 64k + b] > 0); x is n x units, row-major; out is n x words_for(units).
void pack_sign_bits(const void* x, FloatKind kind, int64_t n, int64_t units, uint64_t* out);

}  // namespace airda::cpu
