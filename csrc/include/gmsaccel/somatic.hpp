// Somatic evidence: how strongly a sample's reads say an allele is present at some fraction of
// its cells (tumour), or absent (normal). A tumour's alleles are not at 0, 1/2 or 1 as a
// diploid's are: impurity and subclones put them anywhere, so each read is weighed under a
// mixture f * P(read | allele) + (1 - f) * P(read | reference) and f is fitted.
#pragma once
#include <cstddef>

namespace gms {

// One read's likelihood under the allele's best haplotype and under the reference's (linear, on
// a common scale per read: only their ratio matters).
struct AlleleEvidence {
  double alt = 0;
  double ref = 0;
};

// log10 of prod_i (f alt_i + (1 - f) ref_i) / prod_i ref_i, for f in [0, 1].
double log10_fraction_ratio(const AlleleEvidence* reads, size_t n, double f);

// The fraction f in [0, 1] that maximises log10_fraction_ratio (it is concave in f, so the
// maximum is where its derivative crosses zero, found by bisection to 1e-6).
double fitted_fraction(const AlleleEvidence* reads, size_t n);

struct SomaticThresholds {
  double min_tlod = 3.0;       // below: no record
  double pass_tlod = 6.3;      // below: FILTER weak_evidence
  double min_nlod = 2.2;       // the normal's confidence that it lacks a heterozygous copy
  double max_normal_alod = 3.0;  // the normal's own evidence of the allele: normal_artifact
  double min_strand_p = 1e-3;    // strand_bias_p below: FILTER strand_bias
};

// Strand bias: if the k = alt_fwd + alt_rev reads of an allele fell on the two strands as all the
// sample's reads there do (depth_fwd : depth_rev), the chance of a split at least as lopsided
// (two-sided binomial: twice the smaller tail, at most 1); 1 where a strand has no reads. An
// artifact of library preparation (oxidation, FFPE deamination) shows on one read orientation.
double strand_bias_p(int alt_fwd, int alt_rev, int depth_fwd, int depth_rev);

// A somatic allele's statistics from the tumour's and (when there is one) the normal's reads.
struct SomaticScore {
  double tumour_fraction = 0;  // fitted
  double tlod = 0;             // log10 L_T(fitted) / L_T(0)
  double normal_fraction = 0;  // fitted (0 without a normal)
  double nlod = 0;             // log10 L_N(0) / L_N(1/2): the normal is not a carrier
  double normal_alod = 0;      // log10 L_N(fitted) / L_N(0)
};

SomaticScore score_somatic(const AlleleEvidence* tumour, size_t n_tumour,
                           const AlleleEvidence* normal, size_t n_normal);

}  // namespace gms
