// Read-versus-haplotype likelihoods for local re-scoring of candidate variants: a Viterbi pair-HMM
// in integer phred units, so that every device computes identical numbers.
//
// A job aligns a read segment q[0..m) (base codes, phred qualities) to a haplotype window
// t[0..m+band-1); cell (r, k) pairs q[r] with t[r+k] (the layout of extend.hpp). The whole
// segment must be aligned (start in row 0, end in row m-1, any band column: the haplotype's ends
// are free). Costs, minimised (phred, i.e. -10 log10 P):
//   substitution: 0 when q[r] == t[r+k]; min(qual[r], max_qual) when they differ; 0 when either
//                 is N (code 4) or qual[r] == 0; kOffHaplotypeCost when t[r+k] is kBaseOff
//   insertion (query base against no haplotype base): gap_open for the first base of a gap,
//                 gap_extend for each further one (gap_open includes the first base)
//   deletion (haplotype base skipped): same costs
// Recurrences (C = min cost ending at the cell in state M / I / D):
//   M(r,k) = min(H(r-1,k), r==0 ? 0 : inf) + sub(r,k)      (r == 0: start anywhere in the band)
//   D(r,k) = min(H(r,k-1) + gap_open, D(r,k-1) + gap_extend)    (k > 0)
//   I(r,k) = min(H(r-1,k+1) + gap_open, I(r-1,k+1) + gap_extend)  (r > 0, k+1 < band)
//   H = min(M, D, I); result = min over k of H(m-1, k).
// D at row 0 is allowed (it only shifts the start; never cheaper than starting later).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "gmsaccel/hd.hpp"
#include "gmsaccel/scoring.hpp"

namespace gms {

constexpr int32_t kCostInf = 1 << 28;
constexpr int32_t kOffHaplotypeCost = 60;

struct HaplotypeScoring {
  int32_t gap_open = 45;
  int32_t gap_extend = 10;
  int32_t max_qual = 40;
};

struct HaplotypeJob {
  const uint8_t* read;   // m base codes
  const uint8_t* qual;   // m phred qualities
  const uint8_t* hap;    // m + band - 1 base codes
  int32_t len;           // m >= 1
  int32_t band;          // >= 1
};

// Scalar definition (host and device). row_h, row_i: scratch of band + 1 int32 each.
GMS_HD int32_t haplotype_cost_scalar(const HaplotypeJob& job, const HaplotypeScoring& sc,
                                     int32_t* row_h, int32_t* row_i);

// Costs of many jobs; identical to the scalar definition at every SIMD level.
void haplotype_costs(const HaplotypeJob* jobs, size_t n, const HaplotypeScoring& sc,
                     int32_t* costs, int simd_level /* SimdLevel as int */);

}  // namespace gms
