// Somatic evidence: how strongly a sample's reads say an allele is present at some fraction of
// its cells (tumour), or absent (normal). A tumour's alleles are not at 0, 1/2 or 1 as a
// diploid's are: impurity and subclones put them anywhere. Each read is weighed under a mixture
// of the site's alleles, sum_j f_j P(read | allele j), and the fractions f are fitted.
#pragma once
#include <cstddef>
#include <vector>

namespace gms {

// Reads' likelihoods under k components (row-major, n x k, each above 0): the fractions f
// (summing to 1) that maximise sum_r log10 sum_j f_j lik[r][j], with component j held at
// fixed[j] wherever fixed is given and fixed[j] >= 0. Returns that log10 likelihood. One or two
// free components are solved exactly (the likelihood is concave: bisection on its slope to
// 1e-9); more by EM until the likelihood gains less than 1e-10 (fractions it leaves below 1e-8
// are then 0).
double fit_fractions(const double* lik, size_t n, size_t k, const double* fixed, double* f);

struct SomaticThresholds {
  double min_tlod = 3.0;       // below: no record
  double pass_tlod = 6.3;      // below: FILTER weak_evidence
  double min_nlod = 2.2;       // the normal's confidence that it lacks a heterozygous copy
  double max_normal_alod = 3.0;  // the normal's own evidence of the allele: normal_artifact
  double min_strand_p = 1e-3;    // strand_bias_p below: FILTER strand_bias
  // With a germline resource (population allele frequencies): a germline posterior
  // (allele_origins) above max_germline_posterior fails `germline`; alleles the resource lacks
  // are given af_not_in_resource, and a somatic allele has prior 10^log10_somatic_prior per
  // allele times (1-p)^2.
  double max_germline_posterior = 0.5;
  double af_not_in_resource = 5e-8;
  double log10_somatic_prior = -6.0;
  // With a germline resource and a contamination estimate (the fraction of the tumour's reads
  // from another person): an allele likelier from that person than from the tumour (posterior
  // above max_contamination_posterior) fails `contamination`.
  double contamination = 0.0;
  double max_contamination_posterior = 0.5;
  // Tumour in the normal (a blood normal of a leukaemia, tissue beside a tumour): a somatic
  // allele at fraction f of the tumour's reads is expected at tumour_in_normal * f of the
  // normal's, where 0 says the normal lacks it. Below 1.
  double tumour_in_normal = 0.0;
};

// One allele's statistics from the tumour's and (when there is one) the normal's reads.
struct SomaticScore {
  double tumour_fraction = 0;  // fitted with every component of the site
  double tlod = 0;             // log10 L_T(fitted) / L_T(fitted without the allele)
  double normal_fraction = 0;  // fitted (NaN where the normal has no reads)
  double nlod = 0;             // log10 L_N(as a somatic allele) / L_N(a carrier's)
  double normal_alod = 0;      // log10 L_N(fitted) / L_N(as a somatic allele)
};

// Scores component `allele` of a site whose reads' likelihoods are tumour (n_tumour x k) and
// normal (n_normal x k; null: no normal): component 0 is the reference, the others the site's
// other alleles (and whatever else the caller tells apart, e.g. a deletion over the site).
// "As a somatic allele" the normal holds it at tumour_in_normal (TiN) times the tumour's fitted
// fraction f (0: without it); a carrier's normal at 1/2 + TiN (f - 1/2) (its tumour cells
// show what the tumour shows). With TiN above 0 normal_alod is one-sided: 0 where the
// normal's fitted fraction is at most TiN f.
SomaticScore score_allele(const double* tumour, size_t n_tumour, const double* normal,
                          size_t n_normal, size_t k, size_t allele,
                          double tumour_in_normal = 0.0);

// log10 of the integral over f in [0, 1] of the likelihood with component `allele` held at f
// (the other components fitted at each f): the evidence for an allele at an unknown fraction
// under a uniform prior, which, unlike the fitted maximum, pays for the fraction left free.
// Trapezoids over a coarse grid of [0, 1] and a fine one around the fitted fraction. With
// `also` (n_also x k reads of a second sample, e.g. a normal holding tumour cells) the
// integrand is the product with that sample's likelihood, its allele held at also_scale * f.
double log10_integrated_likelihood(const double* lik, size_t n, size_t k, size_t allele,
                                   const double* also = nullptr, size_t n_also = 0,
                                   double also_scale = 0.0);

// Where a tumour's allele comes from, as posterior probabilities over three origins:
// germline (a heterozygous carrier, prior 2p(1-p), the allele at 1/2 in the tumour and the
// normal; or a homozygous one, p^2, at 1; in the tumour diluted by the contaminating reads,
// (1 - c) times that plus c/2 per copy the other person carries, summed over their genotypes
// in Hardy-Weinberg proportions), contamination (the sample lacks it, (1-p)^2, and a
// person whose reads are `contamination` of the tumour's carries it: at c/2 with 2p(1-p), at
// c with p^2; the normal lacks it) and somatic (the sample lacks it, (1-p)^2, times
// 10^log10_somatic_prior, at a fraction integrated over [0, 1] in the tumour; the normal
// lacks it). p is the allele's population frequency. Without a normal (null) only the tumour's
// reads and p weigh; with contamination 0 that origin is left out. The germline posterior is
// among these three; the contamination one also against the allele being absent (neither
// person carries it, (1-p)^4, the tumour at 0), since at a small c the other person's few
// reads and sequencing errors look alike. Copy-number changes that move a germline allele
// away from 1/2 in the tumour are not modelled. With tumour_in_normal above 0 a somatic
// allele is in the normal too, at tumour_in_normal times its fraction in the tumour (the
// integral over f is of both samples' likelihoods).
struct AlleleOrigins {
  double germline = 0;
  double contamination = 0;
};
AlleleOrigins allele_origins(const double* tumour, size_t n_tumour, const double* normal,
                             size_t n_normal, size_t k, size_t allele, double population_af,
                             double log10_somatic_prior, double contamination,
                             double tumour_in_normal = 0.0);

// Strand bias: if the k = alt_fwd + alt_rev reads of an allele fell on the two strands as all the
// sample's reads there do (depth_fwd : depth_rev), the chance of a split at least as lopsided
// (two-sided binomial: twice the smaller tail, at most 1); 1 where a strand has no reads. An
// artifact of library preparation (oxidation, FFPE deamination) shows on one read orientation.
double strand_bias_p(int alt_fwd, int alt_rev, int depth_fwd, int depth_rev);

}  // namespace gms
