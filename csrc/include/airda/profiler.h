// CPU entry points of the code-variant profiler: time a `void (*)(void**)` function (a symbol of
// a variant's shared library, reached through its generated trampoline) in a C++ loop.
// Plain C++ API used by the bindings; statistics beyond the stopping rule live in
// python/airda/codeopt/profiler.py.
#pragma once

#include <cstdint>
#include <vector>

namespace airda::cpu {

using VariantFn = void (*)(void**);

struct ProfileOptions {
  int64_t warmup = 3;           // untimed calls before sampling
  int64_t inner = 0;            // calls per sample; 0: calibrated so a sample lasts min_sample_s
  double min_sample_s = 5e-5;   // a sample must last well above the clock resolution
  int64_t min_samples = 10;     // never stop before this many samples
  int64_t max_samples = 100000; // stop after this many samples
  double rel_ci = 0.01;         // stop when (hi - lo) / median of the median's CI is below this
  double confidence = 0.95;     // of the median's CI
  double max_time_s = 1.0;      // stop when the timed calls have taken this long
  bool flush = false;           // write over a buffer larger than the last-level cache per sample
  int64_t flush_bytes = 0;      // its size; 0: 2 x the last-level cache from /sys (64 MiB if none)
  int clock = 0;                // 0: wall (steady_clock); 1: the calling thread's CPU time
  // Racing bounds (seconds per call), checked with the interval: stop once the median's CI lies
  // wholly above stop_above (clearly behind a rival) or wholly below stop_below (clearly ahead
  // of it). The defaults never stop.
  double stop_above = 1e300;
  double stop_below = -1.0;
};

struct ProfileResult {
  std::vector<double> samples;  // seconds per call, one entry per sample
  int64_t inner = 1;
  double measured_s = 0.0;      // time spent in timed calls
  bool converged = false;       // the CI reached rel_ci
  int stopped = 0;              // 1: stopped above stop_above, -1: below stop_below, 0: neither
};

// Largest k such that P(Binomial(n, 1/2) < k) <= (1 - confidence) / 2: the median's
// distribution-free CI is [x_(k), x_(n+1-k)] (1-based order statistics); 0 when n is too small.
int64_t median_ci_rank(int64_t n, double confidence);

// Size in bytes of the largest CPU cache listed in /sys/devices/system/cpu/cpu0/cache (0 if none).
int64_t last_level_cache_bytes();

// Adaptive measurement, as ProfileOptions describes.
ProfileResult profile(VariantFn fn, void** args, const ProfileOptions& opts);

// Exactly n_samples samples of `inner` calls each (no warm-up, no stopping rule): the racing
// rounds call this so that every variant gets the same protocol.
ProfileResult sample(VariantFn fn, void** args, int64_t n_samples, int64_t inner, bool flush,
                     int64_t flush_bytes, int clock = 0);

// Calls per sample so that one sample lasts at least min_sample_s (at most 1 << 30).
int64_t calibrate_inner(VariantFn fn, void** args, double min_sample_s, int clock = 0);

// Seconds on the clock: 0 wall (steady_clock), 1 the calling thread's CPU time (which leaves
// out time the thread was preempted: steadier on a loaded machine, for one-thread variants).
double clock_seconds(int clock);

}  // namespace airda::cpu
