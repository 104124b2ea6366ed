// Alignment output: coordinate-sorted BAM with bounded memory (sorted runs spilled to temporary
// files, then merged), index built at the end, all under a temporary name renamed on success.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <htslib/sam.h>

#include "gmsaccel/markdup.hpp"
#include "gmsaccel/record_batch.hpp"

namespace gms {

struct BamWriterOptions {
  bool sort = true;              // false: records written in the order given
  std::string format = "bam";    // "bam", "cram" or "sam"; path "-" writes to stdout (no index)
  std::string reference;         // CRAM: the FASTA the reads were aligned to (.fai made if absent)
  int threads = 1;               // compression threads
  size_t memory_bytes = 768u << 20;  // sort buffer; runs beyond it are spilled
  int compression_level = -1;    // htslib default when -1
  bool write_index = true;       // .bai (.csi when a contig exceeds 2^29 - 1 bases), CRAM .crai
  std::string tmp_dir;           // spill directory; default: beside the output
  // Compressed BAM output deflated by ISA-L where the build has it (bam_deflate.hpp); false:
  // always htslib's zlib. Records, header and index mean the same either way.
  bool fast_deflate = true;
  // Flag duplicates (markdup.hpp) as the sorted records are written; needs sort.
  bool mark_duplicates = false;
  // Bytes of records per key range of the final merge on threads; 0: from memory_bytes and
  // threads. The output is the same for any value (tests set it small to cut many ranges).
  size_t merge_range_bytes = 0;
  // Called on the closing thread between key ranges of the final merge (which can take
  // minutes on a whole genome); throwing abandons the close as any error does, leaving nothing.
  // The bindings pass Python's pending signals (SIGINT, SIGTERM) through it.
  std::function<void()> check_interrupt;
  // Checkpoints (sorted output): spills go to tmp_dir under names no other run uses, and those a
  // checkpoint() listed stay there when the writer is abandoned, for adopt_spills() in a later
  // run that goes on from the checkpoint, and when it closes (the caller removes them once it
  // has forgotten the checkpoint).
  bool keep_checkpoints = false;
  // "always": spills compressed in blocks (ISA-L builds; spill_codec.hpp), in about 40% of
  // the scratch for about 3.5 thread-seconds a GB of records (deflate and inflate); "never".
  // The output is the same.
  std::string spill_compression = "never";
};

// What checkpoint() made durable: spills holding every record added so far, oldest first, each
// with its index file beside it (the spill's name + ".idx").
struct SpillCheckpoint {
  std::vector<std::string> spills;
  uint64_t records = 0;
  int64_t duplicate_reach = 0;
};

class BamWriter {
 public:
  // header_text is a complete SAM header (@HD, @SQ, @RG, @PG lines).
  BamWriter(const std::string& path, const std::string& header_text,
            const BamWriterOptions& options);
  ~BamWriter();  // without close(): removes every temporary and leaves nothing at path
  BamWriter(const BamWriter&) = delete;
  BamWriter& operator=(const BamWriter&) = delete;

  const sam_hdr_t* header() const;
  // Copies the record. Sort order: (tid with unmapped-unplaced last, pos, reverse flag), ties in
  // the order added, so output is independent of thread count and spill boundaries.
  void add(const bam1_t* record);

  // A batch's records keyed (and, for sorted output, sorted) for add(RunPtr).
  struct Run;
  struct RunDeleter {
    void operator()(Run* run) const;
  };
  using RunPtr = std::unique_ptr<Run, RunDeleter>;
  // Takes the batch's records (its buffers move into the run; the batch is left empty) and keys
  // and sorts them on the calling thread. It reads nothing that the writer changes, so worker
  // threads prepare their batches side by side and only add(RunPtr) has to take turns.
  // Throws std::invalid_argument for a record whose reference ids are beyond the header's.
  RunPtr prepare(RecordBatch& records) const;
  // Adds a prepared batch: what add(records) does with its records, without copying them.
  // Runs that exceed the sort memory are spilled on a thread of their own (threads > 1), while
  // later batches are added.
  void add(RunPtr run);
  // Gives records the buffers of a run already spilled, when there is one, for its next batch.
  void recycle(RecordBatch& records);
  // Merges a coordinate-sorted BAM (with the same @SQ lines) into the output at close(), after
  // any part added before it: the output is what adding its records in order would give, but
  // without sorting them again. duplicate_reach is the part's writer's duplicate_reach() (for
  // marking). Throws InputError at close() for a part that is unreadable, differs in its @SQ
  // lines or is out of order. A writer takes parts or records, not both.
  void add_sorted_part(const std::string& bam_path, int64_t duplicate_reach);
  // Spills every record added so far (waiting for the spill in progress), writes each spill's
  // index beside it and syncs both to disk. Needs keep_checkpoints. Later records go to later
  // spills; folds leave the listed files in place until release_checkpoint().
  SpillCheckpoint checkpoint();
  // Removes the files the previous checkpoint listed and the last one does not (folded since):
  // call once the last checkpoint is recorded where a later run will find it.
  void release_checkpoint();
  // Takes an earlier writer's checkpoint (same header and options) as this writer's first
  // records, before any added. Throws InputError for a spill or index file that is missing,
  // damaged or not what its index says.
  void adopt_spills(const std::vector<std::string>& spills, int64_t duplicate_reach);
  // The records a checkpoint's spill holds, after checking its index file (as adopt_spills()
  // does) and every byte of the spill against the checksum taken as it was written
  // (InputError where either is missing or damaged).
  // check_interrupt (where given) is called as the spill is read.
  static uint64_t checked_spill_records(const std::string& spill,
                                        const std::function<void()>& check_interrupt = nullptr);
  // Finishes: merges spills, writes the index, renames into place. Throws on I/O failure.
  void close();
  // Abandons the output (same as destroying an unclosed writer).
  void abort();

  uint64_t records_written() const;
  // Seconds spent spilling on the writer's own thread (threads > 1): work beside the callers'.
  double spill_seconds() const;
  // Bytes written into spill files, folds included (complete after close()).
  uint64_t spilled_bytes() const;
  // The most bytes of spills on disk at once: the scratch space the sort needed.
  uint64_t spill_peak_bytes() const;
  // The most any record added lies past its unclipped 5' end (sorted writers; markdup.hpp).
  int64_t duplicate_reach() const;
  // What duplicate marking found (all zero without mark_duplicates; complete after close()).
  const DuplicateStats& duplicate_stats() const;
  // "isa-l" or "htslib": who compresses this writer's output.
  const char* deflater() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gms
