// Bindings of the code-variant profiler of airda.codeopt (csrc/codeopt/profiler.cpp; not an op):
// its checks beside its m.def (the Python side is airda.codeopt.profiler and the sandbox worker).
#include <pybind11/pybind11.h>

#include <cstdint>
#include <utility>

#include "airda/profiler.h"

namespace py = pybind11;

namespace airda::bindings {
namespace {

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

}  // namespace

void bind_profiler(py::module_& m) {
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
}

}  // namespace airda::bindings
