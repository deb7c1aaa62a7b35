// Bindings of TPE's proposal state (sorted_bandwidths, tpe_*, NeighbourWidths; csrc/strategies/
// tpe.cpp): the inner loop of airda.strategies.tpe, not an op. Its checks of every array are beside
// its m.def, so that no call from Python can crash the process; airda.strategies.tpe checks values.
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "airda/tpe.h"
#include "bindings/checks.h"

namespace py = pybind11;

namespace airda::bindings {
namespace {

const int64_t* i64_vector(const py::handle& h, const char* name, py::array* keep) {
  *keep = py::array::ensure(h);
  if (!*keep || keep->ndim() != 1 || !(keep->flags() & py::array::c_style)) {
    throw py::value_error(std::string(name) + " must be a 1-D C-contiguous int64 array");
  }
  require_dtype(*keep, name, 'i', 8);
  return static_cast<const int64_t*>(keep->data());
}

// TPE's neighbour bandwidths (airda.strategies.tpe) of one mixture, every dimension in one call:
// sorted_rows[j] / sorted_vals[j] are the observations of parameter j in ascending order, index
// (n_rows,) the index in the mixture's rows of a member row and -1 otherwise. With `by_first` the
// components are renumbered in ascending order of the first parameter, else they keep `index`.
// Writes out (p, n) and the members' values into values (p, n); returns perm (n,): the index of
// each component's row. With `cache` (p, n_rows or more) the widths each row had are compared and
// updated, and stale (n,) uint8 marks the components whose widths changed.
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

}  // namespace

void bind_tpe(py::module_& m) {
  m.def("sorted_bandwidths", &cpu_sorted_bandwidths, py::arg("values"),
        py::arg("consider_endpoints"), py::arg("minimum"), py::arg("maximum"), py::arg("out"),
        "TPE's neighbour bandwidths of a small mixture in the unit cube from its values (p, n) "
        "(ties in index order), into out (p, n).");
  m.def("tpe_bandwidths", &cpu_tpe_bandwidths, py::arg("sorted_rows"), py::arg("sorted_vals"),
        py::arg("index"), py::arg("n"), py::arg("by_first"), py::arg("consider_endpoints"),
        py::arg("minimum"), py::arg("maximum"), py::arg("out"), py::arg("values"),
        py::arg("cache"), py::arg("stale"),
        "TPE's neighbour bandwidths of one mixture in the unit cube, every parameter, into out "
        "(p, n) and their values into values (p, n); returns perm, the index (into the "
        "mixture's rows) of each component, in "
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
}

}  // namespace airda::bindings
