// Structures passed between the alignment stages (seed, chain, extend, pair, record).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gmsaccel/align.hpp"
#include "gmsaccel/extend_batch.hpp"
#include "gmsaccel/index.hpp"
#include "gmsaccel/minimizer.hpp"
#include "gmsaccel/seed.hpp"
#include "gmsaccel/seed_batch.hpp"

namespace gms {

// Anchors of one orientation whose diagonals lie close together: one candidate placement.
struct Chain {
  uint32_t rev = 0;
  int64_t diag_lo = 0, diag_hi = 0;
  int32_t cover = 0;  // read bases covered by the chain's k-mers
  int32_t q_lo = 0, q_hi = 0;
  int32_t n_anchors = 0;
};

// chain.cpp: chains best first (cover descending), at most opt.max_candidates. Returns the
// largest cover among chains left out only because of that cap (0 when none were).
int32_t chain_anchors(std::vector<Anchor>& anchors, int k, const AlignOptions& opt,
                      std::vector<Chain>& out);

// A read as base codes on both strands: a view into its batch's EncodedReads.
struct EncodedRead {
  const uint8_t* fwd = nullptr;
  const uint8_t* rev = nullptr;
  int32_t n = 0;
  int32_t len() const { return n; }
  const uint8_t* strand(bool r) const { return r ? rev : fwd; }
};
// A batch's reads encoded into one buffer (two allocations per batch, not two per read).
struct EncodedReads {
  std::vector<uint8_t> codes;  // every read's forward codes, then every read's reverse complement
  std::vector<EncodedRead> reads;

  EncodedReads() = default;
  // Moving keeps the views valid (the buffer stays where it is); a copy would not.
  EncodedReads(EncodedReads&&) = default;
  EncodedReads& operator=(EncodedReads&&) = default;
  EncodedReads(const EncodedReads&) = delete;
  EncodedReads& operator=(const EncodedReads&) = delete;
};
// Reads i in [0, n) are seqs[offsets[i] .. offsets[i + 1]).
void encode_reads(const char* seqs, const uint64_t* offsets, size_t n, EncodedReads& out);

// extend stage (align.cpp): a placement to align, either from a chain or from mate rescue.
struct Placement {
  uint32_t read;      // index of the read in its batch
  uint32_t rev;
  int32_t contig;
  int64_t window;     // contig coordinate of target base 0
  int32_t band;
  bool rescued = false;
  int32_t cover = 0;       // the chain's cover (0 for a mate rescue)
  int32_t unexplored = 0;  // chain_anchors' largest cover left out by the candidate cap
  int32_t filtered_seeds = 0;  // the read's minimizers too frequent to index (-1: not counted)
};

// Runs extension for the placements, returning one hit (score < min_score: contig = -1) each.
void extend_placements(const Index& index, const AlignOptions& opt,
                       const std::vector<EncodedRead>& reads,
                       const std::vector<Placement>& placements, std::vector<Hit>& hits,
                       AlignStats& stats);

// Removes duplicates (same contig and strand, overlapping reference) keeping the best, sorts
// best first, and fills sub_score and the single-end MAPQ of the first hit.
void finish_hits(std::vector<Hit>& hits, const AlignOptions& opt, int k);
// Seeds covering less than this many read bases are thin (finish_hits).
int32_t thin_cover(int k, int32_t read_len);
// How many of the read's minimizers the index left out as too frequent.
int32_t filtered_minimizers(const Index& index, const uint8_t* seq, int32_t len);
int32_t mapq_from_scores(int32_t best, int32_t sub, int32_t aligned_len, const Scoring& sc,
                         int k);

// pair.cpp
InsertModel estimate_insert(const std::vector<std::vector<Hit>>& h1,
                            const std::vector<std::vector<Hit>>& h2);
// Template length between two hits (signed, SAM TLEN convention for the first), 0 if unpaired.
int64_t template_length(const Hit& a, const Hit& b);

struct PairChoice {
  int32_t i1 = -1, i2 = -1;  // chosen hit per end, -1 when unmapped
  bool proper = false;
  int32_t mapq1 = 0, mapq2 = 0;
};
// Mate-rescue placements for a pair (pair index p) given each end's hits.
void rescue_placements(const Index& index, const AlignOptions& opt, const InsertModel& model,
                       uint32_t p, const EncodedRead& r1, const EncodedRead& r2,
                       const std::vector<Hit>& h1, const std::vector<Hit>& h2,
                       std::vector<Placement>& out1, std::vector<Placement>& out2);
// A rescue window can hold more than one copy of a tandem repeat: the parts of pl's window
// beside what its rescue found (overlapping that by at most half a read) are searched too, so
// that a second copy competes with the first (pairing weighs their inserts, MAPQ sees both).
void rescue_remainders(const Placement& pl, const Hit& found, int32_t read_len,
                       std::vector<Placement>& out);
PairChoice choose_pair(const AlignOptions& opt, const InsertModel& model,
                       const std::vector<Hit>& h1, const std::vector<Hit>& h2);
bool is_proper(const InsertModel& model, const Hit& a, const Hit& b, int64_t* tlen = nullptr);

// record.cpp
struct RecordContext {
  const Index* index;
  const std::string* read_group;
};
// comment_tags.cpp: a FASTQ comment's SAM tags (TAG:TYPE:VALUE, tab-separated), encoded as BAM
// stores them into out. Throws InputError, naming the field, for one that is not a valid SAM tag
// or that repeats one the aligner writes (RG included).
void comment_tags(const std::string& comment, std::string& out);

// Appends the records of one read (primary or unmapped, then supplementary).
// mate may be nullptr (single-end or mate unmapped); flags carries BAM_FPAIRED etc. as known.
// mate_score >= 0 adds it as the ms tag (the mate's duplicate_score) beside MC and MQ.
// extra_tags (encoded BAM tags, e.g. from comment_tags) go last on every record of the read.
void append_read_records(const RecordContext& ctx, const std::string& name, const char* seq,
                         const char* qual, int32_t len, const std::vector<Hit>& hits,
                         int32_t chosen, const Hit* supplementary, const Hit* mate,
                         bool mate_present, uint16_t pair_flags, int64_t tlen,
                         int64_t mate_score, const std::string& extra_tags, RecordBatch& out);

}  // namespace gms
