// Register-tiled evaluation of extend_scalar's recurrences, for kernels that give each thread its
// own jobs: one in 32-bit values (extend_tiled), or two of one shape in 16-bit lanes
// (extend_tiled_pair), the same sweep over a lane policy (lanes.hpp).
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
#include "gmsaccel/lanes.hpp"
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

// The sweep's state for Lanes::kLanes jobs of one shape (qlen, band): what one strip carries from
// row to row, and each job's best end cell. Values are Lanes::V, one lane per job.
template <class Lanes>
struct ExtendStrips {
  static constexpr int L = Lanes::kLanes;
  using V = typename Lanes::V;
  const ExtendJob* const (&job)[L];
  const Scoring& sc;
  size_t dir_stride;
  TileEdge* edge;  // per row: Ho (h) and E (gap) of column c - 1, lanes packed as in V
  size_t edge_stride;
  uint64_t* dir_next[L];  // each job's next traceback word
  TileEdge* edge_next;    // the next row's edge record
  // H is kept as H - open - extend (Ho), the term that both the E of the next cell and the F of
  // the cell below start from: one subtraction per cell instead of two. M and the scores are
  // shifted to match: M = max(Ho_diag, start - oe) + (s + oe).
  V h_up[kTileWidth];  // Ho of the previous row, per column of the strip
  V f_up[kTileWidth];  // F of the previous row
  // A cell whose query base (not N) equals t_match scores sc.match, any other s_other
  // (substitution_score with the target's special cases folded in: an off-contig or N target
  // base matches nothing, t_match = -1), a query N s_query_n; all + oe.
  V t_match[kTileWidth];
  V s_other[kTileWidth];
  V s_query_n[kTileWidth];
  V diag;  // Ho(r - 1, c - 1) for the next row
  int32_t best[L], best_r[L], best_k[L];

  GMS_HD ExtendStrips(const ExtendJob* const (&jobs)[L], const Scoring& s,
                      uint64_t* const (&dirs)[L], size_t ds, TileEdge* e, size_t es)
      : job(jobs), sc(s), dir_stride(ds), edge(e), edge_stride(es), edge_next(e),
        diag(Lanes::splat(kNegInf - s.gap_open - s.gap_extend)) {
    for (int l = 0; l < L; ++l) {
      dir_next[l] = dirs[l];
      best[l] = kNegInf - 1;
      best_r[l] = best_k[l] = 0;
    }
  }

  GMS_HD void begin_strip(int32_t c, int32_t r0) {
    const int32_t tlen = job[0]->qlen + job[0]->band - 1;
    const int32_t oe = sc.gap_open + sc.gap_extend;
    GMS_UNROLL
    for (int32_t w = 0; w < kTileWidth; ++w) {
      const int32_t j = c + w;
      int32_t code[L], other[L], query_n[L];
      for (int l = 0; l < L; ++l) {
        const uint8_t t = j < tlen ? job[l]->target[j] : kBaseOff;  // past the window: out of band
        code[l] = t == kBaseOff || t == kBaseN ? -1 : t;
        other[l] = oe + (t == kBaseOff ? -kOffContigPenalty
                                       : t == kBaseN ? -sc.n_penalty : -sc.mismatch);
        query_n[l] = oe + (t == kBaseOff ? -kOffContigPenalty : -sc.n_penalty);
      }
      t_match[w] = Lanes::pack(code);
      s_other[w] = Lanes::pack(other);
      s_query_n[w] = Lanes::pack(query_n);
      h_up[w] = Lanes::splat(kNegInf - oe);  // the row above the strip's first is outside the band
      f_up[w] = Lanes::splat(kNegInf);
    }
    // H(r0 - 1, c - 1) lies on the band's last diagonal, written by the previous strip
    diag = r0 > 0 ? Lanes::from_word(edge[static_cast<size_t>(r0 - 1) * edge_stride].h)
                  : Lanes::splat(kNegInf - oe);
    edge_next = edge + static_cast<size_t>(r0) * edge_stride;  // rows follow one by one
  }

  // Row r of the strip at c. kMasked: the row has cells outside the band, on its first or last
  // diagonal, or is row 0, and needs the per-cell checks. A query N (rare) takes its own copy of
  // the row, so that the common one scores a cell with one compare and one select.
  template <bool kMasked>
  GMS_HD void row(int32_t c, int32_t r) {
    int32_t q[L];
    bool any_n = false;
    for (int l = 0; l < L; ++l) {
      q[l] = job[l]->query[r];
      any_n |= q[l] == kBaseN;
    }
    if (any_n) row_impl<kMasked, true>(c, r, q);
    else row_impl<kMasked, false>(c, r, q);
  }

  template <bool kMasked, bool kQueryN>
  GMS_HD void row_impl(int32_t c, int32_t r, const int32_t (&q)[L]) {
    const int32_t B = job[0]->band;
    const int32_t oe = sc.gap_open + sc.gap_extend;
    const V start = Lanes::splat((r == 0 ? 0 : -sc.clip) - oe);  // start, in Ho terms
    const V match = Lanes::splat(sc.match + oe);
    const V minus_e = Lanes::splat(-sc.gap_extend), minus_oe = Lanes::splat(-oe);
    const V floor = Lanes::splat(Lanes::kGapFloor), neg_inf = Lanes::splat(kNegInf);
    const V query = Lanes::pack(q);
    bool n_lane[L];
    for (int l = 0; l < L; ++l) n_lane[l] = q[l] == kBaseN;
    const int32_t f_forced = r == 0 ? INT32_MIN : B - 1;  // F is kNegInf from this diagonal on
    TileEdge& left = *edge_next;
    edge_next += edge_stride;
    const TileEdge in = left;
    V h_left = Lanes::from_word(in.h), e_left = Lanes::from_word(in.gap);
    V h_diag = diag;
    diag = h_left;
    uint32_t lo[L] = {}, hi[L] = {};  // each job's direction bytes of columns 0-3 and 4-7
    V row_max = Lanes::splat(Lanes::kLowest);  // of Ho
    GMS_UNROLL
    for (int32_t w = 0; w < kTileWidth; ++w) {
      const int32_t k = c + w - r;
      V s = Lanes::select_equal(query, t_match[w], match, s_other[w]);
      if (kQueryN) s = Lanes::select_lanes(n_lane, s_query_n[w], s);
      // each decision sets its own bit of the cell's byte: where ge is false, the second wins
      bool ge[L];
      const uint32_t at = 8 * (w & 3);
      auto mark = [&](uint8_t bit) {
        for (int l = 0; l < L; ++l) {
          if (!ge[l]) (w < 4 ? lo[l] : hi[l]) |= uint32_t{bit} << at;
        }
      };
      const V mval = Lanes::add(Lanes::max_ge(h_diag, start, ge), s);
      mark(kTileMStart);
      V ev = Lanes::max_ge(h_left, Lanes::add_max(e_left, minus_e, floor), ge);
      mark(kTileEExtend);
      V fv = Lanes::max_ge(h_up[w], Lanes::add_max(f_up[w], minus_e, floor), ge);
      mark(kTileFExtend);
      if (kMasked) {
        if (k == 0) ev = neg_inf;
        if (k >= f_forced) fv = neg_inf;
      }
      V hv = Lanes::max_ge(mval, ev, ge);
      mark(kTileEWins);
      hv = Lanes::max_ge(hv, fv, ge);
      mark(kTileFWins);
      hv = Lanes::add(hv, minus_oe);  // Ho from here on
      // inside the band: 0 <= k < band (one unsigned compare)
      if (!kMasked || static_cast<uint32_t>(k) < static_cast<uint32_t>(B)) {
        row_max = Lanes::max(row_max, hv);
      }
      h_diag = h_up[w];
      h_up[w] = hv;
      f_up[w] = fv;
      h_left = hv;
      e_left = ev;
    }
    left = TileEdge{Lanes::to_word(h_left), Lanes::to_word(e_left)};
    for (int l = 0; l < L; ++l) {
      *dir_next[l] = static_cast<uint64_t>(hi[l]) << 32 | lo[l];
      dir_next[l] += dir_stride;
      track_best(c, r, l, Lanes::lane(row_max, l));
    }
  }

  // Every strip row holds an in-band cell, whose H beats kNegInf; within the row the first
  // in-band column reaching the maximum (row_max, of Ho) has the lowest band column, and an equal
  // score in a lower row, seen in an earlier strip, stays ahead.
  GMS_HD void track_best(int32_t c, int32_t r, int l, int32_t row_max) {
    const int32_t oe = sc.gap_open + sc.gap_extend;
    const int32_t end_score = row_max + oe - (r == job[0]->qlen - 1 ? 0 : sc.clip);
    if (!(end_score > best[l] || (end_score == best[l] && r < best_r[l]))) return;
    int32_t first = kTileWidth - 1;
    GMS_UNROLL
    for (int32_t w = kTileWidth - 1; w >= 0; --w) {
      const int32_t k = c + w - r;
      if (Lanes::lane(h_up[w], l) == row_max &&
          static_cast<uint32_t>(k) < static_cast<uint32_t>(job[0]->band)) {
        first = w;
      }
    }
    best[l] = end_score;
    best_r[l] = r;
    best_k[l] = c + first - r;
  }
};

// The sweep over Lanes::kLanes jobs of one shape; results without q_begin/t_begin (set by the
// traceback).
template <class Lanes>
GMS_HD void extend_tiled_lanes(const ExtendJob* const (&jobs)[Lanes::kLanes], const Scoring& sc,
                               uint64_t* const (&dirs)[Lanes::kLanes], size_t dir_stride,
                               TileEdge* edge, size_t edge_stride,
                               ExtendResult (&res)[Lanes::kLanes]) {
  const int32_t oe = sc.gap_open + sc.gap_extend;
  const TileEdge init{Lanes::to_word(Lanes::splat(kNegInf - oe)),
                      Lanes::to_word(Lanes::splat(kNegInf))};
  for (int32_t r = 0; r < jobs[0]->qlen; ++r) edge[static_cast<size_t>(r) * edge_stride] = init;
  ExtendStrips<Lanes> st(jobs, sc, dirs, dir_stride, edge, edge_stride);
  // unmasked rows: 1 <= k <= band - 2 everywhere, below row 0
  tiled_sweep(jobs[0]->qlen, jobs[0]->band, 1, 1, st);
  for (int l = 0; l < Lanes::kLanes; ++l) {
    res[l] = ExtendResult{};
    res[l].score = st.best[l];
    res[l].q_end = st.best_r[l] + 1;
    res[l].t_end = st.best_r[l] + st.best_k[l] + 1;
  }
}

}  // namespace tiled_detail

// Strip-by-strip DP over one job in 32-bit values. edge: qlen records at edge[r * edge_stride]
// (scratch); dirs: tiled_dir_words(qlen, band) words at dirs[i * dir_stride], strips in order,
// each strip's rows from its first. Returns the result without q_begin/t_begin (set by the
// traceback).
GMS_HD ExtendResult extend_tiled(const ExtendJob& job, const Scoring& sc, uint64_t* dirs,
                                 size_t dir_stride, TileEdge* edge, size_t edge_stride) {
  const ExtendJob* const jobs[1] = {&job};
  uint64_t* const d[1] = {dirs};
  ExtendResult res[1];
  tiled_detail::extend_tiled_lanes<Lanes32>(jobs, sc, d, dir_stride, edge, edge_stride, res);
  return res[0];
}

// extend_tiled on two jobs of one qlen and band at once, one per 16-bit lane: both must satisfy
// extend_job_fits_int16 under scores satisfying extend_scoring_fits_int16. Their in-band cells
// then hold the values the 32-bit sweep computes: scores within +-16000, kNegInf minus a gap above
// -20480, cells outside the band within 32767, and the gap chains outside the band floored at
// Lanes16x2::kGapFloor, which no in-band value comes near. Each job's directions go to its own
// words, at dirs_x[i * dir_stride], for extend_tiled_traceback; edge: qlen records (scratch)
// holding both jobs' values.
GMS_HD void extend_tiled_pair(const ExtendJob& a, const ExtendJob& b, const Scoring& sc,
                              uint64_t* dirs_a, uint64_t* dirs_b, size_t dir_stride,
                              TileEdge* edge, size_t edge_stride, ExtendResult& res_a,
                              ExtendResult& res_b) {
  const ExtendJob* const jobs[2] = {&a, &b};
  uint64_t* const d[2] = {dirs_a, dirs_b};
  ExtendResult res[2];
  tiled_detail::extend_tiled_lanes<Lanes16x2>(jobs, sc, d, dir_stride, edge, edge_stride, res);
  res_a = res[0];
  res_b = res[1];
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
