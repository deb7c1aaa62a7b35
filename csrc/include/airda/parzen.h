// CPU entry points of the Parzen op: log-densities of mixtures of truncated normals (with
// optional categorical dimensions), the acquisition of TPE. Plain C++ API used by the bindings;
// the NumPy reference is python/airda/ops/parzen.py.
#pragma once

#include <cstdint>

namespace airda::cpu {

// log of the mass a normal N(mu, sigma) puts on [low, high], stable in both tails (-inf when it
// underflows past the smallest double).
double normal_log_mass(double mu, double sigma, double low, double high);

// out[k] = sum over the d dimensions of -log(sigma) - log(2 pi) / 2 - log mass(low, high): the
// log-normaliser of component k's product of truncated normals. sigma has row stride
// `sigma_stride` (0: one row shared by all components, or d).
void parzen_log_norm(const double* mu, const double* sigma, int64_t sigma_stride, int64_t n_comp,
                     int64_t d, const double* low, const double* high, double* out);

// out[i] = log sum_k exp(log_weights[k] + log_norm[k] - sum_j z_kj^2 / 2 + sum_c cat) where
// z_kj = (x[i, j] - mu[k, j]) / sigma[k, j] and cat = cat_logp[k, c, cat_x[i, c]]; -inf for a
// candidate outside [low, high] in some dimension or where every term is -inf. Terms more than
// 60 below the largest are skipped (their share is below n_comp * 1e-26). log_norm may be null:
// it is then computed with parzen_log_norm. log_extra, when not null, is one more term per
// candidate (n_cand,), added to the sum (and counted as a term for the skipping). Components
// sorted by their first coordinate are scored fastest. With `columns`, mu and a 2-D sigma are
// stored column-major, (d, n_comp) (sigma_stride is then 1 for a 2-D sigma), which spares a
// transpose. Inputs are valid (checked by the caller).
void parzen_logpdf(const double* x, int64_t n_cand, int64_t d, const double* mu,
                   const double* sigma, int64_t sigma_stride, const double* log_weights,
                   const double* log_norm, int64_t n_comp, const double* low, const double* high,
                   const int64_t* cat_x, const double* cat_logp, int64_t n_cat, int64_t n_choices,
                   const double* log_extra, bool columns, int threads, double* out);

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

}  // namespace airda::cpu
