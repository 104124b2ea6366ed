// BAM output whose BGZF blocks are compressed by ISA-L (builds with ISA-L): htslib's own BGZF
// writer deflates with zlib, the largest CPU consumer of an alignment run. Header and records
// are serialised exactly as htslib's bam_hdr_write / bam_write1 do, blocks are compressed on a
// pool of threads and written in order, and the index is built with htslib's hts_idx_* as the
// blocks land, so the file and its .bai/.csi are what samtools expects.
#pragma once
#include <htslib/sam.h>

#include <cstdint>
#include <memory>
#include <string>

namespace gms {

// Whether this build has the ISA-L BAM writer.
bool fast_bam_deflate_available();

// The bytes a record takes in a BAM file (its block_size field included).
inline uint32_t bam_record_size(const bam1_core_t& c, uint32_t l_data) {
  return 36u + static_cast<uint32_t>(c.l_qname - c.l_extranul) +
         (l_data - static_cast<uint32_t>(c.l_qname));
}

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

  // Records in the sorted writer's layout (bam1_core_t, uint32 l_data, data: record_batch.hpp),
  // in output order, with their bam_record_size()s: the bytes and index entries htslib's
  // bam_write1 would give them, block by block as its BGZF writer fills blocks. The caller's
  // thread only places them in blocks; each block's records are serialised and indexed on the
  // compressing threads. They must stay valid until flush() or finish() returns, or be owned
  // by keep (held until their blocks are compressed).
  void write_records(const uint8_t* const* records, const uint32_t* bam_sizes, size_t n,
                     std::shared_ptr<const void> keep = nullptr);
  // Writes out every block so far, the last one possibly short (as finish() would).
  void flush();
  // Flushes the last blocks, appends the BGZF end-of-file block and saves the index.
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gms
