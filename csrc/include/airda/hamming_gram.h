// CPU entry point of the hamming_gram op (NASWOT's kernel matrix of packed sign codes): plain
// C++ API used by the bindings.
#pragma once

#include <cstdint>

namespace airda::cpu {

// out[i, j] = units - popcount(codes[i] ^ codes[j]); codes is n x words_for(units), out n x n.
void hamming_gram(const uint64_t* codes, int64_t n, int64_t units, int64_t* out);

}  // namespace airda::cpu
