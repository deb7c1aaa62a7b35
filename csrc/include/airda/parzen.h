// CPU entry points of the Parzen op (parzen_logpdf, parzen_log_norm): log-densities of mixtures
// of truncated normals (with optional categorical dimensions), the acquisition of TPE. Plain C++
// API used by the bindings and by TPE's proposal state (airda/tpe.h); the NumPy reference is
// python/airda/ops/parzen.py.
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
// sorted by their first coordinate are scored fastest. With mu_ld > 0, mu and a 2-D sigma are
// stored column-major: element (k, j) of mu at k + j * mu_ld (mu_ld >= n_comp) and of sigma at
// k + j * sigma_ld (sigma_stride is then 1 for a 2-D sigma), which spares a transpose and lets
// the caller keep spare capacity per dimension; mu_ld = 0: row-major (n_comp, d). Inputs are
// valid (checked by the caller).
void parzen_logpdf(const double* x, int64_t n_cand, int64_t d, const double* mu,
                   const double* sigma, int64_t sigma_stride, const double* log_weights,
                   const double* log_norm, int64_t n_comp, const double* low, const double* high,
                   const int64_t* cat_x, const double* cat_logp, int64_t n_cat, int64_t n_choices,
                   const double* log_extra, int64_t mu_ld, int64_t sigma_ld, int threads,
                   double* out);

// parzen_logpdf with the per-component work done by the caller: the means mu_t and the scaled
// inverse widths inv = sqrt(1/2) / sigma stored by dimension (element (j, k) at j * ld + k and
// j * inv_ld + k; inv_ld = 0: one width per dimension, inv[j], shared by every component), and
// constant[k] = log weight + log-normaliser of component k.
void parzen_logpdf_prepared(const double* x, int64_t n_cand, int64_t d, const double* mu_t,
                            int64_t ld, const double* inv, int64_t inv_ld,
                            const double* constant, int64_t n_comp, const double* low,
                            const double* high, const int64_t* cat_x, const double* cat_logp,
                            int64_t n_cat, int64_t n_choices, const double* log_extra,
                            int threads, double* out);

}  // namespace airda::cpu
