// Allele-fraction likelihoods for somatic calling (see somatic.hpp).
#include "gmsaccel/somatic.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace gms {

namespace {

double log10_likelihood(const double* lik, size_t n, size_t k, const double* f) {
  double sum = 0;
  for (size_t r = 0; r < n; ++r) {
    double s = 0;
    for (size_t j = 0; j < k; ++j) s += f[j] * lik[r * k + j];
    sum += std::log10(s);
  }
  return sum;
}

}  // namespace

double fit_fractions(const double* lik, size_t n, size_t k, const double* fixed, double* f) {
  std::vector<size_t> free_ones;
  double held = 0;
  for (size_t j = 0; j < k; ++j) {
    if (fixed && fixed[j] >= 0) {
      f[j] = fixed[j];
      held += fixed[j];
    } else {
      f[j] = 0;
      free_ones.push_back(j);
    }
  }
  const double mass = std::max(0.0, 1 - held);  // what the free components share
  if (free_ones.size() == 1) {
    f[free_ones[0]] = mass;
  } else if (free_ones.size() == 2 && mass > 0) {
    // f_a = (1 - t) mass, f_b = t mass: the slope in t, sum mass (l_b - l_a) / row, falls as
    // t grows; where it is flat the first component keeps the mass (the reference, where a
    // site's reads tell nothing apart).
    const size_t a = free_ones[0], b = free_ones[1];
    std::vector<double> rest(n, 0.0);  // each read's likelihood from the held components
    for (size_t r = 0; r < n; ++r)
      for (size_t j = 0; j < k; ++j)
        if (j != a && j != b) rest[r] += f[j] * lik[r * k + j];
    auto slope = [&](double t) {
      double s = 0;
      for (size_t r = 0; r < n; ++r) {
        const double la = lik[r * k + a], lb = lik[r * k + b];
        s += mass * (lb - la) / (rest[r] + mass * ((1 - t) * la + t * lb));
      }
      return s;
    };
    double t;
    if (!(slope(0) > 0)) {
      t = 0;
    } else if (slope(1) >= 0) {
      t = 1;
    } else {
      double lo = 0, hi = 1;
      while (hi - lo > 1e-9) {
        const double mid = 0.5 * (lo + hi);
        (slope(mid) > 0 ? lo : hi) = mid;
      }
      t = 0.5 * (lo + hi);
    }
    f[a] = (1 - t) * mass;
    f[b] = t * mass;
  } else if (free_ones.size() > 2 && mass > 0) {
    for (size_t j : free_ones) f[j] = mass / static_cast<double>(free_ones.size());
    double ll = log10_likelihood(lik, n, k, f);
    std::vector<double> weight(k);
    for (int it = 0; it < 10000; ++it) {
      std::fill(weight.begin(), weight.end(), 0.0);
      for (size_t r = 0; r < n; ++r) {
        double s = 0;
        for (size_t j = 0; j < k; ++j) s += f[j] * lik[r * k + j];
        for (size_t j : free_ones) weight[j] += f[j] * lik[r * k + j] / s;
      }
      double total = 0;
      for (size_t j : free_ones) total += weight[j];
      if (!(total > 0)) break;
      for (size_t j : free_ones) f[j] = mass * weight[j] / total;
      const double next = log10_likelihood(lik, n, k, f);
      const bool settled = next - ll < 1e-10;
      ll = next;
      if (settled) break;
    }
    // EM only approaches a boundary: what is left of a component below 1e-8 goes to the others
    double kept = 0;
    for (size_t j : free_ones) {
      if (f[j] < 1e-8) f[j] = 0;
      kept += f[j];
    }
    if (kept > 0)
      for (size_t j : free_ones) f[j] *= mass / kept;
  }
  return log10_likelihood(lik, n, k, f);
}

SomaticScore score_allele(const double* tumour, size_t n_tumour, const double* normal,
                          size_t n_normal, size_t k, size_t allele, double tumour_in_normal) {
  SomaticScore s;
  std::vector<double> f(k), without(k, -1.0), het(k, -1.0);
  without[allele] = 0;
  het[allele] = 0.5;
  const double full = fit_fractions(tumour, n_tumour, k, nullptr, f.data());
  s.tumour_fraction = f[allele];
  // (at least 0: the full fit can hold the allele at 0, though EM may stop a hair short of
  // an exact fit without it; + 0.0: never -0)
  s.tlod = std::max(0.0, full - fit_fractions(tumour, n_tumour, k, without.data(), f.data()));
  if (normal) {
    if (n_normal == 0) {
      s.normal_fraction = std::numeric_limits<double>::quiet_NaN();
      return s;
    }
    const double n_full = fit_fractions(normal, n_normal, k, nullptr, f.data());
    s.normal_fraction = f[allele];
    // the normal as a somatic allele would leave it: without it, or with the tumour's cells
    // in it at their share of the tumour's fraction
    std::vector<double> somatic = without;
    somatic[allele] = tumour_in_normal * s.tumour_fraction;
    const double n_somatic = fit_fractions(normal, n_normal, k, somatic.data(), f.data());
    // (one-sided: a normal showing less of the allele than its tumour cells would is no
    // artifact; with none assumed it cannot show less)
    s.normal_alod = tumour_in_normal > 0 && s.normal_fraction <= somatic[allele]
                        ? 0.0
                        : std::max(0.0, n_full - n_somatic);
    // A carrier's normal: its own cells at 1/2, and the tumour's cells in it at the tumour's
    // fraction (a germline allele the tumour has lost or gained shows so in them too).
    if (tumour_in_normal > 0)
      het[allele] = 0.5 + tumour_in_normal * (s.tumour_fraction - 0.5);
    s.nlod = n_somatic - fit_fractions(normal, n_normal, k, het.data(), f.data()) + 0.0;
  }
  return s;
}

double log10_integrated_likelihood(const double* lik, size_t n, size_t k, size_t allele,
                                   const double* also, size_t n_also, double also_scale) {
  std::vector<double> f(k), held(k, -1.0);
  fit_fractions(lik, n, k, nullptr, f.data());
  const double best = f[allele];
  // The profile likelihood is as narrow as a binomial fraction's spread over these reads.
  const double nn = std::max<double>(1.0, static_cast<double>(n));
  const double sd = std::sqrt(std::max(best * (1 - best), 1 / nn) / nn);
  std::vector<double> xs;
  constexpr int kCoarse = 64, kFine = 64;
  for (int i = 0; i <= kCoarse; ++i) xs.push_back(static_cast<double>(i) / kCoarse);
  const double lo = std::max(0.0, best - 8 * sd), hi = std::min(1.0, best + 8 * sd);
  for (int i = 0; i <= kFine; ++i) xs.push_back(lo + (hi - lo) * i / kFine);
  std::sort(xs.begin(), xs.end());
  xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
  std::vector<double> ll(xs.size());
  double top = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < xs.size(); ++i) {
    held[allele] = xs[i];
    ll[i] = fit_fractions(lik, n, k, held.data(), f.data());
    if (also) {
      held[allele] = also_scale * xs[i];
      ll[i] += fit_fractions(also, n_also, k, held.data(), f.data());
    }
    top = std::max(top, ll[i]);
  }
  double area = 0;  // in units of 10^top
  for (size_t i = 0; i + 1 < xs.size(); ++i)
    area += (xs[i + 1] - xs[i]) * 0.5 * (std::pow(10.0, ll[i] - top) +
                                         std::pow(10.0, ll[i + 1] - top));
  return top + std::log10(area);
}

AlleleOrigins allele_origins(const double* tumour, size_t n_tumour, const double* normal,
                             size_t n_normal, size_t k, size_t allele, double population_af,
                             double log10_somatic_prior, double contamination,
                             double tumour_in_normal) {
  const double p = std::clamp(population_af, 1e-300, 1.0);
  const double log_het = std::log10(2 * p * (1 - p) + 1e-300), log_hom = 2 * std::log10(p);
  const double log_lacks = 2 * std::log10(std::max(1 - p, 1e-300));
  std::vector<double> f(k), held(k, -1.0);
  auto at = [&](const double* lik, size_t n, double fraction) {
    held[allele] = fraction;
    return fit_fractions(lik, n, k, held.data(), f.data());
  };
  const bool has_normal = normal && n_normal;
  const double normal_lacks = has_normal ? at(normal, n_normal, 0.0) : 0.0;
  // log10 of each origin's prior times likelihood, its ways summed
  auto sum = [](double x, double y) {
    const double top = std::max(x, y);
    return top + std::log10(std::pow(10.0, x - top) + std::pow(10.0, y - top));
  };
  // A carrier's tumour reads: its own copies at 1/2 or 1, diluted by the contaminating
  // person's (c of the reads, carrying 0, 1 or 2 copies in Hardy-Weinberg proportions)
  const double c = std::max(0.0, contamination);
  const double ways[3] = {log_lacks, log_het, log_hom};
  auto carrier = [&](double own) {
    if (c <= 0) return at(tumour, n_tumour, own);
    double out = -std::numeric_limits<double>::infinity();
    for (int h = 0; h < 3; ++h) {
      const double term = ways[h] + at(tumour, n_tumour, (1 - c) * own + c * h / 2.0);
      out = std::isinf(out) ? term : sum(out, term);
    }
    return out;
  };
  double het = log_het + carrier(0.5);
  double hom = log_hom + carrier(1.0);
  if (has_normal) {
    het += at(normal, n_normal, 0.5);
    hom += at(normal, n_normal, 1.0);
  }
  const double germline = sum(het, hom);
  // (a normal holding tumour cells holds a somatic allele too: integrated with the tumour's)
  const double somatic =
      log_lacks + log10_somatic_prior +
      (has_normal && tumour_in_normal > 0
           ? log10_integrated_likelihood(tumour, n_tumour, k, allele, normal, n_normal,
                                         tumour_in_normal)
           : log10_integrated_likelihood(tumour, n_tumour, k, allele) + normal_lacks);
  constexpr double kLeftOut = -std::numeric_limits<double>::infinity();
  double contaminant = kLeftOut;
  if (contamination > 0) {
    contaminant = sum(log_het + at(tumour, n_tumour, contamination / 2),
                      log_hom + at(tumour, n_tumour, contamination)) +
                  log_lacks + normal_lacks;
  }
  const double top = std::max({germline, somatic, contaminant});
  const double total = std::pow(10.0, germline - top) + std::pow(10.0, somatic - top) +
                       (contaminant == kLeftOut ? 0.0 : std::pow(10.0, contaminant - top));
  AlleleOrigins out;
  out.germline = std::pow(10.0, germline - top) / total;
  if (contaminant != kLeftOut) {
    // At a small c the other person's reads are nearly no reads: weighed against the allele
    // being absent too (its reads errors; neither person carries it), so that a weak allele
    // is not put down to them.
    const double absent = 2 * log_lacks + at(tumour, n_tumour, 0.0) + normal_lacks;
    const double top2 = std::max(top, absent);
    out.contamination =
        std::pow(10.0, contaminant - top2) /
        (total * std::pow(10.0, top - top2) + std::pow(10.0, absent - top2));
  }
  return out;
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

}  // namespace gms
