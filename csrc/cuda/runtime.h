// The CUDA runtime as the bindings report it. Plain C++ (no CUDA or pybind11 types), so the
// bindings include it without nvcc. Every function throws std::runtime_error on a CUDA error,
// including "no driver" on machines without a GPU, unless it says otherwise.
#pragma once

#include <string>

namespace airda::cuda {

// Number of usable devices; throws with the CUDA error name when the runtime cannot start.
int device_count();
// Runtime version compiled in (e.g. 13000) and the driver's, 0 when there is no driver.
int runtime_version();
int driver_version();
// "name (sm_XY)" of a device.
std::string device_name(int device);

}  // namespace airda::cuda
