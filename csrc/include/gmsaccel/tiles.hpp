// Strip geometry shared by the register-tiled kernels (extend_tiled.hpp, haplotype_tiled.hpp).
//
// A banded job of qlen rows and band diagonals pairs query base r with target base j = r + k,
// k in [0, band). The tiled kernels visit the band in vertical strips of kTileWidth target bases
// (strip c covers j in [c, c + kTileWidth)); within a strip, rows run top to bottom and a row's
// kTileWidth cells live in registers. Only the strip's left edge (two values per row) is kept in
// memory between strips.
#pragma once
#include <cstdint>

#include "gmsaccel/hd.hpp"

namespace gms {

constexpr int32_t kTileWidth = 8;  // target bases per strip: one byte each in a 64-bit word

// The two values of one row of a strip's left edge (column c - 1) that the strip reads: H and the
// horizontal-gap state; 8-byte aligned so that a thread moves it in one load or store.
struct alignas(8) TileEdge {
  int32_t h, gap;
};

GMS_HD int32_t tiled_strips(int32_t qlen, int32_t band) {
  return (qlen + band - 1 + kTileWidth - 1) / kTileWidth;
}
// Rows [first, last] of the strip starting at target base c that hold in-band cells.
GMS_HD int32_t tiled_first_row(int32_t c, int32_t band) {
  return c - band + 1 > 0 ? c - band + 1 : 0;
}
GMS_HD int32_t tiled_last_row(int32_t c, int32_t qlen) {
  return c + kTileWidth - 1 < qlen - 1 ? c + kTileWidth - 1 : qlen - 1;
}
GMS_HD int32_t tiled_strip_rows(int32_t c, int32_t qlen, int32_t band) {
  return tiled_last_row(c, qlen) - tiled_first_row(c, band) + 1;
}
// Rows of all strips of a job (extension: its traceback words, one per strip row), in closed form:
// the sum over strips s of min(qlen - 1, sW + W - 1) - max(0, sW - band + 1) + 1, W = kTileWidth.
GMS_HD uint64_t tiled_dir_words(int32_t qlen, int32_t band) {
  const uint64_t W = kTileWidth, m = static_cast<uint64_t>(qlen), B = static_cast<uint64_t>(band);
  const uint64_t ns = static_cast<uint64_t>(tiled_strips(qlen, band));
  const uint64_t sa = m / W;  // strips whose last column is a row the matrix still has
  const uint64_t last = sa * (sa - 1) / 2 * W + sa * (W - 1) + (ns - sa) * (m - 1);
  const uint64_t sc = (B + W - 1) / W;  // first strip whose first row is below row 0
  const uint64_t first =
      ns > sc ? W * ((ns - 1) * ns / 2 - (sc - 1) * sc / 2) - (ns - sc) * (B - 1) : 0;
  return last - first + ns;
}

// Visits every strip of a job, and in each its rows [first, last] top to bottom, calling
// k.begin_strip(c, first_row) and then k.template row<kMasked>(c, r). Rows whose cells all lie
// at least `margin` diagonals inside the band, and at or below row min_row, get kMasked = false
// (no per-cell band checks); the others get kMasked = true.
template <class Kernel>
GMS_HD void tiled_sweep(int32_t qlen, int32_t band, int32_t margin, int32_t min_row, Kernel& k) {
  for (int32_t c = 0; c < qlen + band - 1; c += kTileWidth) {
    const int32_t r0 = tiled_first_row(c, band), r1 = tiled_last_row(c, qlen);
    k.begin_strip(c, r0);
    // cell (r, c + w) sits on diagonal c + w - r: all of the strip's row is inside the margin
    // when c - r >= margin and c + kTileWidth - 1 - r <= band - 1 - margin
    int32_t lo = c + kTileWidth - band + margin;
    if (lo < r0) lo = r0;
    if (lo < min_row) lo = min_row;
    const int32_t hi = c - margin < r1 ? c - margin : r1;
    const int32_t top_end = lo <= hi ? lo : r1 + 1;  // masked rows [r0, top_end)
    int32_t r = r0;
    for (; r < top_end; ++r) k.template row<true>(c, r);
    for (; r <= hi; ++r) k.template row<false>(c, r);
    for (; r <= r1; ++r) k.template row<true>(c, r);
  }
}

}  // namespace gms
