// Helpers every CUDA source of airda shares: CUDA errors as std::runtime_error, and a guard that
// makes a device current for a call. CUDA-only (includes cuda_runtime.h): include it from .cu
// files, never from the bindings.
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace airda::cuda {

// Throws std::runtime_error naming `what` and the CUDA error, unless err is cudaSuccess.
inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    // Clear the sticky-free error so that the next call starts clean.
    cudaGetLastError();
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorName(err) + " (" +
                             cudaGetErrorString(err) + ")");
  }
}

// Makes `device` current for the scope and restores the caller's device afterwards, so that a
// call never changes which device the caller's framework thinks is current.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (device != previous_) check(cudaSetDevice(device), "cudaSetDevice");
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace airda::cuda
