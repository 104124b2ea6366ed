// The alignment driver: chains become placements, placements are extended in batches through the
// SIMD kernel, hits are deduplicated and scored, and pairs are resolved into BAM records.
#include <algorithm>
#include <cmath>
#include <exception>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "align_internal.hpp"
#include "gmsaccel/errors.hpp"
#include "gmsaccel/markdup.hpp"

namespace gms {

void encode_reads(const char* seqs, const uint64_t* offsets, size_t n, EncodedReads& out) {
  const uint64_t total = offsets[n] - offsets[0];
  out.codes.resize(2 * total);
  out.reads.resize(n);
  uint8_t* fwd_all = out.codes.data();
  uint8_t* rev_all = fwd_all + total;
  for (size_t r = 0; r < n; ++r) {
    const uint64_t at = offsets[r] - offsets[0];
    const size_t len = offsets[r + 1] - offsets[r];
    const char* seq = seqs + offsets[r];
    uint8_t* fwd = fwd_all + at;
    uint8_t* rev = rev_all + at;
    for (size_t i = 0; i < len; ++i) {
      const uint8_t c = base_code(seq[i]);
      fwd[i] = c;
      rev[len - 1 - i] = c < 4 ? 3 - c : c;
    }
    out.reads[r] = EncodedRead{fwd, rev, static_cast<int32_t>(len)};
  }
}

namespace {

constexpr char kCodeLetter[] = "ACGTNN";

int32_t query_length(const std::vector<uint32_t>& cigar) {
  int32_t n = 0;
  for (uint32_t c : cigar) {
    const uint32_t op = c & 0xf;
    if (op == BAM_CMATCH || op == BAM_CINS || op == BAM_CSOFT_CLIP) n += c >> 4;
  }
  return n;
}

// Converts a kernel result into a hit with SAM-ready CIGAR, NM and MD.
void result_to_hit(const ExtendResult& r, const uint32_t* ops, uint32_t n_ops,
                   const Placement& pl, const uint8_t* query, int32_t qlen,
                   const uint8_t* target, Hit& h) {
  h.contig = pl.contig;
  h.rev = pl.rev != 0;
  h.cover = pl.cover;
  h.unexplored = pl.unexplored;
  h.filtered_seeds = pl.filtered_seeds;
  h.score = r.score;
  h.q_begin = r.q_begin;
  h.q_end = r.q_end;
  h.pos = pl.window + r.t_begin;
  h.end = pl.window + r.t_end;
  h.cigar.clear();
  if (r.q_begin > 0) h.cigar.push_back(static_cast<uint32_t>(r.q_begin) << 4 | BAM_CSOFT_CLIP);
  h.cigar.insert(h.cigar.end(), ops, ops + n_ops);
  if (r.q_end < qlen) h.cigar.push_back(static_cast<uint32_t>(qlen - r.q_end) << 4 | BAM_CSOFT_CLIP);
  h.nm = 0;
  h.md.clear();
  int32_t qi = r.q_begin, ti = r.t_begin, run = 0;
  for (uint32_t i = 0; i < n_ops; ++i) {
    const uint32_t len = ops[i] >> 4, op = ops[i] & 0xf;
    if (op == BAM_CMATCH) {
      for (uint32_t j = 0; j < len; ++j, ++qi, ++ti) {
        if (query[qi] == target[ti] && query[qi] < 4) { ++run; continue; }
        h.md += std::to_string(run);
        h.md += kCodeLetter[target[ti]];
        run = 0;
        ++h.nm;
      }
    } else if (op == BAM_CINS) {
      qi += len;
      h.nm += len;
    } else {
      h.md += std::to_string(run);
      h.md += '^';
      for (uint32_t j = 0; j < len; ++j, ++ti) h.md += kCodeLetter[target[ti]];
      run = 0;
      h.nm += len;
    }
  }
  h.md += std::to_string(run);
}

int32_t half_band_for(int64_t span, const AlignOptions& opt) {
  const int64_t need = (span + 1) / 2 + opt.band_padding;
  int32_t half = 8;
  while (half < need && half < opt.max_half_band) half *= 2;
  return std::min(half, opt.max_half_band);
}

// Forward-strand query interval of a hit, so that hits on opposite strands can be compared.
void forward_interval(const Hit& h, int32_t& b, int32_t& e) {
  if (!h.rev) { b = h.q_begin; e = h.q_end; return; }
  const int32_t m = query_length(h.cigar);
  b = m - h.q_end;
  e = m - h.q_begin;
}

int32_t overlap(int32_t b1, int32_t e1, int32_t b2, int32_t e2) {
  return std::max(0, std::min(e1, e2) - std::max(b1, b2));
}

}  // namespace

void extend_placements(const Index& index, const AlignOptions& opt,
                       const std::vector<EncodedRead>& reads,
                       const std::vector<Placement>& placements, std::vector<Hit>& hits,
                       AlignStats& stats) {
  StageClock clock;
  const size_t n = placements.size();
  hits.assign(n, Hit{});
  if (n == 0) return;
  std::vector<size_t> toff(n + 1, 0);
  for (size_t i = 0; i < n; ++i)
    toff[i + 1] = toff[i] + reads[placements[i].read].len() + placements[i].band - 1;
  std::vector<uint8_t> targets(toff[n]);
  std::vector<ExtendJob> jobs(n);
  for (size_t i = 0; i < n; ++i) {
    const Placement& pl = placements[i];
    const int32_t m = reads[pl.read].len();
    index.fetch(static_cast<size_t>(pl.contig), pl.window, pl.window + m + pl.band - 1,
                targets.data() + toff[i]);
    jobs[i] = ExtendJob{reads[pl.read].strand(pl.rev), targets.data() + toff[i], m, pl.band};
    stats.cells += static_cast<uint64_t>(m) * pl.band;
  }
  stats.extend_jobs += n;
  ExtendBatchOutput out;
  if (opt.device >= 0) {
    const ExtendBackendFn gpu = extend_backend();
    if (!gpu) throw std::runtime_error("GPU extension requested but no GPU backend is loaded");
    if (!gpu(jobs.data(), n, opt.scoring, out, opt.device, opt.device_emulate)) {
      out = ExtendBatchOutput{};  // the device had no room even for one job: the CPU's batch
      extend_batch(jobs.data(), n, opt.scoring, out, opt.simd);
      stats.gpu_extend_fallbacks += 1;
    }
  } else {
    extend_batch(jobs.data(), n, opt.scoring, out, opt.simd);
  }
  for (size_t i = 0; i < n; ++i) {
    const ExtendResult& r = out.results[i];
    if (r.score < opt.min_score) continue;  // hits[i].contig stays -1
    const uint32_t c0 = out.cigar_offset[i], c1 = out.cigar_offset[i + 1];
    result_to_hit(r, out.cigar.data() + c0, c1 - c0, placements[i], jobs[i].query, jobs[i].qlen,
                  jobs[i].target, hits[i]);
  }
  stats.stage.extend += clock.lap();
}

int32_t mapq_from_scores(int32_t best, int32_t sub, int32_t aligned_len, const Scoring& sc,
                         int k) {
  if (best <= 0) return 0;
  const int32_t floor_sub = k * sc.match;  // a chance hit of one seed's length
  sub = std::max(sub, floor_sub);
  if (sub >= best) return 0;
  const double l = std::max(aligned_len, 1);
  double identity = 1.0 - (l * sc.match - best) / (sc.match + sc.mismatch) / l;
  identity = std::clamp(identity, 0.0, 1.0);
  const double q = 6.02 * (best - sub) / sc.match * identity * identity + 0.499;
  return static_cast<int32_t>(std::min(60.0, q));
}

int32_t thin_cover(int k, int32_t read_len) { return std::min(2 * k, read_len / 2); }

int32_t filtered_minimizers(const Index& index, const uint8_t* seq, int32_t len) {
  thread_local std::vector<Minimizer> mins;
  mins.clear();
  compute_minimizers(seq, static_cast<uint32_t>(len), index.params().k, index.params().w, mins);
  int32_t n = 0;
  for (const Minimizer& m : mins) n += index.occurrences(m.hash) > index.params().max_occ;
  return n;
}

void finish_hits(std::vector<Hit>& hits, const AlignOptions& opt, int k) {
  hits.erase(std::remove_if(hits.begin(), hits.end(), [](const Hit& h) { return h.contig < 0; }),
             hits.end());
  std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.contig != b.contig) return a.contig < b.contig;
    if (a.pos != b.pos) return a.pos < b.pos;
    if (a.rev != b.rev) return a.rev < b.rev;
    return a.q_begin < b.q_begin;
  });
  std::vector<Hit> kept;
  kept.reserve(hits.size());
  for (Hit& h : hits) {
    bool dup = false;
    for (const Hit& o : kept) {
      if (o.contig != h.contig || o.rev != h.rev) continue;
      const int64_t ov = std::min(o.end, h.end) - std::max(o.pos, h.pos);
      if (ov > 0 && 2 * ov >= std::min(o.end - o.pos, h.end - h.pos)) { dup = true; break; }
    }
    if (!dup) kept.push_back(std::move(h));
  }
  hits.swap(kept);
  if (hits.empty()) return;
  // The best other placement of (mostly) the same read bases decides how sure the first one is.
  Hit& best = hits[0];
  int32_t b0, e0;
  forward_interval(best, b0, e0);
  int32_t sub = 0;
  for (size_t i = 1; i < hits.size(); ++i) {
    int32_t b, e;
    forward_interval(hits[i], b, e);
    if (2 * overlap(b0, e0, b, e) >= std::min(e0 - b0, e - b)) sub = std::max(sub, hits[i].score);
  }
  // What was not looked at matters too. The best placement is not known to be unique when the
  // candidate cap left a chain unextended that its seeds covered as well (a repeat with more
  // copies than the cap), when its own seeds cover less than two disjoint k-mers would and less
  // than half the read while some of the read's minimizers were too frequent to index (other
  // copies could not be seen; a short read's seeds cannot cover more, and a read far from the
  // reference has few seeds anyway), or when only a mate rescue found it (cover 0: one window
  // searched, nothing known of elsewhere).
  const int32_t read_len = query_length(best.cigar);
  bool crowded = best.cover == 0 ||
                 (best.cover < thin_cover(k, read_len) && best.filtered_seeds != 0);
  for (Hit& h : hits) {
    crowded |= h.unexplored > 0 && h.unexplored >= best.cover;
    h.crowded = false;
  }
  best.crowded = crowded;
  for (Hit& h : hits) h.sub_score = 0;
  best.sub_score = sub;  // XS: what was seen
  best.mapq = mapq_from_scores(best.score, crowded ? std::max(sub, best.score) : sub,
                               best.q_end - best.q_begin, opt.scoring, k);
  for (size_t i = 1; i < hits.size(); ++i) hits[i].mapq = 0;
}

namespace {

// Single-end hits for every read: one kernel pass over all chains, then a banded pass for the
// placements whose ungapped probe could still be beaten by a gapped alignment.
std::vector<std::vector<Hit>> hits_for_reads(const Index& index, const AlignOptions& opt,
                                             const std::vector<EncodedRead>& reads,
                                             AlignStats& stats) {
  const int k = index.params().k;
  std::vector<Anchor> anchors;
  std::vector<Chain> chains;
  std::vector<Placement> placements;
  std::vector<int64_t> centres;  // local diagonal of each ungapped probe
  StageClock clock;  // extend_placements times itself: the clock skips over it
  // On a GPU the whole batch is seeded in one call (same anchors as collect_anchors).
  SeedBatchOutput gpu_seeds;
  const SeedBackendFn gpu_seed = opt.device >= 0 ? seed_backend() : nullptr;
  bool seeded_on_gpu = false;
  if (gpu_seed && index.params().w <= kGpuSeedMaxWindow) {
    std::vector<const uint8_t*> seqs(reads.size());
    std::vector<uint32_t> lens(reads.size());
    for (size_t r = 0; r < reads.size(); ++r) {
      seqs[r] = reads[r].fwd;
      lens[r] = static_cast<uint32_t>(reads[r].len());
    }
    seeded_on_gpu = gpu_seed(index.minimizer_table(), k, index.params().w, seqs.data(),
                             lens.data(), reads.size(), gpu_seeds, opt.device,
                             opt.device_emulate);
    if (seeded_on_gpu) stats.gpu_seeded_reads += reads.size();
  }
  for (uint32_t r = 0; r < reads.size(); ++r) {
    const EncodedRead& rd = reads[r];
    if (seeded_on_gpu) {
      anchors.assign(gpu_seeds.anchors.begin() + gpu_seeds.offsets[r],
                     gpu_seeds.anchors.begin() + gpu_seeds.offsets[r + 1]);
    } else {
      collect_anchors(index, rd.fwd, rd.len(), anchors);
    }
    const int32_t unexplored = chain_anchors(anchors, k, opt, chains);
    // Whether thin seeds come of frequent minimizers (finish_hits): counted only when every
    // chain is thin (-1, counted as some, otherwise: a thin chain rarely beats a thick one).
    int32_t filtered = -1;
    const int32_t thin = thin_cover(k, static_cast<int32_t>(rd.len()));
    if (std::all_of(chains.begin(), chains.end(), [&](const Chain& c) { return c.cover < thin; }))
      filtered = filtered_minimizers(index, rd.fwd, static_cast<int32_t>(rd.len()));
    for (const Chain& c : chains) {
      const int64_t mid = (c.diag_lo + c.diag_hi) / 2 + (c.q_lo + c.q_hi) / 2;
      const int contig = index.contig_of(static_cast<uint64_t>(std::max<int64_t>(mid, 0)));
      if (contig < 0) continue;
      const int64_t off = static_cast<int64_t>(index.contig(contig).offset);
      const int64_t centre = (c.diag_lo + c.diag_hi) / 2 - off;
      Placement pl{r, c.rev, contig, centre, 1};
      pl.cover = c.cover;
      pl.unexplored = unexplored;
      pl.filtered_seeds = filtered;
      if (c.diag_lo != c.diag_hi) {
        const int32_t half = half_band_for(c.diag_hi - c.diag_lo, opt);
        pl.window = centre - half;
        pl.band = 2 * half + 1;
      }
      placements.push_back(pl);
    }
  }
  stats.stage.seed += clock.lap();
  std::vector<Hit> hits;
  extend_placements(index, opt, reads, placements, hits, stats);
  clock.lap();
  // Ungapped probes that lose more than one gap could cost go to a banded pass.
  const int32_t gap_cost = opt.scoring.gap_open + opt.scoring.gap_extend;
  std::vector<Placement> again;
  std::vector<size_t> again_of;
  for (size_t i = 0; i < placements.size(); ++i) {
    const Placement& pl = placements[i];
    if (pl.band != 1) continue;
    const int32_t m = reads[pl.read].len();
    if (hits[i].contig >= 0 && hits[i].score >= m * opt.scoring.match - gap_cost) {
      ++stats.ungapped_accepted;
      continue;
    }
    Placement b = pl;
    const int32_t half = half_band_for(0, opt);
    b.window = pl.window - half;
    b.band = 2 * half + 1;
    again.push_back(b);
    again_of.push_back(i);
  }
  std::vector<Hit> hits2;
  stats.stage.seed += clock.lap();  // choosing the placements for the banded pass
  extend_placements(index, opt, reads, again, hits2, stats);
  clock.lap();
  for (size_t j = 0; j < again.size(); ++j) hits[again_of[j]] = std::move(hits2[j]);
  std::vector<std::vector<Hit>> per_read(reads.size());
  for (size_t i = 0; i < placements.size(); ++i)
    if (hits[i].contig >= 0) per_read[placements[i].read].push_back(std::move(hits[i]));
  for (auto& h : per_read) finish_hits(h, opt, k);
  stats.stage.pair += clock.lap();  // MAPQ of single-end placements
  return per_read;
}

EncodedReads encode_batch(const ReadBatch& b) {
  EncodedReads out;
  encode_reads(b.bases.data(), b.offsets.data(), b.size(), out);
  return out;
}

// A supplementary alignment: another hit explaining a clipped part of the read elsewhere, with a
// MAPQ of its own (never above the primary's).
std::optional<Hit> pick_supplementary(const std::vector<Hit>& hits, int32_t chosen,
                                      const AlignOptions& opt, int k) {
  if (chosen < 0) return std::nullopt;
  const Hit& p = hits[chosen];
  int32_t pb, pe;
  forward_interval(p, pb, pe);
  const int32_t m = query_length(p.cigar);
  if (pb < opt.min_supplementary && m - pe < opt.min_supplementary) return std::nullopt;
  for (size_t i = 0; i < hits.size(); ++i) {
    if (static_cast<int32_t>(i) == chosen) continue;
    int32_t b, e;
    forward_interval(hits[i], b, e);
    const int32_t len = e - b;
    if (len < opt.min_supplementary) continue;
    if (overlap(pb, pe, b, e) * 5 > len) continue;  // mostly new read bases
    if (len - overlap(pb, pe, b, e) < opt.min_supplementary) continue;
    Hit s = hits[i];
    int32_t sub = 0;
    for (size_t j = 0; j < hits.size(); ++j) {
      if (j == i || static_cast<int32_t>(j) == chosen) continue;
      int32_t b2, e2;
      forward_interval(hits[j], b2, e2);
      if (2 * overlap(b, e, b2, e2) >= std::min(len, e2 - b2)) sub = std::max(sub, hits[j].score);
    }
    s.sub_score = sub;
    s.mapq = std::min(p.mapq, mapq_from_scores(s.score, sub, len, opt.scoring, k));
    return s;
  }
  return std::nullopt;
}

}  // namespace

std::vector<Hit> Aligner::map(const std::string& seq) const {
  EncodedReads reads;
  const uint64_t offsets[2] = {0, seq.size()};
  encode_reads(seq.data(), offsets, 1, reads);
  AlignStats stats;
  auto h = hits_for_reads(index_, opt_, reads.reads, stats);
  return std::move(h[0]);
}

std::vector<std::vector<Hit>> Aligner::map_batch(const ReadBatch& batch) const {
  AlignStats stats;
  return hits_for_reads(index_, opt_, encode_batch(batch).reads, stats);
}

Aligner::PairHits Aligner::map_pairs(const ReadBatch& r1, const ReadBatch& r2,
                                     AlignStats& stats, int threads) const {
  const EncodedReads e1 = encode_batch(r1), e2 = encode_batch(r2);
  const size_t n1 = e1.reads.size(), n = n1 + e2.reads.size();
  PairHits out;
  out.h1.resize(n1);
  out.h2.resize(n - n1);
  // Both ends' reads as one list cut into consecutive pieces, one per thread.
  const size_t pieces = std::min<size_t>(std::max(1, threads), std::max<size_t>(n, 1));
  std::vector<AlignStats> piece_stats(pieces);
  std::vector<std::exception_ptr> failures(pieces);
  auto map_piece = [&](size_t p) {
    try {
      const size_t lo = n * p / pieces, hi = n * (p + 1) / pieces;
      std::vector<EncodedRead> reads;
      reads.reserve(hi - lo);
      for (size_t i = lo; i < hi; ++i) reads.push_back(i < n1 ? e1.reads[i] : e2.reads[i - n1]);
      auto hits = hits_for_reads(index_, opt_, reads, piece_stats[p]);
      for (size_t i = lo; i < hi; ++i)
        (i < n1 ? out.h1[i] : out.h2[i - n1]) = std::move(hits[i - lo]);
    } catch (...) {
      failures[p] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (size_t p = 1; p < pieces; ++p) pool.emplace_back(map_piece, p);
  map_piece(0);
  for (auto& t : pool) t.join();
  for (const auto& f : failures)
    if (f) std::rethrow_exception(f);
  for (const AlignStats& s : piece_stats) stats.add(s);
  return out;
}

InsertModel Aligner::estimate_insert_model(const PairHits& hits) {
  return estimate_insert(hits.h1, hits.h2);
}

void Aligner::align_batch(const ReadBatch& r1, const ReadBatch* r2, const InsertModel& model,
                          const RecordOptions& records, RecordBatch& out,
                          AlignStats& stats, PairHits* hits) const {
  const int k = index_.params().k;
  const RecordContext ctx{&index_, &records.read_group};
  // One clock, lapped into the stage that just ran; hits_for_reads and extend_placements time
  // their own stages, and the clock skips over them.
  StageClock clock;
  const EncodedReads encoded1 = encode_batch(r1);
  const std::vector<EncodedRead>& e1 = encoded1.reads;
  stats.stage.seed += clock.lap();
  auto h1 = hits ? std::move(hits->h1) : hits_for_reads(index_, opt_, e1, stats);
  clock.lap();
  const size_t n = r1.size();
  auto seq_of = [](const ReadBatch& b, size_t i) { return b.bases.data() + b.offsets[i]; };
  auto qual_of = [](const ReadBatch& b, size_t i) { return b.quals.data() + b.offsets[i]; };
  auto len_of = [](const ReadBatch& b, size_t i) {
    return static_cast<int32_t>(b.offsets[i + 1] - b.offsets[i]);
  };
  // The read's comment as tags where they are copied (else nothing).
  std::string tags1, tags2;
  auto tags_of = [&](const ReadBatch& b, size_t i, std::string& tags) -> const std::string& {
    tags.clear();
    if (records.copy_comments && !b.comments[i].empty()) {
      try {
        comment_tags(b.comments[i], tags);
      } catch (const InputError& e) {
        throw InputError((b.source.empty() ? "" : b.source + ": ") + "record " +
                         std::to_string(b.first_record + i * b.record_stride) + " (" +
                         b.names[i] + "): " +
                         e.what());
      }
    }
    return tags;
  };
  if (r2 == nullptr) {
    for (size_t i = 0; i < n; ++i) {
      const int32_t chosen = h1[i].empty() ? -1 : 0;
      const auto supp = pick_supplementary(h1[i], chosen, opt_, k);
      ++stats.reads;
      stats.mapped += chosen >= 0;
      stats.supplementary += supp.has_value();
      if (chosen >= 0) stats.count_mapped(h1[i][chosen].contig);
      if (supp) stats.count_mapped(supp->contig);
      stats.stage.pair += clock.lap();
      append_read_records(ctx, r1.names[i], seq_of(r1, i), qual_of(r1, i), len_of(r1, i), h1[i],
                          chosen, supp ? &*supp : nullptr, nullptr, false, 0, 0, -1,
                          tags_of(r1, i, tags1), out);
      stats.stage.records += clock.lap();
    }
    return;
  }
  const EncodedReads encoded2 = encode_batch(*r2);
  const std::vector<EncodedRead>& e2 = encoded2.reads;
  stats.stage.seed += clock.lap();
  auto h2 = hits ? std::move(hits->h2) : hits_for_reads(index_, opt_, e2, stats);
  clock.lap();
  if (model.valid) {
    // Mate rescue: look for each end near where a confident placement of its mate predicts it.
    std::vector<Placement> p1, p2;
    for (uint32_t i = 0; i < n; ++i)
      rescue_placements(index_, opt_, model, i, e1[i], e2[i], h1[i], h2[i], p1, p2);
    std::vector<Hit> x1, x2;
    stats.stage.pair += clock.lap();
    extend_placements(index_, opt_, e1, p1, x1, stats);
    extend_placements(index_, opt_, e2, p2, x2, stats);
    clock.lap();
    // A second look beside what each rescue found (rescue_remainders).
    std::vector<Placement> q1, q2;
    for (size_t j = 0; j < p1.size(); ++j)
      if (x1[j].contig >= 0) rescue_remainders(p1[j], x1[j], e1[p1[j].read].len(), q1);
    for (size_t j = 0; j < p2.size(); ++j)
      if (x2[j].contig >= 0) rescue_remainders(p2[j], x2[j], e2[p2[j].read].len(), q2);
    stats.stage.pair += clock.lap();
    std::vector<Hit> y1, y2;
    extend_placements(index_, opt_, e1, q1, y1, stats);
    extend_placements(index_, opt_, e2, q2, y2, stats);
    clock.lap();
    p1.insert(p1.end(), q1.begin(), q1.end());
    p2.insert(p2.end(), q2.begin(), q2.end());
    x1.insert(x1.end(), std::make_move_iterator(y1.begin()), std::make_move_iterator(y1.end()));
    x2.insert(x2.end(), std::make_move_iterator(y2.begin()), std::make_move_iterator(y2.end()));
    std::vector<uint8_t> touched1(n, 0), touched2(n, 0);
    for (size_t j = 0; j < p1.size(); ++j)
      if (x1[j].contig >= 0) { h1[p1[j].read].push_back(std::move(x1[j])); touched1[p1[j].read] = 1; }
    for (size_t j = 0; j < p2.size(); ++j)
      if (x2[j].contig >= 0) { h2[p2[j].read].push_back(std::move(x2[j])); touched2[p2[j].read] = 1; }
    for (size_t i = 0; i < n; ++i) {
      if (touched1[i]) { finish_hits(h1[i], opt_, k); ++stats.rescued; }
      if (touched2[i]) { finish_hits(h2[i], opt_, k); ++stats.rescued; }
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const PairChoice pc = choose_pair(opt_, model, h1[i], h2[i]);
    const Hit* a = pc.i1 >= 0 ? &h1[i][pc.i1] : nullptr;
    const Hit* b = pc.i2 >= 0 ? &h2[i][pc.i2] : nullptr;
    if (a) h1[i][pc.i1].mapq = pc.mapq1;
    if (b) h2[i][pc.i2].mapq = pc.mapq2;
    const auto s1 = pick_supplementary(h1[i], pc.i1, opt_, k);
    const auto s2 = pick_supplementary(h2[i], pc.i2, opt_, k);
    const int64_t tlen = (a && b) ? template_length(*a, *b) : 0;
    uint16_t flags = BAM_FPAIRED | (pc.proper ? BAM_FPROPER_PAIR : 0);
    stats.reads += 2;
    stats.mapped += (a != nullptr) + (b != nullptr);
    stats.properly_paired += pc.proper ? 2 : 0;
    stats.supplementary += s1.has_value() + s2.has_value();
    for (const Hit* x : {a, b, s1 ? &*s1 : nullptr, s2 ? &*s2 : nullptr}) {
      if (x) stats.count_mapped(x->contig);
    }
    stats.stage.pair += clock.lap();
    // Each end carries its mate's score (ms) when duplicates are to be marked.
    auto score_of = [&](const ReadBatch& r) -> int64_t {
      if (!records.mate_scores) return -1;
      return duplicate_score(reinterpret_cast<const uint8_t*>(qual_of(r, i)),
                             static_cast<size_t>(len_of(r, i)), 33);
    };
    append_read_records(ctx, r1.names[i], seq_of(r1, i), qual_of(r1, i), len_of(r1, i), h1[i],
                        pc.i1, s1 ? &*s1 : nullptr, b, true, flags | BAM_FREAD1, tlen,
                        score_of(*r2), tags_of(r1, i, tags1), out);
    append_read_records(ctx, r2->names[i], seq_of(*r2, i), qual_of(*r2, i), len_of(*r2, i),
                        h2[i], pc.i2, s2 ? &*s2 : nullptr, a, true, flags | BAM_FREAD2, -tlen,
                        score_of(r1), tags_of(*r2, i, tags2), out);
    stats.stage.records += clock.lap();
  }
}

}  // namespace gms
