// CUDA kernel of the pack_sign_bits op: warp-ballot sign packing, one warp per 64-bit word.
// Errors become std::runtime_error carrying the CUDA error name.
#include "pack_sign_bits.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "common.cuh"

namespace airda::cuda {
namespace {

// ---- pack_sign_bits: one warp per 64-bit word, two ballots of 32 lanes ----------------------
struct PositiveF32 {
  __device__ bool operator()(const float* p) const { return *p > 0.0f; }
};
struct PositiveF64 {
  __device__ bool operator()(const double* p) const { return *p > 0.0; }
};
template <uint16_t kInf>
struct PositiveHalfBits {
  __device__ bool operator()(const uint16_t* p) const { return half_bits_positive(*p, kInf); }
};

template <class T, class Positive>
__global__ void pack_sign_bits_kernel(const T* __restrict__ x, uint64_t* __restrict__ out,
                                      int64_t n, int64_t units, int64_t words) {
  const int lane = threadIdx.x & 31;
  const int64_t warps_total = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  const int64_t first = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const Positive positive;
  // The loop bound is the same for every lane of a warp, so the ballots see full warps.
  for (int64_t w = first; w < n * words; w += warps_total) {
    const int64_t i = w / words;
    const int64_t col = (w - i * words) * 64 + lane;
    const T* row = x + i * units;
    const bool lo = col < units && positive(row + col);
    const bool hi = col + 32 < units && positive(row + col + 32);
    const unsigned mlo = __ballot_sync(0xffffffffu, lo);
    const unsigned mhi = __ballot_sync(0xffffffffu, hi);
    if (lane == 0) out[w] = static_cast<uint64_t>(mlo) | (static_cast<uint64_t>(mhi) << 32);
  }
}

template <class T, class Positive>
void launch_pack(const void* x, int64_t n, int64_t units, uint64_t* out, cudaStream_t stream) {
  constexpr int kThreads = 256;
  const int64_t words = words_for(units);
  const int64_t warps = n * words;
  const int64_t blocks = std::min<int64_t>((warps * 32 + kThreads - 1) / kThreads, 65535 * 8);
  pack_sign_bits_kernel<T, Positive><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      static_cast<const T*>(x), out, n, units, words);
  check(cudaGetLastError(), "pack_sign_bits kernel launch");
}

}  // namespace

void pack_sign_bits(const void* x, FloatKind kind, int64_t n, int64_t units, uint64_t* out,
                    int device, std::uintptr_t stream_handle) {
  DeviceGuard guard(device);
  auto stream = reinterpret_cast<cudaStream_t>(stream_handle);
  switch (kind) {
    case FloatKind::kFloat32:
      launch_pack<float, PositiveF32>(x, n, units, out, stream);
      break;
    case FloatKind::kFloat64:
      launch_pack<double, PositiveF64>(x, n, units, out, stream);
      break;
    case FloatKind::kFloat16:
      launch_pack<uint16_t, PositiveHalfBits<kFloat16InfBits>>(x, n, units, out, stream);
      break;
    case FloatKind::kBFloat16:
      launch_pack<uint16_t, PositiveHalfBits<kBFloat16InfBits>>(x, n, units, out, stream);
      break;
  }
}

}  // namespace airda::cuda
