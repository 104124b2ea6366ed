// Pairing: the insert-size model, mate rescue placements, and the choice of the best pair with
// its MAPQ (pairing evidence can lift a repetitive end's MAPQ when its mate is unique).
#include <algorithm>
#include <cmath>

#include "align_internal.hpp"

namespace gms {

namespace {

// Template span of a forward/reverse pair (forward one upstream), or -1 when not FR on one contig.
int64_t fr_span(const Hit& a, const Hit& b) {
  if (a.contig != b.contig || a.rev == b.rev) return -1;
  const Hit& f = a.rev ? b : a;
  const Hit& r = a.rev ? a : b;
  if (f.pos >= r.end) return -1;
  return std::max(f.end, r.end) - std::min(f.pos, r.pos);
}

// log4 of the two-sided tail probability of the span under the model: a score in match units.
int32_t insert_penalty(const InsertModel& model, int64_t span) {
  const double z = std::fabs((static_cast<double>(span) - model.mean) / model.sd);
  const double tail = std::max(std::erfc(z / std::sqrt(2.0)), 1e-300);
  return static_cast<int32_t>(std::floor(std::log(tail) / std::log(4.0) + 0.5));
}

}  // namespace

InsertModel estimate_insert(const std::vector<std::vector<Hit>>& h1,
                            const std::vector<std::vector<Hit>>& h2) {
  std::vector<int64_t> spans;
  for (size_t i = 0; i < h1.size() && i < h2.size(); ++i) {
    if (h1[i].empty() || h2[i].empty()) continue;
    const Hit& a = h1[i][0];
    const Hit& b = h2[i][0];
    if (a.mapq < 30 || b.mapq < 30) continue;
    const int64_t s = fr_span(a, b);
    if (s > 0) spans.push_back(s);
  }
  InsertModel m;
  if (spans.size() < 10) return m;
  std::sort(spans.begin(), spans.end());
  const auto q = [&](double f) { return spans[static_cast<size_t>(f * (spans.size() - 1))]; };
  const int64_t q1 = q(0.25), q3 = q(0.75), iqr = std::max<int64_t>(q3 - q1, 1);
  const int64_t lo = q1 - 3 * iqr, hi = q3 + 3 * iqr;
  double sum = 0, sum2 = 0;
  uint64_t n = 0;
  for (int64_t s : spans) {
    if (s < lo || s > hi) continue;
    sum += static_cast<double>(s);
    sum2 += static_cast<double>(s) * static_cast<double>(s);
    ++n;
  }
  if (n < 10) return m;
  m.mean = sum / static_cast<double>(n);
  m.sd = std::max(1.0, std::sqrt(std::max(0.0, sum2 / n - m.mean * m.mean)));
  m.low = std::max<int64_t>(1, static_cast<int64_t>(std::floor(m.mean - 4 * m.sd)));
  m.high = static_cast<int64_t>(std::ceil(m.mean + 4 * m.sd));
  m.pairs_used = n;
  m.valid = true;
  return m;
}

bool is_proper(const InsertModel& model, const Hit& a, const Hit& b, int64_t* tlen) {
  if (!model.valid) return false;
  const int64_t s = fr_span(a, b);
  if (tlen) *tlen = s;
  return s >= model.low && s <= model.high;
}

int64_t template_length(const Hit& a, const Hit& b) {
  if (a.contig != b.contig) return 0;
  const int64_t left = std::min(a.pos, b.pos), right = std::max(a.end, b.end);
  const int64_t span = right - left;
  // the leftmost end gets the positive length; R1 (a) wins ties
  return (a.pos <= b.pos) ? span : -span;
}

void rescue_placements(const Index& index, const AlignOptions& opt, const InsertModel& model,
                       uint32_t p, const EncodedRead& r1, const EncodedRead& r2,
                       const std::vector<Hit>& h1, const std::vector<Hit>& h2,
                       std::vector<Placement>& out1, std::vector<Placement>& out2) {
  const int32_t pad = 16;
  auto rescue = [&](const std::vector<Hit>& anchors, const std::vector<Hit>& mates,
                    const EncodedRead& mate_read, std::vector<Placement>& out) {
    const int32_t m = mate_read.len();
    if (m == 0 || anchors.empty()) return;
    const int32_t best = anchors[0].score;
    int tried = 0;
    for (const Hit& a : anchors) {
      if (tried >= opt.max_rescue || a.score < best - 2 * (opt.scoring.mismatch + opt.scoring.match))
        break;
      ++tried;
      // A mate hit there already spares the search, unless it is a fragment of the read (most
      // of it clipped): seeds from a repeat at one end (a poly-C run) can place that end alone
      // beside a copy whose whole read no seed reached.
      bool has_mate = false;
      for (const Hit& b : mates)
        if (is_proper(model, a, b) && 5 * (b.q_end - b.q_begin) >= 4 * m) {
          has_mate = true;
          break;
        }
      if (has_mate) continue;
      const int64_t len = static_cast<int64_t>(index.contig(a.contig).length);
      Placement pl;
      pl.read = p;
      pl.rev = a.rev ? 0 : 1;
      pl.contig = a.contig;
      pl.rescued = true;
      const int64_t window_len = model.high - model.low + m + 2 * pad;
      pl.band = static_cast<int32_t>(window_len - m + 1);
      // mate upstream of a reverse anchor, downstream of a forward one
      pl.window = a.rev ? a.end - model.high - pad : a.pos + model.low - m - pad;
      if (pl.window + window_len <= 0 || pl.window >= len) continue;
      out.push_back(pl);
    }
  };
  rescue(h1, h2, r2, out2);
  rescue(h2, h1, r1, out1);
}

void rescue_remainders(const Placement& pl, const Hit& found, int32_t read_len,
                       std::vector<Placement>& out) {
  const int64_t w0 = pl.window, w1 = pl.window + read_len + pl.band - 1;
  const int64_t half = read_len / 2;
  auto add = [&](int64_t b, int64_t e) {
    b = std::max(b, w0);
    e = std::min(e, w1);
    if (e - b < read_len) return;
    Placement p = pl;
    p.window = b;
    p.band = static_cast<int32_t>(e - b - read_len + 1);
    out.push_back(p);
  };
  add(w0, found.pos + half);
  add(found.end - half, w1);
}

PairChoice choose_pair(const AlignOptions& opt, const InsertModel& model,
                       const std::vector<Hit>& h1, const std::vector<Hit>& h2) {
  PairChoice pc;
  if (h1.empty() && h2.empty()) return pc;
  if (h1.empty() || h2.empty()) {
    pc.i1 = h1.empty() ? -1 : 0;
    pc.i2 = h2.empty() ? -1 : 0;
    pc.mapq1 = h1.empty() ? 0 : h1[0].mapq;
    pc.mapq2 = h2.empty() ? 0 : h2[0].mapq;
    return pc;
  }
  const int32_t unpaired = h1[0].score + h2[0].score - opt.unpaired_penalty;
  int32_t o1 = INT32_MIN, o2 = INT32_MIN;
  int32_t bi = -1, bj = -1;
  if (model.valid) {
    for (size_t i = 0; i < h1.size(); ++i) {
      for (size_t j = 0; j < h2.size(); ++j) {
        int64_t span = 0;
        if (!is_proper(model, h1[i], h2[j], &span)) continue;
        const int32_t s = h1[i].score + h2[j].score + insert_penalty(model, span);
        if (s > o1) {
          o2 = o1;
          o1 = s;
          bi = static_cast<int32_t>(i);
          bj = static_cast<int32_t>(j);
        } else if (s > o2) {
          o2 = s;
        }
      }
    }
  }
  pc.mapq1 = h1[0].mapq;
  pc.mapq2 = h2[0].mapq;
  if (bi < 0 || o1 < unpaired) {
    pc.i1 = 0;
    pc.i2 = 0;
    return pc;
  }
  pc.i1 = bi;
  pc.i2 = bj;
  pc.proper = true;
  const int32_t sub = std::max(o2, unpaired);
  const int32_t aligned = (h1[bi].q_end - h1[bi].q_begin) + (h2[bj].q_end - h2[bj].q_begin);
  // Pairing lifts an end only with independent evidence from the other. An end is no such
  // evidence when its own placement is crowded (copies may have gone unseen), nor when it was
  // found only by a rescue from this very placement of its mate. With one end unsure, what sets
  // this pair apart from the others may be that end's score among the copies it happened to
  // see; for a read far from the reference (over 2% of its bases differ) a few bases between
  // copies say little, so the pair is then as sure as the other end alone.
  auto unsure = [](const std::vector<Hit>& h, int32_t i) {
    return h[0].crowded || h[i].cover == 0;
  };
  const int32_t q1 = bi == 0 ? h1[0].mapq : 0;
  const int32_t q2 = bj == 0 ? h2[0].mapq : 0;
  const bool unsure1 = unsure(h1, bi), unsure2 = unsure(h2, bj);
  int32_t q_pe = unsure1 && unsure2 ? 0 : mapq_from_scores(o1, sub, aligned, opt.scoring, 0);
  auto divergent = [](const Hit& h) { return 50 * h.nm > h.q_end - h.q_begin; };
  if (unsure1 != unsure2 && divergent(unsure1 ? h1[bi] : h2[bj]))
    q_pe = std::min(q_pe, unsure1 ? q2 : q1);
  pc.mapq1 = std::max(q1, std::min(q_pe, q1 + 40));
  pc.mapq2 = std::max(q2, std::min(q_pe, q2 + 40));
  return pc;
}

}  // namespace gms
