// CPU kernel of the grouped depthwise convolution (see airda/grouped_depthwise_conv.h).
//
// One OpenMP task per (group, sample, channel) plane: the plane is copied once into a zero-padded
// buffer split into `stride` column phases (so stride 2 reads unit-stride runs too), then each
// output row is accumulated kernel row by kernel row, the taps of a row unrolled (kernel widths
// 1, 3, 5, 7 are compiled separately) inside a loop over output columns the compiler vectorises.
// The affine map and activation are applied to each row while it is in L1. Each output element
// is summed in the fixed order (row i, then column j), whatever the thread count.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "airda/grouped_depthwise_conv.h"

namespace airda::cpu {
namespace {

// Below this many multiply-adds one thread is faster than starting a team.
constexpr int64_t kParallelWork = int64_t{1} << 16;

namespace v_base {
#include "grouped_depthwise_conv_body.inc"
}  // namespace v_base

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace v_avx2 {
#include "grouped_depthwise_conv_body.inc"
}  // namespace v_avx2
#pragma GCC pop_options
#endif

template <class T>
using PlaneFn = void (*)(const DwGroup<T>&, int64_t, const T*, int64_t, int64_t, int64_t,
                         int64_t, int64_t, int64_t, int64_t, DwActivation, std::vector<T>&,
                         std::vector<int64_t>&);

template <class T>
PlaneFn<T> plane_fn() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return &v_avx2::conv_plane<T>;
#endif
  return &v_base::conv_plane<T>;
}

template <class T>
void run(const std::vector<DwGroup<T>>& groups, const T* weight, int64_t KH, int64_t KW,
         int64_t B, int64_t H, int64_t W, int64_t s, DwActivation act) {
  const int64_t Ho = (H - 1) / s + 1, Wo = (W - 1) / s + 1;
  const int64_t G = static_cast<int64_t>(groups.size());
  // first plane of each group in the flattened (group, sample, channel) order
  std::vector<int64_t> start(static_cast<size_t>(G) + 1, 0);
  int64_t work = 0;
  for (int64_t g = 0; g < G; ++g) {
    start[g + 1] = start[g] + B * groups[g].channels;
    work += B * groups[g].channels * Ho * Wo * groups[g].kh * groups[g].kw;
  }
  const int64_t planes = start[G];
  const int64_t* sp = start.data();
  const PlaneFn<T> fn = plane_fn<T>();
#pragma omp parallel if (work >= kParallelWork)
  {
    std::vector<T> buf;
    std::vector<int64_t> off;
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const int64_t g = std::upper_bound(sp, sp + G + 1, p) - sp - 1;
      fn(groups[g], p - sp[g], weight, KH, KW, H, W, Ho, Wo, s, act, buf, off);
    }
  }
}

}  // namespace

void grouped_depthwise_conv(const std::vector<DwGroup<float>>& groups, const float* weight,
                            int64_t C, int64_t KH, int64_t KW, int64_t B, int64_t H, int64_t W,
                            int64_t stride, DwActivation act) {
  (void)C;
  run(groups, weight, KH, KW, B, H, W, stride, act);
}
void grouped_depthwise_conv(const std::vector<DwGroup<double>>& groups, const double* weight,
                            int64_t C, int64_t KH, int64_t KW, int64_t B, int64_t H, int64_t W,
                            int64_t stride, DwActivation act) {
  (void)C;
  run(groups, weight, KH, KW, B, H, W, stride, act);
}

}  // namespace airda::cpu
