// Register-tiled evaluation of haplotype_cost_scalar's recurrences (haplotype.hpp), for
// one-job-per-thread kernels: the band is swept in vertical strips of kTileWidth haplotype bases
// (tiles.hpp) whose cells live in registers; H and I flow down the strip in registers and only the
// strip's left edge (H and D of column c - 1, one 8-byte record per row) goes through memory.
//
// Every in-band cell gets exactly haplotype_cost_scalar's H, D and I (out-of-band neighbours read
// kCostInf, the same saturation), and the result is the minimum over the last row's in-band
// cells, so the costs are the scalar definition's bit for bit. Tests hold this through the CUDA
// module's host emulation on random jobs.
#pragma once
#include <cstddef>
#include <cstdint>

#include "gmsaccel/haplotype.hpp"
#include "gmsaccel/hd.hpp"
#include "gmsaccel/tiles.hpp"

namespace gms {
namespace tiled_detail {

struct HaplotypeStrips {
  const HaplotypeJob& job;
  const HaplotypeScoring& sc;
  TileEdge* edge;  // edge.gap holds D
  size_t edge_stride;
  int32_t h_up[kTileWidth];   // H of the previous row, per column of the strip
  int32_t i_up[kTileWidth];   // I of the previous row
  int32_t fixed[kTileWidth];  // the substitution cost the haplotype base forces (N: 0, off-
                              // haplotype: kOffHaplotypeCost), or -1 where it depends on the read
  uint8_t tb[kTileWidth];     // haplotype codes
  int32_t diag = kCostInf;    // H(r - 1, c - 1) for the next row
  int32_t best = kCostInf;    // minimum H of the last row so far
  TileEdge* edge_next;        // the next row's edge record

  GMS_HD HaplotypeStrips(const HaplotypeJob& j, const HaplotypeScoring& s, TileEdge* e,
                         size_t es)
      : job(j), sc(s), edge(e), edge_stride(es), edge_next(e) {}

  GMS_HD void begin_strip(int32_t c, int32_t r0) {
    const int32_t hlen = job.len + job.band - 1;
    GMS_UNROLL
    for (int32_t w = 0; w < kTileWidth; ++w) {
      const int32_t j = c + w;
      const uint8_t t = j < hlen ? job.hap[j] : kBaseOff;  // past the window: out of band
      tb[w] = t;
      fixed[w] = t == kBaseOff ? kOffHaplotypeCost : t == kBaseN ? 0 : -1;
      h_up[w] = kCostInf;  // the row above the strip's first is outside the band (or matrix)
      i_up[w] = kCostInf;
    }
    diag = r0 > 0 ? edge[static_cast<size_t>(r0 - 1) * edge_stride].h : kCostInf;
    edge_next = edge + static_cast<size_t>(r0) * edge_stride;  // rows follow one by one
  }

  // Row r of the strip at c. kMasked: the row has cells outside the band.
  template <bool kMasked>
  GMS_HD void row(int32_t c, int32_t r) {
    const int32_t go = sc.gap_open, ge = sc.gap_extend;
    const uint8_t qb = job.read[r], qq = job.qual[r];
    const int32_t qc = (qb == kBaseN) | (qq == 0) ? 0 : haplotype_min(qq, sc.max_qual);
    const int32_t start = r == 0 ? 0 : kCostInf;
    TileEdge& left = *edge_next;
    edge_next += edge_stride;
    const TileEdge in = left;
    int32_t h_left = in.h, d_left = in.gap;
    int32_t h_diag = diag;
    diag = in.h;
    int32_t row_min = kCostInf;
    GMS_UNROLL
    for (int32_t w = 0; w < kTileWidth; ++w) {
      const int32_t sub = fixed[w] >= 0 ? fixed[w] : tb[w] == qb ? 0 : qc;
      const int32_t mv = haplotype_min(h_diag, start) + sub;
      int32_t dv = haplotype_min(haplotype_min(h_left + go, d_left + ge), kCostInf);
      int32_t iv = haplotype_min(haplotype_min(h_up[w] + go, i_up[w] + ge), kCostInf);
      int32_t hv = haplotype_min(haplotype_min(haplotype_min(mv, dv), iv), kCostInf);
      if (kMasked) {
        const int32_t k = c + w - r;
        if (k < 0 || k >= job.band) hv = dv = iv = kCostInf;  // a neighbour of value kCostInf
      }
      row_min = haplotype_min(row_min, hv);
      h_diag = h_up[w];
      h_up[w] = hv;
      i_up[w] = iv;
      h_left = hv;
      d_left = dv;
    }
    left = TileEdge{h_left, d_left};
    if (r == job.len - 1) best = haplotype_min(best, row_min);
  }
};

}  // namespace tiled_detail

// haplotype_cost_scalar(job, sc) computed strip by strip. edge: len records at
// edge[r * edge_stride] (scratch).
GMS_HD int32_t haplotype_cost_tiled(const HaplotypeJob& job, const HaplotypeScoring& sc,
                                    TileEdge* edge, size_t edge_stride) {
  for (int32_t r = 0; r < job.len; ++r) {
    edge[static_cast<size_t>(r) * edge_stride] = TileEdge{kCostInf, kCostInf};
  }
  tiled_detail::HaplotypeStrips st(job, sc, edge, edge_stride);
  tiled_sweep(job.len, job.band, 0, 0, st);  // unmasked rows: every cell inside the band
  return st.best;
}

}  // namespace gms
