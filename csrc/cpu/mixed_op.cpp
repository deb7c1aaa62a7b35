// CPU kernel of the fused DARTS mixed operation (see airda/mixed_op.h for the definition).
//
// Forward is one pass over the n elements: each OpenMP thread takes blocks of kBlock elements and
// adds the K weighted rows into the block of `out` while it is in L1, so every input and output
// element crosses memory once. Backward is one pass too: per chunk of kMixedOpChunk elements it
// writes w_k * g into grad_ys and forms the K dot products <g, ys[k]> in double; the per-chunk
// partials are then added in chunk order, so the result is the same for any thread count.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "airda/mixed_op.h"

namespace airda::cpu {
namespace {

constexpr int64_t kBlock = 1024;
// Below this many element-rows one thread is faster than starting a team.
constexpr int64_t kParallelWork = int64_t{1} << 15;

// softmax(alpha) in double; NaN or an infinite maximum give NaN weights, as exp(a - max) does.
template <class T>
std::vector<double> softmax(const T* alpha, int64_t k) {
  double m = static_cast<double>(alpha[0]);
  for (int64_t j = 1; j < k; ++j) {
    const double a = static_cast<double>(alpha[j]);
    if (std::isnan(a) || a > m) m = a;
  }
  std::vector<double> w(static_cast<size_t>(k));
  double sum = 0.0;
  for (int64_t j = 0; j < k; ++j) {
    w[j] = std::exp(static_cast<double>(alpha[j]) - m);
    sum += w[j];
  }
  for (auto& v : w) v /= sum;
  return w;
}

template <class T>
void forward(const T* ys, const T* alpha, int64_t k, int64_t n, T* out) {
  const std::vector<double> wd = softmax(alpha, k);
  std::vector<T> w(wd.begin(), wd.end());
  const T* wp = w.data();
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n * k >= kParallelWork)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t lo = b * kBlock;
    const int64_t len = std::min(kBlock, n - lo);
    T* o = out + lo;
    const T* y0 = ys + lo;
    const T w0 = wp[0];
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) o[i] = w0 * y0[i];
    for (int64_t j = 1; j < k; ++j) {
      const T* y = ys + j * n + lo;
      const T wj = wp[j];
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) o[i] += wj * y[i];
    }
  }
}

template <class T>
void backward(const T* ys, const T* alpha, const T* g, int64_t k, int64_t n, T* grad_ys,
              T* grad_alpha) {
  const std::vector<double> wd = softmax(alpha, k);
  std::vector<T> w(wd.begin(), wd.end());
  const T* wp = w.data();
  const int64_t chunks = (n + kMixedOpChunk - 1) / kMixedOpChunk;
  std::vector<double> partial(static_cast<size_t>(chunks * k), 0.0);
  double* pp = partial.data();
#pragma omp parallel for schedule(static) if (n * k >= kParallelWork)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t lo = c * kMixedOpChunk;
    const int64_t len = std::min(kMixedOpChunk, n - lo);
    const T* gc = g + lo;
    for (int64_t j = 0; j < k; ++j) {
      const T* y = ys + j * n + lo;
      T* gy = grad_ys + j * n + lo;
      const T wj = wp[j];
      double acc = 0.0;
      // The simd reduction splits acc into a fixed number of lanes: a fixed order per build.
#pragma omp simd reduction(+ : acc)
      for (int64_t i = 0; i < len; ++i) {
        gy[i] = wj * gc[i];
        acc += static_cast<double>(gc[i]) * static_cast<double>(y[i]);
      }
      pp[c * k + j] = acc;
    }
  }
  std::vector<double> s(static_cast<size_t>(k), 0.0);
  for (int64_t c = 0; c < chunks; ++c)
    for (int64_t j = 0; j < k; ++j) s[j] += pp[c * k + j];
  double mean = 0.0;
  for (int64_t j = 0; j < k; ++j) mean += wd[j] * s[j];
  for (int64_t j = 0; j < k; ++j) grad_alpha[j] = static_cast<T>(wd[j] * (s[j] - mean));
}

}  // namespace

void mixed_op_forward(const float* ys, const float* alpha, int64_t k, int64_t n, float* out) {
  forward(ys, alpha, k, n, out);
}
void mixed_op_forward(const double* ys, const double* alpha, int64_t k, int64_t n, double* out) {
  forward(ys, alpha, k, n, out);
}
void mixed_op_backward(const float* ys, const float* alpha, const float* grad_out, int64_t k,
                       int64_t n, float* grad_ys, float* grad_alpha) {
  backward(ys, alpha, grad_out, k, n, grad_ys, grad_alpha);
}
void mixed_op_backward(const double* ys, const double* alpha, const double* grad_out, int64_t k,
                       int64_t n, double* grad_ys, double* grad_alpha) {
  backward(ys, alpha, grad_out, k, n, grad_ys, grad_alpha);
}

}  // namespace airda::cpu
