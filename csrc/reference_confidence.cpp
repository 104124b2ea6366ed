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
                              ReferenceConfidence& out) {
  if (ploidy != 1 && ploidy != 2) throw std::invalid_argument("ploidy must be 1 or 2");
  const int n_pl = ploidy == 2 ? 3 : 2;
  if (out.size() == 0) {
    out.start = pile.start;
    out.n_pl = n_pl;
  } else if (out.start + static_cast<int64_t>(out.size()) != pile.start || out.n_pl != n_pl) {
    throw std::logic_error("reference confidence windows must follow one another");
  }
  const double log_half = std::log10(0.5);
  const size_t n = static_cast<size_t>(pile.n);
  const size_t at = out.size();
  out.gq.resize(at + n);
  out.depth.resize(at + n);
  out.pl.resize((at + n) * n_pl);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t* c = &pile.base_counts[i * 5];
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
    const bool uncovered = ref_n + other == 0;
    for (int g = 0; g < n_pl; ++g) {
      const double v = std::min(std::nearbyint(-10.0 * (ll[g] - best)), kMaxPl);
      pl[g] = uncovered ? 0 : static_cast<int32_t>(v);
    }
    int32_t gq = 0;
    if (!uncovered && pl[0] == 0) {  // hom-ref most likely: GQ is the next smallest PL
      int32_t sorted[3];
      std::copy(pl, pl + n_pl, sorted);
      std::sort(sorted, sorted + n_pl);
      gq = static_cast<int32_t>(std::min<double>(sorted[1], kMaxGq));
    }
    out.gq[at + i] = gq;
    out.depth[at + i] = static_cast<int32_t>(pile.depth[i]);
    std::copy(pl, pl + n_pl, &out.pl[(at + i) * n_pl]);
  }
}

}  // namespace gms
