// BAM output whose BGZF blocks are compressed by ISA-L (builds with ISA-L): htslib's own BGZF
// writer deflates with zlib, the largest CPU consumer of an alignment run. Header and records
// are serialised exactly as htslib's bam_hdr_write / bam_write1 do, blocks are compressed on a
// pool of threads and written in order, and the index is built with htslib's hts_idx_* as the
// blocks land, so the file and its .bai/.csi are what samtools expects.
#pragma once
#include <htslib/sam.h>

#include <memory>
#include <string>

namespace gms {

// Whether this build has the ISA-L BAM writer.
bool fast_bam_deflate_available();

class IsalBamOutput {
 public:
  // Writes to fd (not closed here), naming display_name in errors. level: zlib-style 1-9 (or -1
  // for the default), mapped to ISA-L's 1-3. index_path empty: no index; csi_min_shift 0: BAI.
  // Writes the header at once. Throws std::logic_error in a build without ISA-L.
  IsalBamOutput(int fd, const std::string& display_name, const sam_hdr_t* hdr, int level,
                int threads, const std::string& index_path, int csi_min_shift);
  ~IsalBamOutput();  // without finish(): stops the threads, writes nothing more
  IsalBamOutput(const IsalBamOutput&) = delete;
  IsalBamOutput& operator=(const IsalBamOutput&) = delete;

  void write(const bam1_t* b);
  // Flushes the last blocks, appends the BGZF end-of-file block and saves the index.
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gms
