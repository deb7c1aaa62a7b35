// CPU kernel of the Parzen op: log p(x) of a weighted mixture of products of truncated normals,
// for a batch of candidates, with a log-sum-exp over the components.
//
// The per-component constants (weights, normalisers, sqrt(1/2)/sigma) are computed once (TPE's
// g keeps them between asks, see csrc/strategies/tpe.cpp). The terms are computed densely, four
// candidates by eight components a step with AVX2 and FMA where the CPU has them (each mean and
// width loaded from L1 serves four candidates; the accumulators stay in registers), a chunk of
// 128 components at a time, together with each group of eight's largest term. The log-sum-exp
// keeps, per candidate, the groups within 60 of its largest term so far and takes the
// exponentials once the largest is known, only of the groups still within 60 of it: the
// skipped mass is below n_comp * e^-60 of the total. A block of candidates skips a chunk
// outright when the distance in the first dimension alone puts all of its terms below that
// threshold (decisive in low dimensions, with components sorted by their first coordinate).
#include "airda/parzen.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "airda/parzen_kernel.h"

namespace airda::cpu {

namespace parzen_kernel {

std::vector<double>& scratch(int slot, size_t size) {
  thread_local std::vector<double> buffers[6];
  std::vector<double>& v = buffers[slot];
  if (v.size() < size) v.resize(size);
  return v;
}

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

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
bool has_avx2_fma() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return has;
}
#endif

}  // namespace parzen_kernel

using namespace parzen_kernel;

namespace {

// log Phi(z), the log of the standard normal CDF, accurate far into the lower tail: erfc while it
// does not underflow, then the asymptotic series of Mills' ratio.
double log_ndtr(double z) {
  if (z > -35.0) return std::log(0.5 * std::erfc(-z * kSqrtHalf));
  const double r = 1.0 / (z * z);
  const double series =
      1.0 - r * (1.0 - 3.0 * r * (1.0 - 5.0 * r * (1.0 - 7.0 * r * (1.0 - 9.0 * r * (1.0 - 11.0 * r)))));
  return -0.5 * z * z - std::log(-z) - kHalfLog2Pi + std::log(series);
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

}  // namespace airda::cpu
