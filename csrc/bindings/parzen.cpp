// Bindings of the Parzen op (parzen_logpdf, parzen_log_norm): its checks of every array beside its
// m.def, so that no call from Python can crash the process; the Python wrapper (airda.ops.parzen)
// checks values as well.
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "airda/parzen.h"
#include "bindings/checks.h"

namespace py = pybind11;

namespace airda::bindings {
namespace {

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

}  // namespace

void bind_parzen(py::module_& m) {
  m.def("parzen_logpdf", &cpu_parzen_logpdf, py::arg("x"), py::arg("mu"), py::arg("sigma"),
        py::arg("log_weights"), py::arg("log_norm"), py::arg("low"), py::arg("high"),
        py::arg("cat_x"), py::arg("cat_logp"), py::arg("log_extra"), py::arg("threads"),
        py::arg("out"),
        "log p(x) of a mixture of truncated normals (and categorical tables) for each row of x "
        "(n_cand, d) float64, into out (n_cand,); log_extra (n_cand,) or None: one more term per "
        "candidate. Values are checked by airda.ops.parzen_logpdf.");
  m.def("parzen_log_norm", &cpu_parzen_log_norm, py::arg("mu"), py::arg("sigma"), py::arg("low"),
        py::arg("high"), py::arg("out"),
        "Per-component log-normaliser of a truncated-normal mixture into out (n_comp,).");
}

}  // namespace airda::bindings
