// CPU kernel of the Parzen op: log p(x) of a weighted mixture of products of truncated normals,
// for a batch of candidates, with a log-sum-exp over the components.
//
// The per-component constants (weights, normalisers, sqrt(1/2)/sigma) are computed once (TPE's
// g keeps them between asks, see NeighbourWidths::logpdf). The terms are computed densely, four
// candidates by eight components a step with AVX2 and FMA where the CPU has them (each mean and
// width loaded from L1 serves four candidates; the accumulators stay in registers), a chunk of
// 128 components at a time, together with each group of eight's largest term. The log-sum-exp
// keeps, per candidate, the groups within 60 of its largest term so far and takes the
// exponentials once the largest is known, only of the groups still within 60 of it: the
// skipped mass is below n_comp * e^-60 of the total. A block of candidates skips a chunk
// outright when the distance in the first dimension alone puts all of its terms below that
// threshold (decisive in low dimensions, with components sorted by their first coordinate).
//
// TPE's g state (NeighbourWidths) scores without categorical dimensions through a
// single-precision screen instead (screened_logpdf): every term in float32, sixteen components a
// step, then the few within reach of the largest in double precision.
#include "airda/parzen.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

namespace airda::cpu {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kHalfLog2Pi = 0.91893853320467274178;
constexpr double kSqrtHalf = 0.70710678118654752440;
constexpr double kSkip = 60.0;
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define AIRDA_PARZEN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define AIRDA_PARZEN_CLONES
#endif
// Components per chunk: the means and widths of a chunk in 10 dimensions fit in L1 together.
constexpr int64_t kChunk = 128;
// Components per step of the scoring kernel (two vectors of four), and candidates per block.
constexpr int64_t kGroup = 8;
constexpr int64_t kGroups = kChunk / kGroup;
constexpr int kBlock = 4;
// Below this many (candidate, component, dimension) steps (about 1 ms on one core) one thread
// does the work: waking an idle OpenMP worker costs tens to hundreds of microseconds on a virtual
// machine (measured: half of a TPE ask at 5,000 trials went to the wait), which a smaller job
// does not pay back.
constexpr int64_t kParallelWork = int64_t{1} << 22;
// g's single-precision screen (see screened_logpdf) runs where every sqrt(1/2) / sigma is at
// most kScreenInvMax (TPE's magic clip keeps them below 71) in kScreenMinDim to kScreenMaxDim
// dimensions, and keeps every component whose screened term is within kSkip + kScreenMargin of
// the candidate's largest screened term. There a screened term's error is below 0.05: inputs in
// [0, 1] rounded to single precision move each z by at most 1.2e-7 * kScreenInvMax + 2.4e-7 |z|,
// and a term within reach of the largest has sum z^2 below the spread of the constants plus
// kSkip. So no term within kSkip of the largest is missed.
constexpr double kScreenInvMax = 1e3;
constexpr int64_t kScreenMaxDim = 64;
// In one or two dimensions the dense kernel's chunk skipping (components sorted by their first
// coordinate) beats screening every term (measured: 6.1 against 7.0 ms per univariate TPE ask at
// 5,000 trials).
constexpr int64_t kScreenMinDim = 3;
constexpr double kScreenMargin = 1.0;
constexpr int64_t kScreenBlocks = 8;  // blocks of candidates per pass of the screen

// log Phi(z), the log of the standard normal CDF, accurate far into the lower tail: erfc while it
// does not underflow, then the asymptotic series of Mills' ratio.
double log_ndtr(double z) {
  if (z > -35.0) return std::log(0.5 * std::erfc(-z * kSqrtHalf));
  const double r = 1.0 / (z * z);
  const double series =
      1.0 - r * (1.0 - 3.0 * r * (1.0 - 5.0 * r * (1.0 - 7.0 * r * (1.0 - 9.0 * r * (1.0 - 11.0 * r)))));
  return -0.5 * z * z - std::log(-z) - kHalfLog2Pi + std::log(series);
}

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
// page faults on every call.
std::vector<double>& scratch(int slot, size_t size) {
  thread_local std::vector<double> buffers[6];
  std::vector<double>& v = buffers[slot];
  if (v.size() < size) v.resize(size);
  return v;
}

// log(x) of positive normal doubles, branch-free so that the loop vectorises (glibc's log does
// not, and costs about 8 ns an element on the development machine): x = 2^e m with m in
// [sqrt(1/2), sqrt(2)), log m = 2 atanh(s) with s = (m - 1) / (m + 1), |s| < 0.172, by its
// series to s^21 (truncation below 1e-17), and e log 2 in two parts. Within 2 ulp of log.
AIRDA_PARZEN_CLONES
void log_positive(const double* x, int64_t n, double* out) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t bits = __builtin_bit_cast(uint64_t, x[i]);
    double m = __builtin_bit_cast(double, (bits & 0x000FFFFFFFFFFFFFULL) | 0x3FF0000000000000ULL);
    // The biased exponent as a double without an int64 conversion (none in AVX2): in the low
    // bits of 2^52.
    double e = __builtin_bit_cast(double, (bits >> 52) | 0x4330000000000000ULL) -
               (4503599627370496.0 + 1023.0);
    const bool high = m > 1.4142135623730951;
    m = high ? 0.5 * m : m;
    e = high ? e + 1.0 : e;
    const double s = (m - 1.0) / (m + 1.0), s2 = s * s;
    double p = 1.0 / 21.0;
    p = p * s2 + 1.0 / 19.0;
    p = p * s2 + 1.0 / 17.0;
    p = p * s2 + 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    const double log_m = 2.0 * s + 2.0 * s * (s2 * p);
    out[i] = e * 0.6931471803691238 + (log_m + e * 1.9082149292705877e-10);
  }
}

// Bounds of one chunk of components, for skipping it when none of its terms can come within
// kSkip of the largest term of any candidate of a block.
struct ChunkBound {
  double c_max;    // largest constant (log weight + log normaliser) of the chunk
  double lo, hi;   // range of the means in dimension 0
  double inv_min;  // smallest sqrt(1/2)/sigma in dimension 0
};

// The components of one chunk as the scoring kernel reads them: element (j, k) of the means at
// m[j * m_ld + k], of sqrt(1/2)/sigma at s[j * s_ld + k] (at s[j] when the widths are shared),
// the constants at c[k]; `groups` groups of kGroup components (the last chunk is padded with
// components whose constant is -inf).
struct ChunkView {
  const double* m;
  int64_t m_ld;
  const double* s;
  int64_t s_ld;
  const double* c;
  int64_t groups;
};

// Terms of kBlock candidates against a chunk, t[b * kChunk + k] = c_k - sum_j z_bjk^2 with
// z = (x_bj - mu_jk) * sqrt(1/2) / sigma_jk: dense, kGroup components (two vectors of four) by
// kBlock candidates per step, so that each mean and width loaded from L1 serves four
// candidates and the accumulators stay in registers. No pruning inside: in 10-D about 80% of
// the chunks of a long study keep a term within kSkip of the largest, and a dense step costs
// less than the bookkeeping that would skip the rest.
#if defined(__GNUC__) || defined(__clang__)
template <bool kShared>
__attribute__((always_inline)) inline void block_terms_body(const double* const* xb, int64_t d,
                                                            const ChunkView& v, double* t,
                                                            double* gmax) {
  typedef double v4 __attribute__((vector_size(32)));
  for (int64_t g = 0; g < v.groups; ++g) {
    const int64_t k = g * kGroup;
    v4 lo[kBlock], hi[kBlock], c_lo, c_hi;
    std::memcpy(&c_lo, v.c + k, sizeof(v4));
    std::memcpy(&c_hi, v.c + k + 4, sizeof(v4));
    for (int b = 0; b < kBlock; ++b) {
      lo[b] = c_lo;
      hi[b] = c_hi;
    }
    for (int64_t j = 0; j < d; ++j) {
      v4 m_lo, m_hi, s_lo, s_hi;
      std::memcpy(&m_lo, v.m + j * v.m_ld + k, sizeof(v4));
      std::memcpy(&m_hi, v.m + j * v.m_ld + k + 4, sizeof(v4));
      if constexpr (kShared) {
        s_lo = v4{} + v.s[j];
        s_hi = s_lo;
      } else {
        std::memcpy(&s_lo, v.s + j * v.s_ld + k, sizeof(v4));
        std::memcpy(&s_hi, v.s + j * v.s_ld + k + 4, sizeof(v4));
      }
      for (int b = 0; b < kBlock; ++b) {
        const double xj = xb[b][j];
        const v4 z_lo = (xj - m_lo) * s_lo, z_hi = (xj - m_hi) * s_hi;
        lo[b] -= z_lo * z_lo;
        hi[b] -= z_hi * z_hi;
      }
    }
    for (int b = 0; b < kBlock; ++b) {
      std::memcpy(t + b * kChunk + k, &lo[b], sizeof(v4));
      std::memcpy(t + b * kChunk + k + 4, &hi[b], sizeof(v4));
      const double m01 = std::max(std::max(lo[b][0], lo[b][1]), std::max(lo[b][2], lo[b][3]));
      const double m23 = std::max(std::max(hi[b][0], hi[b][1]), std::max(hi[b][2], hi[b][3]));
      gmax[b * kGroups + g] = std::max(m01, m23);
    }
  }
}
#else
template <bool kShared>
inline void block_terms_body(const double* const* xb, int64_t d, const ChunkView& v, double* t,
                             double* gmax) {
  for (int b = 0; b < kBlock; ++b) {
    double* tb = t + b * kChunk;
    for (int64_t k = 0; k < v.groups * kGroup; ++k) tb[k] = v.c[k];
    for (int64_t j = 0; j < d; ++j) {
      const double xj = xb[b][j];
      for (int64_t k = 0; k < v.groups * kGroup; ++k) {
        const double z = (xj - v.m[j * v.m_ld + k]) * (kShared ? v.s[j] : v.s[j * v.s_ld + k]);
        tb[k] -= z * z;
      }
    }
    for (int64_t g = 0; g < v.groups; ++g) {
      gmax[b * kGroups + g] = *std::max_element(tb + g * kGroup, tb + (g + 1) * kGroup);
    }
  }
}
#endif

// Built for AVX2 with FMA and for the baseline, picked at run time (the FMA changes only the
// rounding of each term).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2,fma"))) void block_terms_avx2(const double* const* xb, int64_t d,
                                                          const ChunkView& v, bool shared,
                                                          double* t, double* gmax) {
  if (shared) {
    block_terms_body<true>(xb, d, v, t, gmax);
  } else {
    block_terms_body<false>(xb, d, v, t, gmax);
  }
}
bool has_avx2_fma() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return has;
}
#endif

void block_terms(const double* const* xb, int64_t d, const ChunkView& v, bool shared, double* t,
                 double* gmax) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (has_avx2_fma()) return block_terms_avx2(xb, d, v, shared, t, gmax);
#endif
  if (shared) {
    block_terms_body<true>(xb, d, v, t, gmax);
  } else {
    block_terms_body<false>(xb, d, v, t, gmax);
  }
}

// sum of exp(t[k] - top) over n terms at most top, those more than kSkip below it skipped.
AIRDA_PARZEN_CLONES
double sum_exp_above(const double* t, int64_t n, double top) {
  double add = 0.0;
#pragma omp simd reduction(+ : add)
  for (int64_t k = 0; k < n; ++k) add += exp_above(t[k] - top);
  return add;
}

// The work of one thread: blocks [first, last) of kBlock candidates (in `order`) against every
// component, a chunk at a time (the chunk's means and widths stay in L1 while the thread's
// blocks score it).
//
// Pruning (never changes a term that is kept): a term is constant - sum_j z_j^2 + categorical
// log-probabilities (at most cat_bound), so the distance of x_0 to the chunk's range of means in
// dimension 0 bounds it from above; a block skips a chunk when that bound is more than kSkip
// below the largest term so far of each of its candidates (or its extra term): their terms
// would have been skipped by the log-sum-exp anyway. Components sorted by their first
// coordinate make the test decisive in low dimensions.
void score_blocks(int64_t first, int64_t last, const int64_t* order, int64_t n_cand,
                  const double* x, int64_t d, const ChunkView* views, const ChunkBound* bounds,
                  int64_t n_chunks, bool shared, double cat_bound, const int64_t* cat_x,
                  const double* cat_logp, int64_t n_cat, int64_t n_choices, int64_t n_comp,
                  const double* log_extra, double* top_all, double* sum_all) {
  alignas(64) double t[kBlock * kChunk];
  double gmax[kBlock * kGroups];
  // The groups of terms each candidate of this thread keeps (those within kSkip of its largest
  // term so far), kGroup at a time; their exponentials are taken once the largest is known.
  const int64_t n_local = std::max<int64_t>(0, std::min(n_cand, last * kBlock) - first * kBlock);
  const int64_t stride = n_chunks * kChunk;
  std::vector<double>& kept = scratch(4, n_local * stride);
  std::vector<double>& kept_max = scratch(5, n_local * (stride / kGroup));  // of each kept group
  std::vector<int64_t> count(n_local, 0);
  for (int64_t chunk = 0; chunk < n_chunks; ++chunk) {
    const ChunkView& view = views[chunk];
    const ChunkBound& bound = bounds[chunk];
    if (bound.c_max == -kInf) continue;
    const int64_t k0 = chunk * kChunk, width = std::min(kChunk, n_comp - k0);
    for (int64_t blk = first; blk < last; ++blk) {
      int64_t ids[kBlock];
      const double* xb[kBlock];
      const int nb = static_cast<int>(std::min<int64_t>(kBlock, n_cand - blk * kBlock));
      bool any = false;
      for (int b = 0; b < kBlock; ++b) {
        ids[b] = order[blk * kBlock + std::min(b, nb - 1)];
        xb[b] = x + ids[b] * d;
        if (b >= nb) continue;
        bool alive = true;
        if (d > 0) {
          const double x0 = xb[b][0];
          const double gap = std::max({bound.lo - x0, x0 - bound.hi, 0.0}) * bound.inv_min;
          alive = bound.c_max - gap * gap >= top_all[ids[b]] - kSkip - cat_bound;
        }
        any = any || alive;
      }
      if (!any) continue;
      block_terms(xb, d, view, shared, t, gmax);
      for (int b = 0; b < nb; ++b) {
        double* tb = t + b * kChunk;
        double* gb = gmax + b * kGroups;
        if (n_cat > 0) {
          for (int64_t c = 0; c < n_cat; ++c) {
            const int64_t stride = n_cat * n_choices;
            const double* table =
                cat_logp + k0 * stride + c * n_choices + cat_x[ids[b] * n_cat + c];
            for (int64_t k = 0; k < width; ++k) tb[k] += table[k * stride];
          }
          for (int64_t g = 0; g < view.groups; ++g) {
            gb[g] = *std::max_element(tb + g * kGroup, tb + (g + 1) * kGroup);
          }
        }
        double chunk_top = -kInf;
        for (int64_t g = 0; g < view.groups; ++g) chunk_top = std::max(chunk_top, gb[g]);
        double& top = top_all[ids[b]];
        if (chunk_top == -kInf || chunk_top < top - kSkip) continue;
        top = std::max(top, chunk_top);
        const double floor = top - kSkip;
        const int64_t local = (blk - first) * kBlock + b;
        int64_t n_kept = count[local];
        double* dst = kept.data() + local * stride;
        double* dst_max = kept_max.data() + local * (stride / kGroup);
        for (int64_t g = 0; g < view.groups; ++g) {
          if (gb[g] < floor) continue;
          std::memcpy(dst + n_kept * kGroup, tb + g * kGroup, kGroup * sizeof(double));
          dst_max[n_kept++] = gb[g];
        }
        count[local] = n_kept;
      }
    }
  }
  // The exponentials, of the kept groups still within kSkip of the final largest term (the
  // running largest starts low: about a third of the terms are kept, a few percent remain).
  for (int64_t local = 0; local < n_local; ++local) {
    const int64_t id = order[first * kBlock + local];
    const double top = top_all[id];
    if (top == -kInf) continue;
    double add = log_extra != nullptr && log_extra[id] > -kInf ? std::exp(log_extra[id] - top)
                                                               : 0.0;
    const double* terms = kept.data() + local * stride;
    const double* group_max = kept_max.data() + local * (stride / kGroup);
    for (int64_t g = 0; g < count[local]; ++g) {
      if (group_max[g] >= top - kSkip) add += sum_exp_above(terms + g * kGroup, kGroup, top);
    }
    sum_all[id] = add;
  }
}

}  // namespace

double normal_log_mass(double mu, double sigma, double low, double high) {
  double a = (low - mu) / sigma, b = (high - mu) / sigma;
  // Both bounds beyond 8.5 sigma: the mass is 1 - (below 2e-17), log mass 0 in float64. The
  // usual case for narrow kernels; it spares two erf calls.
  if (a < -8.5 && b > 8.5) return 0.0;
  if (a > 0.0) {  // both bounds in the upper tail: mirror into the lower one
    const double t = a;
    a = -b;
    b = -t;
  }
  if (b < 0.0) {
    const double gap = log_ndtr(a) - log_ndtr(b);  // log(Phi(a) / Phi(b)) < 0
    return log_ndtr(b) + (gap > -0.6931471805599453 ? std::log(-std::expm1(gap))
                                                     : std::log1p(-std::exp(gap)));
  }
  // a <= 0 <= b: erf is accurate near 0 and the two terms add.
  return std::log(0.5 * (std::erf(b * kSqrtHalf) - std::erf(a * kSqrtHalf)));
}

namespace {

// parzen_log_norm over strided means and widths: element (k, j) at k * k_stride + j * j_stride.
void log_norm_strided(const double* mu, int64_t mu_k, int64_t mu_j, const double* sigma,
                      int64_t s_k, int64_t s_j, int64_t n_comp, int64_t d, const double* low,
                      const double* high, double* out) {
  for (int64_t k = 0; k < n_comp; ++k) {
    // sum of log(sigma) as the log of a product (one log per component, not per dimension),
    // taken whenever the product leaves [1e-150, 1e150] so that it never under- or overflows.
    double acc = -kHalfLog2Pi * static_cast<double>(d), product = 1.0;
    for (int64_t j = 0; j < d; ++j) {
      const double m = mu[k * mu_k + j * mu_j], w = sigma[k * s_k + j * s_j];
      product *= w;
      if (product < 1e-150 || product > 1e150) {
        acc -= std::log(product);
        product = 1.0;
      }
      acc -= normal_log_mass(m, w, low[j], high[j]);
    }
    out[k] = acc - std::log(product);
  }
}


}  // namespace

void parzen_log_norm(const double* mu, const double* sigma, int64_t sigma_stride, int64_t n_comp,
                     int64_t d, const double* low, const double* high, double* out) {
  log_norm_strided(mu, d, 1, sigma, sigma_stride, 1, n_comp, d, low, high, out);
}

void parzen_logpdf(const double* x, int64_t n_cand, int64_t d, const double* mu,
                   const double* sigma, int64_t sigma_stride, const double* log_weights,
                   const double* log_norm, int64_t n_comp, const double* low, const double* high,
                   const int64_t* cat_x, const double* cat_logp, int64_t n_cat, int64_t n_choices,
                   const double* log_extra, int64_t mu_ld, int64_t sigma_ld, int threads,
                   double* out) {
  if (n_cand == 0) return;
  // Per component: its constant term; means and sqrt(1/2)/sigma as (d, n_comp) (transposed
  // unless given so), so that the inner loops run over components with unit stride and
  // vectorise.
  const bool shared = sigma_stride == 0;
  const bool columns = mu_ld > 0;
  const int64_t mu_k = columns ? 1 : d, mu_j = columns ? mu_ld : 1;
  const int64_t s_k = shared ? 0 : (columns ? 1 : d), s_j = columns && !shared ? sigma_ld : 1;
  std::vector<double>& constant = scratch(0, n_comp);
  if (log_norm == nullptr) {
    log_norm_strided(mu, mu_k, mu_j, sigma, s_k, s_j, n_comp, d, low, high, constant.data());
  } else {
    std::copy(log_norm, log_norm + n_comp, constant.begin());
  }
  for (int64_t k = 0; k < n_comp; ++k) constant[k] += log_weights[k];
  const double* mu_t = mu;
  int64_t ld = mu_ld;
  if (!columns) {
    std::vector<double>& buffer = scratch(1, d * n_comp);
    for (int64_t k = 0; k < n_comp; ++k) {
      for (int64_t j = 0; j < d; ++j) buffer[j * n_comp + k] = mu[k * d + j];
    }
    mu_t = buffer.data();
    ld = n_comp;
  }
  std::vector<double>& inv_t = scratch(2, shared ? d : d * n_comp);
  if (shared) {
    for (int64_t j = 0; j < d; ++j) inv_t[j] = kSqrtHalf / sigma[j];
  } else if (columns) {
    for (int64_t j = 0; j < d; ++j) {
      const double* s = sigma + j * sigma_ld;
      double* o = inv_t.data() + j * n_comp;
      for (int64_t k = 0; k < n_comp; ++k) o[k] = kSqrtHalf / s[k];
    }
  } else {
    for (int64_t k = 0; k < n_comp; ++k) {
      for (int64_t j = 0; j < d; ++j) inv_t[j * n_comp + k] = kSqrtHalf / sigma[k * d + j];
    }
  }
  parzen_logpdf_prepared(x, n_cand, d, mu_t, ld, inv_t.data(), shared ? 0 : n_comp,
                         constant.data(), n_comp, low, high, cat_x, cat_logp, n_cat, n_choices,
                         log_extra, threads, out);
}

void parzen_logpdf_prepared(const double* x, int64_t n_cand, int64_t d, const double* mu_t,
                            int64_t ld, const double* inv, int64_t inv_ld,
                            const double* constant, int64_t n_comp, const double* low,
                            const double* high, const int64_t* cat_x, const double* cat_logp,
                            int64_t n_cat, int64_t n_choices, const double* log_extra,
                            int threads, double* out) {
  if (n_cand == 0) return;
  const bool shared = inv_ld == 0;
  const int64_t work = n_cand * n_comp * std::max<int64_t>(d + n_cat, 1);
  const int team = work < kParallelWork ? 1 : (threads > 0 ? threads : omp_get_max_threads());

  // Per chunk: where the kernel reads it (the last chunk from a padded copy) and the bounds
  // that let a block skip it (see score_blocks).
  const int64_t n_chunks = (n_comp + kChunk - 1) / kChunk;
  std::vector<ChunkBound> bounds(n_chunks);
  std::vector<ChunkView> views(n_chunks);
  std::vector<double>& tail = scratch(3, (2 * std::max<int64_t>(d, 1) + 1) * kChunk);
  for (int64_t c = 0; c < n_chunks; ++c) {
    const int64_t k0 = c * kChunk, k1 = std::min(n_comp, k0 + kChunk), width = k1 - k0;
    ChunkBound b{-kInf, kInf, -kInf, kInf};
    for (int64_t k = k0; k < k1; ++k) {
      if (constant[k] == -kInf) continue;
      b.c_max = std::max(b.c_max, constant[k]);
      if (d > 0) {
        b.lo = std::min(b.lo, mu_t[k]);
        b.hi = std::max(b.hi, mu_t[k]);
        b.inv_min = std::min(b.inv_min, shared ? inv[0] : inv[k]);
      }
    }
    bounds[c] = b;
    const int64_t groups = (width + kGroup - 1) / kGroup;
    if (width == groups * kGroup) {
      views[c] = {mu_t + k0, ld, shared ? inv : inv + k0, inv_ld, constant + k0, groups};
    } else {  // padded: components with constant -inf (terms -inf), means and widths 0
      double* m = tail.data();
      double* w = m + d * kChunk;
      double* k_const = w + d * kChunk;
      std::fill(tail.begin(), tail.begin() + (2 * d + 1) * kChunk, 0.0);
      for (int64_t j = 0; j < d; ++j) {
        std::copy(mu_t + j * ld + k0, mu_t + j * ld + k1, m + j * kChunk);
        if (!shared) {
          std::copy(inv + j * inv_ld + k0, inv + j * inv_ld + k1, w + j * kChunk);
        }
      }
      std::fill(k_const, k_const + kChunk, -kInf);
      std::copy(constant + k0, constant + k1, k_const);
      views[c] = {m, kChunk, shared ? inv : w, kChunk, k_const, groups};
    }
  }
  // The categorical log-probabilities can add at most this much to a term.
  double cat_bound = 0.0;
  for (int64_t c = 0; c < n_cat; ++c) {
    double most = 0.0;
    for (int64_t k = 0; k < n_comp; ++k) {
      const double* row = cat_logp + (k * n_cat + c) * n_choices;
      for (int64_t v = 0; v < n_choices; ++v) most = std::max(most, row[v]);
    }
    cat_bound += most;
  }

  // Each candidate keeps a running log-sum-exp (its largest term so far and the sum of
  // exp(term - largest)), rescaled when a chunk raises the largest. The extra term, when given,
  // starts it. Candidates go in blocks of kBlock in ascending order of their first coordinate,
  // so that a block's candidates tend to skip the same chunks.
  std::vector<double> top_all(n_cand, -kInf), sum_all(n_cand, 0.0);
  std::vector<char> inside_all(n_cand);
  std::vector<int64_t> order(n_cand);
  for (int64_t i = 0; i < n_cand; ++i) {
    const double* xi = x + i * d;
    bool inside = true;
    for (int64_t j = 0; j < d; ++j) inside = inside && xi[j] >= low[j] && xi[j] <= high[j];
    inside_all[i] = inside;
    order[i] = i;
    if (log_extra != nullptr && log_extra[i] > -kInf) {
      top_all[i] = log_extra[i];
      sum_all[i] = 1.0;
    }
  }
  if (d > 0) {
    // (NaN first coordinates last: such candidates are outside and score -inf)
    auto key = [x, d](int64_t i) { return x[i * d] == x[i * d] ? x[i * d] : kInf; };
    std::stable_sort(order.begin(), order.end(),
                     [&key](int64_t a, int64_t b) { return key(a) < key(b); });
  }
  const int64_t n_blocks = (n_cand + kBlock - 1) / kBlock;

#pragma omp parallel num_threads(team)
  {
    const int n_threads = omp_get_num_threads(), me = omp_get_thread_num();
    const int64_t first = n_blocks * me / n_threads, last = n_blocks * (me + 1) / n_threads;
    score_blocks(first, last, order.data(), n_cand, x, d, views.data(), bounds.data(), n_chunks,
                 shared, cat_bound, cat_x, cat_logp, n_cat, n_choices, n_comp, log_extra,
                 top_all.data(), sum_all.data());
  }

  for (int64_t i = 0; i < n_cand; ++i) {
    out[i] = !inside_all[i] || top_all[i] == -kInf ? -kInf : top_all[i] + std::log(sum_all[i]);
  }
}

int64_t neighbour_bandwidths(const int64_t* sorted_rows, const double* sorted_vals,
                             int64_t n_sorted, const int32_t* position, int64_t n_rows, int64_t n,
                             double low, double high, bool consider_endpoints, double minimum,
                             double maximum, double* out, double* values, double* cache,
                             int64_t cache_stride, char* stale) {
  if (n <= 0) return 0;
  // One pass over the sorted observations: when member m is found, member m - 1 has both of
  // its neighbours and gets its width.
  int64_t m = 0;
  int64_t prev_pos = -1, prev_row = -1;
  double prev_val = 0.0, prev_gap = 0.0;  // value of member m - 1, its gap to member m - 2
  auto emit = [&](int64_t p, int64_t row, double left, double right) {
    const double width = std::min(std::max(std::max(left, right), minimum), maximum);
    out[p] = width;
    if (cache != nullptr) {
      double& kept = cache[row * cache_stride];
      if (kept != width) {  // NaN (never computed) counts as changed
        kept = width;
        stale[p] = 1;
      }
    }
  };
  for (int64_t s = 0; s < n_sorted && m < n; ++s) {
    const int64_t row = sorted_rows[s];
    if (row < 0 || row >= n_rows) continue;
    const int64_t p = position[row];
    if (p < 0) continue;
    const double v = sorted_vals[s];
    if (values != nullptr) values[p] = v;
    if (m == 0) {
      prev_gap = v - low;
    } else {
      const double gap = v - prev_val;
      // member m - 1: left gap prev_gap (for the first member: the bound, or its right gap)
      const double left = m == 1 && !consider_endpoints ? gap : prev_gap;
      emit(prev_pos, prev_row, left, gap);
      prev_gap = gap;
    }
    prev_pos = p;
    prev_row = row;
    prev_val = v;
    ++m;
  }
  if (m > 0) {  // the last member: its right neighbour is the bound, or its left gap
    const double right = m > 1 && !consider_endpoints ? prev_gap : high - prev_val;
    emit(prev_pos, prev_row, prev_gap, right);
  }
  return m;
}

void sorted_bandwidths(const double* values, int64_t p, int64_t n, double low, double high,
                       bool consider_endpoints, double minimum, double maximum, double* out) {
  if (n <= 0) return;
  std::vector<int64_t> order(n);
  for (int64_t j = 0; j < p; ++j) {
    const double* v = values + j * n;
    for (int64_t i = 0; i < n; ++i) order[i] = i;
    // Ties keep their index order, as the rows of equal values do in the sorted lists.
    std::stable_sort(order.begin(), order.end(), [v](int64_t a, int64_t b) { return v[a] < v[b]; });
    double* o = out + j * n;
    for (int64_t i = 0; i < n; ++i) {
      const double x = v[order[i]];
      double left = x - (i > 0 ? v[order[i - 1]] : low);
      double right = (i + 1 < n ? v[order[i + 1]] : high) - x;
      if (!consider_endpoints && n > 1) {
        if (i == 0) left = right;
        if (i == n - 1) right = left;
      }
      o[order[i]] = std::min(std::max(std::max(left, right), minimum), maximum);
    }
  }
}

// ---- NeighbourWidths: g's bandwidths kept between asks ---------------------------------------

NeighbourWidths::NeighbourWidths(int64_t p, bool consider_endpoints, bool by_row)
    : p_(p), ends_(consider_endpoints), by_row_(by_row), low_(p, 0.0), high_(p, 1.0) {
  if (p < 1) throw std::invalid_argument("NeighbourWidths needs at least one parameter");
}

// The width of the member at sorted position s of column c (the rule of neighbour_bandwidths,
// with the same operations so that the result is the same double).
double NeighbourWidths::width_at(const Column& c, int64_t s, int64_t n, int64_t n_rows,
                                 double minimum) const {
  const double v = c.vals[s];
  int64_t sp = s - 1;
  while (sp >= 0 && !member(c.rows[sp], n_rows)) --sp;
  int64_t sn = s + 1;
  while (sn < c.size && !member(c.rows[sn], n_rows)) ++sn;
  const bool has_prev = sp >= 0, has_next = sn < c.size;
  double left = has_prev ? v - c.vals[sp] : v - 0.0;
  double right = has_next ? c.vals[sn] - v : 1.0 - v;
  if (!ends_ && n > 1) {
    if (!has_prev) left = right;
    if (!has_next) right = left;
  }
  return std::min(std::max(std::max(left, right), minimum), 1.0);
}

double NeighbourWidths::norm_of(int64_t k) const {
  double out;
  log_norm_strided(mu_.data() + k, 1, cap_, sigma_.data() + k, 1, cap_, 1, p_, low_.data(),
                   high_.data(), &out);
  return out;
}

namespace {

// A capacity (the stride between dimensions, in doubles) of at least n that is an odd multiple
// of 8: rows start on cache lines, and the rows of consecutive dimensions fall in different sets
// of the L1 cache. A power-of-two stride maps all of them to one set, and the scoring kernel,
// which reads every dimension of a chunk of components, ran at half speed (measured: 25
// against 12 cycles per step at a stride of 8,192).
int64_t good_stride(int64_t n) {
  int64_t cap = (n + 7) / 8 * 8;
  if ((cap / 8) % 2 == 0) cap += 8;
  return cap;
}

}  // namespace

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define AIRDA_PARZEN_SCREEN 1
namespace {

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

// Per 8-bit mask, the positions of its set bits, packed to the front: the indices of the
// components a screen keeps are written eight at a time without a branch per component (a
// branch per kept component mispredicts often enough to cost more than the screen itself).
struct PackTable {
  alignas(32) int32_t at[256][8];
  PackTable() {
    for (int m = 0; m < 256; ++m) {
      int n = 0;
      for (int b = 0; b < 8; ++b) {
        if (m & (1 << b)) at[m][n++] = b;
      }
      while (n < 8) at[m][n++] = 0;
    }
  }
};
const PackTable kPack;

// One chunk of kChunk components against kBlock candidates in single precision: sixteen
// components (two vectors of eight) by kBlock candidates a step, twice the components of a
// double-precision step; the terms into t[b * kChunk + k] and each candidate's largest into
// top[b].
__attribute__((target("avx2,fma"))) inline void screen_chunk(const float* const* xb, int64_t d,
                                                             const float* m, const float* s,
                                                             int64_t ld, const float* c, float* t,
                                                             float* top) {
  v8f most[kBlock];
  for (int b = 0; b < kBlock; ++b) most[b] = v8f{} - std::numeric_limits<float>::infinity();
  for (int64_t q = 0; q < kChunk; q += 16) {
    v8f lo[kBlock], hi[kBlock], c_lo, c_hi;
    std::memcpy(&c_lo, c + q, sizeof(v8f));
    std::memcpy(&c_hi, c + q + 8, sizeof(v8f));
    for (int b = 0; b < kBlock; ++b) {
      lo[b] = c_lo;
      hi[b] = c_hi;
    }
    for (int64_t j = 0; j < d; ++j) {
      v8f m_lo, m_hi, s_lo, s_hi;
      std::memcpy(&m_lo, m + j * ld + q, sizeof(v8f));
      std::memcpy(&m_hi, m + j * ld + q + 8, sizeof(v8f));
      std::memcpy(&s_lo, s + j * ld + q, sizeof(v8f));
      std::memcpy(&s_hi, s + j * ld + q + 8, sizeof(v8f));
      for (int b = 0; b < kBlock; ++b) {
        const float xj = xb[b][j];
        const v8f z_lo = (xj - m_lo) * s_lo, z_hi = (xj - m_hi) * s_hi;
        lo[b] -= z_lo * z_lo;
        hi[b] -= z_hi * z_hi;
      }
    }
    for (int b = 0; b < kBlock; ++b) {
      most[b] = most[b] > lo[b] ? most[b] : lo[b];
      most[b] = most[b] > hi[b] ? most[b] : hi[b];
      std::memcpy(t + b * kChunk + q, &lo[b], sizeof(v8f));
      std::memcpy(t + b * kChunk + q + 8, &hi[b], sizeof(v8f));
    }
  }
  for (int b = 0; b < kBlock; ++b) {
    float v = most[b][0];
    for (int i = 1; i < 8; ++i) v = std::max(v, most[b][i]);
    top[b] = v;
  }
}

// The arguments of screened_logpdf.
struct Screened {
  const double* x;
  int64_t n_cand, p, n, ld;
  const float *mu32, *inv32;      // (p, ld) single-precision copies
  const double *mu, *inv, *constant;  // (p, ld), (p, ld), (n,)
  const double* log_extra;
};

// parzen_logpdf of a mixture held as NeighbourWidths holds it, without categorical dimensions,
// in one pass over the components a chunk at a time: every term in single precision, then, per
// candidate, the components within kSkip + kScreenMargin of its largest screened term so far
// (about 2.5% of them in a long 10-D study) in double precision, as the dense kernel computes
// them, while the chunk is in cache; then the log-sum-exp of those, the terms more than kSkip
// below the largest left out (exp_above). Candidates outside [0, 1]^p score -inf.
__attribute__((target("avx2,fma"))) void screened_logpdf(const Screened& a, int threads,
                                                          double* out) {
  const int64_t p = a.p, n = a.n, ld = a.ld, n_cand = a.n_cand;
  const float kFloorGap = static_cast<float>(kSkip + kScreenMargin);
  const int64_t n_chunks = (n + kChunk - 1) / kChunk;
  const int64_t row = n_chunks * kChunk;
  std::vector<float> c32(row, -std::numeric_limits<float>::infinity());
  for (int64_t k = 0; k < n; ++k) c32[k] = static_cast<float>(a.constant[k]);
  // The last chunk from a padded copy (means and widths 0, constants -inf).
  const int64_t k_last = (n_chunks - 1) * kChunk, last_width = n - k_last;
  std::vector<float> tail(2 * p * kChunk, 0.0f);
  for (int64_t j = 0; j < p; ++j) {
    std::copy(a.mu32 + j * ld + k_last, a.mu32 + j * ld + n, tail.begin() + j * kChunk);
    std::copy(a.inv32 + j * ld + k_last, a.inv32 + j * ld + n,
              tail.begin() + (p + j) * kChunk);
  }
  std::vector<float> x32(n_cand * p);
  std::vector<char> inside(n_cand);
  for (int64_t i = 0; i < n_cand; ++i) {
    bool in = true;
    for (int64_t j = 0; j < p; ++j) {
      const double v = a.x[i * p + j];
      in = in && v >= 0.0 && v <= 1.0;
      x32[i * p + j] = static_cast<float>(v);
    }
    inside[i] = in;
  }
  const int64_t n_blocks = (n_cand + kBlock - 1) / kBlock;
  const int64_t work = n_cand * n * p / 2;
  const int team = work < kParallelWork ? 1 : (threads > 0 ? threads : omp_get_max_threads());
#pragma omp parallel num_threads(team)
  {
    const int n_threads = omp_get_num_threads(), me = omp_get_thread_num();
    const int64_t mine = n_blocks * me / n_threads, mine_end = n_blocks * (me + 1) / n_threads;
    // At most kScreenBlocks blocks of candidates at a time: the kept terms' buffer holds one
    // row of n per candidate.
    for (int64_t first = mine; first < mine_end; first += kScreenBlocks) {
    const int64_t last = std::min(mine_end, first + kScreenBlocks);
    const int64_t lo_cand = first * kBlock;
    const int64_t n_local = std::max<int64_t>(0, std::min(n_cand, last * kBlock) - lo_cand);
    alignas(64) float t[kBlock * kChunk];
    alignas(32) int32_t kept[kChunk + 8];
    std::vector<float> top(n_local, -std::numeric_limits<float>::infinity());
    std::vector<double> best(n_local, -kInf);
    std::vector<int64_t> count(n_local, 0);
    // The exact terms kept, per candidate (at most one per component).
    std::vector<double>& terms = scratch(4, n_local * row);
    for (int64_t i = 0; i < n_local; ++i) {
      const double e = a.log_extra != nullptr ? a.log_extra[lo_cand + i] : -kInf;
      if (e > -kInf) {
        best[i] = e;
        top[i] = static_cast<float>(e);
      }
    }
    for (int64_t chunk = 0; chunk < n_chunks; ++chunk) {
      const int64_t k0 = chunk * kChunk;
      const bool padded = chunk == n_chunks - 1;
      const float* m = padded ? tail.data() : a.mu32 + k0;
      const float* s = padded ? tail.data() + p * kChunk : a.inv32 + k0;
      const int64_t m_ld = padded ? kChunk : ld;
      for (int64_t blk = first; blk < last; ++blk) {
        const float* xb[kBlock];
        float chunk_top[kBlock];
        const int nb = static_cast<int>(std::min<int64_t>(kBlock, n_cand - blk * kBlock));
        for (int b = 0; b < kBlock; ++b) {
          xb[b] = x32.data() + (blk * kBlock + std::min(b, nb - 1)) * p;
        }
        screen_chunk(xb, p, m, s, m_ld, c32.data() + k0, t, chunk_top);
        for (int b = 0; b < nb; ++b) {
          const int64_t local = blk * kBlock + b - lo_cand;
          top[local] = std::max(top[local], chunk_top[b]);
          const v8f floor = v8f{} + (top[local] - kFloorGap);
          // The components kept, packed (padding components have terms -inf: never kept).
          const float* tb = t + b * kChunk;
          int64_t n_kept = 0;
          for (int64_t g = 0; g < kChunk; g += 8) {
            v8f v;
            std::memcpy(&v, tb + g, sizeof(v8f));
            const v8i over = v >= floor;
            const unsigned mask =
                static_cast<unsigned>(__builtin_ia32_movmskps256(reinterpret_cast<v8f>(over)));
            v8i at;
            std::memcpy(&at, kPack.at[mask], sizeof(v8i));
            at += static_cast<int32_t>(g);
            std::memcpy(kept + n_kept, &at, sizeof(v8i));
            n_kept += __builtin_popcount(mask);
          }
          // Their terms in double precision.
          const double* xi = a.x + (lo_cand + local) * p;
          double* dst = terms.data() + local * row + count[local];
          double most = best[local];
          for (int64_t i = 0; i < n_kept; ++i) {
            const int64_t k = k0 + kept[i];
            double acc = a.constant[k];
            for (int64_t j = 0; j < p; ++j) {
              const double z = (xi[j] - a.mu[k + j * ld]) * a.inv[k + j * ld];
              acc -= z * z;
            }
            dst[i] = acc;
            most = std::max(most, acc);
          }
          best[local] = most;
          count[local] += n_kept;
        }
      }
    }
    for (int64_t local = 0; local < n_local; ++local) {
      const int64_t id = lo_cand + local;
      const double most = best[local];
      if (!inside[id] || most == -kInf) {
        out[id] = -kInf;
        continue;
      }
      const double e = a.log_extra != nullptr ? a.log_extra[id] : -kInf;
      double add = e > -kInf ? std::exp(e - most) : 0.0;
      const double* kept_terms = terms.data() + local * row;
      const int64_t n_kept = count[local];
#pragma omp simd reduction(+ : add)
      for (int64_t i = 0; i < n_kept; ++i) add += exp_above(kept_terms[i] - most);
      out[id] = most + std::log(add);
    }
    }
  }
}

}  // namespace
#endif

void NeighbourWidths::refresh(int64_t k) {
  norm_[k] = norm_of(k);
  for (int64_t j = 0; j < p_; ++j) {
    const int64_t at = k + j * cap_;
    inv_[at] = kSqrtHalf / sigma_[at];
    mu32_[at] = static_cast<float>(mu_[at]);
    inv32_[at] = static_cast<float>(inv_[at]);
    inv_max_ = std::max(inv_max_, inv_[at]);
  }
}

void NeighbourWidths::logpdf(const double* x, int64_t n_cand, const double* log_w,
                             const int64_t* cat_x, const double* cat_logp, int64_t n_cat,
                             int64_t n_choices, const double* log_extra, int threads,
                             double* out) const {
  if (n_ <= 0) throw std::invalid_argument("the state has no components (update it first)");
  constant_.resize(n_);
  for (int64_t k = 0; k < n_; ++k) constant_[k] = norm_[k] + log_w[perm_[k]];
#ifdef AIRDA_PARZEN_SCREEN
  if (n_cat == 0 && p_ >= kScreenMinDim && p_ <= kScreenMaxDim && inv_max_ <= kScreenInvMax &&
      has_avx2_fma()) {
    const Screened args{x,           n_cand,       p_,          n_,
                        cap_,        mu32_.data(), inv32_.data(), mu_.data(),
                        inv_.data(), constant_.data(), log_extra};
    screened_logpdf(args, threads, out);
    return;
  }
#endif
  parzen_logpdf_prepared(x, n_cand, p_, mu_.data(), cap_, inv_.data(), cap_, constant_.data(), n_,
                         low_.data(), high_.data(), cat_x, cat_logp, n_cat, n_choices, log_extra,
                         threads, out);
}

void NeighbourWidths::reserve(int64_t need) {
  if (need <= cap_) return;
  const int64_t cap = good_stride(std::max<int64_t>({need, 2 * cap_, 64}));
  std::vector<double> mu(p_ * cap), sigma(p_ * cap), inv(p_ * cap);
  std::vector<float> mu32(p_ * cap), inv32(p_ * cap);
  for (int64_t j = 0; j < p_; ++j) {
    std::copy(mu_.begin() + j * cap_, mu_.begin() + j * cap_ + n_, mu.begin() + j * cap);
    std::copy(sigma_.begin() + j * cap_, sigma_.begin() + j * cap_ + n_, sigma.begin() + j * cap);
    std::copy(inv_.begin() + j * cap_, inv_.begin() + j * cap_ + n_, inv.begin() + j * cap);
    std::copy(mu32_.begin() + j * cap_, mu32_.begin() + j * cap_ + n_, mu32.begin() + j * cap);
    std::copy(inv32_.begin() + j * cap_, inv32_.begin() + j * cap_ + n_, inv32.begin() + j * cap);
  }
  mu_.swap(mu);
  sigma_.swap(sigma);
  inv_.swap(inv);
  mu32_.swap(mu32);
  inv32_.swap(inv32);
  norm_.resize(cap);
  comp_row_.resize(cap);
  perm_.resize(cap);
  stale_.resize(cap, 0);
  cap_ = cap;
}

void NeighbourWidths::full(const Column* columns, int64_t n, int64_t n_rows, double minimum) {
  valid_ = false;
  // The previous state stays for reusing the normalisers of components whose means and widths
  // are unchanged (a normaliser is a function of those alone).
  // The spare buffers keep their memory from one full pass to the next (fresh large vectors
  // cost page faults).
  std::vector<double>& old_mu = spare_mu_;
  std::vector<double>& old_sigma = spare_sigma_;
  std::vector<double>& old_norm = spare_norm_;
  std::vector<int32_t>& old_pos = spare_pos_;
  old_mu.swap(mu_);
  old_sigma.swap(sigma_);
  old_norm.swap(norm_);
  old_pos.swap(pos_);
  const int64_t old_cap = cap_;
  const int64_t cap = good_stride(std::max<int64_t>({n, cap_, 64}));
  mu_.resize(p_ * cap);
  sigma_.resize(p_ * cap);
  inv_.resize(p_ * cap);
  mu32_.resize(p_ * cap);
  inv32_.resize(p_ * cap);
  norm_.resize(cap);
  comp_row_.resize(cap);
  perm_.resize(cap);
  stale_.assign(cap, 0);
  cap_ = cap;
  n_ = 0;
  pos_.assign(n_rows, -1);
  const Column& first = columns[0];
  int64_t found = 0;
  if (by_row_) {  // the members in ascending order of row
    for (int64_t r = 0; r < n_rows && found < n; ++r) {
      if (rank_[r] >= 0) {
        pos_[r] = static_cast<int32_t>(found);
        comp_row_[found++] = r;
      }
    }
  } else {  // in ascending order of the first parameter
    for (int64_t s = 0; s < first.size && found < n; ++s) {
      const int64_t r = first.rows[s];
      if (member(r, n_rows) && pos_[r] < 0) {
        pos_[r] = static_cast<int32_t>(found);
        comp_row_[found++] = r;
      }
    }
  }
  for (int64_t j = 0; j < p_ && found == n; ++j) {
    found = neighbour_bandwidths(columns[j].rows, columns[j].vals, columns[j].size, pos_.data(),
                                 n_rows, n, 0.0, 1.0, ends_, minimum, 1.0,
                                 sigma_.data() + j * cap, mu_.data() + j * cap, nullptr, 0,
                                 nullptr);
  }
  if (found != n) {
    pos_.assign(n_rows, -1);
    throw std::invalid_argument("some member row is missing from a parameter's sorted rows");
  }
  n_ = n;
  inv_max_ = 0.0;
  for (int64_t j = 0; j < p_; ++j) {
    const double* w = sigma_.data() + j * cap;
    const double* m = mu_.data() + j * cap;
    double* o = inv_.data() + j * cap;
    float* m32 = mu32_.data() + j * cap;
    float* o32 = inv32_.data() + j * cap;
    for (int64_t k = 0; k < n; ++k) {
      o[k] = kSqrtHalf / w[k];
      m32[k] = static_cast<float>(m[k]);
      o32[k] = static_cast<float>(o[k]);
      inv_max_ = std::max(inv_max_, o[k]);
    }
  }
  for (int64_t k = 0; k < n; ++k) {
    const int64_t r = comp_row_[k];
    const int64_t o = r < static_cast<int64_t>(old_pos.size()) ? old_pos[r] : -1;
    bool same = o >= 0;
    for (int64_t j = 0; j < p_ && same; ++j) {
      same = mu_[k + j * cap] == old_mu[o + j * old_cap] &&
             sigma_[k + j * cap] == old_sigma[o + j * old_cap];
    }
    if (same) {
      norm_[k] = old_norm[o];
    } else {
      norm_[k] = norm_of(k);
      ++n_norms_;
    }
  }
  minimum_ = minimum;
  n_rows_ = n_rows;
  valid_ = true;
  ++n_full_;
}

bool NeighbourWidths::incremental(const Column* columns, const double* const* value, int64_t n,
                                  int64_t n_rows, double minimum) {
  const int64_t n_old = n_, n_add = static_cast<int64_t>(added_.size());
  const int64_t n_changed = n_add + static_cast<int64_t>(removed_.size());
  pos_.resize(n_rows, -1);  // rows new since the last update were not members
  // 1. Where every changed row sits in every column, and the members whose widths may move:
  // the changed row's nearest members on either side (and an added row itself).
  std::vector<int64_t> loc(n_changed * p_);
  std::vector<std::pair<int64_t, int64_t>> marks;  // (column, sorted position)
  marks.reserve(3 * n_changed * p_);
  for (int64_t i = 0; i < n_changed; ++i) {
    const bool add = i < n_add;
    const int64_t row = add ? added_[i] : removed_[i - n_add];
    for (int64_t j = 0; j < p_; ++j) {
      const Column& c = columns[j];
      const double v = add ? value[j][row] : mu_[pos_[row] + j * cap_];
      int64_t s = std::lower_bound(c.vals, c.vals + c.size, v) - c.vals;
      while (s < c.size && c.vals[s] == v && c.rows[s] != row) ++s;
      if (s >= c.size || !(c.vals[s] == v) || c.rows[s] != row) return false;
      loc[i * p_ + j] = s;
      int64_t sp = s - 1;
      while (sp >= 0 && !member(c.rows[sp], n_rows)) --sp;
      if (sp >= 0) marks.emplace_back(j, sp);
      int64_t sn = s + 1;
      while (sn < c.size && !member(c.rows[sn], n_rows)) ++sn;
      if (sn < c.size) marks.emplace_back(j, sn);
      if (add) marks.emplace_back(j, s);
    }
  }
  // 2. The new component order: kept components keep theirs; an added row goes after the
  // nearest kept member before it in the first column (added rows with the same one in
  // column order), or by row: after the kept member of the next lower row (added rows with
  // the same one in row order; a new trial's row joins at the end and nothing shifts).
  struct Add {
    int64_t anchor, s0, index;
  };
  std::vector<Add> adds(n_add);
  const Column& first = columns[0];
  auto kept = [&](int64_t r) {
    return r >= 0 && r < n_rows && r < static_cast<int64_t>(pos_.size()) && pos_[r] >= 0 &&
           rank_[r] >= 0;
  };
  for (int64_t i = 0; i < n_add; ++i) {
    int64_t anchor = -1, key = loc[i * p_];
    if (by_row_) {
      key = added_[i];
      for (int64_t r = key - 1; r >= 0; --r) {
        if (kept(r)) {
          anchor = pos_[r];
          break;
        }
      }
    } else {
      for (int64_t k = key - 1; k >= 0; --k) {
        if (kept(first.rows[k])) {
          anchor = pos_[first.rows[k]];
          break;
        }
      }
    }
    adds[i] = {anchor, key, i};
  }
  std::sort(adds.begin(), adds.end(), [](const Add& a, const Add& b) {
    return a.anchor != b.anchor ? a.anchor < b.anchor : a.s0 < b.s0;
  });
  std::vector<int64_t> gone(removed_.size());
  for (size_t i = 0; i < removed_.size(); ++i) gone[i] = pos_[removed_[i]];
  std::sort(gone.begin(), gone.end());
  int64_t start = n_old;  // components before it keep their index
  if (!gone.empty()) start = gone.front();
  if (!adds.empty()) start = std::min(start, adds.front().anchor + 1);
  // Runs of kept components that move by the same offset, and the new index of each added row.
  struct Run {
    int64_t from, to, len;
  };
  std::vector<Run> runs;
  std::vector<int64_t> at(n_add);
  size_t a = 0, g = 0;
  int64_t t = start;
  while (a < adds.size() && adds[a].anchor < start) at[adds[a++].index] = t++;
  for (int64_t c = start; c < n_old; ++c) {
    if (g < gone.size() && gone[g] == c) {
      ++g;
    } else {
      if (!runs.empty() && runs.back().from + runs.back().len == c &&
          runs.back().to + runs.back().len == t) {
        ++runs.back().len;
      } else {
        runs.push_back({c, t, 1});
      }
      ++t;
    }
    while (a < adds.size() && adds[a].anchor == c) at[adds[a++].index] = t++;
  }
  if (t != n || a != adds.size()) return false;  // inconsistent: let a full pass decide
  reserve(n);
  // Moves in place: runs that move left in ascending order, then those that move right in
  // descending order (neither can overwrite a run not yet moved).
  auto shift = [&runs](auto* base) {
    using T = std::remove_pointer_t<decltype(base)>;
    for (const Run& r : runs) {
      if (r.to < r.from) std::memmove(base + r.to, base + r.from, r.len * sizeof(T));
    }
    for (auto it = runs.rbegin(); it != runs.rend(); ++it) {
      if (it->to > it->from) std::memmove(base + it->to, base + it->from, it->len * sizeof(T));
    }
  };
  for (int64_t j = 0; j < p_; ++j) {
    shift(mu_.data() + j * cap_);
    shift(sigma_.data() + j * cap_);
    shift(inv_.data() + j * cap_);
    shift(mu32_.data() + j * cap_);
    shift(inv32_.data() + j * cap_);
  }
  shift(norm_.data());
  shift(comp_row_.data());
  std::vector<int64_t> redo;
  for (int64_t i = 0; i < n_add; ++i) {
    const int64_t k = at[i];
    comp_row_[k] = added_[i];
    for (int64_t j = 0; j < p_; ++j) {
      mu_[k + j * cap_] = columns[j].vals[loc[i * p_ + j]];
      sigma_[k + j * cap_] = std::numeric_limits<double>::quiet_NaN();
    }
    stale_[k] = 1;
    redo.push_back(k);
  }
  n_ = n;
  for (const int64_t r : removed_) pos_[r] = -1;
  for (int64_t k = start; k < n; ++k) pos_[comp_row_[k]] = static_cast<int32_t>(k);
  // 3. The widths of the marked members; the normalisers of those whose widths moved.
  for (const auto& [j, s] : marks) {
    const int64_t k = pos_[columns[j].rows[s]];
    const double w = width_at(columns[j], s, n, n_rows, minimum);
    double& kept = sigma_[k + j * cap_];
    if (!(kept == w)) {
      kept = w;
      if (!stale_[k]) {
        stale_[k] = 1;
        redo.push_back(k);
      }
    }
  }
  for (const int64_t k : redo) {
    refresh(k);
    stale_[k] = 0;
  }
  n_norms_ += static_cast<int64_t>(redo.size());
  n_rows_ = n_rows;
  ++n_incremental_;
  return true;
}

int NeighbourWidths::update(const Column* columns, const double* const* value,
                            const int64_t* members, int64_t n, int64_t n_rows, double minimum,
                            int64_t max_changes) {
  if (n_rows >= (int64_t{1} << 31)) throw std::invalid_argument("n_rows must be below 2**31");
  rank_.assign(n_rows, -1);
  for (int64_t i = 0, prev = -1; i < n; ++i) {
    const int64_t r = members[i];
    if (r <= prev || r >= n_rows) {
      throw std::invalid_argument("members must be ascending rows in [0, n_rows)");
    }
    rank_[r] = static_cast<int32_t>(i);
    prev = r;
  }
  int result = 0;
  bool done = false;
  if (valid_ && minimum == minimum_ && n >= 2 && n_ >= 2 && n_rows >= n_rows_) {
    added_.clear();
    removed_.clear();
    bool few = true;
    for (int64_t r = 0; r < n_rows && few; ++r) {
      const bool was = r < n_rows_ && pos_[r] >= 0, is = rank_[r] >= 0;
      if (was != is) {
        (is ? added_ : removed_).push_back(r);
        few = static_cast<int64_t>(added_.size() + removed_.size()) <= max_changes;
      }
    }
    if (few && added_.empty() && removed_.empty()) {
      pos_.resize(n_rows, -1);
      n_rows_ = n_rows;
      result = 2;
      done = true;
    } else if (few && incremental(columns, value, n, n_rows, minimum)) {
      result = 1;
      done = true;
    }
  }
  if (!done) full(columns, n, n_rows, minimum);
  for (int64_t k = 0; k < n_; ++k) perm_[k] = rank_[comp_row_[k]];
  return result;
}

AIRDA_PARZEN_CLONES
void tpe_default_log_weights(int64_t n, double prior_weight, double* out) {
  // The weights: 1 below 25 observations, else np.linspace(1 / n, 1, n - 25) (start + i * step,
  // the last one exact) and 25 ones; then the prior's; normalised, as logs.
  const int64_t m = n < 25 ? 0 : n - 25;
  const double start = n > 0 ? 1.0 / static_cast<double>(n) : 0.0;
  const double step = m > 1 ? (1.0 - start) / static_cast<double>(m - 1) : 0.0;
  double ramp = 0.0;
#pragma omp simd reduction(+ : ramp)
  for (int64_t i = 0; i < m; ++i) {
    out[i] = start + static_cast<double>(i) * step;
    ramp += out[i];
  }
  if (m > 1) {
    ramp += 1.0 - out[m - 1];
    out[m - 1] = 1.0;
  }
  for (int64_t i = m; i < n; ++i) out[i] = 1.0;
  out[n] = prior_weight;
  const double inv = 1.0 / (ramp + static_cast<double>(n - m) + prior_weight);
#pragma omp simd
  for (int64_t i = 0; i <= n; ++i) out[i] *= inv;
  log_positive(out, n + 1, out);
}


int64_t tpe_truncated_draws(double* x, const double* mu, const double* sigma, int64_t size,
                            const double* z, int64_t n_z) {
  if (n_z < size) return -1;
  std::vector<int64_t> bad, left;
  for (int64_t i = 0; i < size; ++i) {
    x[i] = mu[i] + sigma[i] * z[i];
    if (x[i] < 0.0 || x[i] > 1.0) bad.push_back(i);
  }
  int64_t used = size;
  for (int round = 0; round < 100 && !bad.empty(); ++round) {
    if (used + static_cast<int64_t>(bad.size()) > n_z) return -1;
    left.clear();
    for (const int64_t i : bad) {
      const double v = mu[i] + sigma[i] * z[used++];
      x[i] = v;
      if (v < 0.0 || v > 1.0) left.push_back(i);
    }
    bad.swap(left);
  }
  for (int64_t i = 0; i < size; ++i) x[i] = std::min(std::max(x[i], 0.0), 1.0);
  return used;
}

int64_t tpe_propose_numeric(const NeighbourWidths& g, const double* g_log_w, const double* l_mu,
                            int64_t n_l, const double* l_log_w, bool consider_endpoints,
                            double l_minimum, const double* uniform, int64_t k, const double* z,
                            int64_t n_z, const TpeSnap& snap, double prior_const, double* x,
                            double* score) {
  const int64_t p = g.p(), n_g = g.size();
  if (n_l < 1 || n_g < 1 || k < 1) throw std::invalid_argument("l and g need components");
  // l's widths, as the Python path computes them (sorted_bandwidths).
  std::vector<double> l_sigma(p * n_l);
  sorted_bandwidths(l_mu, p, n_l, 0.0, 1.0, consider_endpoints, l_minimum, 1.0, l_sigma.data());
  // The components drawn: rng.choice's inverse CDF over l's weights (the prior last).
  std::vector<double> cdf(n_l + 1);
  double acc = 0.0;
  for (int64_t i = 0; i <= n_l; ++i) cdf[i] = acc += std::exp(l_log_w[i]);
  const double total = cdf[n_l];
  for (double& c : cdf) c /= total;
  std::vector<double> mu(k * p), sigma(k * p);
  for (int64_t i = 0; i < k; ++i) {
    const int64_t comp = std::upper_bound(cdf.begin(), cdf.end(), uniform[i]) - cdf.begin();
    const bool prior = comp >= n_l;
    for (int64_t j = 0; j < p; ++j) {
      mu[i * p + j] = prior ? 0.5 : l_mu[j * n_l + comp];
      sigma[i * p + j] = prior ? 1.0 : l_sigma[j * n_l + comp];
    }
  }
  if (tpe_truncated_draws(x, mu.data(), sigma.data(), k * p, z, n_z) < 0) return -1;
  for (int64_t j = 0; j < p; ++j) {
    const double b = snap.bins[j];
    const bool logint = snap.logint[j] != 0;
    if (!(b > 0.0) && !logint) continue;
    const double lo = snap.lo[j], span = snap.hi[j] - snap.lo[j];
    for (int64_t i = 0; i < k; ++i) {
      double& v = x[i * p + j];
      if (b > 0.0) v = (std::min(std::floor(v * b), b - 1.0) + 0.5) / b;
      if (logint) {
        const double r = std::nearbyint(std::exp(lo + v * span));
        v = (std::log(std::min(std::max(r, snap.low[j]), snap.high[j])) - lo) / span;
      }
    }
  }
  // The prior's log-density, then weighted into each mixture as its last term.
  std::vector<double> extra_l(k), extra_g(k), lower(k);
  for (int64_t i = 0; i < k; ++i) {
    double sq = 0.0;
    for (int64_t j = 0; j < p; ++j) {
      const double dx = x[i * p + j] - 0.5;
      sq += dx * dx;
    }
    const double prior = prior_const - 0.5 * sq;
    extra_l[i] = prior + l_log_w[n_l];
    extra_g[i] = prior + g_log_w[n_g];
  }
  const std::vector<double> low(p, 0.0), high(p, 1.0);
  parzen_logpdf(x, k, p, l_mu, l_sigma.data(), 1, l_log_w, nullptr, n_l, low.data(), high.data(),
                nullptr, nullptr, 0, 0, extra_l.data(), n_l, n_l, 0, lower.data());
  g.logpdf(x, k, g_log_w, nullptr, nullptr, 0, 0, extra_g.data(), 0, score);
  int64_t best = 0;
  for (int64_t i = 0; i < k; ++i) {
    score[i] = lower[i] - score[i];
    // np.argmax: the first largest, a NaN counting as largest.
    if (score[best] == score[best] && (score[i] > score[best] || score[i] != score[i])) best = i;
  }
  return best;
}

}  // namespace airda::cpu
