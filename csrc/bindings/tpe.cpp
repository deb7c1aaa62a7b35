// The one pybind11 module of airda, `airda._C`. Host arrays arrive through the buffer protocol
// and are checked here as well as in the Python wrappers, so that no call from Python can
// crash the process; device data arrives as raw pointers from the wrappers in airda.ops.
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "airda/bits.h"
#include "airda/grouped_depthwise_conv.h"
#include "airda/mixed_op.h"
#include "airda/pareto.h"
#include "airda/parzen.h"
#include "airda/profiler.h"
#include "airda/resample.h"
#include "airda/sign_codes.h"
#ifdef AIRDA_WITH_CUDA
#include "cuda/mixed_op.h"
#include "cuda/sign_codes.h"
#endif

namespace py = pybind11;

namespace {

airda::FloatKind parse_kind(const std::string& kind) {
  if (kind == "float32") return airda::FloatKind::kFloat32;
  if (kind == "float64") return airda::FloatKind::kFloat64;
  if (kind == "float16") return airda::FloatKind::kFloat16;
  if (kind == "bfloat16") return airda::FloatKind::kBFloat16;
  throw py::value_error("unknown float kind '" + kind +
                        "' (expected float32, float64, float16 or bfloat16)");
}

py::ssize_t kind_itemsize(airda::FloatKind kind) {
  switch (kind) {
    case airda::FloatKind::kFloat32:
      return 4;
    case airda::FloatKind::kFloat64:
      return 8;
    default:
      return 2;
  }
}

void require_matrix(const py::array& a, const char* name) {
  if (a.ndim() != 2) {
    throw py::value_error(std::string(name) + " must be 2-D, got " + std::to_string(a.ndim()) +
                          "-D");
  }
  if (!(a.flags() & py::array::c_style)) {
    throw py::value_error(std::string(name) + " must be C-contiguous");
  }
}

void require_dtype(const py::array& a, const char* name, char kind, py::ssize_t itemsize) {
  if (a.dtype().kind() != kind || a.itemsize() != itemsize) {
    throw py::type_error(std::string(name) + " has dtype " +
                         py::str(static_cast<py::object>(a.dtype())).cast<std::string>() +
                         ", expected kind '" + kind + "' of " + std::to_string(itemsize) +
                         " bytes");
  }
}

void require_shape(const py::array& a, const char* name, py::ssize_t rows, py::ssize_t cols) {
  if (a.shape(0) != rows || a.shape(1) != cols) {
    throw py::value_error(std::string(name) + " must have shape (" + std::to_string(rows) +
                          ", " + std::to_string(cols) + "), got (" +
                          std::to_string(a.shape(0)) + ", " + std::to_string(a.shape(1)) + ")");
  }
}

void require_writeable(const py::array& a, const char* name) {
  if (!a.writeable()) throw py::value_error(std::string(name) + " must be writeable");
}

void cpu_pack_sign_bits(const py::array& x, const std::string& kind_name, py::array& out) {
  const airda::FloatKind kind = parse_kind(kind_name);
  require_matrix(x, "x");
  if (x.itemsize() != kind_itemsize(kind)) {
    throw py::type_error("x has " + std::to_string(x.itemsize()) + "-byte items, but " +
                         kind_name + " needs " + std::to_string(kind_itemsize(kind)));
  }
  const int64_t n = x.shape(0), units = x.shape(1);
  if (n < 1 || units < 1) throw py::value_error("x is empty");
  require_matrix(out, "out");
  require_dtype(out, "out", 'u', 8);
  require_shape(out, "out", n, airda::words_for(units));
  require_writeable(out, "out");
  const void* src = x.data();
  auto* dst = static_cast<uint64_t*>(out.mutable_data());
  py::gil_scoped_release release;
  airda::cpu::pack_sign_bits(src, kind, n, units, dst);
}

void cpu_hamming_gram(const py::array& codes, int64_t units, py::array& out) {
  require_matrix(codes, "codes");
  require_dtype(codes, "codes", 'u', 8);
  const int64_t n = codes.shape(0);
  if (n < 1) throw py::value_error("codes is empty");
  if (units < 1) throw py::value_error("units must be >= 1");
  if (codes.shape(1) != airda::words_for(units)) {
    throw py::value_error("codes has " + std::to_string(codes.shape(1)) +
                          " words per row, but units=" + std::to_string(units) + " needs " +
                          std::to_string(airda::words_for(units)));
  }
  require_matrix(out, "out");
  require_dtype(out, "out", 'i', 8);
  require_shape(out, "out", n, n);
  require_writeable(out, "out");
  const auto* src = static_cast<const uint64_t*>(codes.data());
  auto* dst = static_cast<int64_t*>(out.mutable_data());
  py::gil_scoped_release release;
  airda::cpu::hamming_gram(src, n, units, dst);
}

// ---- mixed op (DARTS): ys (k, n), alpha (k,), out/grad_out (n,), grad_ys (k, n) ------------

void require_vector(const py::array& a, const char* name, py::ssize_t len) {
  if (a.ndim() != 1 || a.shape(0) != len) {
    throw py::value_error(std::string(name) + " must have shape (" + std::to_string(len) + ",)");
  }
  if (!(a.flags() & py::array::c_style)) {
    throw py::value_error(std::string(name) + " must be C-contiguous");
  }
}

// Checks every array of a mixed-op call; returns whether they are float64 (else float32).
bool check_mixed(const py::array& ys, const py::array& alpha, int64_t& k, int64_t& n) {
  require_matrix(ys, "ys");
  const bool f64 = ys.dtype().kind() == 'f' && ys.itemsize() == 8;
  if (!f64) require_dtype(ys, "ys", 'f', 4);
  k = ys.shape(0);
  n = ys.shape(1);
  if (k < 1) throw py::value_error("ys has no candidates (K = 0)");
  require_vector(alpha, "alpha", k);
  require_dtype(alpha, "alpha", 'f', ys.itemsize());
  return f64;
}

void cpu_mixed_op_forward(const py::array& ys, const py::array& alpha, py::array& out) {
  int64_t k = 0, n = 0;
  const bool f64 = check_mixed(ys, alpha, k, n);
  require_vector(out, "out", n);
  require_dtype(out, "out", 'f', ys.itemsize());
  require_writeable(out, "out");
  const void* y = ys.data();
  const void* a = alpha.data();
  void* o = out.mutable_data();
  py::gil_scoped_release release;
  if (f64) {
    airda::cpu::mixed_op_forward(static_cast<const double*>(y), static_cast<const double*>(a),
                                 k, n, static_cast<double*>(o));
  } else {
    airda::cpu::mixed_op_forward(static_cast<const float*>(y), static_cast<const float*>(a), k,
                                 n, static_cast<float*>(o));
  }
}

void cpu_mixed_op_backward(const py::array& ys, const py::array& alpha,
                           const py::array& grad_out, py::array& grad_ys,
                           py::array& grad_alpha) {
  int64_t k = 0, n = 0;
  const bool f64 = check_mixed(ys, alpha, k, n);
  const py::ssize_t size = ys.itemsize();
  require_vector(grad_out, "grad_out", n);
  require_dtype(grad_out, "grad_out", 'f', size);
  require_matrix(grad_ys, "grad_ys");
  require_shape(grad_ys, "grad_ys", k, n);
  require_dtype(grad_ys, "grad_ys", 'f', size);
  require_writeable(grad_ys, "grad_ys");
  require_vector(grad_alpha, "grad_alpha", k);
  require_dtype(grad_alpha, "grad_alpha", 'f', size);
  require_writeable(grad_alpha, "grad_alpha");
  const void* y = ys.data();
  const void* a = alpha.data();
  const void* g = grad_out.data();
  void* gy = grad_ys.mutable_data();
  void* ga = grad_alpha.mutable_data();
  py::gil_scoped_release release;
  if (f64) {
    airda::cpu::mixed_op_backward(static_cast<const double*>(y), static_cast<const double*>(a),
                                  static_cast<const double*>(g), k, n, static_cast<double*>(gy),
                                  static_cast<double*>(ga));
  } else {
    airda::cpu::mixed_op_backward(static_cast<const float*>(y), static_cast<const float*>(a),
                                  static_cast<const float*>(g), k, n, static_cast<float*>(gy),
                                  static_cast<float*>(ga));
  }
}

// ---- end of the mixed op

// ---- grouped depthwise conv (elastic blocks) -----------------------------------------------

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

// ---- end of the grouped depthwise conv

// ---- Pareto op: non-dominated rank and hypervolume ------------------------------------------

// values: C-contiguous (n, m) float64 with m >= 1 and no NaN; returns (n, m).
std::pair<int64_t, int64_t> require_objectives(const py::array& values) {
  require_matrix(values, "values");
  require_dtype(values, "values", 'f', 8);
  const int64_t n = values.shape(0), m = values.shape(1);
  if (m < 1) throw py::value_error("values has no objectives (m = 0); it needs m >= 1 columns");
  const int64_t at = airda::cpu::find_nan(static_cast<const double*>(values.data()), n * m);
  if (at >= 0) {
    throw py::value_error("values contains NaN (first at row " + std::to_string(at / m) +
                          ", column " + std::to_string(at % m) + ")");
  }
  return {n, m};
}

void cpu_non_dominated_rank(const py::array& values, py::array& out) {
  const auto [n, m] = require_objectives(values);
  if (out.ndim() != 1 || out.shape(0) != n) {
    throw py::value_error("out must have shape (" + std::to_string(n) + ",)");
  }
  if (!(out.flags() & py::array::c_style)) throw py::value_error("out must be C-contiguous");
  require_dtype(out, "out", 'i', 8);
  require_writeable(out, "out");
  const auto* src = static_cast<const double*>(values.data());
  auto* dst = static_cast<int64_t*>(out.mutable_data());
  py::gil_scoped_release release;
  airda::cpu::non_dominated_rank(src, n, m, dst);
}

double cpu_hypervolume(const py::array& values, const py::array& ref) {
  const auto [n, m] = require_objectives(values);
  if (m != 2 && m != 3) {
    throw py::value_error("hypervolume supports only 2 and 3 objectives for now, got m = " +
                          std::to_string(m));
  }
  if (ref.ndim() != 1 || ref.shape(0) != m) {
    throw py::value_error("ref must have shape (" + std::to_string(m) +
                          ",), one value per objective");
  }
  if (!(ref.flags() & py::array::c_style)) throw py::value_error("ref must be C-contiguous");
  require_dtype(ref, "ref", 'f', 8);
  const auto* point = static_cast<const double*>(ref.data());
  if (airda::cpu::find_nan(point, m) >= 0) throw py::value_error("ref contains NaN");
  const auto* src = static_cast<const double*>(values.data());
  py::gil_scoped_release release;
  return airda::cpu::hypervolume(src, n, m, point);
}

// ---- end of the Pareto op ----------------------------------------------------------------------

// ---- resampling op: bootstrap means --------------------------------------------------------

// data: C-contiguous (k, n) float64, finite; strata: None or C-contiguous (3, n) int64 whose
// rows are the kernel's order, start and size; out: (n_resamples, k) float64.
void cpu_bootstrap_means(const py::array& data, int64_t n_resamples, uint64_t seed,
                         const py::object& strata, int threads, py::array& out) {
  require_matrix(data, "data");
  require_dtype(data, "data", 'f', 8);
  const int64_t k = data.shape(0), n = data.shape(1);
  if (k < 1 || n < 1) throw py::value_error("data is empty; it needs k >= 1 rows of n >= 1");
  if (n > airda::cpu::kMaxResamplePopulation) {
    throw py::value_error("data has n = " + std::to_string(n) + " scores; at most 2^32 - 1");
  }
  if (n_resamples < 1) throw py::value_error("n_resamples must be >= 1");
  const auto* src = static_cast<const double*>(data.data());
  const int64_t at = airda::cpu::find_nonfinite(src, k * n);
  if (at >= 0) {
    throw py::value_error("data is not finite at row " + std::to_string(at / n) + ", index " +
                          std::to_string(at % n));
  }
  require_matrix(out, "out");
  require_dtype(out, "out", 'f', 8);
  require_shape(out, "out", n_resamples, k);
  require_writeable(out, "out");
  airda::cpu::Strata parts;
  py::array strata_array;
  if (!strata.is_none()) {
    strata_array = py::array::ensure(strata);
    if (!strata_array) throw py::type_error("strata must be None or an int64 array");
    require_matrix(strata_array, "strata");
    require_dtype(strata_array, "strata", 'i', 8);
    require_shape(strata_array, "strata", 3, n);
    const auto* rows = static_cast<const int64_t*>(strata_array.data());
    parts = {rows, rows + n, rows + 2 * n};
    airda::cpu::check_strata(parts, n);  // std::invalid_argument arrives as ValueError
  }
  auto* dst = static_cast<double*>(out.mutable_data());
  const airda::cpu::Strata* use = strata.is_none() ? nullptr : &parts;
  py::gil_scoped_release release;
  airda::cpu::bootstrap_means(src, k, n, n_resamples, seed, use, threads, dst);
}

// ---- end of the resampling op ---------------------------------------------------------------

// ---- Parzen op: log-density of truncated-normal mixtures -------------------------------------

const double* f64_data(const py::array& a, const char* name, py::ssize_t ndim) {
  if (a.ndim() != ndim) {
    throw py::value_error(std::string(name) + " must be " + std::to_string(ndim) + "-D, got " +
                          std::to_string(a.ndim()) + "-D");
  }
  if (!(a.flags() & py::array::c_style)) {
    throw py::value_error(std::string(name) + " must be C-contiguous");
  }
  require_dtype(a, name, 'f', 8);
  return static_cast<const double*>(a.data());
}

void require_len(const py::array& a, const char* name, py::ssize_t axis, py::ssize_t size) {
  if (a.shape(axis) != size) {
    throw py::value_error(std::string(name) + " has " + std::to_string(a.shape(axis)) +
                          " entries along axis " + std::to_string(axis) + ", expected " +
                          std::to_string(size));
  }
}

// sigma of a Parzen mixture: one width per dimension (d,) shared by every component (stride 0),
// or one per component and dimension (n_comp, d) (stride d).
const double* parzen_sigma_data(const py::array& sigma, py::ssize_t n_comp, py::ssize_t d,
                                int64_t* stride) {
  const double* data = f64_data(sigma, "sigma", sigma.ndim() == 1 ? 1 : 2);
  if (sigma.ndim() == 1) {
    require_len(sigma, "sigma", 0, d);
    *stride = 0;
  } else {
    require_len(sigma, "sigma", 0, n_comp);
    require_len(sigma, "sigma", 1, d);
    *stride = d;
  }
  return data;
}

// The column stride (in elements) of a 2-D (n_comp, d) array stored column by column (unit stride
// along axis 0, axis 1's stride at least n_comp elements), or 0 for any other layout. A
// C-contiguous array is row-major (0) even where it also is column-major (d == 1 or n_comp == 1).
int64_t column_stride(const py::array& a) {
  if (a.ndim() != 2 || (a.flags() & py::array::c_style)) return 0;
  const py::ssize_t item = static_cast<py::ssize_t>(sizeof(double));
  if (a.strides(0) != item || a.strides(1) % item != 0) return 0;
  const py::ssize_t ld = a.strides(1) / item;
  return ld >= std::max<py::ssize_t>(a.shape(0), 1) ? static_cast<int64_t>(ld) : 0;
}

// Shapes and dtypes are checked here; values (finite, sigma > 0, low < high, mu in bounds,
// category codes in range) by the Python wrapper, which the kernel trusts for speed. Codes are
// checked here too, since an out-of-range one would read out of bounds.
void cpu_parzen_logpdf(const py::array& x, const py::array& mu, const py::array& sigma,
                       const py::array& log_weights, const py::object& log_norm,
                       const py::array& low, const py::array& high, const py::object& cat_x,
                       const py::object& cat_logp, const py::object& log_extra, int threads,
                       py::array& out) {
  const double* px = f64_data(x, "x", 2);
  // mu (and a 2-D sigma) row-major, or both column-major: (n_comp, d) with unit stride along
  // components and a column stride of at least n_comp (a transposed (d, n_comp) array, or a
  // view of the first n_comp columns of a wider one).
  const int64_t mu_ld = column_stride(mu);
  const double* pmu = mu_ld > 0 ? static_cast<const double*>(mu.data()) : f64_data(mu, "mu", 2);
  if (mu_ld > 0) require_dtype(mu, "mu", 'f', 8);
  const py::ssize_t n_cand = x.shape(0), d = x.shape(1), n_comp = mu.shape(0);
  require_len(mu, "mu", 1, d);
  if (n_comp < 1) throw py::value_error("mu is empty; a mixture needs at least one component");
  int64_t sigma_stride = 0, sigma_ld = 0;
  const double* psigma = nullptr;
  if (mu_ld > 0 && sigma.ndim() == 2) {
    sigma_ld = column_stride(sigma);
    if (sigma_ld == 0) {
      throw py::value_error("sigma must be column-major (Fortran order) like mu");
    }
    require_dtype(sigma, "sigma", 'f', 8);
    psigma = static_cast<const double*>(sigma.data());
    require_len(sigma, "sigma", 0, n_comp);
    require_len(sigma, "sigma", 1, d);
    sigma_stride = 1;
  } else {
    psigma = parzen_sigma_data(sigma, n_comp, d, &sigma_stride);
  }
  const double* pw = f64_data(log_weights, "log_weights", 1);
  require_len(log_weights, "log_weights", 0, n_comp);
  const double* pnorm = nullptr;
  py::array norm_array;
  if (!log_norm.is_none()) {
    norm_array = py::array::ensure(log_norm);
    if (!norm_array) throw py::type_error("log_norm must be None or a float64 array");
    pnorm = f64_data(norm_array, "log_norm", 1);
    require_len(norm_array, "log_norm", 0, n_comp);
  }
  const double* plow = f64_data(low, "low", 1);
  const double* phigh = f64_data(high, "high", 1);
  require_len(low, "low", 0, d);
  require_len(high, "high", 0, d);
  const int64_t* pcx = nullptr;
  const double* pcl = nullptr;
  int64_t n_cat = 0, n_choices = 0;
  py::array cx_array, cl_array;
  if (cat_x.is_none() != cat_logp.is_none()) {
    throw py::value_error("cat_x and cat_logp go together: give both or neither");
  }
  if (!cat_x.is_none()) {
    cx_array = py::array::ensure(cat_x);
    cl_array = py::array::ensure(cat_logp);
    if (!cx_array || !cl_array) throw py::type_error("cat_x / cat_logp must be arrays");
    require_matrix(cx_array, "cat_x");
    require_dtype(cx_array, "cat_x", 'i', 8);
    pcl = f64_data(cl_array, "cat_logp", 3);
    n_cat = cx_array.shape(1);
    n_choices = cl_array.shape(2);
    require_len(cx_array, "cat_x", 0, n_cand);
    require_len(cl_array, "cat_logp", 0, n_comp);
    require_len(cl_array, "cat_logp", 1, n_cat);
    pcx = static_cast<const int64_t*>(cx_array.data());
    for (int64_t i = 0; i < n_cand * n_cat; ++i) {
      if (pcx[i] < 0 || pcx[i] >= n_choices) {
        throw py::value_error("cat_x holds code " + std::to_string(pcx[i]) + " at row " +
                              std::to_string(i / n_cat) + ", outside [0, " +
                              std::to_string(n_choices) + ")");
      }
    }
  }
  const double* pextra = nullptr;
  py::array extra_array;
  if (!log_extra.is_none()) {
    extra_array = py::array::ensure(log_extra);
    if (!extra_array) throw py::type_error("log_extra must be None or a float64 array");
    pextra = f64_data(extra_array, "log_extra", 1);
    require_len(extra_array, "log_extra", 0, n_cand);
  }
  if (out.ndim() != 1 || out.shape(0) != n_cand) {
    throw py::value_error("out must have shape (" + std::to_string(n_cand) + ",)");
  }
  if (!(out.flags() & py::array::c_style)) throw py::value_error("out must be C-contiguous");
  require_dtype(out, "out", 'f', 8);
  require_writeable(out, "out");
  auto* dst = static_cast<double*>(out.mutable_data());
  py::gil_scoped_release release;
  airda::cpu::parzen_logpdf(px, n_cand, d, pmu, psigma, sigma_stride, pw, pnorm, n_comp, plow,
                            phigh, pcx, pcl, n_cat, n_choices, pextra, mu_ld, sigma_ld, threads,
                            dst);
}

void cpu_parzen_log_norm(const py::array& mu, const py::array& sigma, const py::array& low,
                         const py::array& high, py::array& out) {
  const double* pmu = f64_data(mu, "mu", 2);
  const py::ssize_t n_comp = mu.shape(0), d = mu.shape(1);
  int64_t sigma_stride = 0;
  const double* psigma = parzen_sigma_data(sigma, n_comp, d, &sigma_stride);
  const double* plow = f64_data(low, "low", 1);
  const double* phigh = f64_data(high, "high", 1);
  require_len(low, "low", 0, d);
  require_len(high, "high", 0, d);
  if (out.ndim() != 1 || out.shape(0) != n_comp) {
    throw py::value_error("out must have shape (" + std::to_string(n_comp) + ",)");
  }
  require_dtype(out, "out", 'f', 8);
  require_writeable(out, "out");
  auto* dst = static_cast<double*>(out.mutable_data());
  py::gil_scoped_release release;
  airda::cpu::parzen_log_norm(pmu, psigma, sigma_stride, n_comp, d, plow, phigh, dst);
}

const int64_t* i64_vector(const py::handle& h, const char* name, py::array* keep) {
  *keep = py::array::ensure(h);
  if (!*keep || keep->ndim() != 1 || !(keep->flags() & py::array::c_style)) {
    throw py::value_error(std::string(name) + " must be a 1-D C-contiguous int64 array");
  }
  require_dtype(*keep, name, 'i', 8);
  return static_cast<const int64_t*>(keep->data());
}

// TPE's neighbour bandwidths (airda.hpo.tpe) of one mixture, every dimension in one call:
// sorted_rows[j] / sorted_vals[j] are the observations of parameter j in ascending order, index
// (n_rows,) the index in the mixture's rows of a member row and -1 otherwise. With `by_first` the
// components are renumbered in ascending order of the first parameter, else they keep `index`.
// Writes out (p, n) and the members' values into values (p, n); returns perm (n,): the index of each component's row. With `cache` (p, n_rows
// or more) the widths each row had are compared and updated, and stale (n,) uint8 marks the
// components whose widths changed.
py::array_t<int64_t> cpu_tpe_bandwidths(const py::list& sorted_rows, const py::list& sorted_vals,
                                        const py::array& index, py::ssize_t n, bool by_first,
                                        bool consider_endpoints, double minimum, double maximum,
                                        py::array& out, py::array& values,
                                        const py::object& cache, const py::object& stale) {
  const py::ssize_t p = static_cast<py::ssize_t>(sorted_rows.size());
  if (static_cast<py::ssize_t>(sorted_vals.size()) != p) {
    throw py::value_error("sorted_rows and sorted_vals must have one array per parameter");
  }
  py::array index_keep;
  const int64_t* idx = i64_vector(index, "index", &index_keep);
  const py::ssize_t n_rows = index.shape(0);
  f64_data(out, "out", 2);
  require_writeable(out, "out");
  if (out.shape(0) != p || out.shape(1) != n) {
    throw py::value_error("out must have shape (p, n), one row per parameter");
  }
  f64_data(values, "values", 2);
  require_writeable(values, "values");
  if (values.shape(0) != p || values.shape(1) != n) {
    throw py::value_error("values must have shape (p, n), one row per parameter");
  }
  auto* pvalues = static_cast<double*>(values.mutable_data());
  if (n >= (int64_t{1} << 31)) throw py::value_error("n must be below 2**31");
  for (py::ssize_t r = 0; r < n_rows; ++r) {
    if (idx[r] >= n) throw py::value_error("index holds a value >= n");
  }
  double* pcache = nullptr;
  char* pstale = nullptr;
  py::array cache_array, stale_array;
  if (cache.is_none() != stale.is_none()) {
    throw py::value_error("cache and stale go together: give both or neither");
  }
  if (!cache.is_none()) {
    cache_array = py::array::ensure(cache);
    stale_array = py::array::ensure(stale);
    if (!cache_array || !stale_array) throw py::type_error("cache / stale must be arrays");
    f64_data(cache_array, "cache", 2);
    require_writeable(cache_array, "cache");
    if (cache_array.shape(0) != p || cache_array.shape(1) < n_rows) {
      throw py::value_error("cache must have shape (p, >= len(index))");
    }
    if (stale_array.ndim() != 1 || stale_array.shape(0) != n ||
        !(stale_array.flags() & py::array::c_style)) {
      throw py::value_error("stale must be a 1-D C-contiguous uint8 array of n entries");
    }
    require_dtype(stale_array, "stale", 'u', 1);
    require_writeable(stale_array, "stale");
    pcache = static_cast<double*>(cache_array.mutable_data());
    pstale = static_cast<char*>(stale_array.mutable_data());
  }
  std::vector<py::array> rows_keep(p), vals_keep(p);
  std::vector<const int64_t*> rows(p);
  std::vector<const double*> vals(p);
  for (py::ssize_t j = 0; j < p; ++j) {
    rows[j] = i64_vector(sorted_rows[j], "sorted_rows[j]", &rows_keep[j]);
    vals_keep[j] = py::array::ensure(sorted_vals[j]);
    if (!vals_keep[j]) throw py::type_error("sorted_vals[j] must be an array");
    vals[j] = f64_data(vals_keep[j], "sorted_vals[j]", 1);
    require_len(vals_keep[j], "sorted_vals[j]", 0, rows_keep[j].shape(0));
  }
  py::array_t<int64_t> perm(n);
  int64_t* pperm = perm.mutable_data();
  auto* dst = static_cast<double*>(out.mutable_data());
  {
    py::gil_scoped_release release;
    std::vector<int32_t> position(idx, idx + n_rows);
    int64_t found = 0;
    if (by_first && p > 0) {
      std::fill(position.begin(), position.end(), -1);
      const int64_t n_sorted = rows_keep[0].shape(0);
      for (int64_t s = 0; s < n_sorted && found < n; ++s) {
        const int64_t r = rows[0][s];
        if (r >= 0 && r < n_rows && idx[r] >= 0) {
          position[r] = static_cast<int32_t>(found);
          pperm[found++] = idx[r];
        }
      }
    } else {
      for (int64_t r = 0; r < n_rows; ++r) {
        if (idx[r] >= 0) {
          pperm[idx[r]] = idx[r];
          ++found;
        }
      }
    }
    for (py::ssize_t j = 0; j < p && found == n; ++j) {
      found = airda::cpu::neighbour_bandwidths(
          rows[j], vals[j], rows_keep[j].shape(0), position.data(), n_rows, n, 0.0, 1.0,
          consider_endpoints, minimum, maximum, dst + j * n, pvalues + j * n,
          pcache ? pcache + j * cache_array.shape(1) : nullptr, 1, pstale);
    }
    if (found != n) n = -1;
  }
  if (n < 0) throw py::value_error("some member row is missing from a parameter's sorted rows");
  return perm;
}

// The neighbour bandwidths of a small mixture from its values (p, n), into out (p, n).
void cpu_sorted_bandwidths(const py::array& values, bool consider_endpoints, double minimum,
                           double maximum, py::array& out) {
  const double* pv = f64_data(values, "values", 2);
  f64_data(out, "out", 2);
  require_writeable(out, "out");
  require_len(out, "out", 0, values.shape(0));
  require_len(out, "out", 1, values.shape(1));
  auto* dst = static_cast<double*>(out.mutable_data());
  airda::cpu::sorted_bandwidths(pv, values.shape(0), values.shape(1), 0.0, 1.0,
                                consider_endpoints, minimum, maximum, dst);
}

// TPE's neighbour bandwidths of g kept between asks (airda.cpu::NeighbourWidths). update()
// takes the per-parameter sorted observations (lists of int64 rows / float64 values), the
// observations xt (d, cap) and the block's parameter indices num (p,), the member rows
// (ascending) and the number of rows in use.
int cpu_widths_update(airda::cpu::NeighbourWidths& self, const py::list& sorted_rows,
                      const py::list& sorted_vals, const py::array& xt, const py::array& num,
                      const py::array& members, py::ssize_t n_rows, double minimum,
                      py::ssize_t max_changes) {
  const py::ssize_t p = self.p();
  if (static_cast<py::ssize_t>(sorted_rows.size()) != p ||
      static_cast<py::ssize_t>(sorted_vals.size()) != p) {
    throw py::value_error("sorted_rows and sorted_vals must have one array per parameter (" +
                          std::to_string(p) + ")");
  }
  const double* pxt = f64_data(xt, "xt", 2);
  if (n_rows < 0 || xt.shape(1) < n_rows) {
    throw py::value_error("xt must have at least n_rows columns");
  }
  py::array num_keep, members_keep;
  const int64_t* pnum = i64_vector(num, "num", &num_keep);
  require_len(num_keep, "num", 0, p);
  const int64_t* pmembers = i64_vector(members, "members", &members_keep);
  std::vector<py::array> rows_keep(p), vals_keep(p);
  std::vector<airda::cpu::NeighbourWidths::Column> columns(p);
  std::vector<const double*> value(p);
  for (py::ssize_t j = 0; j < p; ++j) {
    if (pnum[j] < 0 || pnum[j] >= xt.shape(0)) throw py::value_error("num holds a bad index");
    columns[j].rows = i64_vector(sorted_rows[j], "sorted_rows[j]", &rows_keep[j]);
    vals_keep[j] = py::array::ensure(sorted_vals[j]);
    if (!vals_keep[j]) throw py::type_error("sorted_vals[j] must be an array");
    columns[j].vals = f64_data(vals_keep[j], "sorted_vals[j]", 1);
    require_len(vals_keep[j], "sorted_vals[j]", 0, rows_keep[j].shape(0));
    columns[j].size = rows_keep[j].shape(0);
    value[j] = pxt + pnum[j] * xt.shape(1);
  }
  const int64_t n = members_keep.shape(0);
  py::gil_scoped_release release;
  return self.update(columns.data(), value.data(), pmembers, n, n_rows, minimum, max_changes);
}

// A read-only view of the state (its memory stays with the object until its next update).
py::array widths_view(const py::object& owner, int which) {
  const auto& s = owner.cast<const airda::cpu::NeighbourWidths&>();
  const py::ssize_t item = static_cast<py::ssize_t>(sizeof(double));
  py::array out;
  if (which < 2) {
    const double* data = which == 0 ? s.mu() : s.sigma();
    out = py::array(py::dtype::of<double>(), {static_cast<py::ssize_t>(s.p()), s.size()},
                    {std::max<py::ssize_t>(s.capacity(), 1) * item, item}, data, owner);
  } else if (which == 2) {
    out = py::array(py::dtype::of<double>(), {s.size()}, {item}, s.log_norm(), owner);
  } else {
    out = py::array(py::dtype::of<int64_t>(), {s.size()}, {item},
                    which == 3 ? s.rows() : s.perm(), owner);
  }
  py::detail::array_proxy(out.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return out;
}

// log p(x) of the state's mixture (see NeighbourWidths::logpdf): x (n_cand, p) C-contiguous in
// the unit cube, log_w (>= n) the members' log weights in member order, the categorical tables
// (in component order) and log_extra as parzen_logpdf takes them, into out (n_cand,).
void widths_logpdf(const airda::cpu::NeighbourWidths& self, const py::array& x,
                   const py::array& log_w, const py::object& cat_x, const py::object& cat_logp,
                   const py::object& log_extra, int threads, py::array& out) {
  const double* px = f64_data(x, "x", 2);
  const py::ssize_t n_cand = x.shape(0);
  require_len(x, "x", 1, self.p());
  const double* pw = f64_data(log_w, "log_w", 1);
  if (log_w.shape(0) < self.size()) throw py::value_error("log_w has fewer entries than components");
  if (self.size() < 1) throw py::value_error("the state has no components (update it first)");
  const int64_t* pcx = nullptr;
  const double* pcl = nullptr;
  int64_t n_cat = 0, n_choices = 0;
  py::array cx_array, cl_array, extra_array;
  if (cat_x.is_none() != cat_logp.is_none()) {
    throw py::value_error("cat_x and cat_logp go together: give both or neither");
  }
  if (!cat_x.is_none()) {
    cx_array = py::array::ensure(cat_x);
    cl_array = py::array::ensure(cat_logp);
    if (!cx_array || !cl_array) throw py::type_error("cat_x / cat_logp must be arrays");
    require_matrix(cx_array, "cat_x");
    require_dtype(cx_array, "cat_x", 'i', 8);
    pcl = f64_data(cl_array, "cat_logp", 3);
    n_cat = cx_array.shape(1);
    n_choices = cl_array.shape(2);
    require_len(cx_array, "cat_x", 0, n_cand);
    require_len(cl_array, "cat_logp", 0, self.size());
    require_len(cl_array, "cat_logp", 1, n_cat);
    pcx = static_cast<const int64_t*>(cx_array.data());
    for (int64_t i = 0; i < n_cand * n_cat; ++i) {
      if (pcx[i] < 0 || pcx[i] >= n_choices) throw py::value_error("cat_x holds a bad code");
    }
  }
  const double* pextra = nullptr;
  if (!log_extra.is_none()) {
    extra_array = py::array::ensure(log_extra);
    if (!extra_array) throw py::type_error("log_extra must be None or a float64 array");
    pextra = f64_data(extra_array, "log_extra", 1);
    require_len(extra_array, "log_extra", 0, n_cand);
  }
  if (out.ndim() != 1 || out.shape(0) != n_cand || !(out.flags() & py::array::c_style)) {
    throw py::value_error("out must be C-contiguous with shape (" + std::to_string(n_cand) + ",)");
  }
  require_dtype(out, "out", 'f', 8);
  require_writeable(out, "out");
  auto* dst = static_cast<double*>(out.mutable_data());
  py::gil_scoped_release release;
  self.logpdf(px, n_cand, pw, pcx, pcl, n_cat, n_choices, pextra, threads, dst);
}

// log_w (n + extra,) with its first n entries in component order: out[k] = log_w[perm[k]].
py::array_t<double> widths_take(const airda::cpu::NeighbourWidths& self, const py::array& log_w) {
  const double* src = f64_data(log_w, "log_w", 1);
  const int64_t n = self.size(), total = log_w.shape(0);
  if (total < n) throw py::value_error("log_w has fewer entries than components");
  py::array_t<double> out(total);
  double* dst = out.mutable_data();
  const int64_t* perm = self.perm();
  for (int64_t k = 0; k < n; ++k) dst[k] = src[perm[k]];
  std::copy(src + n, src + total, dst + n);
  return out;
}

// One TPE proposal of a joint block of numeric parameters (airda::cpu::tpe_propose_numeric):
// g (updated) with log weights g_log_w (its members', then the prior's), l the rows `below` of
// xt (d, cap) in the parameters `num`, with log weights l_log_w; k uniform draws and the normals
// z; the snap plan per parameter (bins, logint, lo, hi, low, high, (p,) each); into x (k, p) and
// score (k,). Returns the best candidate's index, or -1 when the normals ran out.
int64_t cpu_tpe_propose_numeric(const airda::cpu::NeighbourWidths& g, const py::array& g_log_w,
                                const py::array& xt, const py::array& num,
                                const py::array& below, const py::array& l_log_w,
                                bool consider_endpoints, double l_minimum,
                                const py::array& uniform, const py::array& z,
                                const py::array& bins, const py::array& logint,
                                const py::array& lo, const py::array& hi, const py::array& low,
                                const py::array& high, double prior_const, py::array& x,
                                py::array& score) {
  const py::ssize_t p = g.p(), n_g = g.size();
  if (n_g < 1) throw py::value_error("the state has no components (update it first)");
  const double* pgw = f64_data(g_log_w, "g_log_w", 1);
  require_len(g_log_w, "g_log_w", 0, n_g + 1);
  const double* pxt = f64_data(xt, "xt", 2);
  py::array num_keep, below_keep;
  const int64_t* pnum = i64_vector(num, "num", &num_keep);
  require_len(num_keep, "num", 0, p);
  const int64_t* pbelow = i64_vector(below, "below", &below_keep);
  const py::ssize_t n_l = below_keep.shape(0);
  if (n_l < 1) throw py::value_error("below must hold at least one row");
  const double* plw = f64_data(l_log_w, "l_log_w", 1);
  require_len(l_log_w, "l_log_w", 0, n_l + 1);
  const double* pu = f64_data(uniform, "uniform", 1);
  const py::ssize_t k = uniform.shape(0);
  const double* pz = f64_data(z, "z", 1);
  const double* plans[5];
  const char* names[5] = {"bins", "lo", "hi", "low", "high"};
  const py::array* arrays[5] = {&bins, &lo, &hi, &low, &high};
  for (int i = 0; i < 5; ++i) {
    plans[i] = f64_data(*arrays[i], names[i], 1);
    require_len(*arrays[i], names[i], 0, p);
  }
  if (logint.ndim() != 1 || logint.shape(0) != p || logint.itemsize() != 1 ||
      !(logint.flags() & py::array::c_style)) {
    throw py::value_error("logint must be a C-contiguous bool or uint8 array of p entries");
  }
  f64_data(x, "x", 2);
  require_writeable(x, "x");
  require_len(x, "x", 0, k);
  require_len(x, "x", 1, p);
  f64_data(score, "score", 1);
  require_writeable(score, "score");
  require_len(score, "score", 0, k);
  auto* px = static_cast<double*>(x.mutable_data());
  auto* pscore = static_cast<double*>(score.mutable_data());
  std::vector<double> l_mu(p * n_l);
  for (py::ssize_t j = 0; j < p; ++j) {
    if (pnum[j] < 0 || pnum[j] >= xt.shape(0)) throw py::value_error("num holds a bad index");
    for (py::ssize_t i = 0; i < n_l; ++i) {
      if (pbelow[i] < 0 || pbelow[i] >= xt.shape(1)) throw py::value_error("below holds a bad row");
      l_mu[j * n_l + i] = pxt[pnum[j] * xt.shape(1) + pbelow[i]];
    }
  }
  const airda::cpu::TpeSnap snap{plans[0], static_cast<const uint8_t*>(logint.data()),
                                 plans[1], plans[2], plans[3], plans[4]};
  py::gil_scoped_release release;
  return airda::cpu::tpe_propose_numeric(g, pgw, l_mu.data(), n_l, plw, consider_endpoints,
                                         l_minimum, pu, k, pz, z.shape(0), snap, prior_const, px,
                                         pscore);
}

// TPE's per-parameter sorted observations, one new row in all of them: for every j with a
// value (not NaN), values[j] goes into vals[j][:sizes[j]] after the equal ones (as
// np.searchsorted(side="right") places it), row into rows[j] at the same place, and sizes[j]
// grows by one. The buffers need spare room (checked).
void cpu_tpe_sorted_insert(const py::list& vals, const py::list& rows, py::array& sizes,
                           const py::array& values, int64_t row) {
  const py::ssize_t p = static_cast<py::ssize_t>(vals.size());
  if (static_cast<py::ssize_t>(rows.size()) != p) {
    throw py::value_error("vals and rows must have one buffer per parameter");
  }
  const double* pv = f64_data(values, "values", 1);
  require_len(values, "values", 0, p);
  if (sizes.ndim() != 1 || sizes.shape(0) != p || !(sizes.flags() & py::array::c_style)) {
    throw py::value_error("sizes must be a 1-D C-contiguous int64 array of p entries");
  }
  require_dtype(sizes, "sizes", 'i', 8);
  require_writeable(sizes, "sizes");
  auto* psizes = static_cast<int64_t*>(sizes.mutable_data());
  for (py::ssize_t j = 0; j < p; ++j) {
    const double v = pv[j];
    if (v != v) continue;
    py::array vbuf = py::array::ensure(vals[j]), rbuf = py::array::ensure(rows[j]);
    if (!vbuf || !rbuf) throw py::type_error("vals[j] / rows[j] must be arrays");
    f64_data(vbuf, "vals[j]", 1);
    require_writeable(vbuf, "vals[j]");
    py::array keep;
    i64_vector(rbuf, "rows[j]", &keep);
    require_writeable(rbuf, "rows[j]");
    const int64_t m = psizes[j];
    if (m < 0 || m + 1 > vbuf.shape(0) || m + 1 > rbuf.shape(0)) {
      throw py::value_error("sorted buffer " + std::to_string(j) + " has no spare room");
    }
    auto* pvals = static_cast<double*>(vbuf.mutable_data());
    auto* prows = static_cast<int64_t*>(rbuf.mutable_data());
    const int64_t at = std::upper_bound(pvals, pvals + m, v) - pvals;
    std::memmove(pvals + at + 1, pvals + at, (m - at) * sizeof(double));
    std::memmove(prows + at + 1, prows + at, (m - at) * sizeof(int64_t));
    pvals[at] = v;
    prows[at] = row;
    psizes[j] = m + 1;
  }
}

// ---- end of the Parzen op ------------------------------------------------------------------

#ifdef AIRDA_WITH_CUDA
constexpr bool kCudaBuilt = true;
#else
constexpr bool kCudaBuilt = false;
[[noreturn]] void no_cuda() {
  throw std::runtime_error(
      "airda._C was built without CUDA (no CUDA compiler at build time, or AIRDA_CUDA=OFF)");
}
#endif

int cuda_device_count() {
#ifdef AIRDA_WITH_CUDA
  return airda::cuda::device_count();
#else
  no_cuda();
#endif
}

py::dict build_info() {
  py::dict info;
  info["compiler"] = std::string(
#if defined(__clang__)
      "clang " __clang_version__
#elif defined(__GNUC__)
      "gcc " __VERSION__
#else
      "unknown"
#endif
  );
  info["openmp"] = airda::cpu::openmp_version();
  info["cuda_built"] = kCudaBuilt;
#ifdef AIRDA_WITH_CUDA
  info["cuda_architectures"] = std::string(AIRDA_CUDA_ARCHITECTURES);
  info["cuda_runtime_version"] = airda::cuda::runtime_version();
#else
  info["cuda_architectures"] = std::string();
  info["cuda_runtime_version"] = 0;
#endif
  return info;
}

// ---- profiler
// The address of a `void (*)(void**)` function and of its argument array come from ctypes;
// they are trusted (the sandbox worker is the process that calls these), only null is refused.
// The samples are a list of floats, not a NumPy array: the sandbox worker does not import NumPy
// (it starts while the first variants compile).
py::dict profile_result(airda::cpu::ProfileResult&& r) {
  py::list samples(static_cast<py::ssize_t>(r.samples.size()));
  for (size_t i = 0; i < r.samples.size(); ++i)
    samples[i] = py::float_(r.samples[i]);
  py::dict out;
  out["samples"] = samples;
  out["inner"] = r.inner;
  out["measured_s"] = r.measured_s;
  out["converged"] = r.converged;
  out["stopped"] = r.stopped;
  return out;
}

airda::cpu::VariantFn variant_fn(std::uintptr_t fn) {
  if (fn == 0) throw py::value_error("fn is a null function address");
  return reinterpret_cast<airda::cpu::VariantFn>(fn);
}

py::dict cpu_profile(std::uintptr_t fn, std::uintptr_t args, int64_t warmup, int64_t inner,
                     double min_sample_s, int64_t min_samples, int64_t max_samples, double rel_ci,
                     double confidence, double max_time_s, bool flush, int64_t flush_bytes,
                     int clock, double stop_above, double stop_below) {
  if (!(confidence > 0.0 && confidence < 1.0)) throw py::value_error("confidence must be in (0, 1)");
  if (!(rel_ci >= 0.0)) throw py::value_error("rel_ci must be >= 0");
  if (!(max_time_s >= 0.0)) throw py::value_error("max_time_s must be >= 0");
  if (warmup < 0 || inner < 0 || min_samples < 1 || max_samples < 1)
    throw py::value_error("warmup, inner >= 0 and min_samples, max_samples >= 1 required");
  airda::cpu::ProfileOptions o;
  o.warmup = warmup;
  o.inner = inner;
  o.min_sample_s = min_sample_s;
  o.min_samples = min_samples;
  o.max_samples = max_samples;
  o.rel_ci = rel_ci;
  o.confidence = confidence;
  o.max_time_s = max_time_s;
  o.stop_above = stop_above;
  o.stop_below = stop_below;
  o.flush = flush;
  o.flush_bytes = flush_bytes;
  if (clock != 0 && clock != 1) throw py::value_error("clock must be 0 (wall) or 1 (thread CPU)");
  o.clock = clock;
  const auto f = variant_fn(fn);
  airda::cpu::ProfileResult r;
  {
    py::gil_scoped_release release;
    r = airda::cpu::profile(f, reinterpret_cast<void**>(args), o);
  }
  return profile_result(std::move(r));
}

py::dict cpu_sample(std::uintptr_t fn, std::uintptr_t args, int64_t n_samples, int64_t inner,
                    bool flush, int64_t flush_bytes, int clock) {
  if (n_samples < 0 || inner < 1) throw py::value_error("n_samples >= 0 and inner >= 1 required");
  if (clock != 0 && clock != 1) throw py::value_error("clock must be 0 (wall) or 1 (thread CPU)");
  const auto f = variant_fn(fn);
  airda::cpu::ProfileResult r;
  {
    py::gil_scoped_release release;
    r = airda::cpu::sample(f, reinterpret_cast<void**>(args), n_samples, inner, flush,
                           flush_bytes, clock);
  }
  return profile_result(std::move(r));
}

int64_t cpu_calibrate_inner(std::uintptr_t fn, std::uintptr_t args, double min_sample_s,
                            int clock) {
  const auto f = variant_fn(fn);
  if (clock != 0 && clock != 1) throw py::value_error("clock must be 0 (wall) or 1 (thread CPU)");
  py::gil_scoped_release release;
  return airda::cpu::calibrate_inner(f, reinterpret_cast<void**>(args), min_sample_s, clock);
}
// ---- end of the profiler

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "airda compiled kernels (C++/OpenMP, optional CUDA). Use airda.ops, not this module.";

  m.def("pack_sign_bits", &cpu_pack_sign_bits, py::arg("x"), py::arg("kind"), py::arg("out"),
        "Pack (x > 0) of a C-contiguous n x units float matrix into out (n x ceil(units/64) "
        "uint64). 16-bit kinds take their raw bits as uint16.");
  m.def("hamming_gram", &cpu_hamming_gram, py::arg("codes"), py::arg("units"), py::arg("out"),
        "out[i, j] = units - popcount(codes[i] ^ codes[j]) into an n x n int64 matrix.");
  // ---- mixed op (DARTS)
  m.def("mixed_op_forward", &cpu_mixed_op_forward, py::arg("ys"), py::arg("alpha"),
        py::arg("out"),
        "out (n,) = sum_k softmax(alpha)_k ys[k] for C-contiguous ys (K, n) and alpha (K,), all "
        "float32 or all float64.");
  m.def("mixed_op_backward", &cpu_mixed_op_backward, py::arg("ys"), py::arg("alpha"),
        py::arg("grad_out"), py::arg("grad_ys"), py::arg("grad_alpha"),
        "Gradients of mixed_op_forward given grad_out (n,), into grad_ys (K, n) and "
        "grad_alpha (K,). The sums do not depend on the thread count.");
  // ---- end of the mixed op
  // ---- grouped depthwise conv
  m.def("grouped_depthwise_conv", &cpu_grouped_depthwise_conv, py::arg("xs"), py::arg("weight"),
        py::arg("ksizes"), py::arg("stride"), py::arg("scales"), py::arg("shifts"), py::arg("act"),
        py::arg("outs"),
        "Depthwise conv of each C-contiguous xs[g] (B, c_g, H, W) with the centre (kh, kw) crop "
        "of weight[:c_g] (C, KH, KW), zero padding k//2, then optional scale/shift (c_g,) and "
        "activation (0 none, 1 relu, 2 relu6, 3 hardswish), into outs[g] (B, c_g, Ho, Wo).");
  // ---- end of the grouped depthwise conv
  // ---- Pareto op
  m.def("non_dominated_rank", &cpu_non_dominated_rank, py::arg("values"), py::arg("out"),
        "Non-dominated front of each row of a C-contiguous (n, m) float64 matrix (minimised, no "
        "NaN) into out (n,) int64; 0 = not dominated.");
  m.def("hypervolume", &cpu_hypervolume, py::arg("values"), py::arg("ref"),
        "Hypervolume dominated by the rows of an (n, m) float64 matrix, m in {2, 3}, bounded by "
        "ref (m,) float64.");
  // ---- end of the Pareto op
  // ---- resampling op
  m.def("bootstrap_means", &cpu_bootstrap_means, py::arg("data"), py::arg("n_resamples"),
        py::arg("seed"), py::arg("strata"), py::arg("threads"), py::arg("out"),
        "Means of the k rows of a C-contiguous (k, n) float64 matrix over n_resamples paired "
        "bootstrap resamples of airda's counter-based stream, into out (n_resamples, k). strata: "
        "None or (3, n) int64 rows order, start, size. threads <= 0: the OpenMP default.");
  m.def(
      "resample_use_avx2", &airda::cpu::resample_use_avx2, py::arg("use") = -1,
      "Whether bootstrap draws are hashed with AVX2 (same indices either way); use = 0 or 1 "
      "switches it for the process (1 only where the CPU has AVX2), -1 only asks.");
  // ---- end of the resampling op
  // ---- Parzen op
  m.def("parzen_logpdf", &cpu_parzen_logpdf, py::arg("x"), py::arg("mu"), py::arg("sigma"),
        py::arg("log_weights"), py::arg("log_norm"), py::arg("low"), py::arg("high"),
        py::arg("cat_x"), py::arg("cat_logp"), py::arg("log_extra"), py::arg("threads"),
        py::arg("out"),
        "log p(x) of a mixture of truncated normals (and categorical tables) for each row of x "
        "(n_cand, d) float64, into out (n_cand,); log_extra (n_cand,) or None: one more term per "
        "candidate. Values are checked by airda.ops.parzen_logpdf.");
  m.def("sorted_bandwidths", &cpu_sorted_bandwidths, py::arg("values"),
        py::arg("consider_endpoints"), py::arg("minimum"), py::arg("maximum"), py::arg("out"),
        "TPE's neighbour bandwidths of a small mixture in the unit cube from its values (p, n) "
        "(ties in index order), into out (p, n).");
  m.def("tpe_bandwidths", &cpu_tpe_bandwidths, py::arg("sorted_rows"), py::arg("sorted_vals"),
        py::arg("index"), py::arg("n"), py::arg("by_first"), py::arg("consider_endpoints"),
        py::arg("minimum"), py::arg("maximum"), py::arg("out"), py::arg("values"),
        py::arg("cache"), py::arg("stale"),
        "TPE's neighbour bandwidths of one mixture in the unit cube, every parameter, into out "
        "(p, n) and their values into values (p, n); returns perm, the index (into the mixture's rows) of each component, in "
        "ascending order of the first parameter with by_first. cache (rows, p) / stale (n,) "
        "uint8: widths kept per row (cache (p, rows)); changed ones are marked.");
  m.def(
      "tpe_default_log_weights",
      [](int64_t n, double prior_weight, py::array& out) {
        if (n < 0) throw py::value_error("n must be >= 0");
        if (!(prior_weight > 0.0)) throw py::value_error("prior_weight must be > 0");
        if (out.ndim() != 1 || out.shape(0) != n + 1 || !(out.flags() & py::array::c_style)) {
          throw py::value_error("out must be C-contiguous with n + 1 entries");
        }
        require_dtype(out, "out", 'f', 8);
        require_writeable(out, "out");
        airda::cpu::tpe_default_log_weights(n, prior_weight,
                                            static_cast<double*>(out.mutable_data()));
      },
      py::arg("n"), py::arg("prior_weight"), py::arg("out"),
      "TPE's default log-weights of n observations and the prior into out (n + 1,).");
  m.def(
      "tpe_truncated_draws",
      [](py::array& x, const py::array& mu, const py::array& sigma, const py::array& z) {
        // x = mu + sigma * z[:size] (all (k, p) C-contiguous float64), then the rejection of
        // TPE's draws in [0, 1]: each round redraws the coordinates still outside, in
        // row-major order, from the next normals of z (as consecutive draws of the generator
        // would give them). Returns how many normals were used, or -1 when z ran out (x is
        // then left as after the last whole round; the caller falls back).
        const double* pm = f64_data(mu, "mu", 2);
        const double* ps = f64_data(sigma, "sigma", 2);
        const double* pz = f64_data(z, "z", 1);
        f64_data(x, "x", 2);
        require_writeable(x, "x");
        const py::ssize_t size = x.shape(0) * x.shape(1);
        if (mu.size() != size || sigma.size() != size) {
          throw py::value_error("x, mu and sigma must have the same shape");
        }
        if (z.shape(0) < size) throw py::value_error("z must hold at least x.size normals");
        auto* px = static_cast<double*>(x.mutable_data());
        return airda::cpu::tpe_truncated_draws(px, pm, ps, size, pz, z.shape(0));
      },
      py::arg("x"), py::arg("mu"), py::arg("sigma"), py::arg("z"),
      "TPE's draws with their rejection into [0, 1] from pre-drawn normals z; returns how many "
      "were used (-1: too few).");
  m.def("tpe_propose_numeric", &cpu_tpe_propose_numeric, py::arg("g"), py::arg("g_log_w"),
        py::arg("xt"), py::arg("num"), py::arg("below"), py::arg("l_log_w"),
        py::arg("consider_endpoints"), py::arg("l_minimum"), py::arg("uniform"), py::arg("z"),
        py::arg("bins"), py::arg("logint"), py::arg("lo"), py::arg("hi"), py::arg("low"),
        py::arg("high"), py::arg("prior_const"), py::arg("x"), py::arg("score"),
        "One TPE proposal of a joint block of numeric parameters in one call (candidates into "
        "x, scores into score); returns the best index, or -1 when the normals z ran out.");
  m.def("tpe_sorted_insert", &cpu_tpe_sorted_insert, py::arg("vals"), py::arg("rows"),
        py::arg("sizes"), py::arg("values"), py::arg("row"),
        "One row into TPE's per-parameter sorted buffers (after equal values); sizes grow.");
  py::class_<airda::cpu::NeighbourWidths>(
      m, "NeighbourWidths",
      "TPE's neighbour bandwidths of one large mixture kept between asks and updated where "
      "its members changed (bit-identical to a full pass); see airda.hpo.tpe.")
      .def(py::init<int64_t, bool, bool>(), py::arg("p"), py::arg("consider_endpoints"),
           py::arg("by_row") = false)
      .def("update", &cpu_widths_update, py::arg("sorted_rows"), py::arg("sorted_vals"),
           py::arg("xt"), py::arg("num"), py::arg("members"), py::arg("n_rows"),
           py::arg("minimum"), py::arg("max_changes"),
           "Bring the state to these members; returns 0 (full pass), 1 (incremental) or 2 "
           "(unchanged).")
      .def("invalidate", &airda::cpu::NeighbourWidths::invalidate,
           "Make the next update a full pass (rows were reused).")
      .def("logpdf", &widths_logpdf, py::arg("x"), py::arg("log_w"), py::arg("cat_x"),
           py::arg("cat_logp"), py::arg("log_extra"), py::arg("threads"), py::arg("out"),
           "log p(x) of the mixture of the components, weighted by log_w (member order), into "
           "out; as parzen_logpdf (whose checks of values the caller has made).")
      .def("take", &widths_take, py::arg("log_w"),
           "log_w with its first n entries put in component order.")
      .def_property_readonly("mu", [](const py::object& o) { return widths_view(o, 0); },
                             "means (p, n), a read-only view with column stride capacity")
      .def_property_readonly("sigma", [](const py::object& o) { return widths_view(o, 1); },
                             "widths (p, n), laid out like mu")
      .def_property_readonly("log_norm", [](const py::object& o) { return widths_view(o, 2); },
                             "log-normaliser of each component (n,)")
      .def_property_readonly("rows", [](const py::object& o) { return widths_view(o, 3); },
                             "member row of each component (n,)")
      .def_property_readonly("perm", [](const py::object& o) { return widths_view(o, 4); },
                             "index in `members` of each component (n,)")
      .def_property_readonly("size", &airda::cpu::NeighbourWidths::size)
      .def_property_readonly("by_row", &airda::cpu::NeighbourWidths::by_row,
                             "components in row order (else by the first parameter)")
      .def_property_readonly("full_passes", &airda::cpu::NeighbourWidths::full_passes)
      .def_property_readonly("incremental_updates",
                             &airda::cpu::NeighbourWidths::incremental_updates)
      .def_property_readonly("norms_computed", &airda::cpu::NeighbourWidths::norms_computed);
  m.def("parzen_log_norm", &cpu_parzen_log_norm, py::arg("mu"), py::arg("sigma"), py::arg("low"),
        py::arg("high"), py::arg("out"),
        "Per-component log-normaliser of a truncated-normal mixture into out (n_comp,).");
  // ---- end of the Parzen op
  // ---- profiler
  m.def("profile_variant", &cpu_profile, py::arg("fn"), py::arg("args"), py::arg("warmup"),
        py::arg("inner"), py::arg("min_sample_s"), py::arg("min_samples"),
        py::arg("max_samples"), py::arg("rel_ci"), py::arg("confidence"), py::arg("max_time_s"),
        py::arg("flush"), py::arg("flush_bytes"), py::arg("clock") = 0,
        py::arg("stop_above") = 1e300, py::arg("stop_below") = -1.0,
        "Time fn(args) (addresses of a void(*)(void**) and a void*[]) with the GIL released "
        "until the median's CI is within rel_ci or max_time_s is spent, or (racing) the CI lies "
        "wholly above stop_above or below stop_below; returns a dict: samples (seconds per "
        "call), inner, measured_s, converged, stopped (1 above, -1 below, 0 neither). clock: 0 "
        "wall, 1 thread CPU time.");
  m.def("sample_variant", &cpu_sample, py::arg("fn"), py::arg("args"), py::arg("n_samples"),
        py::arg("inner"), py::arg("flush"), py::arg("flush_bytes"), py::arg("clock") = 0,
        "Exactly n_samples samples of inner calls each (a racing round); same dict as "
        "profile_variant.");
  m.def("calibrate_inner", &cpu_calibrate_inner, py::arg("fn"), py::arg("args"),
        py::arg("min_sample_s"), py::arg("clock") = 0, "Calls per sample so that one sample lasts min_sample_s.");
  m.def("median_ci_rank", &airda::cpu::median_ci_rank, py::arg("n"), py::arg("confidence"),
        "Rank k (1-based) of the lower end of the median's distribution-free CI; 0 if none.");
  m.def("last_level_cache_bytes", &airda::cpu::last_level_cache_bytes,
        "Largest CPU cache size listed in /sys (0 when unknown).");
  // ---- end of the profiler
  m.def("omp_max_threads", &airda::cpu::max_threads);
  m.def(
      "set_num_threads", [](int n) {
        if (n < 1) throw py::value_error("number of threads must be >= 1");
        omp_set_num_threads(n);
      },
      py::arg("n"), "Set the OpenMP thread count of the CPU kernels.");
  m.def("build_info", &build_info);
  m.def("cuda_built", [] { return kCudaBuilt; });
  m.def("cuda_device_count", &cuda_device_count,
        "Number of CUDA devices; raises RuntimeError with the CUDA error when none is usable.");

  m.def("mixed_op_cuda_workspace", &airda::mixed_op_cuda_workspace, py::arg("k"), py::arg("n"),
        "float64 entries of the workspace cuda_mixed_op_backward needs.");
#ifdef AIRDA_WITH_CUDA
  m.def("cuda_driver_version", &airda::cuda::driver_version);
  m.def("cuda_device_name", &airda::cuda::device_name, py::arg("device"));
  m.def(
      "cuda_pack_sign_bits",
      [](std::uintptr_t x, const std::string& kind, int64_t n, int64_t units, std::uintptr_t out,
         int device, std::uintptr_t stream) {
        const airda::FloatKind k = parse_kind(kind);
        if (n < 1 || units < 1) throw py::value_error("x is empty");
        if (x == 0 || out == 0) throw py::value_error("null device pointer");
        py::gil_scoped_release release;
        airda::cuda::pack_sign_bits(reinterpret_cast<const void*>(x), k, n, units,
                                    reinterpret_cast<uint64_t*>(out), device, stream);
      },
      py::arg("x"), py::arg("kind"), py::arg("n"), py::arg("units"), py::arg("out"),
      py::arg("device"), py::arg("stream"));
  m.def(
      "cuda_hamming_gram",
      [](std::uintptr_t codes, int64_t n, int64_t units, std::uintptr_t out, int device,
         std::uintptr_t stream) {
        if (n < 1 || units < 1) throw py::value_error("codes is empty");
        if (codes == 0 || out == 0) throw py::value_error("null device pointer");
        py::gil_scoped_release release;
        airda::cuda::hamming_gram(reinterpret_cast<const uint64_t*>(codes), n, units,
                                  reinterpret_cast<int64_t*>(out), device, stream);
      },
      py::arg("codes"), py::arg("n"), py::arg("units"), py::arg("out"), py::arg("device"),
      py::arg("stream"));
  m.def(
      "cuda_mixed_op_forward",
      [](std::uintptr_t ys, std::uintptr_t alpha, const std::string& kind, int64_t k, int64_t n,
         std::uintptr_t out, int device, std::uintptr_t stream) {
        const airda::FloatKind f = parse_kind(kind);
        if (k < 1 || n < 0) throw py::value_error("need K >= 1 candidates and n >= 0");
        // An empty tensor may have a null data pointer; only alpha (K >= 1) must exist then.
        if (alpha == 0 || (n > 0 && (ys == 0 || out == 0)))
          throw py::value_error("null device pointer");
        py::gil_scoped_release release;
        airda::cuda::mixed_op_forward(reinterpret_cast<const void*>(ys),
                                      reinterpret_cast<const void*>(alpha), f, k, n,
                                      reinterpret_cast<void*>(out), device, stream);
      },
      py::arg("ys"), py::arg("alpha"), py::arg("kind"), py::arg("k"), py::arg("n"),
      py::arg("out"), py::arg("device"), py::arg("stream"));
  m.def(
      "cuda_mixed_op_backward",
      [](std::uintptr_t ys, std::uintptr_t alpha, std::uintptr_t grad_out,
         const std::string& kind, int64_t k, int64_t n, std::uintptr_t grad_ys,
         std::uintptr_t grad_alpha, std::uintptr_t work, int device, std::uintptr_t stream) {
        const airda::FloatKind f = parse_kind(kind);
        if (k < 1 || n < 0) throw py::value_error("need K >= 1 candidates and n >= 0");
        if (alpha == 0 || grad_alpha == 0 || work == 0 ||
            (n > 0 && (ys == 0 || grad_out == 0 || grad_ys == 0)))
          throw py::value_error("null device pointer");
        py::gil_scoped_release release;
        airda::cuda::mixed_op_backward(
            reinterpret_cast<const void*>(ys), reinterpret_cast<const void*>(alpha),
            reinterpret_cast<const void*>(grad_out), f, k, n, reinterpret_cast<void*>(grad_ys),
            reinterpret_cast<void*>(grad_alpha), reinterpret_cast<double*>(work), device,
            stream);
      },
      py::arg("ys"), py::arg("alpha"), py::arg("grad_out"), py::arg("kind"), py::arg("k"),
      py::arg("n"), py::arg("grad_ys"), py::arg("grad_alpha"), py::arg("work"),
      py::arg("device"), py::arg("stream"));
#else
  m.def("cuda_driver_version", [] { return 0; });
  m.def("cuda_device_name", [](int) -> std::string { no_cuda(); }, py::arg("device"));
  m.def(
      "cuda_pack_sign_bits",
      [](std::uintptr_t, const std::string&, int64_t, int64_t, std::uintptr_t, int,
         std::uintptr_t) { no_cuda(); },
      py::arg("x"), py::arg("kind"), py::arg("n"), py::arg("units"), py::arg("out"),
      py::arg("device"), py::arg("stream"));
  m.def(
      "cuda_hamming_gram",
      [](std::uintptr_t, int64_t, int64_t, std::uintptr_t, int, std::uintptr_t) { no_cuda(); },
      py::arg("codes"), py::arg("n"), py::arg("units"), py::arg("out"), py::arg("device"),
      py::arg("stream"));
  m.def(
      "cuda_mixed_op_forward",
      [](std::uintptr_t, std::uintptr_t, const std::string&, int64_t, int64_t, std::uintptr_t,
         int, std::uintptr_t) { no_cuda(); },
      py::arg("ys"), py::arg("alpha"), py::arg("kind"), py::arg("k"), py::arg("n"),
      py::arg("out"), py::arg("device"), py::arg("stream"));
  m.def(
      "cuda_mixed_op_backward",
      [](std::uintptr_t, std::uintptr_t, std::uintptr_t, const std::string&, int64_t, int64_t,
         std::uintptr_t, std::uintptr_t, std::uintptr_t, int, std::uintptr_t) { no_cuda(); },
      py::arg("ys"), py::arg("alpha"), py::arg("grad_out"), py::arg("kind"), py::arg("k"),
      py::arg("n"), py::arg("grad_ys"), py::arg("grad_alpha"), py::arg("work"),
      py::arg("device"), py::arg("stream"));
#endif
}
