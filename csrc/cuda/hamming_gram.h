// CUDA entry points of the sign-code ops. Plain C++ (no CUDA or pybind11 types), so the
// bindings include it without nvcc. Every function throws std::runtime_error on a CUDA error,
// including "no driver" on machines without a GPU.
#pragma once

#include <cstdint>
#include <string>

#include "airda/bits.h"

namespace airda::cuda {

// Number of usable devices; throws with the CUDA error name when the runtime cannot start.
int device_count();
// Runtime version compiled in (e.g. 13000) and the driver's, 0 when there is no driver.
int runtime_version();
int driver_version();
// "name (sm_XY)" of a device.
std::string device_name(int device);

// Device pointers; `stream` is a cudaStream_t passed as an integer (0 = legacy default stream).
void pack_sign_bits(const void* x, FloatKind kind, int64_t n, int64_t units, uint64_t* out,
                    int device, std::uintptr_t stream);
void hamming_gram(const uint64_t* codes, int64_t n, int64_t units, int64_t* out, int device,
                  std::uintptr_t stream);

}  // namespace airda::cuda
