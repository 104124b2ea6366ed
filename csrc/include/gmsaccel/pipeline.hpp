// FASTQ files to a sorted, indexed BAM: reading, aligning on worker threads and writing in input
// order, so that output never depends on the thread count or the batch size.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "gmsaccel/align.hpp"
#include "gmsaccel/bam_writer.hpp"

namespace gms {

// From this many threads on, each compressed FASTQ file also gets an inflating thread of its own.
constexpr int kInflateAheadThreads = 4;

struct PipelineOptions {
  int threads = 1;
  size_t batch_reads = 10000;  // reads (pairs) per batch
  std::string read_group;      // RG tag value, empty for none
  BamWriterOptions writer;
};

struct PipelineResult {
  AlignStats stats;
  InsertModel model;
  DuplicateStats duplicates;  // with options.writer.mark_duplicates
  double seconds = 0;
};

// progress(reads_done) is called from the writing thread after each batch (may be empty).
PipelineResult align_fastq_files(const Aligner& aligner, const std::string& r1_path,
                                 const std::string& r2_path, const std::string& out_path,
                                 const std::string& header_text, const PipelineOptions& options,
                                 const std::function<void(uint64_t)>& progress);

}  // namespace gms
