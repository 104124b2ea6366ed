// Chaining for short reads: anchors of one orientation whose diagonals differ by at most a small
// gap form one placement; a read this short rarely spans more than a few indels.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "align_internal.hpp"

namespace gms {

namespace {

int32_t covered_bases(std::vector<Anchor>::iterator first, std::vector<Anchor>::iterator last,
                      int k) {
  // anchors are sorted by qpos within the range; read bases start at 0
  int32_t cover = 0, reach = 0;
  for (auto it = first; it != last; ++it) {
    const int32_t b = std::max(it->qpos, reach), e = it->qpos + k;
    if (e > b) cover += e - b;
    reach = std::max(reach, e);
  }
  return cover;
}

// Anchors in (strand, diagonal, query position) order. Repeats give reads thousands of anchors:
// sorting them as one 64-bit key each (strand in the top bit, then the diagonal, then the query
// position) is several times faster than comparing the three fields. Reads too long for the key's
// query field (over 2^20 bases) are sorted field by field.
void sort_by_strand_diagonal_query(std::vector<Anchor>& anchors) {
  constexpr int kQueryBits = 20;
  constexpr int64_t kDiagBias = int64_t{1} << kQueryBits;  // diagonals start at -query length
  bool fits = true;
  for (const Anchor& a : anchors)
    fits = fits && a.qpos >= 0 && a.qpos < kDiagBias && a.diag >= -kDiagBias &&
           a.diag < (int64_t{1} << 42) && a.rev <= 1;
  if (!fits) {
    std::sort(anchors.begin(), anchors.end(), [](const Anchor& a, const Anchor& b) {
      if (a.rev != b.rev) return a.rev < b.rev;
      if (a.diag != b.diag) return a.diag < b.diag;
      return a.qpos < b.qpos;
    });
    return;
  }
  thread_local std::vector<uint64_t> keys;  // (the aligner's threads chain read after read)
  keys.resize(anchors.size());
  for (size_t i = 0; i < anchors.size(); ++i) {
    const Anchor& a = anchors[i];
    keys[i] = uint64_t{a.rev} << 63 | static_cast<uint64_t>(a.diag + kDiagBias) << kQueryBits |
              static_cast<uint64_t>(a.qpos);
  }
  std::sort(keys.begin(), keys.end());
  for (size_t i = 0; i < keys.size(); ++i) {
    const uint64_t key = keys[i];
    anchors[i].rev = static_cast<uint32_t>(key >> 63);
    anchors[i].diag = static_cast<int64_t>(key << 1 >> (kQueryBits + 1)) - kDiagBias;
    anchors[i].qpos = static_cast<int32_t>(key & ((uint64_t{1} << kQueryBits) - 1));
  }
}

}  // namespace

int32_t chain_anchors(std::vector<Anchor>& anchors, int k, const AlignOptions& opt,
                      std::vector<Chain>& out) {
  out.clear();
  if (anchors.empty()) return 0;
  sort_by_strand_diagonal_query(anchors);
  size_t start = 0;
  for (size_t i = 1; i <= anchors.size(); ++i) {
    const bool split = i == anchors.size() || anchors[i].rev != anchors[start].rev ||
                       anchors[i].diag - anchors[i - 1].diag > opt.max_diag_gap;
    if (!split) continue;
    Chain c;
    c.rev = anchors[start].rev;
    c.diag_lo = anchors[start].diag;
    c.diag_hi = anchors[i - 1].diag;
    c.n_anchors = static_cast<int32_t>(i - start);
    c.q_lo = INT32_MAX;
    c.q_hi = 0;
    for (size_t j = start; j < i; ++j) {
      c.q_lo = std::min(c.q_lo, anchors[j].qpos);
      c.q_hi = std::max(c.q_hi, anchors[j].qpos + k);
    }
    // coverage needs qpos order; re-sort this run (it stays inside the run)
    std::sort(anchors.begin() + start, anchors.begin() + i,
              [](const Anchor& a, const Anchor& b) { return a.qpos < b.qpos; });
    c.cover = covered_bases(anchors.begin() + start, anchors.begin() + i, k);
    start = i;
    // A read across an indel longer than the diagonal gap gives two chains of one strand, over
    // disjoint parts of the read, on diagonals the indel's length apart: one placement, if one
    // band covers both. (Chains over the same part of the read are copies, not an indel.)
    if (!out.empty()) {
      Chain& p = out.back();
      const int32_t overlap = std::min(p.q_hi, c.q_hi) - std::max(p.q_lo, c.q_lo);
      if (p.rev == c.rev && c.diag_lo - p.diag_hi <= opt.max_indel_gap &&
          c.diag_hi - p.diag_lo <= 2 * (opt.max_half_band - opt.band_padding) &&
          overlap <= k / 2) {
        p.diag_hi = c.diag_hi;
        p.n_anchors += c.n_anchors;
        p.q_lo = std::min(p.q_lo, c.q_lo);
        p.q_hi = std::max(p.q_hi, c.q_hi);
        p.cover += c.cover - std::max(overlap, 0);
        continue;
      }
    }
    out.push_back(c);
  }
  // Keep placements that could plausibly score near the best: they decide MAPQ. In repeats most
  // of the chains are single anchors far below the best; only those at the floor or above are
  // ordered (best cover first; strand and diagonal make the order total). The best is kept even
  // below the floor (a cover under k).
  int32_t best = 0;
  for (const Chain& c : out) best = std::max(best, c.cover);
  const int32_t floor = std::max<int32_t>(k, best / 4);
  const int32_t kept = std::min(floor, best);
  out.erase(std::remove_if(out.begin(), out.end(),
                           [kept](const Chain& c) { return c.cover < kept; }),
            out.end());
  std::sort(out.begin(), out.end(), [](const Chain& a, const Chain& b) {
    if (a.cover != b.cover) return a.cover > b.cover;
    if (a.rev != b.rev) return a.rev < b.rev;
    return a.diag_lo < b.diag_lo;
  });
  const size_t keep =
      best < floor ? 1 : std::max<size_t>(std::min<size_t>(out.size(), opt.max_candidates), 1);
  const int32_t unexplored = keep < out.size() && out[keep].cover >= floor ? out[keep].cover : 0;
  out.resize(keep);
  return unexplored;
}

}  // namespace gms
