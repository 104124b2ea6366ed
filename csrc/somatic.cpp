// Allele-fraction likelihoods for somatic calling (see somatic.hpp).
#include "gmsaccel/somatic.hpp"

#include <algorithm>
#include <cmath>

namespace gms {

double log10_fraction_ratio(const AlleleEvidence* reads, size_t n, double f) {
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!(reads[i].ref > 0)) continue;  // (callers floor likelihoods above 0)
    sum += std::log10(f * (reads[i].alt / reads[i].ref) + (1 - f));
  }
  return sum;
}

double fitted_fraction(const AlleleEvidence* reads, size_t n) {
  // d/df sum log(f x_i + 1 - f), x_i = alt_i / ref_i: sum (x_i - 1) / (1 + f (x_i - 1)),
  // decreasing in f.
  auto slope = [&](double f) {
    double s = 0;
    for (size_t i = 0; i < n; ++i) {
      if (reads[i].ref <= 0) continue;
      const double d = reads[i].alt / reads[i].ref - 1;
      s += d / (1 + f * d);
    }
    return s;
  };
  if (!(slope(0) > 0)) return 0;
  if (slope(1) >= 0) return 1;
  double lo = 0, hi = 1;
  while (hi - lo > 1e-6) {
    const double mid = 0.5 * (lo + hi);
    (slope(mid) > 0 ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

double strand_bias_p(int alt_fwd, int alt_rev, int depth_fwd, int depth_rev) {
  const int k = alt_fwd + alt_rev;
  if (k <= 0 || depth_fwd <= 0 || depth_rev <= 0 || alt_fwd < 0 || alt_rev < 0) return 1;
  const double q = static_cast<double>(depth_fwd) / (static_cast<double>(depth_fwd) + depth_rev);
  const double lq = std::log(q), lr = std::log1p(-q);
  auto pmf = [&](int i) {
    return std::exp(std::lgamma(k + 1.0) - std::lgamma(i + 1.0) - std::lgamma(k - i + 1.0) +
                    i * lq + (k - i) * lr);
  };
  double below = 0, above = 0;  // P(X <= alt_fwd), P(X >= alt_fwd)
  for (int i = 0; i <= k; ++i) {
    const double p = pmf(i);
    if (i <= alt_fwd) below += p;
    if (i >= alt_fwd) above += p;
  }
  return std::min(1.0, 2 * std::min(below, above));
}

SomaticScore score_somatic(const AlleleEvidence* tumour, size_t n_tumour,
                           const AlleleEvidence* normal, size_t n_normal) {
  SomaticScore s;
  s.tumour_fraction = fitted_fraction(tumour, n_tumour);
  s.tlod = log10_fraction_ratio(tumour, n_tumour, s.tumour_fraction);
  if (normal) {
    s.normal_fraction = fitted_fraction(normal, n_normal);
    s.nlod = -log10_fraction_ratio(normal, n_normal, 0.5);
    s.normal_alod = log10_fraction_ratio(normal, n_normal, s.normal_fraction);
  }
  return s;
}

}  // namespace gms
