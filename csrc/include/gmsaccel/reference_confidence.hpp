// gVCF reference confidence: per position, how sure the pileup makes us that the sample is
// hom-ref there (gvcf.py's model: GQ and PL over REF and "any other allele" from the reference
// and other reads, with the error rate of the position's mean base quality). Computed from the
// candidate pileup's windows, so a gVCF costs no second pass over the reads.
#pragma once
#include <cstdint>
#include <climits>
#include <vector>

#include "gmsaccel/pileup.hpp"

namespace gms {

struct ReferenceConfidence {
  int64_t start = 0;            // 0-based position of the first value
  int n_pl = 3;                 // 3 diploid (0/0, 0/X, X/X), 2 haploid (0, X)
  std::vector<int32_t> gq;      // hom-ref GQ, 0..99
  std::vector<int32_t> pl;      // n * n_pl, normalised to 0 for the most likely genotype
  std::vector<int32_t> depth;   // reads spanning the position
  size_t size() const { return gq.size(); }
};

// Appends the confidence of pile's positions in [from, to) (contig coordinates; by default all
// of them) to out, which must end where they start, or be empty. ref_codes: base codes of
// pile's positions (A0 C1 G2 T3, N4). ploidy 1 or 2.
void add_reference_confidence(const Pileup& pile, const uint8_t* ref_codes, int ploidy,
                              ReferenceConfidence& out, int64_t from = INT64_MIN,
                              int64_t to = INT64_MAX);

// gVCF reference blocks over positions [start, start + n) (gvcf.reference_block_arrays'
// definition): runs of positions in one GQ band outside the excluded intervals (the records'
// spans), cut every max_block positions when max_block > 0, each with its GQ and depth minima,
// depth sum and each genotype's PL minimum. band_floors: the GQ bands' lower bounds, ascending
// from 0. Columns of one row per block.
struct ReferenceBlockRuns {
  std::vector<int64_t> start, end, gq, min_dp, dp_sum;
  std::vector<int64_t> pl_min;  // rows of n_pl
};
void reference_block_runs(int64_t start, const int32_t* gq, const int32_t* pl, size_t n_pl,
                          const int32_t* depth, size_t n, const int64_t* excluded_beg,
                          const int64_t* excluded_end, size_t n_excluded,
                          const std::vector<int>& band_floors, int64_t max_block,
                          ReferenceBlockRuns& out);

}  // namespace gms
