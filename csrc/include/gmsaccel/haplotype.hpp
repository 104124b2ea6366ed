// Read-versus-haplotype likelihoods for local re-scoring of candidate variants: a Viterbi pair-HMM
// in integer phred units, so that every device computes identical numbers.
//
// A job aligns a read segment q[0..m) (base codes, phred qualities) to a haplotype window
// t[0..m+band-1); cell (r, k) pairs q[r] with t[r+k] (the layout of extend.hpp). The whole
// segment must be aligned (start in row 0, end in row m-1, any band column: the haplotype's ends
// are free). Costs, minimised (phred, i.e. -10 log10 P):
//   substitution, first rule that applies: kOffHaplotypeCost when t[r+k] is kBaseOff; 0 when
//                 either base is N (code 4), qual[r] == 0 or q[r] == t[r+k]; otherwise
//                 min(qual[r], max_qual) (a read code kBaseOff matches nothing)
//   insertion (query base against no haplotype base): gap_open for the first base of a gap,
//                 gap_extend for each further one (gap_open includes the first base)
//   deletion (haplotype base skipped): same costs
// Recurrences (C = min cost ending at the cell in state M / I / D):
//   M(r,k) = min(H(r-1,k), r==0 ? 0 : inf) + sub(r,k)      (r == 0: start anywhere in the band)
//   D(r,k) = min(H(r,k-1) + gap_open, D(r,k-1) + gap_extend)    (k > 0)
//   I(r,k) = min(H(r-1,k+1) + gap_open, I(r-1,k+1) + gap_extend)  (r > 0, k+1 < band)
//   H = min(M, D, I); result = min over k of H(m-1, k).
// D at row 0 is allowed (it only shifts the start; never cheaper than starting later).
// Out-of-band neighbours are kCostInf, and every D, I and H value saturates at kCostInf (min with
// it), so a job whose optimum exceeds kCostInf scores kCostInf. Saturation commutes with min and
// with adding a non-negative cost, which lets narrower kernels saturate at their own ceiling and
// still return the same numbers for every job whose optimum lies below that ceiling.
// Scoring parameters must lie in 0..kMaxHaplotypeParam (kCostInf + a parameter fits int32).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "gmsaccel/hd.hpp"
#include "gmsaccel/scoring.hpp"

namespace gms {

constexpr int32_t kCostInf = 1 << 28;
constexpr int32_t kOffHaplotypeCost = 60;
constexpr int32_t kMaxHaplotypeParam = 1 << 20;

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

GMS_HD int32_t haplotype_min(int32_t a, int32_t b) { return a < b ? a : b; }

// Substitution cost of read base q (quality qual) against haplotype base t.
GMS_HD int32_t haplotype_sub_cost(uint8_t q, uint8_t qual, uint8_t t, int32_t max_qual) {
  if (t == kBaseOff) return kOffHaplotypeCost;
  if (q == kBaseN || t == kBaseN || qual == 0 || q == t) return 0;
  return haplotype_min(qual, max_qual);
}

// Scalar definition (host and device). row_h, row_i: scratch of band + 1 int32 each.
GMS_HD int32_t haplotype_cost_scalar(const HaplotypeJob& job, const HaplotypeScoring& sc,
                                     int32_t* row_h, int32_t* row_i) {
  const int32_t m = job.len, B = job.band;
  const int32_t go = sc.gap_open, ge = sc.gap_extend;
  // row_h[k] / row_i[k]: H / I of the previous row. Column B stays kCostInf, so I at the last
  // column (k + 1 == band) and everything in row 0 read out-of-band values without a branch.
  for (int32_t k = 0; k <= B; ++k) { row_h[k] = kCostInf; row_i[k] = kCostInf; }
  for (int32_t r = 0; r < m; ++r) {
    const uint8_t qb = job.read[r], qq = job.qual[r];
    // haplotype_sub_cost with the read-only rules hoisted out of the row and written without
    // short-circuits, so random bases cost no mispredicted branches
    const int32_t qc = (qb == kBaseN) | (qq == 0) ? 0 : haplotype_min(qq, sc.max_qual);
    const int32_t start = r == 0 ? 0 : kCostInf;  // row 0 may start in any column
    const uint8_t* t = job.hap + r;
    int32_t h_left = kCostInf, d_left = kCostInf;  // H and D of cell (r, k-1)
    for (int32_t k = 0; k < B; ++k) {
      // both terms are <= kCostInf + parameter, far from int32 overflow
      const uint8_t tb = t[k];
      const int32_t sub = tb == kBaseOff ? kOffHaplotypeCost : (tb == qb) | (tb == kBaseN) ? 0 : qc;
      const int32_t mv = haplotype_min(row_h[k], start) + sub;
      const int32_t dv = haplotype_min(haplotype_min(h_left + go, d_left + ge), kCostInf);
      const int32_t iv =
          haplotype_min(haplotype_min(row_h[k + 1] + go, row_i[k + 1] + ge), kCostInf);
      const int32_t hv = haplotype_min(haplotype_min(haplotype_min(mv, dv), iv), kCostInf);
      // row_h[k] (the diagonal) is consumed; row_h[k + 1] is still row r-1 for the next column
      row_h[k] = hv;
      row_i[k] = iv;
      h_left = hv;
      d_left = dv;
    }
  }
  int32_t best = kCostInf;
  for (int32_t k = 0; k < B; ++k) best = haplotype_min(best, row_h[k]);
  return best;
}

// Costs of many jobs; identical to the scalar definition at every SIMD level.
void haplotype_costs(const HaplotypeJob* jobs, size_t n, const HaplotypeScoring& sc,
                     int32_t* costs, int simd_level /* SimdLevel as int */);

// A device implementation of haplotype_costs (same costs), registered at run time by the optional
// gmsaccel._cuda module so that _core never links CUDA. device: GPU index; emulate: run the device
// code path with its threads executed on the host (for machines without a GPU). Returns false,
// computing nothing, when even one job does not fit in the device's memory.
using HaplotypeBackendFn = bool (*)(const HaplotypeJob* jobs, size_t n,
                                    const HaplotypeScoring& sc, int32_t* costs, int device,
                                    bool emulate);
void set_haplotype_backend(HaplotypeBackendFn fn);
HaplotypeBackendFn haplotype_backend();

}  // namespace gms
