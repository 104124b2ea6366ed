// Banded affine-gap alignment with soft clipping: the one definition of read extension.
//
// A job aligns a query of m bases against a target window of m + band - 1 bases. Cell (r, k) of
// the band pairs query base r with target base r + k, so the band holds diagonals 0..band-1 of the
// window; the caller centres the window on the diagonal its seeds predict.
//
// Recurrences (0-based row r, band column k; o = gap_open + gap_extend, e = gap_extend):
//   M(r,k) = max(H(r-1,k), start(r)) + s(q[r], t[r+k])     start(0) = 0, start(r>0) = -clip
//   E(r,k) = max(H(r,k-1) - o, E(r,k-1) - e)                 deletion (target base skipped)
//   F(r,k) = max(H(r-1,k+1) - o, F(r-1,k+1) - e)             insertion (query base skipped)
//   H(r,k) = max(M, E, F)
// Out-of-band neighbours are kNegInf. Ties prefer M over E over F, continuing over starting, and
// opening over extending. The alignment ends at the cell maximising H(r,k) - (r < m-1 ? clip : 0),
// the first such cell in row-major order (r ascending, then k ascending) on ties. Every
// implementation (scalar, SIMD, CUDA) must reproduce these choices exactly.
#pragma once
#include <cstddef>
#include <cstdint>

#include "gmsaccel/hd.hpp"
#include "gmsaccel/scoring.hpp"

namespace gms {

constexpr int32_t kNegInf = -16384;  // low enough to lose, high enough to stay in int16 lanes

// Traceback bits stored per cell.
constexpr uint8_t kDirMContinue = 0, kDirMStart = 1, kDirE = 2, kDirF = 3;  // bits 0-1: H source
constexpr uint8_t kDirEExtend = 4;                                           // bit 2: E extended
constexpr uint8_t kDirFExtend = 8;                                           // bit 3: F extended

struct ExtendJob {
  const uint8_t* query;   // qlen base codes
  const uint8_t* target;  // qlen + band - 1 base codes (kBaseOff beyond a contig end)
  int32_t qlen;
  int32_t band;  // number of diagonals, >= 1 (1 = ungapped)
};

struct ExtendResult {
  int32_t score = kNegInf;
  int32_t q_begin = 0, q_end = 0;  // aligned query bases [q_begin, q_end)
  int32_t t_begin = 0, t_end = 0;  // aligned target bases [t_begin, t_end), window coordinates
};

// Whether every value the recurrences can produce for this job fits 16-bit lanes (the SIMD
// kernels' int16 lanes, the GPU's 16x2 pairs): parameters in 0..2048, qlen and band at most 16000,
// qlen * match at most 16000. Then scores stay within +-16000 of zero, kNegInf minus a gap within
// -16384 - 4096, and a run of up to 8 cells beyond the band's edge within 32767 (16000 + 8 * 2048).
constexpr int32_t kMaxInt16Param = 2048;
constexpr int64_t kMaxInt16Score = 16000;
GMS_HD bool extend_scoring_fits_int16(const Scoring& sc) {
  const int32_t params[] = {sc.match, sc.mismatch, sc.gap_open, sc.gap_extend, sc.clip,
                            sc.n_penalty};
  for (int32_t p : params) {
    if (p < 0 || p > kMaxInt16Param) return false;
  }
  return true;
}
GMS_HD bool extend_job_fits_int16(const ExtendJob& job, const Scoring& sc) {
  return job.qlen >= 1 && job.band >= 1 && job.qlen <= kMaxInt16Score &&
         job.band <= kMaxInt16Score &&
         static_cast<int64_t>(job.qlen) * sc.match <= kMaxInt16Score;
}

// Scalar DP over one job. dirs receives qlen*band traceback bytes at dirs[(r*band + k) * stride]
// (stride > 1 lets batched kernels share the traceback). h and ef are scratch rows of band+1
// int32 each.
GMS_HD ExtendResult extend_scalar(const ExtendJob& job, const Scoring& sc, uint8_t* dirs,
                                  size_t stride, int32_t* h_row, int32_t* e_row) {
  const int32_t m = job.qlen, B = job.band;
  const int32_t oe = sc.gap_open + sc.gap_extend, e = sc.gap_extend;
  // h_row[k]: H of the previous row; e_row[k]: F of the previous row (F moves down the band).
  for (int32_t k = 0; k <= B; ++k) { h_row[k] = kNegInf; e_row[k] = kNegInf; }
  ExtendResult best;
  int32_t best_end = kNegInf - 1;
  for (int32_t r = 0; r < m; ++r) {
    const uint8_t qb = job.query[r];
    const int32_t start = r == 0 ? 0 : -sc.clip;
    const int32_t end_pen = r == m - 1 ? 0 : sc.clip;
    int32_t h_left = kNegInf, e_left = kNegInf;  // H and E of cell (r, k-1)
    for (int32_t k = 0; k < B; ++k) {
      const int32_t s = substitution_score(sc, qb, job.target[r + k]);
      const int32_t h_diag = r == 0 ? kNegInf : h_row[k];
      uint8_t d;
      int32_t mval;
      if (h_diag >= start) { mval = h_diag + s; d = kDirMContinue; }
      else { mval = start + s; d = kDirMStart; }
      // E from the left neighbour in this row
      int32_t eo = h_left - oe, ex = e_left - e, ev;
      if (eo >= ex) { ev = eo; } else { ev = ex; d |= kDirEExtend; }
      if (k == 0) ev = kNegInf;
      // F from cell (r-1, k+1)
      int32_t fo = h_row[k + 1] - oe, fx = e_row[k + 1] - e, fv;
      if (fo >= fx) { fv = fo; } else { fv = fx; d |= kDirFExtend; }
      if (r == 0 || k + 1 >= B) fv = kNegInf;
      int32_t hv = mval;
      if (ev > hv) { hv = ev; d = (d & ~3u) | kDirE; }
      if (fv > hv) { hv = fv; d = (d & ~3u) | kDirF; }
      dirs[(static_cast<size_t>(r) * B + k) * stride] = d;
      // the row buffers now hold row r for columns < k, row r-1 for columns >= k; column k's old
      // values were consumed above (h_row[k] as diagonal, h_row[k+1]/e_row[k+1] are still row r-1)
      h_row[k] = hv;
      e_row[k] = fv;
      h_left = hv;
      e_left = ev;
      const int32_t end_score = hv - end_pen;
      if (end_score > best_end) {
        best_end = end_score;
        best.q_end = r + 1;
        best.t_end = r + k + 1;
      }
    }
  }
  best.score = best_end;
  return best;
}

// Walks the traceback from the chosen end cell, fills q_begin/t_begin and writes the CIGAR
// (BAM encoding: len << 4 | op with M=0, I=1, D=2) in alignment order. Returns its length.
// cigar needs room for 2*qlen + band operations. dir_at(r, k) returns cell (r, k)'s direction
// byte, wherever a kernel keeps it; the walk only moves to lower rows or lower target bases.
template <class DirAt>
GMS_HD int32_t extend_traceback_at(DirAt&& dir_at, ExtendResult& res, uint32_t* cigar) {
  int32_t r = res.q_end - 1, k = res.t_end - 1 - r;
  int32_t n = 0;
  int state = 0;  // 0 = H, 1 = E, 2 = F
  auto push = [&](uint32_t op) {
    if (n > 0 && (cigar[n - 1] & 0xf) == op) cigar[n - 1] += 1u << 4;
    else cigar[n++] = (1u << 4) | op;
  };
  for (;;) {
    const uint8_t d = dir_at(r, k);
    if (state == 0) {
      const uint8_t src = d & 3;
      if (src == kDirMContinue && r > 0) { push(0); --r; continue; }
      if (src == kDirMContinue || src == kDirMStart) { push(0); break; }
      state = src == kDirE ? 1 : 2;
    }
    if (state == 1) {  // deletion: same query row, previous target base
      push(2);
      if (!(d & kDirEExtend)) state = 0;
      --k;
    } else {  // insertion: previous query row, same target base
      push(1);
      if (!(d & kDirFExtend)) state = 0;
      --r;
      ++k;
    }
  }
  res.q_begin = r;
  res.t_begin = r + k;
  for (int32_t i = 0, j = n - 1; i < j; ++i, --j) {
    uint32_t t = cigar[i]; cigar[i] = cigar[j]; cigar[j] = t;
  }
  return n;
}

// The traceback over extend_scalar's layout: cell (r, k) at dirs[(r * band + k) * stride].
GMS_HD int32_t extend_traceback(const uint8_t* dirs, size_t stride, int32_t band,
                                ExtendResult& res, uint32_t* cigar) {
  return extend_traceback_at(
      [=](int32_t r, int32_t k) { return dirs[(static_cast<size_t>(r) * band + k) * stride]; },
      res, cigar);
}

}  // namespace gms
