// Register-tiled evaluation of extend_scalar's recurrences, for one-alignment-per-thread kernels.
//
// extend_scalar walks the band row by row and keeps two rows of band + 1 values in memory, which
// on a GPU means shared memory (low occupancy) or uncoalesced global memory. Here the same cells
// are visited in vertical strips of kTileWidth target bases (tiles.hpp): within a strip each
// row's cells live in registers, H and F flow down the strip in registers, and only the strip's
// left edge (H and E of column c - 1 for every row) goes through memory, one 8-byte record per
// row. Traceback directions go out one 64-bit word per strip row (byte w for column c + w), in an
// encoding of one independent bit per decision (kTile* below: each bit is one predicated OR in
// the cell loop), which the traceback turns back into extend_scalar's direction byte.
//
// Every in-band cell gets exactly the H, E and F of extend_scalar and the same decisions (the same
// forced values at k == 0, k == band - 1 and r == 0), and the end cell is the first maximum in
// row-major order (an equal score in a lower row, seen in an earlier strip, stays ahead), so
// results and CIGARs are extend_scalar's + extend_traceback's bit for bit. Cells of a strip row
// that lie outside the band are computed like the others and hold values of no meaning: they
// only ever feed other outside cells or the forced E at k == 0 and F at k == band - 1 (whose
// extension bits, taken from them, the traceback never reads: no path enters E at k == 0 or F at
// k == band - 1), and they are kept out of the row maximum. Tests hold this through the CUDA
// module's host emulation on random jobs.
#pragma once
#include <cstddef>
#include <cstdint>

#include "gmsaccel/extend.hpp"
#include "gmsaccel/hd.hpp"
#include "gmsaccel/tiles.hpp"

namespace gms {

// Tiled direction bits. The H source is F if kTileFWins, else E if kTileEWins, else M (starting
// if kTileMStart); kTileEExtend / kTileFExtend as kDirEExtend / kDirFExtend.
constexpr uint8_t kTileMStart = 1, kTileEWins = 2, kTileFWins = 4, kTileEExtend = 8,
                  kTileFExtend = 16;

// extend_scalar's direction byte for a tiled one.
GMS_HD uint8_t tiled_dir_byte(uint32_t t) {
  const uint8_t src = t & kTileFWins   ? kDirF
                      : t & kTileEWins ? kDirE
                      : t & kTileMStart ? kDirMStart
                                        : kDirMContinue;
  return static_cast<uint8_t>(src | (t & kTileEExtend ? kDirEExtend : 0) |
                              (t & kTileFExtend ? kDirFExtend : 0));
}

namespace tiled_detail {

// The sweep's state: what one strip carries from row to row, and the job-wide best end cell.
struct ExtendStrips {
  const ExtendJob& job;
  const Scoring& sc;
  uint64_t* dirs;
  size_t dir_stride;
  TileEdge* edge;  // edge.h holds H - open - extend, edge.gap E
  size_t edge_stride;
  uint64_t* dir_next;     // the next row's traceback word
  TileEdge* edge_next;    // the next row's edge record
  // H is kept as H - open - extend (Ho), the term that both the E of the next cell and the F of
  // the cell below start from: one subtraction per cell instead of two. M and the scores are
  // shifted to match: M = max(Ho_diag, start - oe) + (s + oe).
  int32_t h_up[kTileWidth];  // Ho of the previous row, per column of the strip
  int32_t f_up[kTileWidth];  // F of the previous row
  // A cell whose query base (not N) equals t_match scores sc.match, any other s_other
  // (substitution_score with the target's special cases folded in: an off-contig base matches
  // nothing, t_match = -1); both + oe.
  int32_t t_match[kTileWidth];
  int32_t s_other[kTileWidth];
  int32_t t_off[kTileWidth];  // 1 for an off-contig target base (what a query N still sees)
  int32_t diag;              // Ho(r - 1, c - 1) for the next row
  int32_t best = kNegInf - 1, best_r = 0, best_k = 0;

  GMS_HD ExtendStrips(const ExtendJob& j, const Scoring& s, uint64_t* d, size_t ds, TileEdge* e,
                      size_t es)
      : job(j), sc(s), dirs(d), dir_stride(ds), edge(e), edge_stride(es), dir_next(d),
        edge_next(e), diag(kNegInf - s.gap_open - s.gap_extend) {}

  GMS_HD void begin_strip(int32_t c, int32_t r0) {
    const int32_t tlen = job.qlen + job.band - 1;
    const int32_t oe = sc.gap_open + sc.gap_extend;
    GMS_UNROLL
    for (int32_t w = 0; w < kTileWidth; ++w) {
      const int32_t j = c + w;
      const uint8_t t = j < tlen ? job.target[j] : kBaseOff;  // past the window: out of band
      t_match[w] = t == kBaseOff || t == kBaseN ? -1 : t;
      s_other[w] =
          oe + (t == kBaseOff ? -kOffContigPenalty : t == kBaseN ? -sc.n_penalty : -sc.mismatch);
      t_off[w] = t == kBaseOff;
      h_up[w] = kNegInf - oe;  // the row above the strip's first is outside the band (or matrix)
      f_up[w] = kNegInf;
    }
    // H(r0 - 1, c - 1) lies on the band's last diagonal, written by the previous strip
    diag = r0 > 0 ? edge[static_cast<size_t>(r0 - 1) * edge_stride].h : kNegInf - oe;
    edge_next = edge + static_cast<size_t>(r0) * edge_stride;  // rows follow one by one
  }

  // Row r of the strip at c. kMasked: the row has cells outside the band, on its first or last
  // diagonal, or is row 0, and needs the per-cell checks. A query N (rare) takes its own copy of
  // the row, so that the common one scores a cell with one compare and one select.
  template <bool kMasked>
  GMS_HD void row(int32_t c, int32_t r) {
    const int32_t qb = job.query[r];
    if (qb == kBaseN) row_impl<kMasked, true>(c, r, qb);
    else row_impl<kMasked, false>(c, r, qb);
  }

  template <bool kMasked, bool kQueryN>
  GMS_HD void row_impl(int32_t c, int32_t r, int32_t qb) {
    const int32_t B = job.band;
    const int32_t oe = sc.gap_open + sc.gap_extend, e = sc.gap_extend;
    const int32_t start_o = (r == 0 ? 0 : -sc.clip) - oe;  // start, in Ho terms
    const int32_t match_o = sc.match + oe;
    const int32_t f_forced = r == 0 ? INT32_MIN : B - 1;  // F is kNegInf from this diagonal on
    TileEdge& left = *edge_next;
    edge_next += edge_stride;
    const TileEdge in = left;
    int32_t h_left = in.h, e_left = in.gap;
    int32_t h_diag = diag;
    diag = in.h;
    uint32_t lo = 0, hi = 0;  // direction bytes of columns 0-3 and 4-7
    int32_t row_max = INT32_MIN;  // of Ho
    GMS_UNROLL
    for (int32_t w = 0; w < kTileWidth; ++w) {
      const int32_t k = c + w - r;
      // N against anything but an off-contig base costs n_penalty (substitution_score)
      const int32_t s = kQueryN ? oe + (t_off[w] ? -kOffContigPenalty : -sc.n_penalty)
                                : qb == t_match[w] ? match_o : s_other[w];
      // each decision sets its own bit of the cell's byte (lo: columns 0-3, hi: 4-7)
      uint32_t& word = w < 4 ? lo : hi;
      const uint32_t at = 8 * (w & 3);
      int32_t mval;
      if (h_diag >= start_o) { mval = h_diag + s; }
      else { mval = start_o + s; word |= uint32_t{kTileMStart} << at; }
      const int32_t eo = h_left, ex = e_left - e;
      int32_t ev;
      if (eo >= ex) { ev = eo; } else { ev = ex; word |= uint32_t{kTileEExtend} << at; }
      const int32_t fo = h_up[w], fx = f_up[w] - e;
      int32_t fv;
      if (fo >= fx) { fv = fo; } else { fv = fx; word |= uint32_t{kTileFExtend} << at; }
      if (kMasked) {
        if (k == 0) ev = kNegInf;
        if (k >= f_forced) fv = kNegInf;
      }
      int32_t hv = mval;
      if (ev > hv) { hv = ev; word |= uint32_t{kTileEWins} << at; }
      if (fv > hv) { hv = fv; word |= uint32_t{kTileFWins} << at; }
      hv -= oe;  // Ho from here on
      // inside the band: 0 <= k < band (one unsigned compare)
      if (!kMasked || static_cast<uint32_t>(k) < static_cast<uint32_t>(B)) {
        row_max = hv > row_max ? hv : row_max;
      }
      h_diag = h_up[w];
      h_up[w] = hv;
      f_up[w] = fv;
      h_left = hv;
      e_left = ev;
    }
    left = TileEdge{h_left, e_left};
    *dir_next = static_cast<uint64_t>(hi) << 32 | lo;
    dir_next += dir_stride;
    // Every strip row holds an in-band cell, whose H beats kNegInf; within the row the first
    // in-band column reaching the maximum has the lowest band column.
    const int32_t end_score = row_max + oe - (r == job.qlen - 1 ? 0 : sc.clip);
    if (end_score > best || (end_score == best && r < best_r)) {
      int32_t first = kTileWidth - 1;
      GMS_UNROLL
      for (int32_t w = kTileWidth - 1; w >= 0; --w) {
        const int32_t k = c + w - r;
        if (h_up[w] == row_max && static_cast<uint32_t>(k) < static_cast<uint32_t>(B)) first = w;
      }
      best = end_score;
      best_r = r;
      best_k = c + first - r;
    }
  }
};

}  // namespace tiled_detail

// Strip-by-strip DP over one job. edge: qlen records at edge[r * edge_stride] (scratch); dirs:
// tiled_dir_words(qlen, band) words at dirs[i * dir_stride], strips in order, each strip's rows
// from its first. Returns the result without q_begin/t_begin (set by the traceback).
GMS_HD ExtendResult extend_tiled(const ExtendJob& job, const Scoring& sc, uint64_t* dirs,
                                 size_t dir_stride, TileEdge* edge, size_t edge_stride) {
  const int32_t oe = sc.gap_open + sc.gap_extend;
  for (int32_t r = 0; r < job.qlen; ++r) {
    edge[static_cast<size_t>(r) * edge_stride] = TileEdge{kNegInf - oe, kNegInf};
  }
  tiled_detail::ExtendStrips st(job, sc, dirs, dir_stride, edge, edge_stride);
  // unmasked rows: 1 <= k <= band - 2 everywhere, below row 0
  tiled_sweep(job.qlen, job.band, 1, 1, st);
  ExtendResult res;
  res.score = st.best;
  res.q_end = st.best_r + 1;
  res.t_end = st.best_r + st.best_k + 1;
  return res;
}

// extend_traceback over extend_tiled's direction words. The walk only ever moves to lower target
// bases, so the strip (and its first word) is tracked downwards from the end.
GMS_HD int32_t extend_tiled_traceback(const uint64_t* dirs, size_t dir_stride, int32_t qlen,
                                      int32_t band, ExtendResult& res, uint32_t* cigar) {
  int32_t strip_c = tiled_strips(qlen, band) * kTileWidth, strip_r0 = 0;
  uint64_t strip_word = tiled_dir_words(qlen, band);
  auto dir_at = [&](int32_t r, int32_t k) -> uint8_t {
    const int32_t j = r + k;
    while (j < strip_c) {
      strip_c -= kTileWidth;
      strip_word -= static_cast<uint64_t>(tiled_strip_rows(strip_c, qlen, band));
      strip_r0 = tiled_first_row(strip_c, band);
    }
    const uint64_t word = dirs[(strip_word + static_cast<uint64_t>(r - strip_r0)) * dir_stride];
    return tiled_dir_byte(static_cast<uint32_t>(word >> (8 * (j - strip_c))));
  };
  return extend_traceback_at(dir_at, res, cigar);
}

}  // namespace gms
