// Private to csrc/: the inter-sequence SIMD extension kernel, written once over a GCC vector type
// and instantiated by extend_avx2.cpp (16 lanes) and extend_avx512.cpp (32 lanes).
//
// A group of up to L jobs sharing one band width runs in lockstep, one job per int16 lane. The
// kernel reproduces extend_scalar (extend.hpp) operation by operation, including the traceback
// bits, so extend_traceback can walk each lane's directions at stride L.
//
// Only raw-pointer code lives here. The SIMD translation units are compiled with wider -m flags,
// and any inline std:: or extend.hpp function they emitted out of line could be picked by the
// linker for the whole library (and fault on older CPUs); grouping, allocation and traceback
// therefore stay in extend_batch.cpp, built for the baseline ISA, and this template sits in an
// anonymous namespace.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "gmsaccel/extend_batch.hpp"

namespace gms::detail {

// One group's inputs, scratch and outputs, all sized by the driver for lanes x band x max_qlen.
struct GroupWork {
  const ExtendJob* const* lane_job;  // lanes entries; nullptr marks an idle lane
  int32_t band = 0;
  int32_t max_qlen = 0;
  int16_t* query = nullptr;   // max_qlen * lanes codes, lane-interleaved
  int16_t* target = nullptr;  // (max_qlen + band - 1) * lanes codes, lane-interleaved
  int16_t* tscore = nullptr;  // as target: the score of an N / off-contig target base
  uint8_t* stage = nullptr;   // lanes * (max_qlen + band - 1) bytes for the transposition
  int16_t* h = nullptr;       // (band + 1) * lanes: H of the previous row
  int16_t* f = nullptr;       // (band + 1) * lanes: F of the previous row
  uint8_t* dirs = nullptr;    // max_qlen * band * lanes traceback bytes, cell-major, lane-minor
  int32_t* score = nullptr;   // lanes outputs: best end score ...
  int32_t* r_end = nullptr;   // ... its row ...
  int32_t* k_end = nullptr;   // ... and its band column
};

using GroupKernel = void (*)(const GroupWork&, const Scoring&);

// Sorts jobs into same-band groups of `lanes`, runs `kernel` on each and assembles `out` in job
// order; jobs the int16 kernel cannot take (extend_job_fits_int16), and nearly empty groups, go
// through extend_scalar.
void extend_batch_grouped(const ExtendJob* jobs, size_t n_jobs, const Scoring& sc,
                          ExtendBatchOutput& out, int lanes, GroupKernel kernel);

}  // namespace gms::detail

namespace gms {
namespace {

template <class V>
inline V simd_load(const int16_t* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class V>
inline void simd_store(int16_t* p, V v) {
  std::memcpy(p, &v, sizeof v);
}

template <class V>
inline V simd_splat(int32_t x) {
  return V{} + static_cast<int16_t>(x);
}

template <class V>
inline V simd_max(V a, V b) {
  return a > b ? a : b;
}

// V: int16 vector of L lanes; VB: int8 vector of the same L lanes (for the traceback bytes).
template <class V, class VB>
void extend_group_kernel(const detail::GroupWork& w, const Scoring& sc) {
  constexpr int L = static_cast<int>(sizeof(V) / sizeof(int16_t));
  static_assert(sizeof(VB) * 2 == sizeof(V), "VB must hold one byte per lane of V");
  const int32_t B = w.band, M = w.max_qlen;
  const int32_t T = M + B - 1;

  // Lane-interleave the codes: stage each lane's bases contiguously (padding past a job's end and
  // idle lanes with codes whose cells the end tracking never looks at), then transpose with
  // contiguous writes.
  alignas(64) int16_t qlen_lane[L];
  uint8_t* const stage = w.stage;
  for (int l = 0; l < L; ++l) {
    const ExtendJob* job = w.lane_job[l];
    const int32_t m = job ? job->qlen : 0;
    qlen_lane[l] = static_cast<int16_t>(m);
    uint8_t* row = stage + static_cast<size_t>(l) * T;
    if (m > 0) std::memcpy(row, job->query, static_cast<size_t>(m));
    std::memset(row + m, 0, static_cast<size_t>(M - m));
  }
  for (int32_t r = 0; r < M; ++r) {
    int16_t* out = w.query + r * L;
    for (int l = 0; l < L; ++l) out[l] = stage[static_cast<size_t>(l) * T + r];
  }
  for (int l = 0; l < L; ++l) {
    const ExtendJob* job = w.lane_job[l];
    const int32_t tl = job ? job->qlen + B - 1 : 0;
    uint8_t* row = stage + static_cast<size_t>(l) * T;
    if (tl > 0) std::memcpy(row, job->target, static_cast<size_t>(tl));
    std::memset(row + tl, kBaseOff, static_cast<size_t>(T - tl));
  }
  {
    const V off = simd_splat<V>(kBaseOff), off_score = simd_splat<V>(-kOffContigPenalty);
    const V n_score = simd_splat<V>(-sc.n_penalty);
    for (int32_t j = 0; j < T; ++j) {
      int16_t* out = w.target + j * L;
      for (int l = 0; l < L; ++l) out[l] = stage[static_cast<size_t>(l) * T + j];
      // score of an N or off-contig target base, used where the code is > 3
      simd_store(w.tscore + j * L, simd_load<V>(out) == off ? off_score : n_score);
    }
  }
  // Local copies: the byte stores below may alias anything, which would force reloads of w.*.
  int16_t* const hbuf = w.h;
  int16_t* const fbuf = w.f;
  const int16_t* const qbuf = w.query;
  const int16_t* const tbuf = w.target;
  const int16_t* const tsbuf = w.tscore;
  uint8_t* const dbuf = w.dirs;
  for (int32_t i = 0; i < (B + 1) * L; ++i) { hbuf[i] = kNegInf; fbuf[i] = kNegInf; }

  const V neg = simd_splat<V>(kNegInf);
  const V oe = simd_splat<V>(sc.gap_open + sc.gap_extend), ge = simd_splat<V>(sc.gap_extend);
  const V n_pen = simd_splat<V>(-sc.n_penalty), v_match = simd_splat<V>(sc.match);
  const V v_mis = simd_splat<V>(-sc.mismatch), clip = simd_splat<V>(sc.clip);
  const V zero = V{}, one = simd_splat<V>(1), three = simd_splat<V>(3);
  const V qlen_v = simd_load<V>(qlen_lane);
  V best = simd_splat<V>(kNegInf - 1), best_r = zero, best_k = zero;

  for (int32_t r = 0; r < M; ++r) {
    const V qv = simd_load<V>(qbuf + r * L);
    const V q_is_n = qv == simd_splat<V>(kBaseN);
    const V row_match = q_is_n ? n_pen : v_match;
    const V row_mis = q_is_n ? n_pen : v_mis;
    const V start = simd_splat<V>(r == 0 ? 0 : -sc.clip);
    const int16_t* tr = tbuf + r * L;
    const int16_t* tsr = tsbuf + r * L;
    uint8_t* dr = dbuf + static_cast<size_t>(r) * B * L;
    V h_left = neg, e_left = neg;
    V row_max = simd_splat<V>(INT16_MIN), row_arg = zero, kv = zero;

    // One cell; the flags are compile-time so the edge cases cost nothing in the band interior.
    auto cell = [&](auto first_row, auto first_col, auto last_col, int32_t k) {
      const V hd = simd_load<V>(hbuf + k * L);
      const V tv = simd_load<V>(tr + k * L);
      V s = tv == qv ? row_match : row_mis;
      s = tv > three ? simd_load<V>(tsr + k * L) : s;  // N or off-contig target base
      const V mval = simd_max(hd, start) + s;
      V d = (hd < start) & kDirMStart;
      const V eo = h_left - oe, ex = e_left - ge;
      V ev = simd_max(eo, ex);
      d |= (eo < ex) & kDirEExtend;
      if constexpr (decltype(first_col)::value) ev = neg;
      const V fo = simd_load<V>(hbuf + (k + 1) * L) - oe;
      const V fx = simd_load<V>(fbuf + (k + 1) * L) - ge;
      V fv = simd_max(fo, fx);
      d |= (fo < fx) & kDirFExtend;
      if constexpr (decltype(first_row)::value || decltype(last_col)::value) fv = neg;
      const V take_e = ev > mval;
      V hv = simd_max(mval, ev);
      const V take_f = fv > hv;
      hv = simd_max(hv, fv);
      // bits 0-1 hold the M source (0/1) unless E or F won
      d = take_f ? (d | kDirF) : (take_e ? ((d & ~one) | kDirE) : d);
      const VB db = __builtin_convertvector(d, VB);
      std::memcpy(dr + static_cast<size_t>(k) * L, &db, sizeof db);
      simd_store(hbuf + k * L, hv);
      simd_store(fbuf + k * L, fv);
      h_left = hv;
      e_left = ev;
      // first maximum of the row; the end penalty is constant along a row
      const V gt = hv > row_max;
      row_max = gt ? hv : row_max;
      row_arg = gt ? kv : row_arg;
      kv += one;
    };
    using T_ = std::true_type;
    using F_ = std::false_type;
    auto run_row = [&](auto first_row) {
      if (B == 1) { cell(first_row, T_{}, T_{}, 0); return; }
      cell(first_row, T_{}, F_{}, 0);
      for (int32_t k = 1; k < B - 1; ++k) cell(first_row, F_{}, F_{}, k);
      cell(first_row, F_{}, T_{}, B - 1);
    };
    if (r == 0) run_row(T_{});
    else run_row(F_{});

    const V rv = simd_splat<V>(r);
    const V pen = (qlen_v - one) == rv ? zero : clip;
    const V end = row_max - pen;
    const V upd = (rv < qlen_v) & (end > best);  // rows past a lane's query are padding
    best = upd ? end : best;
    best_r = upd ? rv : best_r;
    best_k = upd ? row_arg : best_k;
  }
  for (int l = 0; l < L; ++l) {
    w.score[l] = best[l];
    w.r_end[l] = best_r[l];
    w.k_end[l] = best_k[l];
  }
}

}  // namespace
}  // namespace gms
