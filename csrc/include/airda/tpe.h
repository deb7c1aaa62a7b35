// CPU entry points of TPE's proposal state (the inner loop of airda.strategies.tpe, not an op):
// hyperopt's neighbour bandwidths, the mixture g kept between asks (NeighbourWidths), TPE's
// default weights, its truncated draws and one whole proposal of a block of numeric parameters.
// Plain C++ API used by the bindings; the densities are the Parzen op's (airda/parzen.h).
#pragma once

#include <cstdint>
#include <vector>

#include "airda/parzen.h"

namespace airda::cpu {

// TPE's default weights of n observations in trial order and the prior (out[n]), normalised,
// as logs (n + 1 entries): 1 each below 25 observations, else a linear ramp from 1/n (the
// oldest) to 1 over the first n - 25 and 1 for the 25 newest (Optuna's default).
void tpe_default_log_weights(int64_t n, double prior_weight, double* out);

// hyperopt's bandwidth rule in one dimension, for the observations of one mixture: `sorted_vals`
// (n_sorted) are the values of a larger set of observations in ascending order and `sorted_rows`
// their row numbers; `position[row]` (n_rows entries, 32-bit so that the table stays in the
// first-level cache) is the component index of a row that
// belongs to the mixture and -1 otherwise (n members in all). For every member, out[position]
// is the larger gap to its neighbouring members in sorted order (a missing neighbour counts as
// the bound low or high when consider_endpoints or n == 1, else as the other gap), clipped to
// [minimum, maximum]; values[position], when not null, gets the member's value. With `cache`
// (one width per row, at row * cache_stride), a width that
// differs from the cached one is stored there and its member marked in stale[position] = 1.
// Returns how many members were found (n when every member is among the sorted rows; the caller
// checks).
int64_t neighbour_bandwidths(const int64_t* sorted_rows, const double* sorted_vals,
                             int64_t n_sorted, const int32_t* position, int64_t n_rows, int64_t n,
                             double low, double high, bool consider_endpoints, double minimum,
                             double maximum, double* out, double* values, double* cache,
                             int64_t cache_stride, char* stale);

// The same rule from the members' own values (p, n), one row per dimension, by sorting them (ties
// in index order): for small mixtures, where walking every observation costs more.
void sorted_bandwidths(const double* values, int64_t p, int64_t n, double low, double high,
                       bool consider_endpoints, double minimum, double maximum, double* out);

// TPE's neighbour bandwidths of one large mixture (g, the "above" trials), kept from one ask to
// the next and updated where its members changed. The components are the members in ascending
// order of the first parameter (ties in the order of the sorted lists), or of their rows
// (by_row); per component and
// dimension the mean (the member's value) and the width (hyperopt's rule, as
// neighbour_bandwidths computes it), and per component its log-normaliser on [0, 1]^p (as
// parzen_log_norm computes it). Between asks a few rows join or leave (a new result, a row
// moving between l and g, a running trial under the constant liar): update() inserts and
// removes those components and recomputes the widths of the changed rows and of their nearest
// member neighbours in every dimension, and the normalisers of the components whose widths
// moved. The state after update() is exactly (bit for bit) what a full pass over the members
// gives; a full pass is made at the first update, after invalidate(), when `minimum` changes,
// with fewer than two members, or with more than max_changes changed rows.
//
// Means and widths are stored (p, capacity): element (j, k) at k + j * capacity().
class NeighbourWidths {
 public:
  // One parameter's observations in ascending order of value: their rows and values.
  struct Column {
    const int64_t* rows;
    const double* vals;
    int64_t size;
  };

  // by_row: the components in ascending order of their rows instead of the first parameter
  // (a new trial's row joins at the end, so that an update shifts no arrays; the order the
  // dense kernel's chunk skipping needs is lost, which matters in one or two dimensions).
  NeighbourWidths(int64_t p, bool consider_endpoints, bool by_row = false);

  // columns (p): the sorted observations per parameter; value[j][row]: parameter j's value in
  // each row (n_rows entries); members (n): the member rows in ascending order, all below
  // n_rows. Returns 0 after a full pass, 1 after an incremental update, 2 when nothing changed.
  // Throws std::invalid_argument when a member is missing from a column or members are not
  // ascending rows below n_rows.
  int update(const Column* columns, const double* const* value, const int64_t* members,
             int64_t n, int64_t n_rows, double minimum, int64_t max_changes);
  // The next update makes a full pass (rows may have been reused for other values).
  void invalidate() { valid_ = false; }
  // parzen_logpdf of the mixture of the components with weights log_w (the members' log
  // weights in the order of `members`, n entries), candidates x (n_cand, p) in the unit cube;
  // the arguments from cat_x on as parzen_logpdf takes them (cat_logp in component order).
  void logpdf(const double* x, int64_t n_cand, const double* log_w, const int64_t* cat_x,
              const double* cat_logp, int64_t n_cat, int64_t n_choices, const double* log_extra,
              int threads, double* out) const;

  int64_t p() const { return p_; }
  int64_t size() const { return n_; }
  bool by_row() const { return by_row_; }
  int64_t capacity() const { return cap_; }
  const double* mu() const { return mu_.data(); }
  const double* sigma() const { return sigma_.data(); }
  const double* inv_sigma() const { return inv_.data(); }  // sqrt(1/2) / sigma, laid out alike
  const double* log_norm() const { return norm_.data(); }
  const int64_t* rows() const { return comp_row_.data(); }  // the member row of each component
  const int64_t* perm() const { return perm_.data(); }      // its index in `members`
  int64_t full_passes() const { return n_full_; }
  int64_t incremental_updates() const { return n_incremental_; }
  int64_t norms_computed() const { return n_norms_; }

 private:
  bool member(int64_t row, int64_t n_rows) const {
    return row >= 0 && row < n_rows && rank_[row] >= 0;
  }
  double width_at(const Column& c, int64_t s, int64_t n, int64_t n_rows, double minimum) const;
  void reserve(int64_t need);
  void full(const Column* columns, int64_t n, int64_t n_rows, double minimum);
  bool incremental(const Column* columns, const double* const* value, int64_t n, int64_t n_rows,
                   double minimum);
  double norm_of(int64_t k) const;
  void refresh(int64_t k);  // component k's normaliser and inverse widths from its widths

  int64_t p_;
  bool ends_;
  bool by_row_;
  bool valid_ = false;
  double minimum_ = 0.0;
  int64_t n_ = 0, cap_ = 0, n_rows_ = 0;
  std::vector<double> mu_, sigma_, inv_, norm_;
  // The means and sqrt(1/2) / sigma in single precision, laid out alike, for logpdf's screen.
  std::vector<float> mu32_, inv32_;
  double inv_max_ = 0.0;  // at least the largest sqrt(1/2) / sigma
  std::vector<int64_t> comp_row_, perm_;
  std::vector<int32_t> pos_;   // row -> component (n_rows_ entries), -1 for non-members
  std::vector<int32_t> rank_;  // row -> index in the latest members, -1 for non-members
  std::vector<int64_t> added_, removed_;
  std::vector<double> spare_mu_, spare_sigma_, spare_norm_;  // the state before a full pass
  mutable std::vector<double> constant_;                      // scratch of logpdf
  std::vector<int32_t> spare_pos_;
  std::vector<char> stale_;        // per component, cleared after each update
  std::vector<double> low_, high_;  // the unit cube's bounds, p entries
  int64_t n_full_ = 0, n_incremental_ = 0, n_norms_ = 0;
};

// TPE's draws from its chosen components, truncated to [0, 1] by rejection, from pre-drawn
// normals: x = mu + sigma * z[:size] (all `size` entries, row-major (k, p)), then each round
// redraws the coordinates still outside, in row-major order, from the next normals of z (as
// consecutive draws of the generator would give them), up to 100 rounds, and clips. Returns how
// many normals were used, or -1 when the n_z normals ran out (x is then incomplete).
int64_t tpe_truncated_draws(double* x, const double* mu, const double* sigma, int64_t size,
                            const double* z, int64_t n_z);

// How TPE snaps a numeric parameter's unit coordinate to the value it decodes to: bins[j] > 0
// puts it at the centre of its bin of bins[j]; logint[j] != 0 rounds exp(lo + x (hi - lo)) to an
// integer in [low, high] and maps it back (a log-scaled integer parameter).
struct TpeSnap {
  const double* bins;
  const uint8_t* logint;
  const double *lo, *hi, *low, *high;
};

// One TPE proposal in the common case, a single joint block of numeric parameters, in one call (the
// Python path, airda.strategies.tpe.TPE._sample_block, is the reference): l is the mixture of the
// n_l "below" observations l_mu (p, n_l) with neighbour bandwidths clipped to [l_minimum, 1] and
// log weights l_log_w (n_l + 1, the prior's last); g is `g`, updated, with log weights g_log_w (its
// members' in member order, then the prior's). Each of the k candidates picks a component of l by
// its uniform draw (the prior, N(0.5, 1), is the last), is drawn from it by tpe_truncated_draws and
// snapped; its score is log l(x) - log g(x), the prior's density exp(prior_const - |x - 0.5|^2 / 2)
// weighted into both. Writes the candidates x (k, p) and scores (k,); returns the index of the best
// (the first of equals), or -1 when the normals ran out.
int64_t tpe_propose_numeric(const NeighbourWidths& g, const double* g_log_w, const double* l_mu,
                            int64_t n_l, const double* l_log_w, bool consider_endpoints,
                            double l_minimum, const double* uniform, int64_t k, const double* z,
                            int64_t n_z, const TpeSnap& snap, double prior_const, double* x,
                            double* score);

}  // namespace airda::cpu
