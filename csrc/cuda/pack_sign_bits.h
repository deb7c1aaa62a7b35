// CUDA entry point of the pack_sign_bits op. Plain C++ (no CUDA or pybind11 types), so the
// bindings include it without nvcc. Throws std::runtime_error on a CUDA error, including "no
// driver" on machines without a GPU.
#pragma once

#include <cstdint>

#include "airda/bits.h"

namespace airda::cuda {

// Device pointers; `stream` is a cudaStream_t passed as an integer (0 = legacy default stream).
// out[i, k] bit b = (x[i, 64k + b] > 0); x is n x units, row-major; out is n x words_for(units).
void pack_sign_bits(const void* x, FloatKind kind, int64_t n, int64_t units, uint64_t* out,
                    int device, std::uintptr_t stream);

}  // namespace airda::cuda
