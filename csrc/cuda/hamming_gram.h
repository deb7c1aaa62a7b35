// CUDA entry point of the hamming_gram op. Plain C++ (no CUDA or pybind11 types), so the
// bindings include it without nvcc. Throws std::runtime_error on a CUDA error, including "no
// driver" on machines without a GPU.
#pragma once

#include <cstdint>

namespace airda::cuda {

// Device pointers; `stream` is a cudaStream_t passed as an integer (0 = legacy default stream).
// out[i, j] = units - popcount(codes[i] ^ codes[j]); codes is n x words_for(units), out n x n.
void hamming_gram(const uint64_t* codes, int64_t n, int64_t units, int64_t* out, int device,
                  std::uintptr_t stream);

}  // namespace airda::cuda
