// CPU code of TPE's proposal state (see airda/tpe.h): hyperopt's neighbour bandwidths, g's
// mixture kept between asks (NeighbourWidths) and one whole proposal of a block of numeric
// parameters. The densities are the Parzen op's (csrc/cpu/parzen.cpp), computed by its kernel;
// g scores without categorical dimensions through a single-precision screen instead
// (screened_logpdf): every term in float32, sixteen components a step, then the few within reach
// of the largest in double precision, as the dense kernel computes them.
#include "airda/tpe.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "airda/parzen_kernel.h"

namespace airda::cpu {

using namespace parzen_kernel;

namespace {

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

}  // namespace

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
