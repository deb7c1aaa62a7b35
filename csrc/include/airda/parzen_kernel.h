// Pieces of the Parzen op's CPU kernel (csrc/cpu/parzen.cpp) that TPE's proposal state
// (csrc/strategies/tpe.cpp) shares: the state keeps its mixture in the kernel's layout between
// asks and scores it with the same constants, chunks and blocks, skipping rule and exponentials,
// so that its densities are the op's. Internal to those two files: the op's API is airda/parzen.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define AIRDA_PARZEN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define AIRDA_PARZEN_CLONES
#endif

namespace airda::cpu::parzen_kernel {

inline constexpr double kInf = std::numeric_limits<double>::infinity();
inline constexpr double kHalfLog2Pi = 0.91893853320467274178;
inline constexpr double kSqrtHalf = 0.70710678118654752440;
// Terms more than kSkip below a candidate's largest are left out of its log-sum-exp.
inline constexpr double kSkip = 60.0;
// Components per chunk: the means and widths of a chunk in 10 dimensions fit in L1 together.
inline constexpr int64_t kChunk = 128;
// Components per step of the scoring kernel (two vectors of four), and candidates per block.
inline constexpr int64_t kGroup = 8;
inline constexpr int64_t kGroups = kChunk / kGroup;
inline constexpr int kBlock = 4;
// Below this many (candidate, component, dimension) steps (about 1 ms on one core) one thread
// does the work: waking an idle OpenMP worker costs tens to hundreds of microseconds on a virtual
// machine (measured: half of a TPE ask at 5,000 trials went to the wait), which a smaller job
// does not pay back.
inline constexpr int64_t kParallelWork = int64_t{1} << 22;

// exp(t) for t <= 0, and 0 below -kSkip: 2^n * p(r) with |r| <= log(2)/2 and p the Taylor
// polynomial of degree 12 (relative error about 2e-16), branch-free so that loops over it
// vectorise; glibc's exp does not, and dominates a log-sum-exp over thousands of terms.
inline double exp_above(double t) {
  const double keep = t > -kSkip ? 1.0 : 0.0;
  t = t > -kSkip ? t : 0.0;
  // Rounding by adding 1.5 * 2^52: n lands in the low bits of `shifted`.
  const double shifted = t * 1.4426950408889634 + 6755399441055744.0;
  const double n = shifted - 6755399441055744.0;
  const double r = (t - n * 0.6931471803691238) - n * 1.9082149292705877e-10;
  double p = 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  // The low bits of `shifted` hold n (two's complement); the rest shifts out.
  const int64_t bits = (__builtin_bit_cast(int64_t, shifted) + 1023) << 52;
  const double scale = __builtin_bit_cast(double, bits);
  return keep * (p * scale);
}

// A scratch vector per thread that keeps its memory between calls: fresh large vectors cost
// page faults on every call. Slots 0 to 3 belong to parzen_logpdf, 4 and 5 to the scoring of a
// block of candidates (the dense kernel's or the state's screen, never both at once).
std::vector<double>& scratch(int slot, size_t size);

// parzen_log_norm over strided means and widths: element (k, j) at k * k_stride + j * j_stride.
void log_norm_strided(const double* mu, int64_t mu_k, int64_t mu_j, const double* sigma,
                      int64_t s_k, int64_t s_j, int64_t n_comp, int64_t d, const double* low,
                      const double* high, double* out);

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// Whether the CPU has AVX2 and FMA (asked once).
bool has_avx2_fma();
#endif

}  // namespace airda::cpu::parzen_kernel
