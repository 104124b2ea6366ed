// Streaming FASTQ/FASTA reader (plain, gzip or BGZF) into packed batches.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gms {

// The quality bytes of a read that has none (a FASTA read): BAM's own marker for "no qualities",
// never a FASTQ quality character (those are '!' to '~').
constexpr char kNoQualities = '\xff';

struct ReadBatch {
  std::vector<std::string> names;     // up to the first whitespace, trailing /1 or /2 kept as read
  std::vector<std::string> comments;  // the rest of the header line after the first whitespace
  std::string bases;                  // all sequences back to back, as read (ASCII)
  std::string quals;                  // all qualities back to back (ASCII phred+33, or
                                      // kNoQualities for every base of a read without any)
  std::vector<uint64_t> offsets{0};   // read i is bases[offsets[i] .. offsets[i+1])
  uint64_t first_record = 0;          // 1-based record number of the batch's first read in its file
  uint64_t record_stride = 1;         // read i is record first_record + i * record_stride (2:
                                      // one mate of an interleaved file)
  std::string source;                 // the file it came from (for messages), if known
  size_t file = 0;                    // which of a list of files read in turn (a sample's lanes)
  bool fasta = false;                 // read from FASTA: no read has qualities
  size_t size() const { return names.size(); }
  void clear() {
    names.clear(); comments.clear(); bases.clear(); quals.clear(); offsets.assign(1, 0);
  }
};

class FastqReader {
 public:
  // Who inflates gzip and BGZF input: Auto takes ISA-L where the build has it (files only, and
  // not BGZF given decompression threads), else htslib; Htslib always uses htslib (zlib).
  enum class Inflater { Auto, Htslib };

  // Opens path ("-" for stdin). Throws InputError naming the file when it cannot. read_ahead:
  // compressed input (not BGZF given decompression threads) is inflated on a thread of its own,
  // a few blocks ahead of parsing.
  explicit FastqReader(const std::string& path, int decompression_threads = 0,
                       Inflater inflater = Inflater::Auto, bool read_ahead = false);
  ~FastqReader();
  FastqReader(const FastqReader&) = delete;
  FastqReader& operator=(const FastqReader&) = delete;

  // Clears batch and fills it with up to max_reads records (and at most max_bases bases, but at
  // least one record); returns the number read, 0 at end of file. Throws InputError naming the
  // file, the record number and name, and the problem: header not starting with '@' (or '>' in
  // a FASTA file), missing '+' line, SEQ/QUAL length mismatch, truncated record, truncated or
  // corrupt gzip. SEQ and QUAL may be wrapped over several lines.
  size_t read(ReadBatch& batch, size_t max_reads, size_t max_bases = SIZE_MAX);

  const std::string& path() const;
  // "isa-l" or "htslib": which inflater this reader uses.
  const char* inflater() const;
  // Whether a read-ahead thread inflates; its busy seconds, and read()'s seconds waiting for it.
  bool reads_ahead() const;
  double read_ahead_seconds() const;
  double read_ahead_waited_seconds() const;
  uint64_t records_read() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Read name without a trailing /1 or /2.
std::string mate_base_name(const std::string& name);

// Splits a batch read from an interleaved file (each pair's two reads one after the other) into
// its first and second mates (their records numbered with stride 2). Throws InputError, naming
// path and the records, for an odd number of records or two reads that are not mates.
void split_interleaved(const ReadBatch& in, ReadBatch& r1, ReadBatch& r2,
                       const std::string& path);

// Throws InputError unless batches read side by side from R1 (path1) and R2 (path2) hold the
// same reads in the same order: equal counts (else one file ended first) and equal names but
// for /1 and /2.
void check_mates(const ReadBatch& r1, const ReadBatch& r2, const std::string& path1,
                 const std::string& path2);

}  // namespace gms
