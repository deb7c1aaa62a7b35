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
// it is then computed with parzen_log_norm. Inputs are valid (checked by the caller).
void parzen_logpdf(const double* x, int64_t n_cand, int64_t d, const double* mu,
                   const double* sigma, int64_t sigma_stride, const double* log_weights,
                   const double* log_norm, int64_t n_comp, const double* low, const double* high,
                   const int64_t* cat_x, const double* cat_logp, int64_t n_cat, int64_t n_choices,
                   int threads, double* out);

}  // namespace airda::cpu
