// CUDA kernels of the sign-code ops: warp-ballot sign packing and a tiled, split-K XOR+popcount
// Hamming Gram matrix. Errors become std::runtime_error carrying the CUDA error name.
#include "sign_codes.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace airda::cuda {
namespace {

void check(cudaError_t err, const char* what) {
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

// ---- hamming_gram: 64x64 output tiles, upper triangle only, word range split across blocks --
constexpr int kTile = 64;
constexpr int kThreadsGram = 256;  // 16 x 16 threads, 4 x 4 outputs each
constexpr int kChunk = 16;         // words per shared-memory stage

__global__ void hamming_partial_kernel(const uint64_t* __restrict__ codes,
                                       unsigned long long* __restrict__ h, int64_t n,
                                       int64_t words, uint64_t mask, int64_t words_per_split,
                                       int tiles) {
  // blockIdx.x enumerates tile pairs (ti <= tj) row by row; blockIdx.y is the word split.
  int64_t p = blockIdx.x;
  int ti = 0;
  while (p >= tiles - ti) {
    p -= tiles - ti;
    ++ti;
  }
  const int tj = ti + static_cast<int>(p);
  const int64_t k_begin = static_cast<int64_t>(blockIdx.y) * words_per_split;
  const int64_t k_end = k_begin + words_per_split < words ? k_begin + words_per_split : words;

  // +1 column of padding spreads the column-wise stores over the banks.
  __shared__ uint64_t as[kChunk][kTile + 1];
  __shared__ uint64_t bs[kChunk][kTile + 1];
  const int tx = threadIdx.x % 16;
  const int ty = threadIdx.x / 16;
  unsigned acc[4][4] = {};

  for (int64_t k0 = k_begin; k0 < k_end; k0 += kChunk) {
#pragma unroll
    for (int s = 0; s < (kTile * kChunk) / kThreadsGram; ++s) {
      const int idx = threadIdx.x + s * kThreadsGram;
      const int r = idx / kChunk;
      const int kk = idx % kChunk;  // consecutive threads read consecutive words of a row
      const int64_t k = k0 + kk;
      const int64_t ra = static_cast<int64_t>(ti) * kTile + r;
      const int64_t rb = static_cast<int64_t>(tj) * kTile + r;
      uint64_t va = 0, vb = 0;
      if (k < k_end) {
        const uint64_t m = (k == words - 1) ? mask : ~uint64_t{0};
        if (ra < n) va = codes[ra * words + k] & m;
        if (rb < n) vb = codes[rb * words + k] & m;
      }
      as[kk][r] = va;
      bs[kk][r] = vb;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kChunk; ++kk) {
      uint64_t a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = as[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = bs[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += __popcll(a[i] ^ b[j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t row = static_cast<int64_t>(ti) * kTile + ty + 16 * i;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t col = static_cast<int64_t>(tj) * kTile + tx + 16 * j;
      if (row < n && col < n && acc[i][j] != 0) atomicAdd(&h[row * n + col], static_cast<unsigned long long>(acc[i][j]));
    }
  }
}

// In place: the upper triangle holds Hamming distances; write units - H to both triangles.
// Each upper entry is read only by its own thread, each lower entry written only by its mirror.
__global__ void hamming_finish_kernel(int64_t* out, int64_t n, int64_t units) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n * n;
       idx += stride) {
    const int64_t i = idx / n;
    const int64_t j = idx - i * n;
    if (i <= j) {
      const int64_t v = units - out[idx];
      out[idx] = v;
      out[j * n + i] = v;
    }
  }
}

}  // namespace

int device_count() {
  int count = 0;
  check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  return count;
}

int runtime_version() {
  int v = 0;
  cudaRuntimeGetVersion(&v);
  return v;
}

int driver_version() {
  int v = 0;
  if (cudaDriverGetVersion(&v) != cudaSuccess) return 0;
  return v;
}

std::string device_name(int device) {
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
         std::to_string(prop.minor) + ")";
}

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

void hamming_gram(const uint64_t* codes, int64_t n, int64_t units, int64_t* out, int device,
                  std::uintptr_t stream_handle) {
  DeviceGuard guard(device);
  auto stream = reinterpret_cast<cudaStream_t>(stream_handle);
  const int64_t words = words_for(units);
  const int tiles = static_cast<int>((n + kTile - 1) / kTile);
  const int64_t pairs = static_cast<int64_t>(tiles) * (tiles + 1) / 2;
  if (pairs > 2147483647LL) throw std::runtime_error("hamming_gram: n too large for one launch");

  int sms = 0;
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
        "cudaDeviceGetAttribute");
  // Split the word range until there are a few blocks per SM; per-thread counters are 32-bit,
  // so a split never spans more than 2^25 words (2^31 bits).
  const int64_t chunks = (words + kChunk - 1) / kChunk;
  int64_t splits = std::max<int64_t>(1, (4LL * sms + pairs - 1) / pairs);
  splits = std::min<int64_t>(splits, chunks);
  int64_t words_per_split = ((chunks + splits - 1) / splits) * kChunk;
  constexpr int64_t kMaxSplitWords = int64_t{1} << 25;
  if (words_per_split > kMaxSplitWords) {
    words_per_split = kMaxSplitWords;
  }
  splits = (words + words_per_split - 1) / words_per_split;
  if (splits > 65535) throw std::runtime_error("hamming_gram: units too large for one launch");

  check(cudaMemsetAsync(out, 0, static_cast<size_t>(n * n) * sizeof(int64_t), stream),
        "cudaMemsetAsync");
  dim3 grid(static_cast<unsigned>(pairs), static_cast<unsigned>(splits));
  hamming_partial_kernel<<<grid, kThreadsGram, 0, stream>>>(
      codes, reinterpret_cast<unsigned long long*>(out), n, words, tail_mask(units),
      words_per_split, tiles);
  check(cudaGetLastError(), "hamming_gram kernel launch");
  const int64_t finish_blocks = std::min<int64_t>((n * n + 255) / 256, 65535);
  hamming_finish_kernel<<<static_cast<unsigned>(finish_blocks), 256, 0, stream>>>(out, n, units);
  check(cudaGetLastError(), "hamming_gram finish launch");
}

}  // namespace airda::cuda
