// extend_tiled for two jobs at once, one per 16-bit lane (pairs16.hpp): the GPU's 16x2 integer
// instructions then do both jobs' work, and a decision (which of two values is larger, whether
// a gap opens or extends) costs one max-with-predicates for both.
//
// The two jobs must have the same qlen and band (one strip geometry) and both satisfy
// extend_job_fits_int16 under scores satisfying extend_scoring_fits_int16. Their in-band cells
// then hold the values extend_tiled computes in 32 bits: scores stay within +-16000, kNegInf minus
// a gap above -20480, and cells outside the band (computed, of no meaning, as in extend_tiled)
// within 32767. The two chains that could run away below, a gap extended cell after cell through
// cells outside the band, are floored at kGapFloor, which no in-band value comes near. Results,
// CIGARs and the decisions the traceback reads are extend_tiled's; the emulation tests hold this
// on random pairs of jobs.
#pragma once
#include <cstddef>
#include <cstdint>

#include "gmsaccel/extend.hpp"
#include "gmsaccel/extend_tiled.hpp"
#include "gmsaccel/hd.hpp"
#include "gmsaccel/pairs16.hpp"
#include "gmsaccel/tiles.hpp"

namespace gms {

constexpr int32_t kGapFloor = -30000;  // in-band E and F stay above -18432

namespace tiled_detail {

struct ExtendStripsPair {
  const ExtendJob& a;  // lane 0
  const ExtendJob& b;  // lane 1; a.qlen == b.qlen, a.band == b.band
  const Scoring& sc;
  size_t dir_stride;
  TileEdge* edge;  // both jobs' Ho (h) and E (gap) as 16-bit pairs
  size_t edge_stride;
  uint64_t* dir_next_a;
  uint64_t* dir_next_b;
  TileEdge* edge_next;
  // As in ExtendStrips, two lanes per word: Ho (H - open - extend) and F of the previous row,
  // the target codes a query base must equal to score a match (0xffff: nothing), the other
  // score, and what a query N scores.
  uint32_t h_up[kTileWidth];
  uint32_t f_up[kTileWidth];
  uint32_t t_match[kTileWidth];
  uint32_t s_other[kTileWidth];
  uint32_t s_query_n[kTileWidth];
  uint32_t diag;
  int32_t best_a = kNegInf - 1, best_r_a = 0, best_k_a = 0;
  int32_t best_b = kNegInf - 1, best_r_b = 0, best_k_b = 0;

  GMS_HD ExtendStripsPair(const ExtendJob& ja, const ExtendJob& jb, const Scoring& s,
                          uint64_t* dirs_a, uint64_t* dirs_b, size_t ds, TileEdge* e, size_t es)
      : a(ja), b(jb), sc(s), dir_stride(ds), edge(e), edge_stride(es), dir_next_a(dirs_a),
        dir_next_b(dirs_b), edge_next(e) {
    const int32_t low = kNegInf - s.gap_open - s.gap_extend;
    diag = pairs16::pack(low, low);
  }

  GMS_HD void begin_strip(int32_t c, int32_t r0) {
    const int32_t tlen = a.qlen + a.band - 1;
    const int32_t oe = sc.gap_open + sc.gap_extend;
    const int32_t low = kNegInf - oe;
    GMS_UNROLL
    for (int32_t w = 0; w < kTileWidth; ++w) {
      const int32_t j = c + w;
      const uint8_t ta = j < tlen ? a.target[j] : kBaseOff;  // past the window: out of band
      const uint8_t tb = j < tlen ? b.target[j] : kBaseOff;
      auto match_code = [](uint8_t t) -> int32_t { return t == kBaseOff || t == kBaseN ? -1 : t; };
      auto other = [&](uint8_t t) {
        return oe + (t == kBaseOff ? -kOffContigPenalty : t == kBaseN ? -sc.n_penalty
                                                                      : -sc.mismatch);
      };
      auto query_n = [&](uint8_t t) {
        return oe + (t == kBaseOff ? -kOffContigPenalty : -sc.n_penalty);
      };
      t_match[w] = pairs16::pack(match_code(ta), match_code(tb));
      s_other[w] = pairs16::pack(other(ta), other(tb));
      s_query_n[w] = pairs16::pack(query_n(ta), query_n(tb));
      h_up[w] = pairs16::pack(low, low);
      f_up[w] = pairs16::pack(kNegInf, kNegInf);
    }
    diag = r0 > 0 ? edge[static_cast<size_t>(r0 - 1) * edge_stride].h : pairs16::pack(low, low);
    edge_next = edge + static_cast<size_t>(r0) * edge_stride;
  }

  template <bool kMasked>
  GMS_HD void row(int32_t c, int32_t r) {
    const int32_t qa = a.query[r], qb = b.query[r];
    if (qa == kBaseN || qb == kBaseN) row_impl<kMasked, true>(c, r, qa, qb);
    else row_impl<kMasked, false>(c, r, qa, qb);
  }

  template <bool kMasked, bool kQueryN>
  GMS_HD void row_impl(int32_t c, int32_t r, int32_t qa, int32_t qb) {
    using namespace pairs16;
    const int32_t B = a.band;
    const int32_t oe = sc.gap_open + sc.gap_extend;
    const int32_t start_o = (r == 0 ? 0 : -sc.clip) - oe;
    const uint32_t start2 = pack(start_o, start_o), match2 = pack(sc.match + oe, sc.match + oe);
    const uint32_t minus_e2 = pack(-sc.gap_extend, -sc.gap_extend);
    const uint32_t minus_oe2 = pack(-oe, -oe), floor2 = pack(kGapFloor, kGapFloor);
    const uint32_t neg_inf2 = pack(kNegInf, kNegInf);
    const uint32_t q2 = pack(qa, qb);
    // lanes whose query base is N score s_query_n
    const uint32_t n_lanes = (qa == kBaseN ? 0xffffu : 0u) | (qb == kBaseN ? 0xffff0000u : 0u);
    const int32_t f_forced = r == 0 ? INT32_MIN : B - 1;
    TileEdge& left = *edge_next;
    edge_next += edge_stride;
    const TileEdge in = left;
    uint32_t h_left = static_cast<uint32_t>(in.h), e_left = static_cast<uint32_t>(in.gap);
    uint32_t h_diag = diag;
    diag = static_cast<uint32_t>(in.h);
    uint32_t lo_a = 0, hi_a = 0, lo_b = 0, hi_b = 0;  // direction bytes, columns 0-3 and 4-7
    uint32_t row_max = pack(INT16_MIN, INT16_MIN);
    GMS_UNROLL
    for (int32_t w = 0; w < kTileWidth; ++w) {
      const int32_t k = c + w - r;
      uint32_t& word_a = w < 4 ? lo_a : hi_a;
      uint32_t& word_b = w < 4 ? lo_b : hi_b;
      const uint32_t at = 8 * (w & 3);
      const uint32_t differ = differ_mask(q2, t_match[w]);
      uint32_t s = (match2 & ~differ) | (s_other[w] & differ);
      if (kQueryN) s = (s & ~n_lanes) | (s_query_n[w] & n_lanes);
      bool g0, g1;
      const uint32_t hd = max_ge(h_diag, start2, g0, g1);
      if (!g0) word_a |= uint32_t{kTileMStart} << at;
      if (!g1) word_b |= uint32_t{kTileMStart} << at;
      const uint32_t mval = add(hd, s);
      const uint32_t ex = add_max(e_left, minus_e2, floor2);
      uint32_t ev = max_ge(h_left, ex, g0, g1);
      if (!g0) word_a |= uint32_t{kTileEExtend} << at;
      if (!g1) word_b |= uint32_t{kTileEExtend} << at;
      const uint32_t fx = add_max(f_up[w], minus_e2, floor2);
      uint32_t fv = max_ge(h_up[w], fx, g0, g1);
      if (!g0) word_a |= uint32_t{kTileFExtend} << at;
      if (!g1) word_b |= uint32_t{kTileFExtend} << at;
      if (kMasked) {
        if (k == 0) ev = neg_inf2;
        if (k >= f_forced) fv = neg_inf2;
      }
      uint32_t hv = max_ge(mval, ev, g0, g1);
      if (!g0) word_a |= uint32_t{kTileEWins} << at;
      if (!g1) word_b |= uint32_t{kTileEWins} << at;
      hv = max_ge(hv, fv, g0, g1);
      if (!g0) word_a |= uint32_t{kTileFWins} << at;
      if (!g1) word_b |= uint32_t{kTileFWins} << at;
      hv = add(hv, minus_oe2);  // Ho from here on
      if (!kMasked || static_cast<uint32_t>(k) < static_cast<uint32_t>(B)) {
        row_max = pairs16::max(row_max, hv);
      }
      h_diag = h_up[w];
      h_up[w] = hv;
      f_up[w] = fv;
      h_left = hv;
      e_left = ev;
    }
    left = TileEdge{static_cast<int32_t>(h_left), static_cast<int32_t>(e_left)};
    *dir_next_a = static_cast<uint64_t>(hi_a) << 32 | lo_a;
    *dir_next_b = static_cast<uint64_t>(hi_b) << 32 | lo_b;
    dir_next_a += dir_stride;
    dir_next_b += dir_stride;
    track_best(c, r, lane0(row_max), 0, best_a, best_r_a, best_k_a);
    track_best(c, r, lane1(row_max), 1, best_b, best_r_b, best_k_b);
  }

  // As ExtendStrips, for one lane whose row maximum (of Ho) is row_max: the first in-band column
  // reaching it, an equal score in a lower row (seen in an earlier strip) staying ahead.
  GMS_HD void track_best(int32_t c, int32_t r, int32_t row_max, int lane, int32_t& best,
                         int32_t& best_r, int32_t& best_k) const {
    const int32_t oe = sc.gap_open + sc.gap_extend;
    const int32_t end_score = row_max + oe - (r == a.qlen - 1 ? 0 : sc.clip);
    if (!(end_score > best || (end_score == best && r < best_r))) return;
    int32_t first = kTileWidth - 1;
    GMS_UNROLL
    for (int32_t w = kTileWidth - 1; w >= 0; --w) {
      const int32_t k = c + w - r;
      const int32_t v = lane == 0 ? pairs16::lane0(h_up[w]) : pairs16::lane1(h_up[w]);
      if (v == row_max && static_cast<uint32_t>(k) < static_cast<uint32_t>(a.band)) first = w;
    }
    best = end_score;
    best_r = r;
    best_k = c + first - r;
  }
};

}  // namespace tiled_detail

// extend_tiled on two jobs of one shape at once (see above); each job's directions go to its own
// words, at dirs_x[i * dir_stride], for extend_tiled_traceback. edge: qlen records (scratch).
GMS_HD void extend_tiled_pair(const ExtendJob& a, const ExtendJob& b, const Scoring& sc,
                              uint64_t* dirs_a, uint64_t* dirs_b, size_t dir_stride,
                              TileEdge* edge, size_t edge_stride, ExtendResult& res_a,
                              ExtendResult& res_b) {
  const int32_t low = kNegInf - sc.gap_open - sc.gap_extend;
  const TileEdge init{static_cast<int32_t>(pairs16::pack(low, low)),
                      static_cast<int32_t>(pairs16::pack(kNegInf, kNegInf))};
  for (int32_t r = 0; r < a.qlen; ++r) edge[static_cast<size_t>(r) * edge_stride] = init;
  tiled_detail::ExtendStripsPair st(a, b, sc, dirs_a, dirs_b, dir_stride, edge, edge_stride);
  tiled_sweep(a.qlen, a.band, 1, 1, st);
  res_a = ExtendResult{};
  res_a.score = st.best_a;
  res_a.q_end = st.best_r_a + 1;
  res_a.t_end = st.best_r_a + st.best_k_a + 1;
  res_b = ExtendResult{};
  res_b.score = st.best_b;
  res_b.q_end = st.best_r_b + 1;
  res_b.t_end = st.best_r_b + st.best_k_b + 1;
}

}  // namespace gms
