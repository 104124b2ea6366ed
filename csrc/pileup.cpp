// Reads for calling: region loads from an indexed BAM/CRAM, per-position counts and candidate
// alleles. See pileup.hpp for the contracts.
#include "gmsaccel/pileup.hpp"

#include <htslib/hts.h>
#include <htslib/kstring.h>
#include <htslib/sam.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <queue>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gmsaccel/bam_region_reader.hpp"
#include "gmsaccel/errors.hpp"
#include "gmsaccel/scoring.hpp"

namespace gms {

namespace {

constexpr uint8_t kMissingQual = 0xff;  // BAM's "no qualities" marker
constexpr uint8_t kDefaultQual = 30;    // assumed when a record has no qualities
// Positions piled up at a time while finding candidates.
constexpr int64_t kCandidateWindow = 65536;

// htslib's 4-bit base codes (=ACMGRSVTWYHKDBN) to A=0 C=1 G=2 T=3, anything ambiguous N.
constexpr uint8_t kNt16ToCode[16] = {4, 0, 1, 4, 2, 4, 4, 4, 3, 4, 4, 4, 4, 4, 4, 4};

std::string base_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  const size_t dot = name.find('.');
  if (dot != std::string::npos && dot > 0) name.resize(dot);
  return name;
}

// Consumes reference bases?
inline bool consumes_ref(int op) { return bam_cigar_type(op) & 2; }

}  // namespace

struct AlignmentSource::Impl {
  std::string path;
  samFile* fp = nullptr;
  sam_hdr_t* hdr = nullptr;
  hts_idx_t* idx = nullptr;
  bam1_t* rec = nullptr;
  std::unique_ptr<BamRegionReader> fast;  // ISA-L reads of BAM regions, where used
  std::vector<ContigDesc> contigs;
  std::string sample;

  bool load_pass(int tid, hts_itr_t* itr, const ReadFilter& filter, bool use_fast,
                 std::vector<ShardRead>& out, ReadStore& store, LoadStats& stats);

  ~Impl() {
    if (rec) bam_destroy1(rec);
    if (idx) hts_idx_destroy(idx);
    if (hdr) sam_hdr_destroy(hdr);
    if (fp) sam_close(fp);
  }
};

AlignmentSource::AlignmentSource(const std::string& path, const std::string& reference_fasta,
                                 int decompression_threads, bool fast_inflate)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.path = path;
  // Check first so that the message is ours rather than htslib's stderr line.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw InputError("cannot open " + path + ": " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw InputError("cannot open " + path + ": it is a directory");
  s.fp = sam_open(path.c_str(), "r");
  if (!s.fp) throw InputError("cannot open " + path + ": " + std::strerror(errno));
  const htsFormat* fmt = hts_get_format(s.fp);
  if (fmt->category != sequence_data ||
      (fmt->format != sam && fmt->format != bam && fmt->format != cram))
    throw InputError(path + " is not a SAM, BAM or CRAM file");
  if (fmt->format == cram) {
    if (reference_fasta.empty()) throw InputError("CRAM " + path + " needs the reference (-f)");
    // hts_set_fai_filename sets CRAM_OPT_REFERENCE and loads (or builds) the .fai.
    if (hts_set_fai_filename(s.fp, reference_fasta.c_str()) != 0)
      throw InputError("cannot use reference " + reference_fasta + " for " + path);
  }
  if (decompression_threads > 1) hts_set_threads(s.fp, decompression_threads);
  s.hdr = sam_hdr_read(s.fp);
  if (!s.hdr) throw InputError("cannot read the header of " + path);

  // A sort order that rules out region queries; checked before the index because an unsorted
  // file cannot be indexed anyway and sorting is what the user has to do first.
  kstring_t ks = KS_INITIALIZE;
  if (sam_hdr_find_tag_hd(s.hdr, "SO", &ks) == 0 && ks.s &&
      (std::strcmp(ks.s, "unsorted") == 0 || std::strcmp(ks.s, "queryname") == 0)) {
    ks_free(&ks);
    throw InputError(path + " is not coordinate-sorted: sort it with 'samtools sort'");
  }
  ks_clear(&ks);
  if (sam_hdr_find_tag_pos(s.hdr, "RG", 0, "SM", &ks) == 0 && ks.s && ks.l > 0) s.sample = ks.s;
  ks_free(&ks);
  if (s.sample.empty()) s.sample = base_name(path);

  s.idx = sam_index_load3(s.fp, path.c_str(), nullptr, HTS_IDX_SILENT_FAIL);
  if (!s.idx)
    throw InputError(path + " has no index: run 'samtools index " + path + "'");

  const int n = sam_hdr_nref(s.hdr);
  s.contigs.reserve(n);
  for (int i = 0; i < n; ++i)
    s.contigs.push_back({sam_hdr_tid2name(s.hdr, i), static_cast<int64_t>(sam_hdr_tid2len(s.hdr, i))});
  s.rec = bam_init1();
  if (!s.rec) throw std::bad_alloc();
  if (fast_inflate && decompression_threads <= 2 && fmt->format == bam &&
      fmt->compression == bgzf && BamRegionReader::available())
    s.fast = std::make_unique<BamRegionReader>(path, sam_hdr_nref(s.hdr));
}

AlignmentSource::~AlignmentSource() = default;

const std::string& AlignmentSource::path() const { return impl_->path; }
const std::vector<ContigDesc>& AlignmentSource::contigs() const { return impl_->contigs; }
const std::string& AlignmentSource::sample() const { return impl_->sample; }
const char* AlignmentSource::inflater() const { return impl_->fast ? "isa-l" : "htslib"; }

int AlignmentSource::contig_id(const std::string& name) const {
  for (size_t i = 0; i < impl_->contigs.size(); ++i)
    if (impl_->contigs[i].name == name) return static_cast<int>(i);
  return -1;
}

namespace {

// Sets to 0 the qualities of query bases of `r` aligned within [beg, end) of the reference,
// including insertions strictly inside that span.
void mask_span(ShardRead& r, int64_t beg, int64_t end) {
  int64_t ref = r.pos;
  size_t q = 0;
  for (uint32_t c : r.cigar) {
    const int op = bam_cigar_op(c);
    const int64_t len = bam_cigar_oplen(c);
    const int type = bam_cigar_type(op);
    if (type == 3) {  // M, =, X
      const int64_t a = std::max(ref, beg), b = std::min(ref + len, end);
      for (int64_t p = a; p < b; ++p) r.qual[q + (p - ref)] = 0;
    } else if (type == 1 && ref > beg && ref < end) {  // I inside the span
      std::fill(r.qual.begin() + q, r.qual.begin() + q + len, 0);
    }
    if (type & 1) q += len;
    if (type & 2) ref += len;
    if (ref >= end) break;
  }
}

struct PendingMate {
  size_t index;      // into the output vector
  int64_t mate_pos;  // where the other mate starts: past it, it can no longer arrive
  uint16_t which;    // BAM_FREAD1 / BAM_FREAD2 bits of the pending read
};

}  // namespace

// One pass over the query's records into out (from out's current end) and store, through the
// ISA-L reader when use_fast; false when that reader met a record it leaves to htslib (the
// caller then drops what this pass added and runs another, use_fast off).
bool AlignmentSource::Impl::load_pass(int tid, hts_itr_t* itr, const ReadFilter& filter,
                                      bool use_fast, std::vector<ShardRead>& out,
                                      ReadStore& store, LoadStats& stats) {
  bam1_t* b = rec;
  if (use_fast) fast->start(itr);
  // Ends of accepted reads still overlapping the current position (min-heap), for max_depth.
  std::priority_queue<int64_t, std::vector<int64_t>, std::greater<int64_t>> active;
  std::unordered_map<std::string, PendingMate> pending;
  size_t sweep_at = 4096;  // prune stale pending mates when the map grows past this
  int64_t last_pos = -1;
  std::string last_name;
  int ret;  // sam_itr_next's: >= 0 a record, -1 the end, below that an error
  bool restart = false;
  for (;;) {
    if (!use_fast) {
      ret = sam_itr_next(fp, itr, b);
    } else {
      const BamRegionReader::Next got = fast->next(b);
      restart = got == BamRegionReader::Next::unsupported;
      ret = got == BamRegionReader::Next::record ? 0
            : got == BamRegionReader::Next::end  ? -1
                                                 : -2;
    }
    if (ret < 0) break;
    const bam1_core_t& c = b->core;
    const char* qname = bam_get_qname(b);
    if (c.pos < last_pos)
      throw InputError(path + ": read " + qname + " at " + contigs[tid].name + ":" +
                       std::to_string(c.pos + 1) + " comes after " + last_name + " at " +
                       std::to_string(last_pos + 1) +
                       ": the file is not coordinate-sorted; sort it with 'samtools sort'");
    last_pos = c.pos;
    last_name = qname;
    // Records without a CIGAR have no aligned span (e.g. unmapped reads placed by their mate).
    if ((c.flag & filter.skip_flags) || c.qual < filter.min_mapq || c.n_cigar == 0) {
      ++stats.filtered;
      continue;
    }
    // The CIGAR's span (bam_endpos's for mapped reads; an unmapped-flagged read kept by the
    // flags still piles up along its CIGAR, so its span must say so too)
    const int64_t rend =
        c.pos + std::max<int64_t>(bam_cigar2rlen(c.n_cigar, bam_get_cigar(b)), 1);
    while (!active.empty() && active.top() <= c.pos) active.pop();
    if (filter.max_depth > 0 && active.size() >= static_cast<size_t>(filter.max_depth)) {
      ++stats.depth_capped;
      continue;
    }
    active.push(rend);

    ShardRead r;
    r.pos = c.pos;
    r.end = rend;
    r.mapq = c.qual;
    r.rev = c.flag & BAM_FREVERSE;
    if (c.flag & BAM_FPAIRED)
      r.pair_orientation = static_cast<int8_t>(r.rev != static_cast<bool>(c.flag & BAM_FREAD2));
    if (!filter.groups.empty()) {  // (a sample's lanes told apart: their contamination)
      const uint8_t* rg = bam_aux_get(b, "RG");
      if (const char* name = rg ? bam_aux2Z(rg) : nullptr) {
        const auto at = std::find(filter.groups.begin(), filter.groups.end(), name);
        if (at != filter.groups.end()) r.group = static_cast<int16_t>(at - filter.groups.begin());
      }
    }
    const uint32_t* cig = bam_get_cigar(b);
    const ArrayRef<uint32_t> cigar = store.alloc_array<uint32_t>(c.n_cigar);
    std::memcpy(cigar.data(), cig, c.n_cigar * sizeof(uint32_t));
    r.cigar = {cigar.data(), cigar.size()};
    const int64_t qlen = bam_cigar2qlen(c.n_cigar, cig);
    r.seq = store.alloc_array<uint8_t>(static_cast<size_t>(qlen));
    r.qual = store.alloc_array<uint8_t>(static_cast<size_t>(qlen));
    if (c.l_qseq == 0) {
      // SEQ "*": aligned but no bases; keep the span (depth) with no base evidence.
      std::fill(r.seq.begin(), r.seq.end(), kBaseN);
      std::fill(r.qual.begin(), r.qual.end(), 0);
    } else {
      if (c.l_qseq != qlen)
        throw InputError(path + ": read " + qname + " has " + std::to_string(c.l_qseq) +
                         " bases but its CIGAR covers " + std::to_string(qlen));
      const uint8_t* seq = bam_get_seq(b);
      const uint8_t* qual = bam_get_qual(b);
      // Two bases per packed byte, through plain pointers (per-base vector access was most of
      // this loop's time).
      uint8_t* __restrict__ codes = r.seq.data();
      uint8_t* __restrict__ quals = r.qual.data();
      for (int64_t i = 0; i + 1 < qlen; i += 2) {
        const uint8_t two = seq[i >> 1];
        codes[i] = kNt16ToCode[two >> 4];
        codes[i + 1] = kNt16ToCode[two & 15];
      }
      if (qlen & 1) codes[qlen - 1] = kNt16ToCode[seq[qlen >> 1] >> 4];
      const int min_q = filter.min_baseq;
      if (qual[0] == kMissingQual) {
        std::memset(quals, kDefaultQual < min_q ? 0 : kDefaultQual, static_cast<size_t>(qlen));
      } else {
        for (int64_t i = 0; i < qlen; ++i) quals[i] = qual[i] < min_q ? 0 : qual[i];
      }
    }

    // Mate overlap: the mate loaded first keeps its bases, this one loses the shared span.
    const size_t index = out.size();
    const uint16_t which = c.flag & (BAM_FREAD1 | BAM_FREAD2);
    const bool mate_here = (c.flag & BAM_FPAIRED) && !(c.flag & BAM_FMUNMAP) && c.mtid == tid &&
                           which != 0 && which != (BAM_FREAD1 | BAM_FREAD2);
    bool found = false;
    // Only a read whose mate starts at or before it can find that mate already loaded.
    if (mate_here && c.mpos <= c.pos && !pending.empty()) {
      auto it = pending.find(qname);
      if (it != pending.end() && it->second.which != which) {
        const ShardRead& mate = out[it->second.index];
        if (mate.pos < r.end && r.pos < mate.end) mask_span(r, mate.pos, mate.end);
        pending.erase(it);
        found = true;
      }
    }
    // The mate comes later and starts inside this read: it will overlap, so wait for it.
    const bool keep_pending = !found && mate_here && c.mpos >= c.pos && c.mpos < rend;
    out.push_back(std::move(r));
    if (keep_pending) {
      pending[qname] = {index, c.mpos, which};
      if (pending.size() > sweep_at) {
        // Mates filtered out never arrive: drop entries whose mate position has passed.
        for (auto it = pending.begin(); it != pending.end();)
          it = it->second.mate_pos < c.pos ? pending.erase(it) : std::next(it);
        sweep_at = std::max<size_t>(4096, pending.size() * 2);
      }
    }
  }
  if (restart) return false;
  if (ret < -1)
    throw InputError(path + ": corrupt or truncated record after " +
                     (last_name.empty() ? std::string("the start of ") + contigs[tid].name
                                        : "read " + last_name) +
                     (use_fast ? " (" + fast->problem() + ")" : std::string()));
  return true;
}

LoadStats AlignmentSource::load(int tid, int64_t start, int64_t end, const ReadFilter& filter,
                                std::vector<ShardRead>& out, ReadStore& store) {
  Impl& s = *impl_;
  LoadStats stats;
  if (tid < 0 || tid >= static_cast<int>(s.contigs.size()))
    throw InputError("contig id " + std::to_string(tid) + " is not in " + s.path);
  start = std::max<int64_t>(start, 0);
  end = std::min(end, s.contigs[tid].length);
  if (start >= end) return stats;

  hts_itr_t* itr = sam_itr_queryi(s.idx, tid, start, end);
  if (!itr)
    throw InputError("cannot query " + s.contigs[tid].name + " in " + s.path + " (bad index?)");
  // RAII for the iterator: every throw below must free it.
  std::unique_ptr<hts_itr_t, void (*)(hts_itr_t*)> itr_guard(itr, hts_itr_destroy);

  const size_t first_index = out.size();  // out is appended to
  const ReadStore::Mark store_mark = store.mark();
  // Through ISA-L where this source has it; a record that reader leaves to htslib restarts the
  // load there.
  if (!s.load_pass(tid, itr, filter, s.fast != nullptr, out, store, stats)) {
    out.erase(out.begin() + static_cast<std::ptrdiff_t>(first_index), out.end());
    store.rewind_to(store_mark);
    stats = LoadStats{};
    s.load_pass(tid, itr, filter, false, out, store, stats);
  }
  stats.loaded = out.size() - first_index;
  return stats;
}

namespace {

// pileup() over the reads [first, last).
void pileup_range(const ShardRead* first, const ShardRead* last, int64_t start, int64_t end,
                  Pileup& out) {
  const int64_t n = std::max<int64_t>(0, end - start);
  out.start = start;
  out.n = n;
  out.base_counts.assign(n * 5, 0);
  out.base_qual_sums.assign(n * 5, 0);
  out.deletions.assign(n, 0);
  out.insertions.assign(n, 0);
  out.depth.assign(n, 0);
  if (n == 0) return;
  // Plain pointers: through the vectors the compiler reloads every base pointer per base.
  uint32_t* __restrict__ depth = out.depth.data();
  uint32_t* __restrict__ counts = out.base_counts.data();
  uint32_t* __restrict__ qual_sums = out.base_qual_sums.data();
  uint32_t* __restrict__ deletions = out.deletions.data();
  uint32_t* __restrict__ insertions = out.insertions.data();
  for (const ShardRead* it = first; it != last; ++it) {
    const ShardRead& r = *it;
    if (r.end <= start || r.pos >= end) continue;
    const uint8_t* __restrict__ seq = r.seq.data();
    const uint8_t* __restrict__ qual = r.qual.data();
    int64_t ref = r.pos;
    size_t q = 0;
    int64_t last_ins = -2;  // count one insertion per read and position (I P I)
    for (uint32_t c : r.cigar) {
      const int op = bam_cigar_op(c);
      const int64_t len = bam_cigar_oplen(c);
      const int type = bam_cigar_type(op);
      if (type == 3) {  // M, =, X
        const int64_t a = std::max(ref, start), b = std::min(ref + len, end);
        for (int64_t p = a; p < b; ++p) {
          const size_t i = p - start, k = q + (p - ref);
          ++depth[i];
          if (qual[k] > 0) {
            counts[i * 5 + seq[k]] += 1;
            qual_sums[i * 5 + seq[k]] += qual[k];
          }
        }
      } else if (op == BAM_CDEL) {
        const int64_t a = std::max(ref, start), b = std::min(ref + len, end);
        for (int64_t p = a; p < b; ++p) {
          ++depth[p - start];
          ++deletions[p - start];
        }
      } else if (op == BAM_CINS) {
        const int64_t p = ref - 1;  // the base before the insertion
        if (p != last_ins && p >= start && p < end) ++insertions[p - start];
        last_ins = p;
      }
      if (type & 1) q += len;
      if (type & 2) ref += len;
      if (ref > end) break;
    }
  }
}

}  // namespace

void pileup(const std::vector<ShardRead>& reads, int64_t start, int64_t end, Pileup& out) {
  pileup_range(reads.data(), reads.data() + reads.size(), start, end, out);
}

// While the alleles end in the same base drop it, extending both on the left from the reference
// when one becomes empty; then drop shared leading bases while both keep at least one.
void normalise(int64_t& pos, std::string& ref, std::string& alt, const uint8_t* ref_codes,
               int64_t ref_start) {
  for (;;) {
    if (ref.empty() || alt.empty()) {
      if (pos <= ref_start) break;
      --pos;
      const char base = base_letter(ref_codes[pos - ref_start]);
      ref.insert(ref.begin(), base);
      alt.insert(alt.begin(), base);
    } else if (ref.back() == alt.back() && (ref.size() > 1 || alt.size() > 1)) {
      ref.pop_back();
      alt.pop_back();
    } else {
      break;
    }
  }
  size_t trim = 0;
  while (trim + 1 < ref.size() && trim + 1 < alt.size() && ref[trim] == alt[trim]) ++trim;
  if (trim) {
    ref.erase(0, trim);
    alt.erase(0, trim);
    pos += static_cast<int64_t>(trim);
  }
}

namespace {

using AlleleKey = std::tuple<int64_t, std::string, std::string>;

// An insertion too long for the aligner to write (it soft-clips the read there instead): a clip
// of at least kMinClip bases whose far part rejoins the reference beside the aligned part
// (kRejoin bases, at most one mismatch) holds the inserted bases before that part. The shortest
// such insertion, up to kMaxClipInsertion bases, is reported as sink(anchor, ref, alt).
constexpr int64_t kMinClip = 12, kRejoin = 10, kMaxClipInsertion = 60;

template <class Sink>
void clipped_insertions(const ShardRead& r, const uint8_t* ref_codes, int64_t ref_start,
                        int64_t ref_end, Sink&& sink) {
  const size_t nc = r.cigar.size();
  if (nc < 2) return;
  const int64_t n = static_cast<int64_t>(r.seq.size());
  // Whether read bases [q, q + m) match reference [p, p + m) but for at most one base.
  auto rejoins = [&](int64_t q, int64_t p, int64_t m) {
    if (p < ref_start || p + m > ref_end) return false;
    int misses = 0;
    for (int64_t i = 0; i < m; ++i) {
      const uint8_t b = r.seq[q + i], g = ref_codes[p + i - ref_start];
      if (b > 3 || g > 3 || b != g) {
        if (++misses > 1) return false;
      }
    }
    return true;
  };
  // The insertion of read bases [q0, q1) before reference position `before`.
  auto emit = [&](int64_t before, int64_t q0, int64_t q1) {
    std::string ra(1, base_letter(ref_codes[before - 1 - ref_start])), aa = ra;
    for (int64_t i = q0; i < q1; ++i) aa.push_back(base_letter(r.seq[i]));
    sink(before - 1, std::move(ra), std::move(aa));
  };
  auto clip_of = [&](uint32_t op, uint32_t beside) -> int64_t {  // 0: no clip to read
    const int64_t c = bam_cigar_oplen(op);
    return bam_cigar_op(op) == BAM_CSOFT_CLIP && bam_cigar_type(bam_cigar_op(beside)) == 3 &&
                   c >= kMinClip && c <= n
               ? c
               : 0;
  };
  // The shortest insertion (0: none) of a c-base clip whose far part, the next
  // m = min(c - insertion, 2 kRejoin) bases, rejoins where rejoins_at(insertion, m) looks.
  auto shortest = [&](int64_t c, auto&& rejoins_at) -> int64_t {
    for (int64_t o = 1; o <= std::min(kMaxClipInsertion, c - kRejoin); ++o)
      if (rejoins_at(o, std::min<int64_t>(c - o, 2 * kRejoin))) return o;
    return 0;
  };
  // A clip after the aligned part, from reference position x: its far part rejoins at x.
  if (const int64_t c = clip_of(r.cigar[nc - 1], r.cigar[nc - 2])) {
    const int64_t q0 = n - c, x = r.end;
    if (r.qual[q0] > 0 && x - 1 >= ref_start) {
      const int64_t o =
          shortest(c, [&](int64_t ins, int64_t m) { return rejoins(q0 + ins, x, m); });
      if (o) emit(x, q0, q0 + o);
    }
  }
  // A clip before the aligned part, which starts at y: its far part rejoins just before y.
  if (const int64_t c = clip_of(r.cigar[0], r.cigar[1])) {
    const int64_t y = r.pos;
    if (r.qual[c - 1] > 0 && y - 1 >= ref_start) {
      const int64_t o =
          shortest(c, [&](int64_t ins, int64_t m) { return rejoins(c - ins - m, y - m, m); });
      if (o) emit(y, c - o, c);
    }
  }
}

}  // namespace

void find_candidates(const std::vector<ShardRead>& reads, const uint8_t* ref_codes,
                     int64_t ref_start, int64_t ref_end, int64_t start, int64_t end,
                     const CandidateOptions& opt, std::vector<CandidateAllele>& out,
                     const std::function<void(const Pileup&)>& each_window) {
  out.clear();
  start = std::max(start, ref_start);
  end = std::min(end, ref_end);
  if (start >= end) return;
  auto ref_char = [&](int64_t p) {
    return base_letter(ref_codes[p - ref_start]);
  };
  auto passes = [&](uint32_t support, uint32_t depth) {
    return support >= opt.min_support && support > 0 &&
           static_cast<double>(support) >= opt.min_fraction * depth;
  };

  // Indels from CIGARs, normalised so that the same event written differently by the aligner in
  // different reads merges. An event counts only when a neighbouring aligned base has quality > 0,
  // so that a mate's overlapping copy (masked by load) does not count the fragment twice.
  std::map<AlleleKey, uint32_t> indels;
  std::vector<AlleleKey> per_read;
  // A read's event (from its CIGAR or its clips), normalised; kept when it lands in [start, end).
  auto add_event = [&](int64_t pos, std::string ra, std::string aa) {
    normalise(pos, ra, aa, ref_codes, ref_start);
    if (pos >= start && pos < end && ra != aa)
      per_read.emplace_back(pos, std::move(ra), std::move(aa));
  };
  for (const ShardRead& r : reads) {
    if (r.end + 1 < start || r.pos > end + 1) continue;
    per_read.clear();
    int64_t ref = r.pos;
    size_t q = 0;
    const size_t nc = r.cigar.size();
    for (size_t ci = 0; ci < nc; ++ci) {
      const int op = bam_cigar_op(r.cigar[ci]);
      const int64_t len = bam_cigar_oplen(r.cigar[ci]);
      if ((op == BAM_CINS || op == BAM_CDEL) && len > 0 && len <= kMaxIndelLength) {
        const int64_t anchor = ref - 1;
        const int64_t after = op == BAM_CDEL ? ref + len : ref;
        if (anchor >= ref_start && after <= ref_end) {
          // Quality of the aligned query bases next to the event (0 when not aligned).
          const size_t qafter = op == BAM_CINS ? q + len : q;
          const bool prev_aligned = ci > 0 && bam_cigar_type(bam_cigar_op(r.cigar[ci - 1])) == 3;
          const bool next_aligned =
              ci + 1 < nc && bam_cigar_type(bam_cigar_op(r.cigar[ci + 1])) == 3;
          const bool evidence = (prev_aligned && q > 0 && r.qual[q - 1] > 0) ||
                                (next_aligned && qafter < r.qual.size() && r.qual[qafter] > 0);
          if (evidence) {
            std::string ra(1, ref_char(anchor)), aa = ra;
            if (op == BAM_CDEL) {
              for (int64_t p = ref; p < ref + len; ++p) ra.push_back(ref_char(p));
            } else {
              for (int64_t k = 0; k < len; ++k) aa.push_back(base_letter(r.seq[q + k]));
            }
            add_event(anchor, std::move(ra), std::move(aa));
          }
        }
      }
      const int type = bam_cigar_type(op);
      if (type & 1) q += len;
      if (type & 2) ref += len;
    }
    clipped_insertions(r, ref_codes, ref_start, ref_end, add_event);
    // One read supports an allele once, however many of its CIGAR events normalise onto it.
    std::sort(per_read.begin(), per_read.end());
    per_read.erase(std::unique(per_read.begin(), per_read.end()), per_read.end());
    for (auto& k : per_read) ++indels[k];
  }

  // The counts a window at a time: a whole shard's would be 52 bytes per position (50 MB for a
  // 1 Mbp shard), a window's a few MB. SNVs come straight from the counts (bases with quality > 0
  // only; reference N: no SNV); indels take their depth from the window holding their position.
  // Reads in position order (as load gives them) are piled up a window's worth at a time: those
  // starting in the window or at most the longest read's span before it.
  const bool by_pos =
      std::is_sorted(reads.begin(), reads.end(),
                     [](const ShardRead& a, const ShardRead& b) { return a.pos < b.pos; });
  int64_t max_span = 0;
  for (const ShardRead& r : reads) max_span = std::max(max_span, r.end - r.pos);
  const ShardRead* first = reads.data();
  const ShardRead* last = first;
  const ShardRead* const reads_end = reads.data() + reads.size();
  Pileup pile;
  // SNVs of a pileup: positions with no reads have no bases, so no support.
  auto find_snvs = [&]() {
    for (int64_t i = 0; i < pile.n; ++i) {
      if (pile.depth[i] == 0) continue;
      const int64_t p = pile.start + i;
      const uint8_t rb = ref_codes[p - ref_start];
      if (rb > 3) continue;
      for (uint8_t a = 0; a < 4; ++a) {
        if (a == rb) continue;
        const uint32_t support = pile.base_counts[i * 5 + a];
        if (!passes(support, pile.depth[i]) || pile.base_qual_sums[i * 5 + a] < opt.min_qual_sum)
          continue;
        CandidateAllele c;
        c.pos = p;
        c.ref = std::string(1, base_letter(rb));
        c.alt = std::string(1, base_letter(a));
        c.support = support;
        c.depth = pile.depth[i];
        out.push_back(std::move(c));
      }
    }
  };
  // The indels before `until`, their depth from the pileup (piled: it covers them) or 0.
  auto indel = indels.begin();
  auto find_indels = [&](int64_t until, bool piled) {
    for (; indel != indels.end() && std::get<0>(indel->first) < until; ++indel) {
      const auto& [key, support] = *indel;
      const int64_t pos = std::get<0>(key);
      // A read with an insertion right after a soft clip may not span the anchor itself.
      const uint32_t depth = std::max(piled ? pile.depth[pos - pile.start] : 0u, support);
      if (!passes(support, depth)) continue;
      CandidateAllele c;
      c.pos = pos;
      c.ref = std::get<1>(key);
      c.alt = std::get<2>(key);
      c.support = support;
      c.depth = depth;
      out.push_back(std::move(c));
    }
  };
  for (int64_t wstart = start; wstart < end; wstart += kCandidateWindow) {
    const int64_t wend = std::min(end, wstart + kCandidateWindow);
    if (by_pos) {
      while (first != reads_end && first->pos < wstart - max_span) ++first;
      last = std::max(last, first);
      while (last != reads_end && last->pos < wend) ++last;
    } else {
      last = reads_end;
    }
    if (each_window || !by_pos) {
      pileup_range(first, last, wstart, wend, pile);
      if (each_window) each_window(pile);
      find_snvs();
      find_indels(wend, true);
      continue;
    }
    // Only the stretches the reads cover are piled up: at low coverage, and off target for
    // exomes and panels, most of a window has no read, and clearing a window's counts (52 bytes
    // a position) would cost more than the reads. Indels left-aligned out of every read get
    // depth 0, as in a whole window's pileup.
    int64_t from = -1, to = -1;
    auto pile_stretch = [&]() {
      find_indels(from, false);
      pileup_range(first, last, from, to, pile);
      find_snvs();
      find_indels(to, true);
    };
    for (const ShardRead* r = first; r != last; ++r) {
      const int64_t s0 = std::max(r->pos, wstart), e0 = std::min(r->end, wend);
      if (e0 <= s0) continue;
      if (from >= 0 && s0 <= to) {
        to = std::max(to, e0);
        continue;
      }
      if (from >= 0) pile_stretch();
      from = s0;
      to = e0;
    }
    if (from >= 0) pile_stretch();
    find_indels(wend, false);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
}

}  // namespace gms
