// Read alignment: seeds -> diagonal chains -> banded extension -> pairing -> MAPQ -> records.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <htslib/sam.h>

#include "gmsaccel/fastq.hpp"
#include "gmsaccel/index.hpp"
#include "gmsaccel/record_batch.hpp"
#include "gmsaccel/scoring.hpp"
#include "gmsaccel/simd.hpp"
#include "gmsaccel/stage_clock.hpp"

namespace gms {

struct AlignOptions {
  Scoring scoring;
  int32_t min_score = 30;          // alignments scoring lower are not reported
  int32_t max_candidates = 8;      // chains extended per read
  int32_t max_diag_gap = 24;       // anchors further apart in diagonal start a new chain
  int32_t max_indel_gap = 64;      // chains of disjoint read parts this close in diagonal join
  int32_t band_padding = 8;        // extra diagonals either side of a chain's span
  int32_t max_half_band = 64;      // widest extension band is 2 * this + 1
  int32_t unpaired_penalty = 17;   // cost of not pairing two ends, in score units
  int32_t min_supplementary = 30;  // clipped length that may carry a supplementary alignment
  int32_t max_rescue = 2;          // mate rescues tried per end
  int32_t insert_model_pairs = 10000;  // first pairs used to estimate the insert-size model
  SimdLevel simd = SimdLevel::Scalar;
  int device = -1;              // GPU index for extension (the registered backend); -1: CPU
  bool device_emulate = false;  // GPU code path with host-executed threads (testing)
};

// What records carry beyond the alignment itself.
struct RecordOptions {
  std::string read_group;    // RG tag value, empty for none
  bool mate_scores = false;  // ms tags on paired records (the mate's score, for markdup.hpp)
  bool copy_comments = false;  // each read's FASTQ comment as SAM tags (bwa mem -C)
};

// One alignment of a read. Coordinates are 0-based; the query interval refers to the read in the
// aligned orientation (reverse-complemented when rev).
struct Hit {
  int32_t contig = -1;
  int64_t pos = 0, end = 0;  // reference interval [pos, end)
  bool rev = false;
  int32_t score = 0;
  int32_t q_begin = 0, q_end = 0;
  int32_t mapq = 0;
  int32_t nm = 0;
  int32_t sub_score = 0;  // best score of another placement of the same read part (XS)
  int32_t cover = 0;       // read bases its chain's seeds covered (0: found by mate rescue)
  int32_t unexplored = 0;  // largest cover of a chain of this read left unextended (cap)
  // read's minimizers too frequent to index (counted only when all its chains were thin; -1:
  // not counted)
  int32_t filtered_seeds = 0;
  bool crowded = false;    // best hit only: other copies may have gone unseen (finish_hits)
  std::vector<uint32_t> cigar;  // BAM encoding, soft clips included
  std::string md;
};

// SAM text of a BAM-encoded CIGAR.
std::string cigar_string(const std::vector<uint32_t>& cigar);

struct InsertModel {
  bool valid = false;
  double mean = 0, sd = 0;
  int64_t low = 0, high = 0;  // proper-pair bounds on the template length
  uint64_t pairs_used = 0;
};

// Thread-seconds by stage, summed over the threads that ran it: where a run's time goes. Stages
// are timed per batch (records and pairing per read pair: two clock reads, ~50 ns, against tens
// of microseconds of work).
struct StageSeconds {
  double read = 0;     // FASTQ decompression and parsing
  double seed = 0;     // minimizers, anchors, chains, placements
  double extend = 0;   // reference windows, the extension kernel (CPU or GPU), hits
  double pair = 0;     // MAPQ, mate rescue planning, pair choice, supplementary alignments
  double records = 0;  // BAM records
  double write = 0;    // sorting, spilling, compression, the final merge and index
  void add(const StageSeconds& o) {
    read += o.read; seed += o.seed; extend += o.extend; pair += o.pair; records += o.records;
    write += o.write;
  }
  template <class F>
  void each(F&& f) const {  // f(name, seconds) for every stage, in pipeline order
    f("read", read); f("seed", seed); f("extend", extend); f("pair", pair);
    f("records", records); f("write", write);
  }
};

struct AlignStats {
  uint64_t reads = 0, mapped = 0, properly_paired = 0, supplementary = 0, rescued = 0;
  uint64_t extend_jobs = 0, ungapped_accepted = 0, cells = 0;
  uint64_t gpu_seeded_reads = 0;  // reads whose anchors came from the GPU seed kernel
  uint64_t gpu_extend_fallbacks = 0;  // extension batches the GPU had no room for (CPU ran them)
  // Mapped records (primary and supplementary) by contig, as a BAM index's statistics count
  // them: what a CRAM's index cannot tell.
  std::vector<uint64_t> mapped_by_contig;
  StageSeconds stage;
  void count_mapped(int32_t contig) {
    if (contig < 0) return;
    if (static_cast<size_t>(contig) >= mapped_by_contig.size()) {
      mapped_by_contig.resize(static_cast<size_t>(contig) + 1, 0);
    }
    ++mapped_by_contig[static_cast<size_t>(contig)];
  }
  void add(const AlignStats& o) {
    reads += o.reads; mapped += o.mapped; properly_paired += o.properly_paired;
    supplementary += o.supplementary; rescued += o.rescued; extend_jobs += o.extend_jobs;
    ungapped_accepted += o.ungapped_accepted; cells += o.cells;
    gpu_seeded_reads += o.gpu_seeded_reads;
    gpu_extend_fallbacks += o.gpu_extend_fallbacks;
    if (o.mapped_by_contig.size() > mapped_by_contig.size()) {
      mapped_by_contig.resize(o.mapped_by_contig.size(), 0);
    }
    for (size_t i = 0; i < o.mapped_by_contig.size(); ++i) {
      mapped_by_contig[i] += o.mapped_by_contig[i];
    }
    stage.add(o.stage);
  }
};

class Aligner {
 public:
  Aligner(const Index& index, const AlignOptions& options) : index_(index), opt_(options) {}

  // All alignments of one read, best first; the first carries the MAPQ of a single-end mapping.
  std::vector<Hit> map(const std::string& seq) const;

  // Single-end hits of many reads (best first for each), batched through the extension kernel.
  std::vector<std::vector<Hit>> map_batch(const ReadBatch& reads) const;

  // Single-end hits of each end of a batch of pairs: the first stage of align_batch, exposed so
  // that the pairs which estimate the insert-size model are aligned only once.
  struct PairHits {
    std::vector<std::vector<Hit>> h1, h2;
  };
  // With threads > 1 the reads are split over that many threads (the hits are per read, so
  // the result is the same): the leading pairs are mapped before any other batch can start.
  PairHits map_pairs(const ReadBatch& r1, const ReadBatch& r2, AlignStats& stats,
                     int threads = 1) const;

  // Estimates the insert-size model from pairs whose ends map uniquely.
  static InsertModel estimate_insert_model(const PairHits& hits);

  // Aligns a batch of single reads (r2 == nullptr) or pairs and appends their BAM records to
  // out. Records of read i precede those of read i+1; R1 precedes R2.
  // `hits`, when given, is map_pairs' result for these very pairs (it is consumed).
  void align_batch(const ReadBatch& r1, const ReadBatch* r2, const InsertModel& model,
                   const RecordOptions& records, RecordBatch& out,
                   AlignStats& stats, PairHits* hits = nullptr) const;

  const Index& index() const { return index_; }
  const AlignOptions& options() const { return opt_; }

 private:
  const Index& index_;
  AlignOptions opt_;
};

}  // namespace gms
