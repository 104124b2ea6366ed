// FASTQ files to a sorted, indexed BAM: reading, aligning on worker threads and writing in input
// order, so that output never depends on the thread count or the batch size.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "gmsaccel/align.hpp"
#include "gmsaccel/bam_writer.hpp"

namespace gms {

// From this many threads on, each compressed FASTQ file also gets an inflating thread of its own.
constexpr int kInflateAheadThreads = 4;

struct PipelineCheckpoint;

struct PipelineOptions {
  int threads = 1;
  size_t batch_reads = 10000;  // reads (pairs) per batch
  // RG tag values: one per input file (a sample's lanes), or one for every file; none: no RG.
  std::vector<std::string> read_groups;
  BamWriterOptions writer;
  // Pairs are aligned with this model instead of one estimated from the leading pairs: a shard
  // of a larger input uses the model of the input's start, so that its records are the same.
  std::optional<InsertModel> insert_model;
  // ms tags (the mate's score) on paired records even without marking here: a shard's part is
  // marked later, when the parts are merged.
  bool mate_scores = false;
  bool copy_comments = false;  // FASTQ comments (SAM tags) onto the records, as bwa mem -C
  // How messages about a read name it: its file (instead of the path read, e.g. a shard's
  // scratch copy) and its record number (counting records_before earlier ones).
  std::string r1_name, r2_name;
  uint64_t records_before = 0;
  // The mates' files were cut from one interleaved file: their k-th records are its
  // (records_before + 2k - 1)-th and (records_before + 2k)-th.
  bool from_interleaved = false;
  // r1 holds the pairs itself, each pair's two reads one after the other (r2 empty).
  bool interleaved = false;
  // Checkpoints (the writer keeps their spills, as it keeps resume_spills): at the end of the
  // batch that completes every checkpoint_pairs pairs (reads, unpaired), the writer's
  // checkpoint() is handed to on_checkpoint, and released once that returns (having recorded
  // it).
  uint64_t checkpoint_pairs = 0;
  std::function<void(const PipelineCheckpoint&)> on_checkpoint;
  // Going on from an earlier run's checkpoint: its first skip_pairs pairs are read and passed
  // over, and the writer adopts resume_spills (which hold their records) first. insert_model
  // should be the earlier run's.
  uint64_t skip_pairs = 0;
  std::vector<std::string> resume_spills;
  int64_t resume_duplicate_reach = 0;
};

struct PipelineCheckpoint {
  uint64_t pairs = 0;  // pairs (reads, unpaired) from the input's start, skipped ones included
  AlignStats stats;    // of this run's pairs so far (not the skipped ones)
  InsertModel model;   // the one the pairs are aligned with
  SpillCheckpoint spills;
};

struct PipelineResult {
  AlignStats stats;
  InsertModel model;
  DuplicateStats duplicates;  // with options.writer.mark_duplicates
  int64_t duplicate_reach = 0;  // the writer's (sorted output), for merging the BAM as a part
  double seconds = 0;
  // Wall seconds of the writer's close() after the last batch: the sorted output's final merge,
  // serialising, compressing and indexing, which no other work overlaps.
  double close_seconds = 0;
  // The sort's spills: bytes written (folds included), and the most on disk at once.
  uint64_t spilled_bytes = 0, spill_peak_bytes = 0;
  // Wall seconds the writing path spent taking and recording checkpoints (workers wait).
  double checkpoint_seconds = 0;
};

// The reads are r1_paths' files one after the other (a sample's lanes), paired with r2_paths'
// (the same number of files, or none): the same records as one file of them all, when the
// first file holds the insert-size model's leading pairs. progress(reads_done) is called from
// the writing thread after each batch (may be empty).
PipelineResult align_fastq_files(const Aligner& aligner, const std::vector<std::string>& r1_paths,
                                 const std::vector<std::string>& r2_paths,
                                 const std::string& out_path, const std::string& header_text,
                                 const PipelineOptions& options,
                                 const std::function<void(uint64_t)>& progress);

}  // namespace gms
