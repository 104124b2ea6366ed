// Private to csrc/: the inter-sequence SIMD haplotype-cost kernel, written once over a GCC vector
// type and instantiated by haplotype_avx2.cpp (16 int16 lanes) and haplotype_avx512.cpp (32).
//
// A group of up to L jobs sharing one band width runs in lockstep, one job per int16 lane. The
// kernel follows haplotype_cost_scalar (haplotype.hpp) operation by operation, saturating at
// w.ceiling instead of kCostInf. Because saturation commutes with min and with adding a
// non-negative cost, every lane value equals min(scalar value, ceiling); the driver only sends
// jobs whose optimum is provably below the ceiling, so the results are bit-identical.
//
// As in extend_simd_impl.hpp, only raw-pointer code lives here, in an anonymous namespace: the
// SIMD translation units are built with wider -m flags and must not emit out-of-line inline
// functions the linker could pick for the baseline build. Grouping stays in haplotype.cpp.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "gmsaccel/haplotype.hpp"

namespace gms::detail {

// One group's inputs, scratch and outputs, sized by the driver for lanes x band x max_len.
struct HapGroupWork {
  const HaplotypeJob* const* lane_job;  // lanes entries; nullptr marks an idle lane
  int32_t band = 0;
  int32_t max_len = 0;
  int32_t ceiling = 0;         // the int16 saturation value, standing in for kCostInf
  uint8_t* stage = nullptr;    // 2 * lanes * (max_len + band - 1) bytes for the transposition
  int16_t* read = nullptr;     // max_len * lanes read codes, lane-interleaved
  int16_t* qcost = nullptr;    // as read: the mismatch cost of each read base
  int16_t* hap = nullptr;      // (max_len + band - 1) * lanes haplotype codes, lane-interleaved
  int16_t* tcost = nullptr;    // as hap: the cost of an N / off-haplotype base
  const uint8_t* row_end = nullptr;  // max_len flags: some lane's read ends in this row
  int16_t* h = nullptr;        // (band + 1) * lanes: H of the previous row
  int16_t* i = nullptr;        // (band + 1) * lanes: I of the previous row
  int32_t* cost = nullptr;     // lanes outputs
};

using HapGroupKernel = void (*)(const HapGroupWork&, const HaplotypeScoring&);

// Jobs the int16 kernels cannot take run through the scalar definition (haplotype.cpp).
void haplotype_costs_grouped(const HaplotypeJob* jobs, size_t n, const HaplotypeScoring& sc,
                             int32_t* costs, int lanes, HapGroupKernel kernel);
void haplotype_costs_avx2(const HaplotypeJob* jobs, size_t n, const HaplotypeScoring& sc,
                          int32_t* costs);
void haplotype_costs_avx512(const HaplotypeJob* jobs, size_t n, const HaplotypeScoring& sc,
                            int32_t* costs);
void haplotype_costs_scalar(const HaplotypeJob* jobs, size_t n, const HaplotypeScoring& sc,
                            int32_t* costs);

}  // namespace gms::detail

namespace gms {
namespace {

template <class V>
inline V hap_load(const int16_t* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class V>
inline void hap_store(int16_t* p, V v) {
  std::memcpy(p, &v, sizeof v);
}

template <class V>
inline V hap_splat(int32_t x) {
  return V{} + static_cast<int16_t>(x);
}

template <class V>
inline V hap_min(V a, V b) {
  return a < b ? a : b;
}

// V: int16 vector of L lanes.
template <class V>
void haplotype_group_kernel(const detail::HapGroupWork& w, const HaplotypeScoring& sc) {
  constexpr int L = static_cast<int>(sizeof(V) / sizeof(int16_t));
  const int32_t B = w.band, M = w.max_len;
  const int32_t T = M + B - 1;
  const int32_t max_qual = sc.max_qual;

  // Lane-interleave the inputs: stage each lane's bytes contiguously (padding past a job's end
  // and idle lanes; padding rows only feed cells no result reads, padding haplotype bases are
  // off-haplotype), then transpose with contiguous writes. Branch-free loops here matter: for
  // short bands this setup costs as much as the DP.
  alignas(64) int16_t last_row[L];
  uint8_t* const stage = w.stage;  // 2 * lanes * T bytes: read codes and quals, or haplotype
  uint8_t* const stage_q = stage + static_cast<size_t>(L) * T;
  for (int l = 0; l < L; ++l) {
    const HaplotypeJob* job = w.lane_job[l];
    const int32_t m = job ? job->len : 0;
    last_row[l] = static_cast<int16_t>(m - 1);  // -1 for an idle lane: never captured
    uint8_t* row = stage + static_cast<size_t>(l) * T;
    uint8_t* qrow = stage_q + static_cast<size_t>(l) * T;
    if (m > 0) {
      std::memcpy(row, job->read, static_cast<size_t>(m));
      std::memcpy(qrow, job->qual, static_cast<size_t>(m));
    }
    std::memset(row + m, 0, static_cast<size_t>(M - m));
    std::memset(qrow + m, 0, static_cast<size_t>(M - m));
  }
  {
    // quals are bytes: capping max_qual at 255 first keeps it in int16 without changing a cost
    const V cap = hap_splat<V>(max_qual < 255 ? max_qual : 255);
    const V n_code = hap_splat<V>(kBaseN), zero = V{};
    for (int32_t r = 0; r < M; ++r) {
      int16_t* out = w.read + r * L;
      int16_t* qout = w.qcost + r * L;
      for (int l = 0; l < L; ++l) {
        out[l] = stage[static_cast<size_t>(l) * T + r];
        qout[l] = stage_q[static_cast<size_t>(l) * T + r];
      }
    }
    // A second pass: loading a vector right after its lane-wise stores would stall on store
    // forwarding every row.
    for (int32_t r = 0; r < M; ++r) {
      int16_t* qout = w.qcost + r * L;
      const V qv = hap_load<V>(w.read + r * L), qual = hap_load<V>(qout);
      // N or quality 0: a mismatch costs nothing; otherwise min(qual, max_qual)
      hap_store(qout, (qv == n_code) | (qual == zero) ? zero : hap_min(qual, cap));
    }
  }
  for (int l = 0; l < L; ++l) {
    const HaplotypeJob* job = w.lane_job[l];
    const int32_t tl = job ? job->len + B - 1 : 0;
    uint8_t* row = stage + static_cast<size_t>(l) * T;
    if (tl > 0) std::memcpy(row, job->hap, static_cast<size_t>(tl));
    std::memset(row + tl, kBaseOff, static_cast<size_t>(T - tl));
  }
  {
    int16_t* const hout = w.hap;
    int16_t* const tcout = w.tcost;
    for (int32_t j = 0; j < T; ++j) {
      for (int l = 0; l < L; ++l) hout[j * L + l] = stage[static_cast<size_t>(l) * T + j];
    }
    // cost of an N (0) or off-haplotype base, used where the code is > 3 (second pass as above)
    const V off = hap_splat<V>(kBaseOff), off_cost = hap_splat<V>(kOffHaplotypeCost);
    for (int32_t j = 0; j < T; ++j) {
      hap_store(tcout + j * L, hap_load<V>(hout + j * L) == off ? off_cost : V{});
    }
  }

  // Local copies: stores through int16_t* may alias w's fields, which would force reloads.
  int16_t* const hbuf = w.h;
  int16_t* const ibuf = w.i;
  const int16_t* const rbuf = w.read;
  const int16_t* const qcbuf = w.qcost;
  const int16_t* const tbuf = w.hap;
  const int16_t* const tcbuf = w.tcost;
  const uint8_t* const row_end = w.row_end;
  const V sat = hap_splat<V>(w.ceiling);
  for (int32_t x = 0; x < (B + 1) * L; ++x) {
    hbuf[x] = static_cast<int16_t>(w.ceiling);
    ibuf[x] = static_cast<int16_t>(w.ceiling);
  }
  const V go = hap_splat<V>(sc.gap_open), ge = hap_splat<V>(sc.gap_extend);
  const V zero = V{}, three = hap_splat<V>(3);
  const V last_v = hap_load<V>(last_row);
  V result = sat;

  for (int32_t r = 0; r < M; ++r) {
    const V qv = hap_load<V>(rbuf + r * L);
    const V qcv = hap_load<V>(qcbuf + r * L);
    const int16_t* tr = tbuf + r * L;
    const int16_t* tcr = tcbuf + r * L;
    V h_left = sat, d_left = sat;
    V h_next = hap_load<V>(hbuf);  // H(r-1, k), carried from one column to the next
    // One row; first_row is compile-time so row 0's free start costs nothing elsewhere. Column B
    // of hbuf/ibuf stays at the ceiling, so the last column needs no special case.
    auto run_row = [&](auto first_row) {
      for (int32_t k = 0; k < B; ++k) {
        const V hd = h_next;
        h_next = hap_load<V>(hbuf + (k + 1) * L);
        const V tv = hap_load<V>(tr + k * L);
        V s = tv == qv ? zero : qcv;
        s = tv > three ? hap_load<V>(tcr + k * L) : s;  // N or off-haplotype base
        V mv;
        if constexpr (decltype(first_row)::value) mv = s;
        else mv = hd + s;  // <= ceiling + max cost: no int16 overflow
        const V dv = hap_min(hap_min(h_left + go, d_left + ge), sat);
        const V iv = hap_min(hap_min(h_next + go, hap_load<V>(ibuf + (k + 1) * L) + ge), sat);
        const V hv = hap_min(hap_min(mv, sat), hap_min(dv, iv));
        hap_store(hbuf + k * L, hv);
        hap_store(ibuf + k * L, iv);
        h_left = hv;
        d_left = dv;
      }
    };
    if (r == 0) run_row(std::true_type{});
    else run_row(std::false_type{});
    if (row_end[r]) {  // some lane's read ends here: take the row minimum for those lanes
      V row_min = sat;
      for (int32_t k = 0; k < B; ++k) row_min = hap_min(row_min, hap_load<V>(hbuf + k * L));
      result = last_v == hap_splat<V>(r) ? row_min : result;
    }
  }
  for (int l = 0; l < L; ++l) w.cost[l] = result[l];
}

}  // namespace
}  // namespace gms
