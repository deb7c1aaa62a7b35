// Bindings of the grouped depthwise convolution of elastic blocks (grouped_depthwise_conv): its
// checks of every array beside its m.def, so that no call from Python can crash the process; the
// Python wrapper (airda.ops.grouped_depthwise_conv) checks values as well.
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "airda/grouped_depthwise_conv.h"
#include "bindings/checks.h"

namespace py = pybind11;

namespace airda::bindings {
namespace {

template <class T>
void run_grouped_dw(const std::vector<py::array>& xs, const py::array& weight,
                    const std::vector<std::pair<int64_t, int64_t>>& ksizes, int64_t stride,
                    const std::vector<py::object>& scales, const std::vector<py::object>& shifts,
                    airda::DwActivation act, std::vector<py::array>& outs, int64_t B, int64_t H,
                    int64_t W) {
  std::vector<airda::DwGroup<T>> groups;
  for (size_t g = 0; g < xs.size(); ++g) {
    airda::DwGroup<T> grp{};
    grp.x = static_cast<const T*>(xs[g].data());
    grp.out = static_cast<T*>(outs[g].mutable_data());
    grp.channels = xs[g].shape(1);
    grp.kh = ksizes[g].first;
    grp.kw = ksizes[g].second;
    if (!scales[g].is_none()) {
      grp.scale = static_cast<const T*>(scales[g].cast<py::array>().data());
      grp.shift = static_cast<const T*>(shifts[g].cast<py::array>().data());
    }
    groups.push_back(grp);
  }
  const T* w = static_cast<const T*>(weight.data());
  const int64_t C = weight.shape(0), KH = weight.shape(1), KW = weight.shape(2);
  py::gil_scoped_release release;
  airda::cpu::grouped_depthwise_conv(groups, w, C, KH, KW, B, H, W, stride, act);
}

void cpu_grouped_depthwise_conv(const std::vector<py::array>& xs, const py::array& weight,
                                const std::vector<std::pair<int64_t, int64_t>>& ksizes,
                                int64_t stride, const std::vector<py::object>& scales,
                                const std::vector<py::object>& shifts, int act,
                                std::vector<py::array>& outs) {
  if (weight.ndim() != 3) throw py::value_error("weight must be 3-D (C, KH, KW)");
  if (!(weight.flags() & py::array::c_style)) throw py::value_error("weight must be C-contiguous");
  const bool f64 = weight.dtype().kind() == 'f' && weight.itemsize() == 8;
  if (!f64) require_dtype(weight, "weight", 'f', 4);
  const int64_t C = weight.shape(0), KH = weight.shape(1), KW = weight.shape(2);
  if (stride < 1) throw py::value_error("stride must be >= 1");
  if (act < 0 || act > 3) throw py::value_error("act must be 0 (none), 1, 2 or 3");
  const size_t G = xs.size();
  if (ksizes.size() != G || scales.size() != G || shifts.size() != G || outs.size() != G)
    throw py::value_error("xs, ksizes, scales, shifts and outs must have one entry per group");
  int64_t B = 0, H = 0, W = 0;
  for (size_t g = 0; g < G; ++g) {
    const std::string at = "group " + std::to_string(g) + ": ";
    const py::array& x = xs[g];
    if (x.ndim() != 4 || !(x.flags() & py::array::c_style))
      throw py::value_error(at + "x must be a C-contiguous 4-D array (B, c, H, W)");
    require_dtype(x, "x", 'f', weight.itemsize());
    if (g == 0) {
      B = x.shape(0);
      H = x.shape(2);
      W = x.shape(3);
      if (H < 1 || W < 1) throw py::value_error("x must have H, W >= 1");
    } else if (x.shape(0) != B || x.shape(2) != H || x.shape(3) != W) {
      throw py::value_error(at + "x must have the batch and spatial size of group 0");
    }
    const int64_t c = x.shape(1);
    if (c < 0 || c > C) throw py::value_error(at + "more channels than weight has");
    const auto [kh, kw] = ksizes[g];
    if (kh < 1 || kw < 1 || kh % 2 == 0 || kw % 2 == 0 || kh > KH || kw > KW ||
        (KH - kh) % 2 != 0 || (KW - kw) % 2 != 0)
      throw py::value_error(at + "kernel size must be odd, within and centred in the weight's");
    const py::array& o = outs[g];
    if (o.ndim() != 4 || !(o.flags() & py::array::c_style) || o.shape(0) != B ||
        o.shape(1) != c || o.shape(2) != (H - 1) / stride + 1 || o.shape(3) != (W - 1) / stride + 1)
      throw py::value_error(at + "out must be C-contiguous (B, c, Ho, Wo)");
    require_dtype(o, "out", 'f', weight.itemsize());
    require_writeable(o, "out");
    if (scales[g].is_none() != shifts[g].is_none())
      throw py::value_error(at + "give both scale and shift, or neither");
    if (!scales[g].is_none()) {
      for (const py::object* v : {&scales[g], &shifts[g]}) {
        if (!py::isinstance<py::array>(*v)) throw py::type_error(at + "scale/shift must be arrays");
        const py::array a = v->cast<py::array>();
        require_vector(a, "scale/shift", c);
        require_dtype(a, "scale/shift", 'f', weight.itemsize());
      }
    }
  }
  if (G == 0) return;
  const auto a = static_cast<airda::DwActivation>(act);
  if (f64) {
    run_grouped_dw<double>(xs, weight, ksizes, stride, scales, shifts, a, outs, B, H, W);
  } else {
    run_grouped_dw<float>(xs, weight, ksizes, stride, scales, shifts, a, outs, B, H, W);
  }
}

}  // namespace

void bind_grouped_depthwise_conv(py::module_& m) {
  m.def("grouped_depthwise_conv", &cpu_grouped_depthwise_conv, py::arg("xs"), py::arg("weight"),
        py::arg("ksizes"), py::arg("stride"), py::arg("scales"), py::arg("shifts"), py::arg("act"),
        py::arg("outs"),
        "Depthwise conv of each C-contiguous xs[g] (B, c_g, H, W) with the centre (kh, kw) crop "
        "of weight[:c_g] (C, KH, KW), zero padding k//2, then optional scale/shift (c_g,) and "
        "activation (0 none, 1 relu, 2 relu6, 3 hardswish), into outs[g] (B, c_g, Ho, Wo).");
}

}  // namespace airda::bindings
