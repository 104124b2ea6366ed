// Region calling: candidate alleles from the pileup are grouped into active windows; each window's
// candidate haplotypes are scored against every overlapping read with the haplotype pair-HMM, and
// samples are genotyped over haplotype pairs (or single haplotypes when haploid).
#include "gmsaccel/caller.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <stdexcept>
#include <tuple>

#include "gmsaccel/stage_clock.hpp"

namespace gms {

namespace {

constexpr int32_t kLoadPad = 300;  // reads starting this far before a region can reach into it
constexpr int kThirdPhred = 5;  // 10 log10(3), rounded


uint8_t code_of(char c) { return base_code(c); }

double log10_sum(double a, double b) {  // log10(10^a + 10^b)
  if (a < b) std::swap(a, b);
  if (b == -std::numeric_limits<double>::infinity()) return a;
  return a + std::log10(1.0 + std::pow(10.0, b - a));
}

constexpr int32_t kMostBetter = 300;  // phred a haplotype is counted better than the best by

// 10^(-d / 10) for a cost difference d (a table for d >= 0: costs are whole phred units).
double tenth_power(int32_t d) {
  static const std::vector<double> table = [] {
    std::vector<double> t(800);
    for (size_t i = 0; i < t.size(); ++i) t[i] = std::pow(10.0, -static_cast<double>(i) / 10.0);
    return t;
  }();
  // Below 0 (a satellite's haplotype beating every own one, genotype_window): above 1, held
  // within 10^30 so that kReadsPerLog reads' products stay finite.
  if (d < 0) return std::pow(10.0, std::min(-d, kMostBetter) / 10.0);
  return d < static_cast<int32_t>(table.size()) ? table[static_cast<size_t>(d)] : 0.0;
}

struct Window {
  int64_t start = 0, end = 0;            // reference span scored
  std::vector<CandidateAllele> cands;    // sorted
};

// Candidate sets that can share a haplotype: no two overlapping reference spans.
bool compatible(const std::vector<const CandidateAllele*>& set) {
  for (size_t i = 0; i < set.size(); ++i)
    for (size_t j = i + 1; j < set.size(); ++j) {
      const auto* a = set[i];
      const auto* b = set[j];
      const int64_t ae = a->pos + static_cast<int64_t>(a->ref.size());
      const int64_t be = b->pos + static_cast<int64_t>(b->ref.size());
      if (a->pos < be && b->pos < ae) return false;
    }
  return true;
}

struct Haplotype {
  std::vector<int> cands;          // indices into window.cands
  std::vector<uint8_t> seq;        // codes of [hap_start, hap_end) with the alleles applied
  bool satellite = false;          // carries a satellite allele (CandidateAllele::satellite)
};

// The read bases whose reference projection falls in [a, b), and the reference position of the
// first of them (soft clips project beside their aligned neighbours).
struct Segment {
  int32_t q0 = 0, q1 = 0;  // query [q0, q1)
  int64_t ref0 = 0;        // projected reference position of q0
  bool ok = false;
};

Segment read_segment(const ShardRead& r, int64_t a, int64_t b) {
  Segment s;
  int64_t rp = r.pos;
  int32_t qp = 0;
  int32_t first = -1, last = -1;
  int64_t first_ref = 0;
  // Query bases q0 + j, j in [0, len), project to ref0 + j * step: take those in [a, b), in
  // closed form (the per-base walk was most of a shard's time).
  auto take_run = [&](int32_t q0, int64_t ref0, uint32_t len, bool step) {
    int64_t lo = 0, hi = len;  // j range
    if (step) {
      lo = std::max<int64_t>(0, a - ref0);
      hi = std::min<int64_t>(len, b - ref0);
    } else if (ref0 < a || ref0 >= b) {
      return;
    }
    if (lo >= hi) return;
    if (first < 0) {
      first = q0 + static_cast<int32_t>(lo);
      first_ref = ref0 + (step ? lo : 0);
    }
    last = q0 + static_cast<int32_t>(hi - 1);
  };
  for (size_t i = 0; i < r.cigar.size(); ++i) {
    const uint32_t op = r.cigar[i] & 0xf, len = r.cigar[i] >> 4;
    switch (op) {
      case BAM_CMATCH: case BAM_CEQUAL: case BAM_CDIFF:
        take_run(qp, rp, len, true);
        qp += len; rp += len; break;
      case BAM_CINS:
        take_run(qp, rp, len, false);
        qp += len; break;
      case BAM_CSOFT_CLIP:
        take_run(qp, i == 0 ? rp - static_cast<int64_t>(len) : rp, len, true);
        qp += len; break;
      case BAM_CDEL: case BAM_CREF_SKIP: rp += len; break;
      default: break;  // H, P
    }
  }
  if (first < 0) return s;
  s.q0 = first;
  s.q1 = last + 1;
  s.ref0 = first_ref;
  s.ok = true;
  return s;
}

// Tandem repeats (period 1-6) at least this long hold a window edge off: an indel in one and a
// substitution at its far end differ only past that end.
int64_t shortest_tract(int period) { return std::max(6, 3 * period); }
constexpr int64_t kMaxTractStretch = 100;  // an edge moves at most this far (reads loaded cover it)

// Whether ref[i] repeats p bases on (a run of such i in [a, c) is a tract [a, c + p)).
bool periodic_at(const uint8_t* ref, int64_t len, int64_t i, int p) {
  return i >= 0 && i + p < len && ref[i] < 4 && ref[i] == ref[i + p];
}

// The tandem repeat tract [first, last) of period p holding position m (within
// kMaxTractStretch of it), if there is one at least shortest_tract(p) long.
bool tract_at(const uint8_t* ref, int64_t len, int64_t m, int p, int64_t& first, int64_t& last) {
  auto periodic = [&](int64_t i) { return periodic_at(ref, len, i, p); };
  // m lies in the run through m - p, or in the one through m (they are one run when both are
  // periodic); the longer-reaching one that is long enough counts.
  bool found = false;
  for (const int64_t i0 : {m - p, m}) {
    if (!periodic(i0)) continue;
    int64_t a = i0, c = i0 + 1;
    while (m - a < kMaxTractStretch && periodic(a - 1)) --a;
    while (c - m < kMaxTractStretch && periodic(c)) ++c;
    if (c + p - a >= shortest_tract(p) && (!found || c + p > last)) {
      first = a;
      last = c + p;
      found = true;
    }
  }
  return found;
}

// Calls f(first, last) for every tract (tract_at, any period 1-6) holding a base of [lo, hi].
template <class F>
void for_each_tract_near(const uint8_t* ref, int64_t len, int64_t lo, int64_t hi, F&& f) {
  int64_t first, last;
  for (int64_t m = std::max<int64_t>(0, lo); m <= hi && m < len; ++m)
    for (int p = 1; p <= 6; ++p)
      if (tract_at(ref, len, m, p, first, last)) f(first, last);
}

// Where an indel's window must end so that no edge falls in or near a tandem repeat tract:
// `padding` bases past `reach`, or half the padding past every tract holding a base within half
// the padding of that edge. A window ending inside a homopolymer scores an insertion at its
// start and a substitution at the window's edge alike (the sequences differ only beyond it): a
// false SNV and a missed indel. Never falls as reach grows: a tract left behind ends before
// reach + padding anyway.
int64_t end_past_tracts(const uint8_t* ref, int64_t len, int64_t reach, int padding) {
  const int64_t e = std::min(len, reach + padding);
  int64_t out = e;
  for_each_tract_near(ref, len, e - padding / 2, e, [&](int64_t, int64_t last) {
    out = std::max(out, std::min(len, last + padding / 2));
  });
  return out;
}

// The same on the left: where an indel's window must start.
int64_t start_before_tracts(const uint8_t* ref, int64_t len, int64_t pos, int padding) {
  const int64_t s = std::max<int64_t>(0, pos - padding);
  int64_t out = s;
  for_each_tract_near(ref, len, s, s + padding / 2, [&](int64_t first, int64_t) {
    out = std::min(out, std::max<int64_t>(0, first - padding / 2));
  });
  return out;
}

// A unit added to or removed from a long tandem repeat: reads across it are often aligned
// without a gap, the repeat shifted one unit, with mismatches where its imperfections and its
// far end land. Those mismatches are the only candidates the pileup gives; so for every
// substitution in or beside a run of period 2-6 (one tract_at follows to both ends, with no
// indel candidate near), the run gains the candidates of one unit inserted and one unit
// deleted at its start (where normalise() puts them). The haplotype costs then judge them like
// any other candidate.
void add_unit_changes(std::vector<CandidateAllele>& cands, const uint8_t* ref, int64_t len) {
  // Where the aligner did write an indel into a repeat, it is among the candidates already (and
  // more would only give a second way to explain the same reads): runs holding or touching one
  // are left alone.
  std::vector<int64_t> indel_at;
  for (const CandidateAllele& c : cands)
    if (c.ref.size() != c.alt.size()) indel_at.push_back(c.pos);
  std::sort(indel_at.begin(), indel_at.end());
  auto indel_within = [&](int64_t a, int64_t b) {  // any indel candidate at [a, b]
    auto it = std::lower_bound(indel_at.begin(), indel_at.end(), a);
    return it != indel_at.end() && *it <= b;
  };
  std::vector<CandidateAllele> extra;
  const size_t n = cands.size();
  for (size_t i = 0; i < n; ++i) {
    const CandidateAllele& c = cands[i];
    if (c.ref.size() != 1 || c.alt.size() != 1) continue;
    for (int p = 2; p <= 6; ++p) {
      // A run tract_at cut short (longer than it walks) is left alone: its start, where the
      // candidates would have to be, is out of sight.
      std::vector<std::pair<int64_t, int64_t>> runs;  // [first, last) of period p near c
      for (const int64_t probe : {c.pos - p, c.pos, c.pos + p}) {  // runs through m-2p .. m+p
        int64_t first, last;
        if (probe >= 0 && tract_at(ref, len, probe, p, first, last) && first >= 1 &&
            !periodic_at(ref, len, first - 1, p) && !periodic_at(ref, len, last - p, p))
          runs.emplace_back(first, last);
      }
      if (runs.empty()) continue;
      int64_t lo = runs[0].first, hi = runs[0].second;
      for (const auto& [first, last] : runs) {
        lo = std::min(lo, first);
        hi = std::max(hi, last);
      }
      if (indel_within(lo - p - 1, hi + p)) continue;
      for (const auto& [first, last] : runs) {
        const int64_t anchor = first - 1;
        if (ref[anchor] > 3) continue;
        std::string unit;
        for (int64_t k = first; k < first + p && k < len && ref[k] <= 3; ++k)
          unit.push_back(base_letter(ref[k]));
        if (static_cast<int>(unit.size()) != p) continue;
        const std::string base(1, base_letter(ref[anchor]));
        CandidateAllele ins, del;
        ins.pos = del.pos = anchor;
        ins.ref = base;
        ins.alt = base + unit;
        del.ref = base + unit;
        del.alt = base;
        extra.push_back(std::move(ins));
        extra.push_back(std::move(del));
      }
    }
  }
  cands.insert(cands.end(), extra.begin(), extra.end());
}

// The unit an anchored indel inserts or deletes (its length; 0 for other alleles).
int64_t indel_unit(const CandidateAllele& c) {
  if (c.ref.size() == c.alt.size() || c.ref.empty() || c.alt.empty() || c.ref[0] != c.alt[0])
    return 0;
  return static_cast<int64_t>(std::max(c.ref.size(), c.alt.size())) - 1;
}

// The bases an indel inserts or deletes; 0 for a substitution.
int64_t indel_length(const CandidateAllele& c) {
  return std::abs(static_cast<int64_t>(c.alt.size()) - static_cast<int64_t>(c.ref.size()));
}

// How far left a window must start for an indel: its length before it, past tracts there
// (INT64_MAX for a substitution, which asks nothing of its own).
int64_t indel_start(const CandidateAllele& c, const uint8_t* ref, int64_t len, int pad) {
  const int64_t unit = indel_unit(c);
  return unit ? start_before_tracts(ref, len, c.pos - unit, pad)
              : std::numeric_limits<int64_t>::max();
}

// How far right a candidate's window must reach (its end is this plus the padding). An indel
// inserts or deletes a unit U: the window reaches its length past it at least, and where the
// reference after it goes on repeating U, even imperfectly (a mismatch per 8 bases allowed),
// past that stretch too: the indel and a substitution at each imperfection look alike until
// the stretch ends.
int64_t candidate_reach(const CandidateAllele& c, const uint8_t* ref, int64_t len,
                        int padding) {
  const int64_t end = c.pos + static_cast<int64_t>(c.ref.size());
  const int64_t unit = indel_unit(c);
  if (unit == 0) return end;
  const std::string& longer = c.ref.size() > c.alt.size() ? c.ref : c.alt;
  const int64_t q = c.pos + 1;  // the unit's first base (deletion) or the base after it
  int64_t matched = 0, misses = 0;
  for (int64_t j = 0; j < kMaxTractStretch && q + j < len; ++j) {
    if (ref[q + j] == base_code(longer[1 + j % unit])) {
      matched = j + 1;
    } else if (++misses * 8 > j) {
      break;
    }
  }
  // (A read aligned without a long indel disagrees with the reference for about the indel's
  // length beside it: covered, its mismatches meet the indel's haplotype instead of standing as
  // substitutions of their own.) Then past any tract the window's edge would fall in.
  const int64_t reach = std::max({end, q + matched, q + unit});
  return end_past_tracts(ref, len, reach, padding) - padding;
}

// Whether candidate c joins a window of candidates reaching `reach` (candidate_reach): when it,
// or the indel's length before it, comes at or before the window's end.
bool joins_window(const CandidateAllele& c, int64_t reach, int64_t len, int padding) {
  return c.pos - indel_unit(c) <= std::min(len, reach + padding);
}

// A gapless chain of candidates (a divergent stretch) can run on for thousands of bases, past
// what a shard sees. Where a chain has gone on for kLongChain bases, it is cut at the first
// candidate past every multiple of kChainGrid: fixed places, so that a window's candidates never
// depend on where the shard began. Every cut is decided from the candidates at most
// 2 * (kLongChain + kChainGrid) bases before it, plus an indel's length before the candidate
// (joins_window) and one candidate's reach (at most its length, kMaxTractStretch of repeat
// after it and the tracts at its window's edge), which kCandidatePad covers.
constexpr int64_t kLongChain = 128;
constexpr int64_t kChainGrid = 128;
static_assert(kCandidatePad >= 2 * (kLongChain + kChainGrid) + 2 * kMaxIndelLength +
                                   2 * kMaxTractStretch + 100,
              "a shard must see the candidates its first window's cuts are decided from");

// Splits sorted candidates into windows of nearby candidates. A window ends before a candidate
// that no earlier candidate reaches (joins_window over the running reach; reach_of[i] is
// candidate i's candidate_reach), before the first candidate past a grid line in a long chain,
// and after opt.max_window_candidates (alleles at one position stay together).
std::vector<Window> make_windows(const std::vector<CandidateAllele>& cands,
                                 const std::vector<int64_t>& reach_of, const CallerOptions& opt,
                                 const uint8_t* ref, int64_t contig_length) {
  std::vector<Window> out;
  const int pad = opt.window_padding;
  int64_t reach = 0, chain_start = 0;
  int in_window = 0;
  for (size_t i = 0; i < cands.size(); ++i) {
    const int64_t pos = cands[i].pos;
    bool cut = i == 0 || !joins_window(cands[i], reach, contig_length, pad);
    if (cut) {
      chain_start = pos;
    } else if (pos != cands[i - 1].pos) {
      const int64_t grid = pos / kChainGrid * kChainGrid;
      cut = (cands[i - 1].pos < grid && grid - kLongChain >= chain_start) ||
            in_window >= opt.max_window_candidates;
    }
    if (cut) {
      out.emplace_back().end = reach_of[i];  // end: the furthest reach of its candidates
      in_window = 0;
    }
    Window& w = out.back();
    w.cands.push_back(cands[i]);
    w.end = std::max(w.end, reach_of[i]);
    ++in_window;
    reach = std::max(reach, reach_of[i]);
  }
  for (Window& w : out) {
    // Every window's edges stay out of tracts too (a substitution inside a homopolymer, in
    // reads that disagree on its length, is no better judged from half of it). That widens the
    // window only, never what joins it: windows of substitutions in a long tract stay apart.
    w.start = start_before_tracts(ref, contig_length, w.cands.front().pos, pad);
    for (const CandidateAllele& c : w.cands)
      w.start = std::min(w.start, indel_start(c, ref, contig_length, pad));
    w.end = end_past_tracts(ref, contig_length, w.end, pad);
  }
  return out;
}

// Puts each satellite allele (sorted) in the window that holds its whole span and band (its
// window edges and indel length within the window's own), which it then leaves as it was; the
// rest get windows of their own, made from them alone. Windows stay sorted by start.
void add_satellites(std::vector<Window>& windows, std::vector<CandidateAllele>& satellites,
                    const CallerOptions& opt, const uint8_t* ref, int64_t len) {
  if (satellites.empty()) return;
  std::sort(satellites.begin(), satellites.end());
  satellites.erase(std::unique(satellites.begin(), satellites.end()), satellites.end());
  const int pad = opt.window_padding;
  std::vector<CandidateAllele> lone;
  std::vector<int64_t> lone_reach;
  for (CandidateAllele& s : satellites) {
    const int64_t reach = candidate_reach(s, ref, len, pad);
    const int64_t lo = std::min(start_before_tracts(ref, len, s.pos, pad),
                                indel_start(s, ref, len, pad));
    const int64_t hi = end_past_tracts(ref, len, reach, pad);
    // the last window starting at or before s, then the few before it (padding overlaps)
    auto after = std::upper_bound(windows.begin(), windows.end(), s.pos,
                                  [](int64_t p, const Window& w) { return p < w.start; });
    Window* home = nullptr;
    for (auto it = after; it != windows.begin() && std::distance(it, after) < 4;) {
      --it;
      int64_t widest = 0;
      for (const CandidateAllele& c : it->cands) widest = std::max(widest, indel_length(c));
      if (it->start <= lo && hi <= it->end && indel_length(s) <= widest) home = &*it;
    }
    if (home) {
      home->cands.insert(std::upper_bound(home->cands.begin(), home->cands.end(), s), s);
    } else {
      lone.push_back(s);
      lone_reach.push_back(reach);
    }
  }
  if (lone.empty()) return;
  std::vector<Window> more = make_windows(lone, lone_reach, opt, ref, len);
  windows.insert(windows.end(), std::make_move_iterator(more.begin()),
                 std::make_move_iterator(more.end()));
  std::stable_sort(windows.begin(), windows.end(),
                   [](const Window& a, const Window& b) { return a.start < b.start; });
}

// A window's haplotypes: every compatible subset of its candidates, so that a haplotype
// carrying all of them is there too (dense variants put five or six on one haplotype); past
// kAllSubsets candidates (several alleles at one position beyond the window's cap), the
// reference, each candidate alone and each pair.
constexpr int kAllSubsets = 6;

std::vector<Haplotype> make_haplotypes(const Window& w, const uint8_t* ref, int64_t hs,
                                       int64_t he) {
  // The subsets are of the reads' own candidates; each satellite allele rides alone.
  std::vector<int> own, satellites;
  for (int i = 0; i < static_cast<int>(w.cands.size()); ++i)
    (w.cands[static_cast<size_t>(i)].satellite ? satellites : own).push_back(i);
  const int n = static_cast<int>(own.size());
  std::vector<std::vector<int>> sets;
  if (n <= kAllSubsets) {
    for (int mask = 0; mask < (1 << n); ++mask) {
      std::vector<int> s;
      for (int i = 0; i < n; ++i) if (mask >> i & 1) s.push_back(own[static_cast<size_t>(i)]);
      sets.push_back(s);
    }
  } else {
    sets.push_back({});
    for (int i = 0; i < n; ++i) sets.push_back({own[static_cast<size_t>(i)]});
    for (int i = 0; i < n; ++i)
      for (int j = i + 1; j < n; ++j)
        sets.push_back({own[static_cast<size_t>(i)], own[static_cast<size_t>(j)]});
  }
  for (int s : satellites) sets.push_back({s});
  std::vector<Haplotype> haps;
  for (auto& s : sets) {
    std::vector<const CandidateAllele*> ptrs;
    for (int i : s) ptrs.push_back(&w.cands[i]);
    if (!compatible(ptrs)) continue;
    Haplotype h;
    h.cands = s;
    for (int i : s) h.satellite = h.satellite || w.cands[static_cast<size_t>(i)].satellite;
    int64_t p = hs;
    for (int i : s) {  // s is in candidate (position) order
      const CandidateAllele& c = w.cands[i];
      for (; p < c.pos; ++p) h.seq.push_back(ref[p]);
      for (char ch : c.alt) h.seq.push_back(code_of(ch));
      p = c.pos + static_cast<int64_t>(c.ref.size());
    }
    for (; p < he; ++p) h.seq.push_back(ref[p]);
    haps.push_back(std::move(h));
  }
  return haps;
}

// Haplotype coordinate of reference position p (alleles before p shift it).
int64_t hap_offset(const Haplotype& h, const Window& w, int64_t hs, int64_t p) {
  int64_t off = p - hs;
  for (int i : h.cands) {
    const CandidateAllele& c = w.cands[i];
    if (c.pos + static_cast<int64_t>(c.ref.size()) <= p)
      off += static_cast<int64_t>(c.alt.size()) - static_cast<int64_t>(c.ref.size());
  }
  return off;
}

struct SampleReads {
  std::vector<ShardRead> reads;
  ReadStore store;  // the reads' arrays
};

// One read's segment in a window; its costs are costs[job0 .. job0 + number of haplotypes).
struct ReadEval {
  size_t sample;
  const ShardRead* read;
  Segment seg;
  size_t job0;  // first job index in the batch (one job per haplotype)
};

struct WindowWork {
  const Window* w = nullptr;
  std::vector<Haplotype> haps;
  std::vector<ReadEval> evals;
};

// Jobs per costing batch: ~40 MB of haplotype windows at most, enough work for a GPU launch.
constexpr size_t kBatchJobs = 200000;

// Each read's likelihood under each haplotype relative to its best haplotype, mapping quality
// folded in (a read that may be misplaced explains every haplotype about as well as its best
// one): lin = (1 - pm) 10^(-(cost - best cost) / 10) + pm, and the best's log10 likelihood,
// -best cost / 10, in top. Linear, so that genotype units sum without logs.
// (The best is taken over the haplotypes of the reads' own candidates: satellite alleles'
// haplotypes then change nothing for the records without one.)
void relative_likelihoods(const std::vector<Haplotype>& haps, const std::vector<ReadEval>& evals,
                          const int32_t* costs, std::vector<double>& lin,
                          std::vector<double>& top) {
  const size_t nh = haps.size();
  lin.resize(evals.size() * nh);
  top.resize(evals.size());
  for (size_t e = 0; e < evals.size(); ++e) {
    const int32_t* c = costs + evals[e].job0;
    int32_t cmin = kCostInf;
    for (size_t h = 0; h < nh; ++h)
      if (!haps[h].satellite) cmin = std::min(cmin, c[h]);
    const double pm =
        std::max(std::pow(10.0, -static_cast<double>(evals[e].read->mapq) / 10.0), 1e-30);
    const double placed = std::max(1.0 - pm, 1e-30);
    // (a satellite's haplotype may beat every own one: a read carrying the satellite allele)
    for (size_t h = 0; h < nh; ++h) lin[e * nh + h] = placed * tenth_power(c[h] - cmin) + pm;
    top[e] = -cmin / 10.0;
  }
}

// A record's REF, ALTs and ID from the kept alleles (keep[0] = 0, the reference; allele a is
// candidate c0 + a - 1). REF is the longest of the kept alleles' (an allele dropped, such as a
// unit deletion added beside a substitution, must not pad the others' representation).
void set_alleles(VariantRecord& rec, const Window& w, size_t c0, const std::vector<int>& keep) {
  std::string rec_ref;
  for (size_t k = 1; k < keep.size(); ++k) {
    const CandidateAllele& c = w.cands[c0 + keep[k] - 1];
    if (c.ref.size() > rec_ref.size()) rec_ref = c.ref;
  }
  rec.ref = rec_ref;
  for (size_t k = 1; k < keep.size(); ++k) {
    const CandidateAllele& c = w.cands[c0 + keep[k] - 1];
    rec.alts.push_back(c.alt + rec_ref.substr(c.ref.size()));
    if (!c.id.empty() && (";" + rec.id + ";").find(";" + c.id + ";") == std::string::npos) {
      rec.id += (rec.id.empty() ? "" : ";") + c.id;
    }
  }
}

// Genotypes one window from its reads' costs against its haplotypes (costs[ev.job0 + h]) and
// appends its records.
void genotype_window(const Window& w, const std::vector<Haplotype>& haps,
                     const std::vector<ReadEval>& evals, const int32_t* costs, size_t ns,
                     const std::vector<int>& sample_ploidy, const CallerOptions& opt,
                     double log_het_snv,
                     double log_het_indel, std::vector<VariantRecord>& out) {
  const size_t nh = haps.size();
  std::vector<double> lin, top;
  relative_likelihoods(haps, evals, costs, lin, top);

  // Units are pairs when any sample is diploid: a haploid sample then weighs the pairs of a
  // haplotype with itself (each read's likelihood 0.5 (l + l) = l), a sample of ploidy 0 none.
  const int ploidy = *std::max_element(sample_ploidy.begin(), sample_ploidy.end()) == 2 ? 2 : 1;
  // Prior of a haplotype pair (or, for sample ploidy p = 1, of haplotype i): each candidate
  // allele carried costs its heterozygosity.
  auto prior = [&](size_t i, size_t j, int p_sample) {
    double p = 0;
    for (size_t c = 0; c < w.cands.size(); ++c) {
      int copies = 0;
      for (int x : haps[i].cands) copies += x == static_cast<int>(c);
      if (p_sample == 2) for (int x : haps[j].cands) copies += x == static_cast<int>(c);
      if (copies == 0) continue;
      const bool indel = w.cands[c].ref.size() != w.cands[c].alt.size();
      const double lh = indel ? log_het_indel : log_het_snv;
      p += copies == 1 ? lh : lh - std::log10(2.0);
    }
    return p;
  };
  // genotype units: pairs (i <= j) for diploid, singles for haploid
  std::vector<std::pair<size_t, size_t>> units;
  for (size_t i = 0; i < nh; ++i)
    for (size_t j = (ploidy == 2 ? i : i); j < (ploidy == 2 ? nh : i + 1); ++j)
      units.emplace_back(i, j);
  // Units without a satellite allele's haplotype: the only ones a record without one weighs.
  std::vector<uint8_t> own_unit(units.size());
  for (size_t u = 0; u < units.size(); ++u)
    own_unit[u] = !haps[units[u].first].satellite && !haps[units[u].second].satellite;
  // per sample: log10 likelihood and log10 posterior (unnormalised) of each unit
  std::vector<std::vector<double>> unit_ll(ns, std::vector<double>(units.size(), 0.0));
  std::vector<std::vector<double>> unit_post(ns, std::vector<double>(units.size(), 0.0));
  {
    // Products of the reads' linear likelihoods (each factor at least 1e-30, the floor of pm):
    // a log per unit every kReadsPerLog reads of a sample instead of a log and a power per read
    // and unit (windows of 64 haplotypes have 2,080 pairs).
    constexpr int kReadsPerLog = 8;  // products stay above 1e-240
    std::vector<std::vector<double>> product(ns, std::vector<double>(units.size(), 1.0));
    std::vector<int> pending(ns, 0);
    std::vector<double> top_sum(ns, 0.0);  // every unit's log10 likelihood has it added
    auto flush = [&](size_t s) {
      for (size_t u = 0; u < units.size(); ++u) {
        unit_ll[s][u] += std::log10(product[s][u]);
        product[s][u] = 1.0;
      }
      pending[s] = 0;
    };
    for (size_t e = 0; e < evals.size(); ++e) {
      const size_t s = evals[e].sample;
      const double* lh = lin.data() + e * nh;
      std::vector<double>& prod = product[s];
      if (ploidy == 2) {
        for (size_t u = 0; u < units.size(); ++u)
          prod[u] *= 0.5 * (lh[units[u].first] + lh[units[u].second]);
      } else {
        for (size_t u = 0; u < units.size(); ++u) prod[u] *= lh[units[u].first];
      }
      top_sum[s] += top[e];
      if (++pending[s] == kReadsPerLog) flush(s);
    }
    for (size_t s = 0; s < ns; ++s) {
      flush(s);
      for (double& v : unit_ll[s]) v += top_sum[s];
    }
  }
  // Whether sample s weighs unit u at all (its ploidy).
  auto fits = [&](size_t s, size_t u) {
    return sample_ploidy[s] == 2 || (sample_ploidy[s] == 1 && units[u].first == units[u].second);
  };
  for (size_t s = 0; s < ns; ++s)
    for (size_t u = 0; u < units.size(); ++u)
      unit_post[s][u] = fits(s, u) ? unit_ll[s][u] + prior(units[u].first, units[u].second,
                                                          sample_ploidy[s])
                                   : -std::numeric_limits<double>::infinity();

  // One record per candidate position (alleles at the same position merge).
  for (size_t c0 = 0; c0 < w.cands.size();) {
    size_t c1 = c0;
    while (c1 < w.cands.size() && w.cands[c1].pos == w.cands[c0].pos) ++c1;
    const int64_t pos = w.cands[c0].pos;
    // allele index of candidate c in this record: c - c0 + 1
    auto allele_of = [&](size_t h) {
      for (int x : haps[h].cands)
        if (static_cast<size_t>(x) >= c0 && static_cast<size_t>(x) < c1)
          return static_cast<int>(x - c0 + 1);
      return 0;
    };
    const int n_alleles = static_cast<int>(c1 - c0) + 1;
    bool given = false, with_satellite = false;
    for (size_t c = c0; c < c1; ++c) {
      given = given || w.cands[c].given;
      with_satellite = with_satellite || w.cands[c].satellite;
    }
    auto weighed = [&](size_t u) { return with_satellite || own_unit[u]; };
    // For a given allele: whether haplotype h deletes pos with an earlier candidate. Such a
    // haplotype has no base here: the genotype leaves it out (missing) rather than count it
    // as REF. (Per haplotype once, not per read.)
    std::vector<uint8_t> deletes_pos(given ? nh : 0, 0);
    for (size_t h = 0; h < deletes_pos.size(); ++h)
      for (int x : haps[h].cands) {
        const CandidateAllele& c = w.cands[static_cast<size_t>(x)];
        deletes_pos[h] = deletes_pos[h] || (c.pos < pos && c.alt.size() < c.ref.size() &&
                                            c.pos + static_cast<int64_t>(c.ref.size()) > pos);
      }
    VariantRecord rec;
    rec.pos = pos;
    double log_all_ref = 0;  // log10 P(every sample hom-ref here)
    std::vector<int> used(n_alleles, 0);
    used[0] = 1;
    for (size_t s = 0; s < ns; ++s) {
      SampleCall sc;
      const int sp = sample_ploidy[s];
      if (sp == 0) {  // no copy here (chrY of a female): no genotype, no evidence
        sc.gt = {-1};
        rec.samples.push_back(std::move(sc));
        continue;
      }
      // posterior over units, normalised
      double norm = -std::numeric_limits<double>::infinity();
      for (size_t u = 0; u < units.size(); ++u)
        if (weighed(u) && fits(s, u)) norm = log10_sum(norm, unit_post[s][u]);
      double ref_mass = -std::numeric_limits<double>::infinity();
      size_t best = 0;  // (unit 0, the reference's, is always weighed)
      for (size_t u = 0; u < units.size(); ++u) {
        if (!weighed(u) || !fits(s, u)) continue;
        if (unit_post[s][u] > unit_post[s][best]) best = u;
        const bool is_ref = allele_of(units[u].first) == 0 &&
                            (sp == 1 || allele_of(units[u].second) == 0);
        if (is_ref) ref_mass = log10_sum(ref_mass, unit_post[s][u]);
      }
      log_all_ref += ref_mass - norm;
      int a1 = allele_of(units[best].first), a2 = sp == 2 ? allele_of(units[best].second) : -1;
      if (given && deletes_pos[units[best].first]) a1 = -1;
      if (given && sp == 2 && deletes_pos[units[best].second]) a2 = -1;
      if (sp == 2 && a2 >= 0 && a1 > a2) std::swap(a1, a2);
      if (sp == 2 && a1 < 0) std::swap(a1, a2);  // a missing allele goes last
      sc.gt = sp == 2 ? std::vector<int>{a1, a2} : std::vector<int>{a1};
      for (int a : sc.gt) if (a > 0) used[a] = 1;
      rec.samples.push_back(std::move(sc));
    }
    // keep alleles some sample carries, and given ones
    bool carried = false;
    for (size_t c = c0; c < c1; ++c) {
      carried = carried || used[c - c0 + 1];
      if (w.cands[c].given) used[c - c0 + 1] = 1;
    }
    std::vector<int> keep;
    for (int a = 0; a < n_alleles; ++a) if (used[a]) keep.push_back(a);
    if (keep.size() < 2 || (opt.given_only && !given)) { c0 = c1; continue; }
    set_alleles(rec, w, c0, keep);
    std::vector<int> remap(n_alleles, -1);
    for (size_t k = 0; k < keep.size(); ++k) remap[keep[k]] = static_cast<int>(k);
    // (std::max(0.0, -0.0) is +0: a QUAL is never written "-0")
    rec.qual = std::max(0.0, std::min(99999.0, -10.0 * log_all_ref));
    if (!given && !(rec.qual >= opt.min_qual)) { c0 = c1; continue; }
    if (carried && rec.qual < opt.low_qual) rec.filters.push_back("LowQual");
    // per sample PL, GQ, AD, DP over kept alleles
    double mq_sq = 0;
    int mq_n = 0;
    for (size_t s = 0; s < ns; ++s) {
      SampleCall& sc = rec.samples[s];
      const int sp = sample_ploidy[s];
      for (int& a : sc.gt) a = a >= 0 ? remap[a] : -1;
      const int na = static_cast<int>(keep.size());
      // genotype index in VCF order: (j, k) k <= j -> j(j+1)/2 + k; haploid: allele
      const int ng = sp == 2 ? na * (na + 1) / 2 : sp == 1 ? na : 0;
      std::vector<double> gl(ng, -std::numeric_limits<double>::infinity());
      for (size_t u = 0; u < units.size() && sp > 0; ++u) {
        if (!weighed(u) || !fits(s, u)) continue;
        int x = remap[allele_of(units[u].first)];
        int y = sp == 2 ? remap[allele_of(units[u].second)] : 0;
        if (x < 0 || y < 0) continue;  // carries a dropped allele
        int g;
        if (sp == 2) { if (x < y) std::swap(x, y); g = x * (x + 1) / 2 + y; }
        else g = x;
        gl[g] = std::max(gl[g], unit_ll[s][u]);
      }
      double top = -std::numeric_limits<double>::infinity();
      for (double v : gl) top = std::max(top, v);
      sc.pl.clear();
      for (double v : gl) {
        const double p = std::isinf(v) ? 255.0 : std::min(255.0, -10.0 * (v - top));
        sc.pl.push_back(static_cast<int>(std::lround(p)));
      }
      const bool missing = std::any_of(sc.gt.begin(), sc.gt.end(), [](int a) { return a < 0; });
      if (missing) {  // (a given allele's site deleted on a called haplotype)
        sc.pl.clear();
        sc.gq = 0;
      } else {
        int g_called;
        if (sp == 2) {
          int x = sc.gt[0], y = sc.gt[1];
          if (x < y) std::swap(x, y);
          g_called = x * (x + 1) / 2 + y;
        } else {
          g_called = sc.gt[0];
        }
        int gq = 99;
        for (int g = 0; g < ng; ++g)
          if (g != g_called) gq = std::min(gq, sc.pl[g] - sc.pl[g_called]);
        sc.gq = std::clamp(gq, 0, 99);
      }
      // AD: reads whose best haplotype clearly carries one allele here; DP: reads spanning pos
      sc.ad.assign(keep.size(), 0);
      for (size_t e = 0; e < evals.size(); ++e) {
        if (evals[e].sample != s) continue;
        const ShardRead& r = *evals[e].read;
        if (r.pos > pos || r.end <= pos) continue;
        ++sc.dp;
        mq_sq += static_cast<double>(r.mapq) * r.mapq;
        ++mq_n;
        // (for a given allele, haplotypes deleting pos are an allele of their own, uncounted)
        std::vector<int32_t> best_cost(n_alleles + 1, kCostInf);
        for (size_t h = 0; h < nh; ++h) {
          if (haps[h].satellite && !with_satellite) continue;
          const int a = given && deletes_pos[h] ? n_alleles : allele_of(h);
          best_cost[a] = std::min(best_cost[a], costs[evals[e].job0 + h]);
        }
        int ba = 0;
        for (int a = 1; a <= n_alleles; ++a) if (best_cost[a] < best_cost[ba]) ba = a;
        int32_t second = kCostInf;
        for (int a = 0; a <= n_alleles; ++a) if (a != ba) second = std::min(second, best_cost[a]);
        if (second - best_cost[ba] >= 3 && ba < n_alleles && remap[ba] >= 0) ++sc.ad[remap[ba]];
      }
      rec.dp += sc.dp;
      // A given allele nothing was seen of (no read spans it, or those that do tell the
      // genotypes apart not at all: every PL 0): no genotype, rather than the prior's 0/0.
      const bool uninformed =
          !sc.pl.empty() && std::all_of(sc.pl.begin(), sc.pl.end(), [](int p) { return p == 0; });
      if (given && (sc.dp == 0 || uninformed)) {
        std::fill(sc.gt.begin(), sc.gt.end(), -1);
        std::fill(sc.pl.begin(), sc.pl.end(), 0);
        sc.gq = 0;
      }
    }
    rec.mq = mq_n ? static_cast<int>(std::lround(std::sqrt(mq_sq / mq_n))) : 0;
    if (rec.dp == 0) rec.qual = 0;  // a given allele no read reaches: the prior alone, no QUAL
    out.push_back(std::move(rec));
    c0 = c1;
  }
}

// With a germline resource: the allele's population frequency (opt.resource, else
// af_not_in_resource), where it comes from (allele_origins over the site's reads x k
// likelihoods), rec's POPAF, GERMQ and CONTQ, and its filters germline and contamination.
void weigh_origins(const CallerOptions& opt, const CandidateAllele& cand, const double* tumour,
                   size_t n_tumour, const double* normal, size_t n_normal, size_t k,
                   size_t allele, VariantRecord& rec) {
  const auto known = std::lower_bound(
      opt.resource.begin(), opt.resource.end(), cand,
      [](const std::pair<CandidateAllele, double>& e, const CandidateAllele& c) {
        return e.first < c;
      });
  // A resource's 0 (gnomAD's sites no one carries) or 1 would make germline impossible:
  // frequencies are taken within [af_not_in_resource, 1 - af_not_in_resource].
  const double floor = opt.somatic.af_not_in_resource;
  const double popaf = known != opt.resource.end() && known->first == cand
                           ? std::clamp(known->second, floor, 1 - floor)
                           : floor;
  const AlleleOrigins origin =
      allele_origins(tumour, n_tumour, normal, n_normal, k, allele, popaf,
                     opt.somatic.log10_somatic_prior, opt.somatic.contamination,
                     opt.somatic.tumour_in_normal);
  rec.popaf = {-std::log10(popaf) + 0.0};  // (as Mutect2 writes it: -log10)
  // -10 log10 P, capped where P is below 1e-99; the filters read the values written
  auto phred = [](double prob) {
    return std::min(990.0, -10 * std::log10(std::max(prob, 1e-99))) + 0.0;
  };
  const double germq = phred(origin.germline);
  rec.germq = {germq};
  if (germq < -10 * std::log10(opt.somatic.max_germline_posterior) &&
      std::find(rec.filters.begin(), rec.filters.end(), "germline") == rec.filters.end())
    rec.filters.push_back("germline");
  if (opt.somatic.contamination > 0) {
    const double contq = phred(origin.contamination);
    rec.contq = {contq};
    if (contq < -10 * std::log10(opt.somatic.max_contamination_posterior))
      rec.filters.push_back("contamination");
  }
}

// Somatic records of one window, one per allele: at each candidate position the haplotypes are
// grouped by what they hold there (the reference, each candidate, or a deletion from before
// that covers the position), each read's likelihood under a group is its best haplotype's, and
// the reads of each sample are weighed as a mixture of the groups (score_allele). Only
// haplotypes with a counterpart in every group are compared (below): a group with more
// backgrounds to choose from would explain reads better for that alone. Alleles with
// TLOD >= min_tlod are written.
void somatic_window(const Window& w, const std::vector<Haplotype>& haps,
                    const std::vector<ReadEval>& evals, const int32_t* costs, size_t ns,
                    const CallerOptions& opt, std::vector<VariantRecord>& out) {
  const size_t nh = haps.size();
  std::vector<double> lin, top;
  relative_likelihoods(haps, evals, costs, lin, top);
  const size_t tumour = static_cast<size_t>(opt.somatic_tumour);
  const bool has_normal = opt.somatic_normal >= 0;
  const size_t normal = has_normal ? static_cast<size_t>(opt.somatic_normal) : ns;
  std::map<std::vector<int>, size_t> hap_of;  // a haplotype by its candidates
  for (size_t h = 0; h < nh; ++h) hap_of.emplace(haps[h].cands, h);
  for (size_t c0 = 0; c0 < w.cands.size();) {
    size_t c1 = c0;
    while (c1 < w.cands.size() && w.cands[c1].pos == w.cands[c0].pos) ++c1;
    const int64_t pos = w.cands[c0].pos;
    const size_t n_alleles = c1 - c0 + 1;  // the reference and each candidate here
    const size_t covered = n_alleles;      // the group of haplotypes deleting pos
    // Each haplotype's group: the allele it holds here, 0 for the reference, `covered` where
    // an earlier candidate deletes pos.
    std::vector<size_t> group(nh, 0);
    for (size_t h = 0; h < nh; ++h)
      for (int x : haps[h].cands) {
        const auto ux = static_cast<size_t>(x);
        const CandidateAllele& c = w.cands[ux];
        if (ux >= c0 && ux < c1)
          group[h] = ux - c0 + 1;
        else if (c.pos < pos && c.pos + static_cast<int64_t>(c.ref.size()) > pos)
          group[h] = covered;
      }
    // Each haplotype holding the reference here is compared with its counterpart for every
    // allele: the same other candidates, less those the allele overlaps (a deletion here
    // removes the candidates inside it), plus the allele. One without a counterpart for some
    // allele (a window past kAllSubsets lacks combinations) is left out of the comparison.
    std::vector<std::vector<size_t>> members(n_alleles + 1);
    std::vector<size_t> counterpart(n_alleles);
    std::vector<int> key;
    for (size_t h = 0; h < nh; ++h) {
      if (group[h] != 0) continue;
      counterpart[0] = h;
      bool complete = true;
      for (size_t a = 1; a < n_alleles && complete; ++a) {
        const auto ca = static_cast<int>(c0 + a - 1);
        const CandidateAllele& allele = w.cands[static_cast<size_t>(ca)];
        key.clear();
        for (int x : haps[h].cands)
          if (compatible({&w.cands[static_cast<size_t>(x)], &allele})) key.push_back(x);
        key.insert(std::upper_bound(key.begin(), key.end(), ca), ca);
        const auto it = hap_of.find(key);
        complete = it != hap_of.end();
        if (complete) counterpart[a] = it->second;
      }
      if (!complete) continue;
      for (size_t a = 0; a < n_alleles; ++a) members[a].push_back(counterpart[a]);
    }
    for (size_t h = 0; h < nh; ++h)
      if (group[h] == covered) members[covered].push_back(h);
    const size_t k = members[covered].empty() ? n_alleles : n_alleles + 1;
    // Per spanning read of each sample: its likelihood and best cost under each group.
    auto spans = [&](const ReadEval& ev) { return ev.read->pos <= pos && ev.read->end > pos; };
    struct SampleSite {
      std::vector<double> lik;      // reads x k
      std::vector<int32_t> cost;    // reads x k
      std::vector<uint8_t> strand;  // 1: reverse
      std::vector<int8_t> orientation;  // the fragment's strand (pair_orientation; -1 unpaired)
    };
    std::vector<SampleSite> site(ns);
    double mq_sq = 0;
    int mq_n = 0;
    for (size_t e = 0; e < evals.size(); ++e) {
      if (!spans(evals[e])) continue;
      const int mapq = evals[e].read->mapq;
      mq_sq += static_cast<double>(mapq) * mapq;
      ++mq_n;
      SampleSite& ss = site[evals[e].sample];
      for (size_t g = 0; g < k; ++g) {
        double l = 0;
        int32_t c = kCostInf;
        for (size_t h : members[g]) {
          l = std::max(l, lin[e * nh + h]);
          c = std::min(c, costs[evals[e].job0 + h]);
        }
        ss.lik.push_back(l);
        ss.cost.push_back(c);
      }
      ss.strand.push_back(evals[e].read->rev ? 1 : 0);
      ss.orientation.push_back(evals[e].read->pair_orientation);
    }
    const int rms_mapq = mq_n ? static_cast<int>(std::lround(std::sqrt(mq_sq / mq_n))) : 0;
    const SampleSite& t_site = site[tumour];
    const size_t n_t = t_site.strand.size();
    // (a normal without reads here still is a normal: never a null pointer for it)
    static const double kNoReads = 0;
    const double* n_lik = nullptr;
    if (has_normal) n_lik = site[normal].lik.empty() ? &kNoReads : site[normal].lik.data();
    const size_t n_n = has_normal ? site[normal].strand.size() : 0;
    for (size_t a = 1; a < n_alleles; ++a) {
      const SomaticScore sc =
          score_allele(t_site.lik.data(), n_t, n_lik, n_n, k, a, opt.somatic.tumour_in_normal);
      if (!(sc.tlod >= opt.somatic.min_tlod)) continue;
      const CandidateAllele& cand = w.cands[c0 + a - 1];
      VariantRecord rec;
      rec.pos = pos;
      rec.somatic = true;
      rec.ref = cand.ref;
      rec.alts = {cand.alt};
      rec.id = cand.id;
      rec.tlod = {sc.tlod};
      rec.qual = std::min(99999.0, 10.0 * sc.tlod);  // the phred-scaled odds TLOD gives
      if (sc.tlod < opt.somatic.pass_tlod) rec.filters.push_back("weak_evidence");
      if (std::binary_search(opt.panel.begin(), opt.panel.end(), cand))
        rec.filters.push_back("panel_of_normals");
      rec.mq = rms_mapq;
      rec.samples.resize(ns);
      bool normal_shows = false;
      for (size_t s = 0; s < ns; ++s) {
        SampleCall& call = rec.samples[s];
        const SampleSite& ss = site[s];
        const size_t n = ss.strand.size();
        call.gt = {0, s == tumour ? 1 : 0};
        call.af = {s == tumour ? sc.tumour_fraction : s == normal ? sc.normal_fraction : 0.0};
        call.dp = static_cast<int>(n);
        rec.dp += call.dp;
        // AD: reads whose best group is clearly the reference or the allele (reads of the
        // site's other alleles count in neither); SB: those by strand.
        call.ad.assign(2, 0);
        call.sb.assign(4, 0);
        int depth_by_strand[2] = {0, 0}, depth_by_orientation[2] = {0, 0};
        int alt_by_orientation[2] = {0, 0};
        for (size_t r = 0; r < n; ++r) {
          ++depth_by_strand[ss.strand[r]];
          const int8_t o = ss.orientation[r];
          if (o >= 0) ++depth_by_orientation[o];
          const int32_t* c = ss.cost.data() + r * k;
          size_t best = 0;
          for (size_t g = 1; g < k; ++g) if (c[g] < c[best]) best = g;
          int32_t second = kCostInf;
          for (size_t g = 0; g < k; ++g) if (g != best) second = std::min(second, c[g]);
          if (second - c[best] < 3 || (best != 0 && best != a)) continue;
          const int which = best == a ? 1 : 0;
          ++call.ad[static_cast<size_t>(which)];
          ++call.sb[static_cast<size_t>(2 * which) + ss.strand[r]];
          if (which && o >= 0) ++alt_by_orientation[o];
        }
        if (s == normal) normal_shows = call.ad[1] > 0;
        if (s == tumour) {
          if (strand_bias_p(call.sb[2], call.sb[3], depth_by_strand[0], depth_by_strand[1]) <
              opt.somatic.min_strand_p)
            rec.filters.push_back("strand_bias");
          // Damage to one strand of the fragments before sequencing (oxidation, deamination)
          // shows in both mates, on opposite read strands: the same test over the fragments'
          // strands.
          if (strand_bias_p(alt_by_orientation[0], alt_by_orientation[1],
                            depth_by_orientation[0], depth_by_orientation[1]) <
              opt.somatic.min_strand_p)
            rec.filters.push_back("orientation_bias");
        }
      }
      if (has_normal) {
        rec.nlod = {sc.nlod};
        // Too little of the normal to rule out a carrier: germline where it shows the allele.
        if (sc.nlod < opt.somatic.min_nlod)
          rec.filters.push_back(normal_shows ? "germline" : "low_normal_depth");
        if (sc.normal_alod >= opt.somatic.max_normal_alod)
          rec.filters.push_back("normal_artifact");
      }
      if (opt.has_resource)
        weigh_origins(opt, cand, t_site.lik.data(), n_t, n_lik, n_n, k, a, rec);
      out.push_back(std::move(rec));
    }
    c0 = c1;
  }
}

}  // namespace

std::vector<VariantRecord> call_region(std::vector<AlignmentSource*>& sources,
                                       const std::string& contig, int64_t start, int64_t end, const uint8_t* ref,
                                       int64_t contig_length, const CallerOptions& opt,
                                       LoadStats* stats, ReferenceConfidence* confidence) {
  std::vector<VariantRecord> out;
  start = std::max<int64_t>(0, start);
  end = std::min(end, contig_length);
  if (start >= end) return out;
  const size_t ns = sources.size();
  const int ploidy = opt.ploidy == 1 ? 1 : 2;
  // Each sample's ploidy here (a male's chrX, a female's chrY): opt.sample_ploidy, else all
  // opt.ploidy.
  std::vector<int> sample_ploidy(ns, ploidy);
  if (!opt.sample_ploidy.empty()) {
    if (opt.sample_ploidy.size() != ns) {
      throw std::invalid_argument("sample_ploidy needs one ploidy per sample");
    }
    for (size_t s = 0; s < ns; ++s) {
      if (opt.sample_ploidy[s] < 0 || opt.sample_ploidy[s] > 2) {
        throw std::invalid_argument("sample ploidy must be 0, 1 or 2");
      }
      sample_ploidy[s] = opt.sample_ploidy[s];
    }
  }
  if (confidence && ns != 1) {
    throw std::invalid_argument("reference confidence (gVCF) takes one sample");
  }
  if (opt.somatic_tumour >= 0) {
    const auto n = static_cast<int>(ns);
    if (opt.somatic_tumour >= n || opt.somatic_normal >= n ||
        opt.somatic_normal == opt.somatic_tumour)
      throw std::invalid_argument("somatic calling needs a tumour sample and at most one other, "
                                  "its normal");
    if (!opt.given.empty() || confidence)
      throw std::invalid_argument("somatic calling takes neither given alleles nor a gVCF");
  }
  std::vector<SampleReads> samples(ns);
  std::vector<CandidateAllele> cands;
  CallStageSeconds stage;
  StageClock clock;  // lapped into the stage that just ran
  for (size_t s = 0; s < ns; ++s) {
    const int tid = sources[s]->contig_id(contig);
    if (tid < 0) continue;  // this sample has no reads on the contig
    LoadStats ls = sources[s]->load(tid, std::max<int64_t>(0, start - kCandidatePad - kLoadPad),
                                    std::min(contig_length, end + kCandidatePad + kLoadPad),
                                    opt.filter, samples[s].reads, samples[s].store);
    if (stats) {
      stats->loaded += ls.loaded;
      stats->filtered += ls.filtered;
      stats->depth_capped += ls.depth_capped;
    }
    stage.load += clock.lap();
    std::vector<CandidateAllele> c;
    std::function<void(const Pileup&)> each_window;
    if (confidence && sample_ploidy[s] > 0) {  // the region's own positions only
      each_window = [&, p = sample_ploidy[s]](const Pileup& pile) {
        add_reference_confidence(pile, ref + pile.start, p, *confidence, start, end);
      };
    }
    find_candidates(samples[s].reads, ref, 0, contig_length,
                    std::max<int64_t>(0, start - kCandidatePad), end + kCandidatePad,
                    opt.candidates, c, each_window);
    cands.insert(cands.end(), c.begin(), c.end());
    // A base error shows one particular wrong base a third of the time: a mismatch against a
    // haplotype costs the base quality plus 10 log10(3) (the kernel charges the given quality).
    // (Branch-free, so that it vectorises: it runs over every base loaded.)
    const auto cap = static_cast<uint8_t>(std::clamp(opt.scoring.max_qual, 0, 255));
    for (ShardRead& r : samples[s].reads)
      for (uint8_t& q : r.qual) {
        const auto charged = static_cast<uint8_t>((q < cap ? q : cap) + kThirdPhred);
        q = q ? charged : 0;
      }
  }
  HaplotypeScoring scoring = opt.scoring;
  scoring.max_qual += kThirdPhred;
  add_unit_changes(cands, ref, contig_length);
  std::sort(cands.begin(), cands.end());
  cands.erase(std::unique(cands.begin(), cands.end()), cands.end());
  // Given alleles the reads proposed too are marked; the others are satellites.
  std::vector<CandidateAllele> satellites;
  for (const CandidateAllele& g : opt.given) {
    if (g.pos < start - kCandidatePad || g.pos >= end + kCandidatePad) continue;
    const auto it = std::lower_bound(cands.begin(), cands.end(), g);
    if (it != cands.end() && *it == g) {
      it->given = true;
      if (it->id.empty()) it->id = g.id;
    } else {
      satellites.push_back(g);
      satellites.back().given = satellites.back().satellite = true;
    }
  }
  std::vector<int64_t> reach_of(cands.size());
  for (size_t i = 0; i < cands.size(); ++i)
    reach_of[i] = candidate_reach(cands[i], ref, contig_length, opt.window_padding);
  // Windows are made over all candidates found, including those past the region's edges, and
  // those holding a candidate in the region are kept: they are the whole contig's windows
  // (make_windows cuts at places its neighbourhood decides), and the others are the
  // neighbouring regions' to score.
  std::vector<Window> windows = make_windows(cands, reach_of, opt, ref, contig_length);
  add_satellites(windows, satellites, opt, ref, contig_length);
  windows.erase(std::remove_if(windows.begin(), windows.end(),
                               [&](const Window& w) {
                                 return w.cands.back().pos < start || w.cands.front().pos >= end;
                               }),
                windows.end());
  stage.candidates += clock.lap();
  auto report = [&] {
    if (stats) stats->stage.add(stage);
  };
  if (windows.empty()) {
    report();
    return out;
  }

  const double log_het_snv = std::log10(opt.heterozygosity);
  const double log_het_indel = std::log10(opt.indel_heterozygosity);
  // index of the first read of each sample that may overlap the current window
  std::vector<size_t> first_read(ns, 0);

  // Windows are scored in batches: the jobs of consecutive windows (up to kBatchJobs, at least
  // one window) are collected first and costed in one call, which is what keeps a GPU busy
  // (a window alone has ~10-100 jobs); then the windows are genotyped one by one. Costs are per
  // job, so the batch composition changes no result. The batch bound keeps memory bounded.
  std::vector<WindowWork> batch;
  std::vector<HaplotypeJob> jobs;
  std::vector<uint8_t> hap_buf;  // every job's haplotype window, back to back
  std::vector<size_t> hap_off;   // job j's window starts at hap_buf[hap_off[j]]
  std::vector<int32_t> costs;
  for (size_t wi = 0; wi < windows.size();) {
    batch.clear();
    jobs.clear();
    hap_buf.clear();
    hap_off.clear();
    while (wi < windows.size() && (batch.empty() || jobs.size() < kBatchJobs)) {
      const Window& w = windows[wi++];
      int max_indel = 0;
      for (const auto& c : w.cands) max_indel = std::max<int>(max_indel, indel_length(c));
      const int32_t half = max_indel + 8;
      const int64_t hs = std::max<int64_t>(0, w.start - half - 4);
      const int64_t he = std::min(contig_length, w.end + half + 4);
      WindowWork& ww = batch.emplace_back();
      ww.w = &w;
      ww.haps = make_haplotypes(w, ref, hs, he);
      const std::vector<Haplotype>& haps = ww.haps;
      const size_t nh = haps.size();
      // Gather read segments and jobs for every sample.
      for (size_t s = 0; s < ns; ++s) {
        auto& rs = samples[s].reads;
        while (first_read[s] < rs.size() && rs[first_read[s]].end + 200 < w.start) ++first_read[s];
        for (size_t i = first_read[s]; i < rs.size() && rs[i].pos < w.end + 200; ++i) {
          const ShardRead& r = rs[i];
          if (r.end <= w.start || r.pos >= w.end) {
            // soft clips may still project into the window
            if (r.end + 150 <= w.start || r.pos >= w.end + 150) continue;
          }
          const Segment seg = read_segment(r, w.start, w.end);
          if (!seg.ok) continue;
          ReadEval ev{s, &r, seg, jobs.size()};
          const int32_t m = seg.q1 - seg.q0;
          const int32_t band = 2 * half + 1;
          for (size_t h = 0; h < nh; ++h) {
            const int64_t off = hap_offset(haps[h], w, hs, seg.ref0) - half;
            const int64_t tl = m + band - 1;
            const int64_t hl = static_cast<int64_t>(haps[h].seq.size());
            hap_off.push_back(hap_buf.size());
            hap_buf.resize(hap_buf.size() + static_cast<size_t>(tl));
            uint8_t* t = hap_buf.data() + hap_off.back();
            // haplotype bases [off, off + tl), off-haplotype codes beyond its ends
            const int64_t lo = std::clamp<int64_t>(-off, 0, tl);
            const int64_t hi = std::clamp<int64_t>(hl - off, lo, tl);
            std::memset(t, kBaseOff, static_cast<size_t>(lo));
            if (hi > lo)
              std::memcpy(t + lo, haps[h].seq.data() + off + lo, static_cast<size_t>(hi - lo));
            std::memset(t + hi, kBaseOff, static_cast<size_t>(tl - hi));
            jobs.push_back(HaplotypeJob{r.seq.data() + seg.q0, r.qual.data() + seg.q0, nullptr,
                                        m, band});
          }
          ww.evals.push_back(ev);
        }
      }
    }
    // hap_buf has stopped growing: the windows' addresses are final now
    for (size_t j = 0; j < jobs.size(); ++j) jobs[j].hap = hap_buf.data() + hap_off[j];
    costs.resize(jobs.size());
    stage.jobs += clock.lap();
    if (!jobs.empty()) {
      if (opt.device >= 0) {
        const HaplotypeBackendFn gpu = haplotype_backend();
        if (!gpu) throw std::runtime_error("GPU haplotype costs requested but no GPU backend is "
                                           "loaded");
        if (!gpu(jobs.data(), jobs.size(), scoring, costs.data(), opt.device,
                 opt.device_emulate)) {  // no room on the device even for one job: the CPU's
          haplotype_costs(jobs.data(), jobs.size(), scoring, costs.data(), opt.simd_level);
          if (stats) ++stats->gpu_fallbacks;
        }
      } else {
        haplotype_costs(jobs.data(), jobs.size(), scoring, costs.data(), opt.simd_level);
      }
    }
    stage.costs += clock.lap();
    for (const WindowWork& ww : batch) {
      if (opt.somatic_tumour >= 0)
        somatic_window(*ww.w, ww.haps, ww.evals, costs.data(), ns, opt, out);
      else
        genotype_window(*ww.w, ww.haps, ww.evals, costs.data(), ns, sample_ploidy, opt,
                        log_het_snv, log_het_indel, out);
    }
    stage.genotype += clock.lap();
  }
  // The windows past the region's edges were genotyped for the records inside it: the others
  // are the neighbouring regions' to write.
  out.erase(std::remove_if(out.begin(), out.end(),
                           [&](const VariantRecord& r) { return r.pos < start || r.pos >= end; }),
            out.end());
  std::stable_sort(out.begin(), out.end(), [](const VariantRecord& a, const VariantRecord& b) {
    return std::tie(a.pos, a.ref, a.alts) < std::tie(b.pos, b.ref, b.alts);
  });
  report();
  return out;
}

}  // namespace gms
