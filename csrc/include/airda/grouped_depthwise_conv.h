// Grouped depthwise convolution of elastic (Once-for-All style) blocks: G inputs that share one
// supernet weight, each group with its own channel prefix and centre-cropped kernel, optionally
// followed by a per-channel affine map (folded batch norm) and an activation, in one call.
//
//   group g: x_g (B, c_g, H, W), kernel kh_g x kw_g (odd), c_g <= C, kh_g <= KH, kw_g <= KW
//   w_g[c, i, j] = weight[c, (KH - kh_g) / 2 + i, (KW - kw_g) / 2 + j]          (centre crop)
//   y_g[b, c, oh, ow] = sum_{i, j} w_g[c, i, j] x_g[b, c, oh*s + i - kh_g/2, ow*s + j - kw_g/2]
//                       (zero padding), Ho = (H - 1) / s + 1, Wo = (W - 1) / s + 1
//   out_g = act(y_g * scale_g[c] + shift_g[c])     (scale/shift optional, act none|relu|...)
//
// Plain C++ API (no pybind11 types): the bindings check shapes, the kernels assume them valid.
#pragma once

#include <cstdint>
#include <vector>

namespace airda {

enum class DwActivation : int { kNone = 0, kRelu = 1, kRelu6 = 2, kHardswish = 3 };

template <class T>
struct DwGroup {
  const T* x;        // (B, channels, H, W), C-contiguous
  T* out;            // (B, channels, Ho, Wo), C-contiguous
  int64_t channels;  // c_g
  int64_t kh, kw;    // odd kernel height / width of this group
  const T* scale;    // (channels,) or null
  const T* shift;    // (channels,) or null (null together with scale)
};

namespace cpu {

// weight: (C, KH, KW) C-contiguous.
void grouped_depthwise_conv(const std::vector<DwGroup<float>>& groups, const float* weight,
                            int64_t C, int64_t KH, int64_t KW, int64_t B, int64_t H, int64_t W,
                            int64_t stride, DwActivation act);
void grouped_depthwise_conv(const std::vector<DwGroup<double>>& groups, const double* weight,
                            int64_t C, int64_t KH, int64_t KW, int64_t B, int64_t H, int64_t W,
                            int64_t stride, DwActivation act);

}  // namespace cpu
}  // namespace airda
