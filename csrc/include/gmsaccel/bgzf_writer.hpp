// BGZF output compressed on a pool of threads and written in order, with an htslib index built
// from entries pushed as each block reaches the file. The BAM writer (bam_deflate.cpp) and the
// VCF writer (vcf_output.cpp) fill its blocks; it owns the threads, the file order and the index.
#pragma once
#include <htslib/hts.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace gms {

// Whether blocks are deflated by ISA-L (else by htslib's zlib bgzf_compress).
bool bgzf_writer_uses_isal();

class BgzfBlockWriter {
 public:
  static constexpr size_t kBlockData = 0xff00;  // uncompressed bytes per block, as htslib
  static constexpr int kMaxThreads = 256;        // compressing threads, at most

  // A record (BAM record, VCF line) whose last byte lies in a block: what the index needs.
  struct IndexEntry {
    int tid;
    hts_pos_t beg, end;
    uint32_t end_in_block;  // offset just past the record in the block's data
    bool mapped;
  };

  struct Block {
    virtual ~Block() = default;
    // Completes data and entries on a compressing thread, before deflating (BAM: serialises
    // the records placed in the block). May set error or throw.
    virtual void fill() {}
    std::vector<uint8_t> data;  // uncompressed
    std::vector<uint8_t> out;   // the BGZF block
    std::vector<IndexEntry> entries;
    const char* error = nullptr;  // why the block cannot be written (completed with the name)
    std::exception_ptr failure;   // anything thrown while filling or compressing it
    bool ready = false;
  };

  // Writes to fd (not closed here), naming display_name in errors. level: zlib-style 0-9 or -1.
  // threads > 1: blocks are compressed on that many threads and land on a thread of their
  // own; else on the caller's. make_block gives each new block (its derived type).
  BgzfBlockWriter(int fd, std::string display_name, int level, int threads,
                  std::function<std::unique_ptr<Block>()> make_block);
  ~BgzfBlockWriter();  // without finish(): stops the threads, writes nothing more
  BgzfBlockWriter(const BgzfBlockWriter&) = delete;
  BgzfBlockWriter& operator=(const BgzfBlockWriter&) = delete;

  Block& current() { return *current_; }
  // Bytes placed in the open block (filled in or not); callers place through these.
  size_t open_bytes = 0;
  // Ends the open block (if it holds anything) and queues it.
  void seal();
  // Seals the open block and waits until every block is in the file. After any failure to
  // write, this and every other call rethrows it.
  void drain();
  // Appends bytes to data, sealing full blocks (a block boundary may fall anywhere in them).
  void append(const uint8_t* p, size_t n);
  // Starts the index (after the header has been drained): its first offset is the file's end.
  void start_index(int n_ref, int fmt, int min_shift, int n_lvls, std::string index_path);
  hts_idx_t* index() { return idx_; }
  // Drains, appends the BGZF end-of-file block, finishes and saves the index (before_save,
  // if given, runs first: e.g. tabix's metadata).
  void finish(const std::function<void(hts_idx_t*)>& before_save = nullptr);
  uint64_t written() const { return written_; }
  [[noreturn]] void fail(const std::string& what, int e = 0) const;

 private:
  void work();
  void process(Block& b);
  void write_all(const uint8_t* p, size_t n);
  void land(Block& b);
  void land_loop();
  void check_landed();
  void stop_threads();

  struct Shared;
  int fd_;
  std::string name_;
  int level_;
  uint64_t written_ = 0;  // compressed bytes in the file so far
  std::function<std::unique_ptr<Block>()> make_block_;
  std::unique_ptr<Block> current_;
  std::unique_ptr<Shared> sh_;
  hts_idx_t* idx_ = nullptr;
  std::string idx_path_;
  int idx_fmt_ = HTS_FMT_BAI;
};

}  // namespace gms
