// CPU entry points of the sign-code ops (NASWOT): plain C++ API used by the bindings.
#pragma once

#include <cstdint>

#include "airda/bits.h"

namespace airda::cpu {

// out[i, k] bit b = (x[i, 64k + b] > 0); x is n x units, row-major; out is n x words_for(units).
void pack_sign_bits(const void* x, FloatKind kind, int64_t n, int64_t units, uint64_t* out);

// out[i, j] = units - popcount(codes[i] ^ codes[j]); codes is n x words_for(units), out n x n.
void hamming_gram(const uint64_t* codes, int64_t n, int64_t units, int64_t* out);

int max_threads();
int openmp_version();

}  // namespace airda::cpu
