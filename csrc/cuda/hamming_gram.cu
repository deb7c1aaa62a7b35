// CUDA kernel of the hamming_gram op: a tiled, split-K XOR+popcount Hamming Gram matrix of
// packed sign codes. Errors become std::runtime_error carrying the CUDA error name.
#include "hamming_gram.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>

#include "airda/bits.h"
#include "common.cuh"

namespace airda::cuda {
namespace {

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
