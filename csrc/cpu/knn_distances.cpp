// CPU kernel of the knn_distances op: exact k-nearest-neighbour Euclidean distances.
//
// Candidates come from a blocked low-precision product: for a query x and a data row y, centred
// on the data's mean and scaled by a power of two, L = |x|^2 (1 - f) + |y|^2 (1 - f) - 2 x.y
// is a lower bound of the squared distance |x - y|^2 (in the scaled units) once f covers every
// rounding of that path: float32 inputs, norms and d-term products summed in float32 cost at
// most (2d + 9) 2^-24 of |x|^2 + |y|^2, and inputs rounded to bfloat16 (the AVX512_BF16 tile)
// 4 * 2^-9 more; f = (4d + 64) 2^-24 (+ 2^-6 for bfloat16) is twice that. A row can enter a
// query's top-k only if its exact squared distance is below the k-th best so far, hence only if
// L is: every such row is recomputed exactly, in float64, column by column (the order of the
// NumPy reference, no fused multiply-add: the file is built with -ffp-contract=off), so the
// distances equal the reference's bit for bit. Data rows are scanned in ascending order per
// query, so a tie never displaces an earlier (lower) index.
//
// Layout: the data are packed once into blocks of 16 rows (columns interleaved, float32, -2 y);
// each thread takes a chunk of queries (packed in groups of 6) and, when there are few queries,
// a segment of the data, with a sorted top-k per query; the 6 x 32 register tile is picked at
// run time: AVX-512 with bfloat16 dot products, AVX-512 or AVX2/FMA float32, or portable vector
// code (the module itself is built for any x86-64). Memory: the packed data (4 bytes
// per value) plus per-thread chunks; never n x m. Inputs whose magnitude makes the float32
// bound meaningless (above 1e100 after centring) take the direct path: every distance exact.
#include "airda/knn_distances.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace airda::cpu {
namespace {

constexpr int QR = 6;   // queries per register tile
constexpr int DB = 16;  // data rows per register tile (two vectors of 8 floats)
constexpr int64_t kTileBlocks = 64;     // 16-row blocks per cache tile of data (1024 rows)
constexpr int64_t kMaxGroups = 32;      // query groups per chunk (192 queries)
constexpr int64_t kTopkBytes = 1 << 22;  // per-thread top-k budget that sets the chunk size
constexpr double kMaxAbs = 1e100;       // larger centred values take the direct path
constexpr float kInfF = std::numeric_limits<float>::infinity();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int64_t kNoIndex = std::numeric_limits<int64_t>::max();

// ---- the register tiles: 6 queries x 2 blocks of 16 data rows -----------------------------
// qp: the group's queries, column by column (qp[c * QR + r]); yp: two consecutive blocks of -2 y
// (block b at yp[c * DB + v], block b + 1 at yp[(d + c) * DB + v]); ay, ax: the lowered norms
// (ay[0..32) for the two blocks); thr: per query, the float32 threshold (>= the scaled k-th
// best squared distance). mask[r] bit v: L(r, v) < thr[r], v in [0, 32). Returns the OR.
using MicroFn = uint32_t (*)(const float*, const float*, const float*, const float*,
                             const float*, int64_t, uint32_t*);

// GCC/Clang vector types: SSE2 on any x86-64, NEON on ARM.
using v4f = float __attribute__((vector_size(16)));
using v4i = int32_t __attribute__((vector_size(16)));

__attribute__((always_inline)) inline uint32_t block_portable(const float* qp, const float* yp,
                                                              const float* ay, const float* ax,
                                                              const float* thr, int64_t d,
                                                              uint32_t* mask) {
  constexpr int V = DB / 4;
  v4f acc[QR][V];
  v4f ayv[V];
  std::memcpy(ayv, ay, sizeof(ayv));
  for (int r = 0; r < QR; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = ayv[v] + ax[r];
  for (int64_t c = 0; c < d; ++c) {
    v4f y[V];
    std::memcpy(y, yp + c * DB, sizeof(y));
    const float* x = qp + c * QR;
    for (int r = 0; r < QR; ++r)
      for (int v = 0; v < V; ++v) acc[r][v] += x[r] * y[v];
  }
  uint32_t any = 0;
  for (int r = 0; r < QR; ++r) {
    uint32_t bits = 0;
    for (int v = 0; v < V; ++v) {
      const v4i lt = acc[r][v] < thr[r];
      for (int l = 0; l < 4; ++l) bits |= static_cast<uint32_t>(lt[l] != 0) << (4 * v + l);
    }
    mask[r] = bits;
    any |= bits;
  }
  return any;
}

uint32_t micro_portable(const float* qp, const float* yp, const float* ay, const float* ax,
                        const float* thr, int64_t d, uint32_t* mask) {
  uint32_t hi[QR];
  const uint32_t any = block_portable(qp, yp, ay, ax, thr, d, mask) |
                       block_portable(qp, yp + d * DB, ay + DB, ax, thr, d, hi);
  for (int r = 0; r < QR; ++r) mask[r] |= hi[r] << DB;
  return any;
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma"), always_inline)) inline uint32_t block_avx2(const float* qp, const float* yp,
                                                        const float* ay, const float* ax,
                                                        const float* thr, int64_t d,
                                                        uint32_t* mask) {
  const __m256 ay0 = _mm256_loadu_ps(ay);
  const __m256 ay1 = _mm256_loadu_ps(ay + 8);
  __m256 a0[QR], a1[QR];
#pragma GCC unroll 6
  for (int r = 0; r < QR; ++r) {
    const __m256 b = _mm256_broadcast_ss(ax + r);
    a0[r] = _mm256_add_ps(ay0, b);
    a1[r] = _mm256_add_ps(ay1, b);
  }
  for (int64_t c = 0; c < d; ++c) {
    const __m256 y0 = _mm256_loadu_ps(yp + c * DB);
    const __m256 y1 = _mm256_loadu_ps(yp + c * DB + 8);
    const float* x = qp + c * QR;
#pragma GCC unroll 6
    for (int r = 0; r < QR; ++r) {
      const __m256 xr = _mm256_broadcast_ss(x + r);
      a0[r] = _mm256_fmadd_ps(xr, y0, a0[r]);
      a1[r] = _mm256_fmadd_ps(xr, y1, a1[r]);
    }
  }
  uint32_t any = 0;
#pragma GCC unroll 6
  for (int r = 0; r < QR; ++r) {
    const __m256 t = _mm256_broadcast_ss(thr + r);
    const uint32_t lo = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(a0[r], t, _CMP_LT_OQ)));
    const uint32_t hi = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(a1[r], t, _CMP_LT_OQ)));
    mask[r] = lo | (hi << 8);
    any |= mask[r];
  }
  return any;
}

__attribute__((target("avx2,fma"))) uint32_t micro_avx2(const float* qp, const float* yp,
                                                        const float* ay, const float* ax,
                                                        const float* thr, int64_t d,
                                                        uint32_t* mask) {
  uint32_t hi[QR];
  const uint32_t any = block_avx2(qp, yp, ay, ax, thr, d, mask) |
                       block_avx2(qp, yp + d * DB, ay + DB, ax, thr, d, hi);
  for (int r = 0; r < QR; ++r) mask[r] |= hi[r] << DB;
  return any;
}

// One 16-float vector is one block's column: 12 accumulators of 16 lanes, compares into masks.
__attribute__((target("avx512f"))) uint32_t micro_avx512(const float* qp, const float* yp,
                                                         const float* ay, const float* ax,
                                                         const float* thr, int64_t d,
                                                         uint32_t* mask) {
  const __m512 ay0 = _mm512_loadu_ps(ay);
  const __m512 ay1 = _mm512_loadu_ps(ay + DB);
  const float* yp1 = yp + d * DB;
  __m512 a0[QR], a1[QR];
#pragma GCC unroll 6
  for (int r = 0; r < QR; ++r) {
    const __m512 b = _mm512_set1_ps(ax[r]);
    a0[r] = _mm512_add_ps(ay0, b);
    a1[r] = _mm512_add_ps(ay1, b);
  }
  for (int64_t c = 0; c < d; ++c) {
    const __m512 y0 = _mm512_loadu_ps(yp + c * DB);
    const __m512 y1 = _mm512_loadu_ps(yp1 + c * DB);
    const float* x = qp + c * QR;
#pragma GCC unroll 6
    for (int r = 0; r < QR; ++r) {
      const __m512 xr = _mm512_set1_ps(x[r]);
      a0[r] = _mm512_fmadd_ps(xr, y0, a0[r]);
      a1[r] = _mm512_fmadd_ps(xr, y1, a1[r]);
    }
  }
  uint32_t any = 0;
#pragma GCC unroll 6
  for (int r = 0; r < QR; ++r) {
    const __m512 t = _mm512_set1_ps(thr[r]);
    const uint32_t lo = _mm512_cmp_ps_mask(a0[r], t, _CMP_LT_OQ);
    const uint32_t hi = _mm512_cmp_ps_mask(a1[r], t, _CMP_LT_OQ);
    mask[r] = lo | (hi << DB);
    any |= mask[r];
  }
  return any;
}

// The bf16 tile: each 32-bit word holds two columns as bfloat16 (the data's -2 y, the query's
// x); one vdpbf16ps adds both products into float32 lanes, half the instructions of the float32
// tile. `d` here counts column pairs.
__attribute__((target("avx512f,avx512bf16"))) uint32_t micro_bf16(const float* qp, const float* yp,
                                                                 const float* ay, const float* ax,
                                                                 const float* thr, int64_t d,
                                                                 uint32_t* mask) {
  const __m512 ay0 = _mm512_loadu_ps(ay);
  const __m512 ay1 = _mm512_loadu_ps(ay + DB);
  const float* yp1 = yp + d * DB;
  __m512 a0[QR], a1[QR];
#pragma GCC unroll 6
  for (int r = 0; r < QR; ++r) {
    const __m512 b = _mm512_set1_ps(ax[r]);
    a0[r] = _mm512_add_ps(ay0, b);
    a1[r] = _mm512_add_ps(ay1, b);
  }
  for (int64_t c = 0; c < d; ++c) {
    const __m512bh y0 = (__m512bh)_mm512_loadu_si512(yp + c * DB);
    const __m512bh y1 = (__m512bh)_mm512_loadu_si512(yp1 + c * DB);
    const float* x = qp + c * QR;
#pragma GCC unroll 6
    for (int r = 0; r < QR; ++r) {
      int32_t pair;
      std::memcpy(&pair, x + r, sizeof(pair));
      const __m512bh xr = (__m512bh)_mm512_set1_epi32(pair);
      a0[r] = _mm512_dpbf16_ps(a0[r], xr, y0);
      a1[r] = _mm512_dpbf16_ps(a1[r], xr, y1);
    }
  }
  uint32_t any = 0;
#pragma GCC unroll 6
  for (int r = 0; r < QR; ++r) {
    const __m512 t = _mm512_set1_ps(thr[r]);
    const uint32_t lo = _mm512_cmp_ps_mask(a0[r], t, _CMP_LT_OQ);
    const uint32_t hi = _mm512_cmp_ps_mask(a1[r], t, _CMP_LT_OQ);
    mask[r] = lo | (hi << DB);
    any |= mask[r];
  }
  return any;
}
#endif

// The widest tile this CPU runs, capped by AIRDA_KNN_KERNEL ("portable", "avx2", "avx512": no
// bf16; for tests and benchmarks of the narrower tiles).
MicroFn pick_micro() {
  const char* cap = std::getenv("AIRDA_KNN_KERNEL");
  const std::string want = cap ? cap : "";
  if (want == "portable") return micro_portable;
#if defined(__x86_64__) || defined(__i386__)
  if (want != "avx2" && want != "avx512" && __builtin_cpu_supports("avx512f") &&
      __builtin_cpu_supports("avx512bf16")) {
    return micro_bf16;
  }
  if (want != "avx2" && __builtin_cpu_supports("avx512f")) return micro_avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return micro_avx2;
#endif
  return micro_portable;
}

// ---- exact distances and the top-k --------------------------------------------------------

template <typename T>
inline T elem(const KnnMatrix& a, int64_t r, int64_t c) {
  return static_cast<const T*>(a.data)[r * a.row_stride + c * a.col_stride];
}

// Squared distance in float64, column by column: (q_c - x_c)^2 added in order, as the reference.
template <typename T>
inline double exact_sq(const double* q, const KnnMatrix& x, int64_t j, int64_t d) {
  const T* p = static_cast<const T*>(x.data) + j * x.row_stride;
  const int64_t cs = x.col_stride;
  double s = 0.0;
  for (int64_t c = 0; c < d; ++c) {
    const double t = q[c] - static_cast<double>(p[c * cs]);
    s += t * t;
  }
  return s;
}

// Inserts (e, j) into a sorted top-k holding `count` entries; j exceeds every index held, so it
// goes after the entries of equal distance. The caller checked count < k or e < bd[k - 1].
inline void insert(double e, int64_t j, double* bd, int64_t* bi, int64_t& count, int64_t k) {
  int64_t pos = count < k ? count : k - 1;
  while (pos > 0 && bd[pos - 1] > e) {
    bd[pos] = bd[pos - 1];
    bi[pos] = bi[pos - 1];
    --pos;
  }
  bd[pos] = e;
  bi[pos] = j;
  if (count < k) ++count;
}

// The smallest float >= v (v >= 0, finite or +inf).
inline float round_up(double v) {
  float f = static_cast<float>(v);
  if (static_cast<double>(f) < v) f = std::nextafter(f, kInfF);
  return f;
}

// v rounded to the nearest bfloat16 (ties to even), as its 16 bits; v finite and |v| < 4.
inline uint16_t to_bf16(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

inline float from_bf16(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float v;
  std::memcpy(&v, &bits, sizeof(v));
  return v;
}

// Packs scaled values s[0..d) into words[0..dw) (stride `stride` floats between words): float32
// values, or bfloat16 pairs (column 2w in the low half, 2w + 1 in the high one; an odd d is padded
// with a zero column), each value times `factor` (a power of two). Returns the squared norm of
// the values as packed (before `factor`), in float64.
inline double pack_row(const float* s, int64_t d, bool bf16, float factor, float* words,
                       int64_t stride) {
  double norm = 0.0;
  if (!bf16) {
    for (int64_t c = 0; c < d; ++c) {
      norm += static_cast<double>(s[c]) * s[c];
      words[c * stride] = factor * s[c];
    }
    return norm;
  }
  for (int64_t w = 0; 2 * w < d; ++w) {
    const uint16_t lo = to_bf16(s[2 * w]);
    const uint16_t hi = 2 * w + 1 < d ? to_bf16(s[2 * w + 1]) : uint16_t{0};
    const float flo = from_bf16(lo), fhi = from_bf16(hi);
    norm += static_cast<double>(flo) * flo + static_cast<double>(fhi) * fhi;
    const uint32_t packed = static_cast<uint32_t>(to_bf16(factor * flo)) |
                            (static_cast<uint32_t>(to_bf16(factor * fhi)) << 16);
    std::memcpy(words + w * stride, &packed, sizeof(packed));
  }
  return norm;
}

// ---- the whole call -----------------------------------------------------------------------

struct Plan {
  int64_t n, m, d, k;
  bool exclude_self;
  bool direct;         // no float32 filter: every distance exact
  bool bf16 = false;   // the filter's inputs are bfloat16 pairs (micro_bf16)
  int64_t dw = 0;      // 32-bit words per row in the packed layouts (d, or ceil(d / 2) in bf16)
  int scale_exp = 0;   // scaled value = (value - centre) * 2^scale_exp
  double lower = 1.0;  // 1 - f, the norms' lowering factor
  std::vector<double> centre;
  std::vector<float> yp, ay;  // packed data (filter path)
  int64_t blocks = 0;         // 16-row blocks of data
  int64_t groups = 1;         // query groups of 6 per chunk
};

struct Workspace {
  std::vector<float> qp, ax, thr, row;
  std::vector<double> qd;
  std::vector<int64_t> count;
  std::vector<uint32_t> mask;
};

template <typename T>
int64_t first_bad_row(const KnnMatrix& a) {
  for (int64_t r = 0; r < a.rows; ++r)
    for (int64_t c = 0; c < a.cols; ++c)
      if (!std::isfinite(static_cast<double>(elem<T>(a, r, c)))) return r;
  return -1;
}

template <typename T>
void prepare(const KnnMatrix& q, const KnnMatrix& x, Plan& plan) {
  const int64_t d = plan.d, m = plan.m;
  plan.centre.assign(static_cast<size_t>(d), 0.0);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < d; ++c) plan.centre[c] += static_cast<double>(elem<T>(x, r, c));
  for (auto& v : plan.centre) v /= static_cast<double>(m);
  double maxabs = 0.0;
  for (const KnnMatrix* a : {&q, &x})
    for (int64_t r = 0; r < a->rows; ++r)
      for (int64_t c = 0; c < d; ++c)
        maxabs = std::max(maxabs, std::fabs(static_cast<double>(elem<T>(*a, r, c)) - plan.centre[c]));
  // bfloat16 inputs add a rounding of 2^-9 per value: 4 * 2^-9 of |x|^2 + |y|^2, doubled.
  const double f = static_cast<double>(4 * d + 64) * std::ldexp(1.0, -24) +
                   (plan.bf16 ? std::ldexp(1.0, -6) : 0.0);
  plan.direct = !(maxabs <= kMaxAbs) || f > 0.25;
  if (plan.direct) return;
  plan.lower = 1.0 - f;
  plan.scale_exp = maxabs > 0.0 ? -std::ilogb(maxabs) : 0;
  plan.blocks = ((m + 2 * DB - 1) / (2 * DB)) * 2;  // the tiles take blocks in pairs
  plan.dw = plan.bf16 ? (d + 1) / 2 : d;
  plan.yp.assign(static_cast<size_t>(plan.blocks * plan.dw * DB), 0.0f);
  plan.ay.assign(static_cast<size_t>(plan.blocks * DB), kInfF);  // padding rows: never candidates
  const int se = plan.scale_exp;
#pragma omp parallel for schedule(static) if (m * d >= (1 << 16))
  for (int64_t b = 0; b < plan.blocks; ++b) {
    std::vector<float> row(static_cast<size_t>(d));
    for (int v = 0; v < DB; ++v) {
      const int64_t j = b * DB + v;
      if (j >= m) break;
      for (int64_t c = 0; c < d; ++c) {
        row[c] = static_cast<float>(
            std::ldexp(static_cast<double>(elem<T>(x, j, c)) - plan.centre[c], se));
      }
      const double norm =
          pack_row(row.data(), d, plan.bf16, -2.0f, &plan.yp[b * plan.dw * DB + v], DB);
      plan.ay[b * DB + v] = static_cast<float>(norm * plan.lower) - 1e-30f;
    }
  }
}

// One task: queries [q0, q1) against data blocks [b0, b1) (rows [b0 * 16, b1 * 16) in the
// direct path), into sorted top-k arrays bd/bi (squared distances; (q1 - q0) x k).
template <typename T>
void run_task(const KnnMatrix& q, const KnnMatrix& x, const Plan& plan, MicroFn micro,
              int64_t q0, int64_t q1, int64_t b0, int64_t b1, Workspace& ws, double* bd,
              int64_t* bi) {
  const int64_t d = plan.d, k = plan.k, m = plan.m;
  const int64_t rows = q1 - q0;
  const int64_t groups = (rows + QR - 1) / QR;
  for (int64_t r = 0; r < rows; ++r) {
    ws.count[r] = 0;
    for (int64_t c = 0; c < d; ++c) ws.qd[r * d + c] = static_cast<double>(elem<T>(q, q0 + r, c));
  }
  std::fill(bd, bd + rows * k, kInf);
  std::fill(bi, bi + rows * k, kNoIndex);

  // Considers data row j for local query r.
  auto consider = [&](int64_t r, int64_t j) {
    if (j >= m || (plan.exclude_self && j == q0 + r)) return;
    const double e = exact_sq<T>(&ws.qd[r * d], x, j, d);
    double* rd = bd + r * k;
    if (ws.count[r] < k || e < rd[k - 1]) {
      insert(e, j, rd, bi + r * k, ws.count[r], k);
      if (!plan.direct && ws.count[r] == k) {
        const double t = rd[k - 1];
        ws.thr[r] = t == 0.0 ? -kInfF : round_up(std::ldexp(t, 2 * plan.scale_exp));
      }
    }
  };

  if (plan.direct) {
    const int64_t j1 = std::min(m, b1 * DB);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = b0 * DB; j < j1; ++j) consider(r, j);
    return;
  }

  const int64_t dw = plan.dw;
  std::vector<float>& row = ws.row;
  for (int64_t g = 0; g < groups; ++g) {
    for (int rr = 0; rr < QR; ++rr) {
      const int64_t r = g * QR + rr;
      float* qp = &ws.qp[g * dw * QR];
      if (r >= rows) {
        for (int64_t c = 0; c < dw; ++c) qp[c * QR + rr] = 0.0f;
        ws.ax[r] = kInfF;  // padding queries: never candidates
        ws.thr[r] = kInfF;
        continue;
      }
      for (int64_t c = 0; c < d; ++c) {
        row[c] =
            static_cast<float>(std::ldexp(ws.qd[r * d + c] - plan.centre[c], plan.scale_exp));
      }
      const double norm = pack_row(row.data(), d, plan.bf16, 1.0f, qp + rr, QR);
      ws.ax[r] = static_cast<float>(norm * plan.lower);
      ws.thr[r] = kInfF;
    }
  }
  uint32_t* mask = ws.mask.data();
  for (int64_t t0 = b0; t0 < b1; t0 += kTileBlocks) {
    const int64_t t1 = std::min(b1, t0 + kTileBlocks);
    for (int64_t g = 0; g < groups; ++g) {
      const float* qp = &ws.qp[g * dw * QR];
      const float* ax = &ws.ax[g * QR];
      const float* thr = &ws.thr[g * QR];
      for (int64_t b = t0; b < t1; b += 2) {
        if (!micro(qp, &plan.yp[b * dw * DB], &plan.ay[b * DB], ax, thr, dw, mask)) continue;
        for (int rr = 0; rr < QR; ++rr) {
          uint32_t bits = mask[rr];  // 32 rows from block b on
          while (bits) {
            const int v = __builtin_ctz(bits);
            bits &= bits - 1;
            consider(g * QR + rr, b * DB + v);
          }
        }
      }
    }
  }
}

template <typename T>
void knn_typed(const KnnMatrix& q, const KnnMatrix& x, int64_t k, bool exclude_self, int threads,
               double* out_dist, int64_t* out_idx) {
  for (const auto& [a, name] : {std::pair{&q, "queries"}, std::pair{&x, "data"}}) {
    const int64_t bad = first_bad_row<T>(*a);
    if (bad >= 0) {
      throw std::invalid_argument(std::string(name) + " has NaN or infinite values (first in row " +
                                  std::to_string(bad) + ")");
    }
  }
  Plan plan;
  plan.n = q.rows;
  plan.m = x.rows;
  plan.d = q.cols;
  plan.k = k;
  plan.exclude_self = exclude_self;
  const MicroFn micro = pick_micro();
#if defined(__x86_64__) || defined(__i386__)
  plan.bf16 = micro == micro_bf16;
#endif
  prepare<T>(q, x, plan);
  if (plan.direct) plan.blocks = (plan.m + DB - 1) / DB;
  const int nt = threads > 0 ? threads : omp_get_max_threads();
  const int64_t topk_per_query = k * static_cast<int64_t>(sizeof(double) + sizeof(int64_t));
  plan.groups = std::clamp<int64_t>(kTopkBytes / (topk_per_query * QR), 1, kMaxGroups);
  const int64_t chunk = plan.groups * QR;
  const int64_t chunks = (plan.n + chunk - 1) / chunk;
  // Few queries: split the data too, so that every thread has work; merged at the end.
  int64_t segments = 1;
  if (chunks < 4 * nt) {
    segments = std::min<int64_t>((4 * nt + chunks - 1) / chunks,
                                 std::max<int64_t>(1, plan.blocks / kTileBlocks));
    const int64_t budget = int64_t{1} << 28;  // bytes of per-segment top-k
    segments = std::max<int64_t>(
        1, std::min<int64_t>(segments, budget / std::max<int64_t>(1, plan.n * topk_per_query)));
  }
  const int64_t seg_blocks = ((plan.blocks + 2 * segments - 1) / (2 * segments)) * 2;  // even
  std::vector<double> tmp_d;
  std::vector<int64_t> tmp_i;
  double* all_d = out_dist;
  int64_t* all_i = out_idx;
  if (segments > 1) {
    tmp_d.resize(static_cast<size_t>(segments * plan.n * k));
    tmp_i.resize(static_cast<size_t>(segments * plan.n * k));
    all_d = tmp_d.data();
    all_i = tmp_i.data();
  }
  const int64_t tasks = chunks * segments;
  const int team = static_cast<int>(std::min<int64_t>(nt, tasks));
  std::vector<Workspace> spaces(static_cast<size_t>(team));
  for (auto& ws : spaces) {
    ws.qp.resize(static_cast<size_t>(plan.groups * plan.d * QR));
    ws.row.resize(static_cast<size_t>(plan.d));
    ws.ax.resize(static_cast<size_t>(chunk));
    ws.thr.resize(static_cast<size_t>(chunk));
    ws.qd.resize(static_cast<size_t>(chunk * plan.d));
    ws.count.resize(static_cast<size_t>(chunk));
    ws.mask.resize(QR);
  }
#pragma omp parallel num_threads(team)
  {
    Workspace& ws = spaces[static_cast<size_t>(omp_get_thread_num())];
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t ci = t / segments, si = t % segments;
      const int64_t q0 = ci * chunk, q1 = std::min(plan.n, q0 + chunk);
      const int64_t b0 = si * seg_blocks, b1 = std::min(plan.blocks, b0 + seg_blocks);
      const int64_t at = (si * plan.n + q0) * k;
      if (b0 >= b1) {
        std::fill(all_d + at, all_d + at + (q1 - q0) * k, kInf);
        std::fill(all_i + at, all_i + at + (q1 - q0) * k, kNoIndex);
        continue;
      }
      run_task<T>(q, x, plan, micro, q0, q1, b0, b1, ws, all_d + at, all_i + at);
    }
  }
  if (segments > 1) {
    // Merge each query's sorted lists by (distance, index).
    std::vector<int64_t> head(static_cast<size_t>(segments));
    for (int64_t r = 0; r < plan.n; ++r) {
      std::fill(head.begin(), head.end(), 0);
      for (int64_t o = 0; o < k; ++o) {
        int64_t best = -1;
        for (int64_t s = 0; s < segments; ++s) {
          if (head[s] >= k) continue;
          const int64_t at = (s * plan.n + r) * k + head[s];
          if (best < 0) {
            best = s;
            continue;
          }
          const int64_t bt = (best * plan.n + r) * k + head[best];
          if (all_d[at] < all_d[bt] || (all_d[at] == all_d[bt] && all_i[at] < all_i[bt])) best = s;
        }
        const int64_t at = (best * plan.n + r) * k + head[best]++;
        out_dist[r * k + o] = all_d[at];
        out_idx[r * k + o] = all_i[at];
      }
    }
  }
  const int64_t total = plan.n * k;
#pragma omp parallel for schedule(static) num_threads(team) if (total >= (1 << 16))
  for (int64_t i = 0; i < total; ++i) out_dist[i] = std::sqrt(out_dist[i]);
}

}  // namespace

void knn_distances(const KnnMatrix& queries, const KnnMatrix& data, int64_t k, bool exclude_self,
                   int threads, double* out_dist, int64_t* out_idx) {
  if (queries.f32 != data.f32) {
    throw std::invalid_argument("queries and data must have the same float type");
  }
  if (queries.cols != data.cols || queries.rows < 1 || data.rows < 1 || queries.cols < 1) {
    throw std::invalid_argument("queries and data must be non-empty with the same columns");
  }
  const int64_t available = exclude_self ? data.rows - 1 : data.rows;
  if (k < 1 || k > available) {
    throw std::invalid_argument("k must be in [1, " + std::to_string(available) + "], got " +
                                std::to_string(k));
  }
  if (exclude_self && queries.rows != data.rows) {
    throw std::invalid_argument("exclude_self needs queries to be data (the same rows)");
  }
  if (queries.f32) {
    knn_typed<float>(queries, data, k, exclude_self, threads, out_dist, out_idx);
  } else {
    knn_typed<double>(queries, data, k, exclude_self, threads, out_dist, out_idx);
  }
}

}  // namespace airda::cpu
