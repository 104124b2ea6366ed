// gVCF reference confidence (see reference_confidence.hpp): gvcf.homref_likelihoods' arithmetic,
// operation for operation in double precision, so that the two agree except where a phred value
// lies within rounding noise of a half (numpy's vectorised log10 and pow may differ from libm's
// in the last bit).
#include "gmsaccel/reference_confidence.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace gms {

namespace {
constexpr double kMaxPl = 9999, kMaxGq = 99;
}

void add_reference_confidence(const Pileup& pile, const uint8_t* ref_codes, int ploidy,
                              ReferenceConfidence& out, int64_t from, int64_t to) {
  if (ploidy != 1 && ploidy != 2) throw std::invalid_argument("ploidy must be 1 or 2");
  const int n_pl = ploidy == 2 ? 3 : 2;
  const int64_t lo = std::max(from, pile.start), hi = std::min(to, pile.start + pile.n);
  if (lo >= hi) return;
  if (out.size() == 0) {
    out.start = lo;
    out.n_pl = n_pl;
  } else if (out.start + static_cast<int64_t>(out.size()) != lo || out.n_pl != n_pl) {
    throw std::logic_error("reference confidence windows must follow one another");
  }
  const double log_half = std::log10(0.5);
  const size_t first = static_cast<size_t>(lo - pile.start);
  const size_t n = static_cast<size_t>(hi - lo);
  const size_t at = out.size() - first;  // position i of pile goes to out[at + i]
  out.gq.resize(out.size() + n);
  out.depth.resize(out.depth.size() + n);
  out.pl.resize(out.depth.size() * n_pl);
  for (size_t i = first; i < first + n; ++i) {
    const uint32_t* c = &pile.base_counts[i * 5];
    out.depth[at + i] = static_cast<int32_t>(pile.depth[i]);
    // Uncovered (no base, deletion or insertion): no evidence either way, PL 0 and GQ 0 (most of
    // a genome for exomes, panels and low-pass genomes: the model is skipped there).
    if (c[0] + c[1] + c[2] + c[3] + pile.deletions[i] + pile.insertions[i] == 0) {
      out.gq[at + i] = 0;
      std::fill_n(&out.pl[(at + i) * n_pl], n_pl, 0);
      continue;
    }
    const uint32_t* qs = &pile.base_qual_sums[i * 5];
    const uint8_t code = ref_codes[i];
    const double acgt = static_cast<double>(c[0]) + c[1] + c[2] + c[3];  // exact: integers
    const double ref_n = code < 4 ? static_cast<double>(c[code]) : 0.0;
    const double other = acgt - ref_n + pile.deletions[i] + pile.insertions[i];
    const double nbases = acgt + c[4];
    const double qsum = static_cast<double>(qs[0]) + qs[1] + qs[2] + qs[3] + qs[4];
    const double mean_q = nbases > 0 ? qsum / nbases : 30.0;
    const double e = std::clamp(std::pow(10.0, -mean_q / 10.0), 1e-6, 0.25);
    const double le = std::log10(e), l1e = std::log10(1.0 - e);
    double ll[3];
    int k = 0;
    ll[k++] = ref_n * l1e + other * le;                 // 0/0 (or 0)
    if (ploidy == 2) ll[k++] = (ref_n + other) * log_half;  // 0/X
    ll[k++] = ref_n * le + other * l1e;                 // X/X (or X)
    const double best = *std::max_element(ll, ll + n_pl);
    int32_t pl[3];
    for (int g = 0; g < n_pl; ++g)
      pl[g] = static_cast<int32_t>(std::min(std::nearbyint(-10.0 * (ll[g] - best)), kMaxPl));
    int32_t gq = 0;
    if (pl[0] == 0) {  // hom-ref most likely: GQ is the next smallest PL
      int32_t sorted[3];
      std::copy(pl, pl + n_pl, sorted);
      std::sort(sorted, sorted + n_pl);
      gq = static_cast<int32_t>(std::min<double>(sorted[1], kMaxGq));
    }
    out.gq[at + i] = gq;
    std::copy(pl, pl + n_pl, &out.pl[(at + i) * n_pl]);
  }
}

void reference_block_runs(int64_t start, const int32_t* gq, const int32_t* pl, size_t n_pl,
                          const int32_t* depth, size_t n, const int64_t* excluded_beg,
                          const int64_t* excluded_end, size_t n_excluded,
                          const std::vector<int>& band_floors, int64_t max_block,
                          ReferenceBlockRuns& out) {
  if (n == 0) return;
  std::vector<uint8_t> keep(n, 1);
  for (size_t k = 0; k < n_excluded; ++k) {
    // clamped before subtracting: spans may lie anywhere
    const int64_t lo = std::max(excluded_beg[k], start) - start;
    const int64_t hi = std::min(excluded_end[k], start + static_cast<int64_t>(n)) - start;
    for (int64_t i = lo; i < hi; ++i) keep[static_cast<size_t>(i)] = 0;
  }
  auto band = [&](int32_t g) {
    return std::upper_bound(band_floors.begin(), band_floors.end(), g) - band_floors.begin();
  };
  size_t run = 0;  // the current run's first position
  auto close = [&](size_t lo, size_t hi) {  // a run [lo, hi): a block when kept
    if (!keep[lo]) return;
    int64_t g = gq[lo], dmin = depth[lo], dsum = 0;
    const size_t row = out.pl_min.size();
    out.pl_min.insert(out.pl_min.end(), pl + lo * n_pl, pl + (lo + 1) * n_pl);
    for (size_t i = lo; i < hi; ++i) {
      g = std::min<int64_t>(g, gq[i]);
      dmin = std::min<int64_t>(dmin, depth[i]);
      dsum += depth[i];
      for (size_t k = 0; k < n_pl; ++k) {
        out.pl_min[row + k] = std::min<int64_t>(out.pl_min[row + k], pl[i * n_pl + k]);
      }
    }
    out.start.push_back(start + static_cast<int64_t>(lo));
    out.end.push_back(start + static_cast<int64_t>(hi));
    out.gq.push_back(g);
    out.min_dp.push_back(dmin);
    out.dp_sum.push_back(dsum);
  };
  auto close_cut = [&](size_t lo, size_t hi) {  // runs longer than max_block are cut
    if (max_block <= 0) return close(lo, hi);
    for (size_t a = lo; a < hi; a += static_cast<size_t>(max_block)) {
      close(a, std::min(hi, a + static_cast<size_t>(max_block)));
    }
  };
  auto run_band = band(gq[0]);
  for (size_t i = 1; i < n; ++i) {
    const auto b = band(gq[i]);
    if (b != run_band || keep[i] != keep[i - 1]) {
      close_cut(run, i);
      run = i;
      run_band = b;
    }
  }
  close_cut(run, n);
}

}  // namespace gms
