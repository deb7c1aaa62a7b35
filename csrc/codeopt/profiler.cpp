// The timing loop of the code-variant profiler (see airda/profiler.h). Every sample is
// `inner` back-to-back calls timed with steady_clock; the optional cache flush runs between
// samples, outside the timed region.
#include "airda/profiler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include <time.h>

namespace airda::cpu {

namespace {

using Clock = std::chrono::steady_clock;


// Parses "32768K", "8M" or "512" into bytes.
int64_t parse_size(const std::string& text) {
  if (text.empty()) return 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (v <= 0) return 0;
  int64_t mult = 1;
  if (end && (*end == 'K' || *end == 'k')) mult = 1024;
  if (end && (*end == 'M' || *end == 'm')) mult = 1024 * 1024;
  if (end && (*end == 'G' || *end == 'g')) mult = int64_t{1024} * 1024 * 1024;
  return static_cast<int64_t>(v) * mult;
}

class Flusher {
 public:
  explicit Flusher(int64_t bytes) : buf_(static_cast<size_t>(std::max<int64_t>(bytes, 4096))) {}
  void run() {
    // Writing then reading every cache line evicts the variant's data from every level.
    ++round_;
    const size_t n = buf_.size();
    for (size_t i = 0; i < n; i += 64) buf_[i] = static_cast<char>(round_ + i);
    volatile char sink = 0;
    for (size_t i = 0; i < n; i += 64) sink = sink + buf_[i];
    (void)sink;
  }

 private:
  std::vector<char> buf_;
  unsigned round_ = 0;
};

int64_t flush_size(int64_t requested) {
  if (requested > 0) return requested;
  const int64_t llc = last_level_cache_bytes();
  return llc > 0 ? 2 * llc : int64_t{64} * 1024 * 1024;
}

// One sample: seconds per call over `inner` calls.
double time_once(VariantFn fn, void** args, int64_t inner, double* elapsed, int clock) {
  const double t0 = clock_seconds(clock);
  for (int64_t i = 0; i < inner; ++i) fn(args);
  const double s = clock_seconds(clock) - t0;
  *elapsed += s;
  return s / static_cast<double>(inner);
}

// The median's CI of `samples` at `confidence`; false when there are too few samples.
bool median_ci(std::vector<double> samples, double confidence, double* lo, double* hi,
               double* med) {
  const int64_t n = static_cast<int64_t>(samples.size());
  const int64_t k = median_ci_rank(n, confidence);
  if (k < 1) return false;
  std::sort(samples.begin(), samples.end());
  *lo = samples[static_cast<size_t>(k - 1)];
  *hi = samples[static_cast<size_t>(n - k)];
  *med = n % 2 ? samples[static_cast<size_t>(n / 2)]
               : 0.5 * (samples[static_cast<size_t>(n / 2 - 1)] +
                        samples[static_cast<size_t>(n / 2)]);
  return true;
}

}  // namespace

double clock_seconds(int clock) {
  if (clock == 1) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  }
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

int64_t median_ci_rank(int64_t n, double confidence) {
  if (n < 1) return 0;
  const double tail = 0.5 * (1.0 - confidence);
  // Cumulative binomial(n, 1/2) in log space: exact for any n we will see.
  const double log_half_n = static_cast<double>(n) * std::log(0.5);
  const double lg_n1 = std::lgamma(static_cast<double>(n) + 1.0);
  double cdf = 0.0;  // P(B <= i - 1) for the current i
  int64_t k = 0;
  for (int64_t i = 0; i <= n / 2; ++i) {
    const double log_pmf = lg_n1 - std::lgamma(static_cast<double>(i) + 1.0) -
                           std::lgamma(static_cast<double>(n - i) + 1.0) + log_half_n;
    // P(B < i + 1) = cdf + pmf(i); rank i + 1 is allowed when that stays within the tail.
    const double next = cdf + std::exp(log_pmf);
    if (next > tail) break;
    cdf = next;
    k = i + 1;
  }
  return k;
}

int64_t last_level_cache_bytes() {
  int64_t best = 0;
  for (int i = 0; i < 16; ++i) {
    std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/size");
    if (!f) continue;
    std::string text;
    f >> text;
    best = std::max(best, parse_size(text));
  }
  return best;
}

int64_t calibrate_inner(VariantFn fn, void** args, double min_sample_s, int clock) {
  int64_t inner = 1;
  double elapsed = 0.0;
  while (inner < (int64_t{1} << 30)) {
    double t = 0.0;
    time_once(fn, args, inner, &t, clock);
    elapsed += t;
    if (t >= min_sample_s) break;
    // Aim straight at the target when the estimate is usable, doubling otherwise.
    const int64_t aim = t > 0.0 ? static_cast<int64_t>(std::ceil(inner * 1.2 * min_sample_s / t))
                                : inner * 2;
    inner = std::min<int64_t>(std::max<int64_t>(aim, inner * 2), int64_t{1} << 30);
  }
  return inner;
}

ProfileResult sample(VariantFn fn, void** args, int64_t n_samples, int64_t inner, bool flush,
                     int64_t flush_bytes, int clock) {
  ProfileResult res;
  res.inner = std::max<int64_t>(inner, 1);
  res.samples.reserve(static_cast<size_t>(std::max<int64_t>(n_samples, 0)));
  Flusher* flusher = nullptr;
  Flusher storage(flush ? flush_size(flush_bytes) : 0);
  if (flush) flusher = &storage;
  for (int64_t s = 0; s < n_samples; ++s) {
    if (flusher) flusher->run();
    res.samples.push_back(time_once(fn, args, res.inner, &res.measured_s, clock));
  }
  return res;
}

ProfileResult profile(VariantFn fn, void** args, const ProfileOptions& opts) {
  ProfileResult res;
  for (int64_t i = 0; i < opts.warmup; ++i) fn(args);
  res.inner =
      opts.inner > 0 ? opts.inner : calibrate_inner(fn, args, opts.min_sample_s, opts.clock);
  Flusher storage(opts.flush ? flush_size(opts.flush_bytes) : 0);
  const int64_t min_samples = std::max<int64_t>(opts.min_samples, 1);
  const int64_t max_samples = std::max(opts.max_samples, min_samples);
  int64_t next_check = min_samples;
  while (static_cast<int64_t>(res.samples.size()) < max_samples) {
    if (opts.flush) storage.run();
    res.samples.push_back(time_once(fn, args, res.inner, &res.measured_s, opts.clock));
    const int64_t n = static_cast<int64_t>(res.samples.size());
    if (n >= next_check) {
      // Checking costs a sort: check at geometrically spaced counts.
      next_check = n + std::max<int64_t>(1, n / 8);
      double lo = 0.0, hi = 0.0, med = 0.0;
      if (median_ci(res.samples, opts.confidence, &lo, &hi, &med)) {
        // Each reason is recorded (a variant both measured precisely and clearly behind its
        // rival was raced out too).
        res.converged = med > 0.0 ? (hi - lo) / med <= opts.rel_ci : hi - lo <= 0.0;
        res.stopped = lo > opts.stop_above ? 1 : (hi < opts.stop_below ? -1 : 0);
        if (res.converged || res.stopped != 0) break;
      }
    }
    if (n >= min_samples && res.measured_s >= opts.max_time_s) break;
  }
  return res;
}

}  // namespace airda::cpu
