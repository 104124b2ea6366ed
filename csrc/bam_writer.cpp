// Sorted BAM output with bounded memory. Batches of records arrive keyed and sorted (prepare(),
// on the callers' threads) and are kept as runs without a copy; when the runs reach the sort
// memory they are merged into a spill file (raw records, on a thread of their own), and close()
// merges the spills with the runs still in memory. Everything is written under temporary names
// and renamed into place only on success, so a visible output is always complete.
#include "gmsaccel/bam_writer.hpp"

#include <fcntl.h>
#include <htslib/hts.h>
#include <sys/stat.h>
#include <htslib/kstring.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <htslib/thread_pool.h>

#include "gmsaccel/bam_deflate.hpp"
#include "gmsaccel/errors.hpp"
#include "gmsaccel/spill_codec.hpp"
#include "gmsaccel/stream_checksum.hpp"

namespace gms {

namespace {

std::string errno_text(int e) { return e ? std::strerror(e) : "unknown error"; }

std::string dir_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

void unlink_quiet(const std::string& path) {
  if (!path.empty()) ::unlink(path.c_str());
}

// Unlinks files on a thread of its own, joined when it goes: unlinking a spill that has been
// read frees its page cache, kernel work in proportion to its size (0.07 s of the closing
// thread for 500,000 pairs' spills), which can run beside the last blocks and the index.
class FileReaper {
 public:
  explicit FileReaper(std::vector<std::string> names) {
    if (names.empty()) return;
    try {
      thread_ = std::thread([n = names] {
        for (const auto& f : n) unlink_quiet(f);
      });
    } catch (const std::system_error&) {  // no thread to be had: here, then
      for (const auto& f : names) unlink_quiet(f);
    }
  }
  ~FileReaper() {
    if (thread_.joinable()) thread_.join();
  }
  FileReaper(const FileReaper&) = delete;
  FileReaper& operator=(const FileReaper&) = delete;

 private:
  std::thread thread_;
};

// Sort key: unmapped-unplaced (tid < 0) after every contig, then position, then strand. Ties are
// broken by arrival (within a run by stable order, across runs by run number).
struct Key {
  int64_t pos;
  uint32_t tid;
  uint32_t rev;
  static Key of(const bam1_core_t& c) {
    return Key{c.pos, static_cast<uint32_t>(c.tid < 0 ? UINT32_MAX : c.tid),
               (c.flag & BAM_FREVERSE) ? 1u : 0u};
  }
  bool operator<(const Key& o) const {
    return std::tie(tid, pos, rev) < std::tie(o.tid, o.pos, o.rev);
  }
};

// A k-way merge's queue of (key, source): the smallest key first, equal keys to the lower
// source (the older run), which keeps arrival order.
struct LaterInMerge {
  bool operator()(const std::pair<Key, size_t>& a, const std::pair<Key, size_t>& b) const {
    return b.first < a.first || (!(a.first < b.first) && a.second > b.second);
  }
};
using MergeQueue =
    std::priority_queue<std::pair<Key, size_t>, std::vector<std::pair<Key, size_t>>, LaterInMerge>;

// One record of a run: its key, where its serialised bytes start and its size in a BAM.
struct Entry {
  Key key;
  const uint8_t* bytes;  // bam1_core_t, then uint32 l_data, then data
  uint32_t bam_bytes;    // bam_record_size
};

using BamPtr = std::unique_ptr<bam1_t, BamFree>;
struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

BamPtr new_bam() {
  BamPtr b(bam_init1());
  if (!b) throw std::bad_alloc();
  return b;
}

}  // namespace

// A batch's records (RecordBatch's layout, in bytes) and their entries, sorted by key (stably:
// ties keep the batch's order) for sorted output, else in the batch's order.
struct BamWriter::Run {
  std::vector<uint8_t> bytes;
  std::vector<size_t> starts;
  std::vector<Entry> entries;
  int64_t duplicate_reach = 0;  // the most a record lies past its 5' end (markdup.hpp)
  size_t memory() const {
    return bytes.capacity() + starts.capacity() * sizeof(size_t) +
           entries.capacity() * sizeof(Entry);
  }
};

void BamWriter::RunDeleter::operator()(Run* run) const { delete run; }

struct BamWriter::Impl {
  std::string path;        // final name, or "-"
  std::string tmp_path;    // what is written; renamed to path on success
  std::string idx_ext;     // ".bai" / ".csi" / "" (no index)
  std::string tmp_idx;     // index written beside tmp_path, renamed last
  BamWriterOptions opt;
  sam_hdr_t* hdr = nullptr;
  htsFile* out = nullptr;                 // htslib output, or
  std::unique_ptr<IsalBamOutput> fast;  // ISA-L-deflated BAM on out_fd
  int out_fd = -1;
  bool deflated_by_isal = false;
  bool to_stdout = false;
  enum class State { open, closed, aborted } state = State::open;

  // Sorted runs in memory, in arrival order; records added one at a time gather in `open`
  // until a run is added or the runs are spilled or merged.
  std::vector<RunPtr> runs;
  RecordBatch open;
  size_t held = 0;  // memory of `runs`
  // The spill in progress (threads > 1) and the memory of the runs it is writing.
  std::thread spilling;
  std::exception_ptr spill_failure;
  // Set once records may have been lost (a spill that failed): every later add or close fails.
  bool failed = false;
  // Set by close once the spill thread is done: merges then run on the closing thread, the
  // one opt.check_interrupt may be called on.
  bool closing = false;
  // What a spill holds: its records, and the key and byte offset of every kSampleEvery-th one,
  // so that a merge of a key range can start reading near its first record.
  struct SpillInfo {
    uint64_t records = 0, bytes = 0;
    std::vector<Key> keys;
    std::vector<uint64_t> offsets;
    int level = 0;  // 0 for a spill of runs; one more than its inputs' for a fold
    uint64_t checksum = 0;  // StreamChecksum of the file's bytes
    // A compressed spill's blocks (spill_codec.hpp): where each starts among the records'
    // bytes and in the file; none for a spill of the records' bytes themselves.
    std::vector<uint64_t> block_raw, block_file;
    uint64_t file_bytes = 0;  // the file's size (bytes, when not compressed)
  };
  static constexpr uint64_t kSampleEvery = 16;

  std::map<std::string, SpillInfo> spill_info;
  // Spills are read back in chunks of this many bytes (the final merge reads up to kMaxFanIn
  // at once), or of kRangeChunk when many threads each read a key range of every spill.
  static constexpr size_t kReadChunk = 128u << 10;
  static constexpr size_t kRangeChunk = 32u << 10;
  double spill_thread_seconds = 0;  // written by the spilling thread, read after joining it
  // Buffers of spilled runs, for the next batches (recycle()): batches then refill the same
  // buffers run after run instead of growing new ones (and fragmenting the heap). They are
  // kept up to the sort memory, the most that runs hold at once.
  std::mutex spare_mu;
  std::vector<std::pair<std::vector<uint8_t>, std::vector<size_t>>> spare;
  size_t spare_bytes = 0;
  size_t last_run_bytes = 0, last_run_records = 0;  // a new batch's buffers are sized like these
  std::vector<std::string> spills;
  size_t spill_serial = 0;
  static constexpr size_t kMaxFanIn = 128;
  // kFoldGroup spills of one level are folded into one of the next level (tiered, as in a
  // log-structured merge): a record is rewritten about log_32 of the spill count times, and the
  // spills stay under kMaxFanIn up to 32^4 spills. Folding every spill so far whenever there
  // were kMaxFanIn rewrote the oldest records at every fold: for a 30x genome's 6,700 spills
  // of the default sort memory, 26 rewrites of each record on average, against 1.9 now.
  static constexpr size_t kFoldGroup = 32;
  uint64_t spill_bytes_written = 0;  // by the spilling thread (spills and folds alike)
  // Bytes of this writer's spills on disk, and the most at once (the scratch space a run
  // needs; checkpointed spills a fold replaced are counted gone, though kept till released).
  uint64_t spill_bytes_live = 0, spill_bytes_peak = 0;
  uint64_t added = 0;
  BamPtr scratch = new_bam();
  int64_t duplicate_reach = 0;  // the most a record lies past its 5' end (markdup.hpp)
  DuplicateStats duplicates;
  // Sorted BAMs merged in at close() after this writer's own records (add_sorted_part).
  std::vector<std::string> parts;
  // Checkpoints (opt.keep_checkpoints): the spills the last recorded checkpoint lists, and those
  // of one taken but not yet released. Neither a fold, an abort nor close() removes them: the
  // caller does, once it has forgotten the checkpoint.
  std::mutex keep_mu;
  std::set<std::string> kept, kept_pending;
  std::set<std::string> indexed;  // spills whose index file is written (under keep_mu)
  // In spill names with keep_checkpoints: the pid and the clock, so that a later run going on
  // from this one's spills (on another node, perhaps with the same pid) never reuses a name.
  const std::string spill_tag = std::to_string(::getpid()) + "." +
      std::to_string(std::chrono::system_clock::now().time_since_epoch().count());

  ~Impl() {
    if (state == State::open) discard();
    if (hdr) sam_hdr_destroy(hdr);
  }

  [[noreturn]] void io_fail(const std::string& what, const std::string& file, int e) {
    throw std::runtime_error(what + " " + file + ": " + errno_text(e));
  }

  // Removes every temporary; the final path is never touched.
  void discard() {
    if (out) {
      sam_close(out);
      out = nullptr;
    }
    fast.reset();  // its threads stop before the runs whose records they might read go
    if (out_fd > 1) ::close(out_fd);
    out_fd = -1;
    if (!to_stdout) {
      unlink_quiet(tmp_path);
      unlink_quiet(tmp_idx);
    }
    if (spilling.joinable()) spilling.join();  // its failure no longer matters
    for (const auto& s : spills) drop_spill_file(s);
    spills.clear();
    runs.clear();
    open = RecordBatch();
    drop_spares();
  }

  static std::string mode(const std::string& format, int level) {
    std::string m = format == "bam" ? "wb" : format == "cram" ? "wc" : "w";
    if (format != "sam" && level >= 0 && level <= 9) m += static_cast<char>('0' + level);
    return m;
  }

  void write(htsFile* fp, const bam1_t* b, const std::string& name) {
    errno = 0;
    if (sam_write1(fp, hdr, b) < 0) io_fail("cannot write", name, errno);
  }
  // A record to the final output. For the ISA-L writer records are copied into rounds, whose
  // blocks are then serialised and compressed on its threads.
  void emit(const bam1_t* b) {
    if (fast) to_round(b);
    else write(out, b, display_out());
  }

  // Records copied for the ISA-L writer (from parts, the duplicate marker or unsorted adds),
  // handed over a round at a time and owned by the blocks that hold them.
  struct Round {
    RecordBatch records;
    std::vector<uint32_t> sizes;  // bam_record_size
    std::vector<const uint8_t*> at;  // where each record lies, once the round is handed over
  };
  static constexpr size_t kRoundBytes = 4u << 20;
  std::shared_ptr<Round> round;
  void to_round(const bam1_t* b) {
    flush_direct();  // records keep their order across the two ways
    if (!round) round = std::make_shared<Round>();
    round->records.append(b);
    round->sizes.push_back(bam_record_size(b->core, static_cast<uint32_t>(b->l_data)));
    if (round->records.record_bytes() >= kRoundBytes) flush_round();
  }
  // Records handed to the ISA-L writer where they lie (runs in memory, spill chunks), in
  // steps; the step's blocks hold the chunks its records lie in.
  static constexpr size_t kDirectStep = 1u << 14;
  static constexpr size_t kDirectStepBytes = 4u << 20;
  size_t direct_bytes = 0;
  std::vector<const uint8_t*> direct_records;
  std::vector<uint32_t> direct_sizes;
  std::shared_ptr<std::vector<std::shared_ptr<const void>>> direct_owners;
  void to_direct(const uint8_t* record, uint32_t bam_bytes,
                 const std::shared_ptr<const void>& owner = nullptr) {
    flush_round();
    direct_records.push_back(record);
    direct_sizes.push_back(bam_bytes);
    if (owner) {
      if (!direct_owners) direct_owners = std::make_shared<std::vector<std::shared_ptr<const void>>>();
      if (direct_owners->empty() || direct_owners->back() != owner) direct_owners->push_back(owner);
    }
    direct_bytes += bam_bytes;
    // Steps end on bytes too: long records would otherwise hold many chunks at once.
    if (direct_records.size() == kDirectStep || direct_bytes >= kDirectStepBytes) flush_direct();
  }
  void flush_direct() {
    if (direct_records.empty()) return;
    fast->write_records(direct_records.data(), direct_sizes.data(), direct_records.size(),
                        std::move(direct_owners));
    direct_owners.reset();
    direct_records.clear();
    direct_sizes.clear();
    direct_bytes = 0;
  }
  void flush_round() {
    if (!round) return;
    std::shared_ptr<Round> r = std::move(round);
    round.reset();
    r->at.reserve(r->records.size());
    for (size_t i = 0; i < r->records.size(); ++i) r->at.push_back(r->records.bytes(i));
    fast->write_records(r->at.data(), r->sizes.data(), r->at.size(), r);
  }

  // The runs' records at most this much memory; with a spilling thread, half of it, so that
  // one half is written while the other fills.
  size_t spill_threshold() const {
    return opt.threads > 1 ? opt.memory_bytes / 2 : opt.memory_bytes;
  }

  // Keys (and sorts) a batch's records into a run.
  RunPtr make_run(RecordBatch& records) const {
    RunPtr run(new Run);
    const size_t n = records.size();
    run->entries.reserve(n);
    const int nref = sam_hdr_nref(hdr);
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* p = records.bytes(i);
      const bam1_core_t c = records.core(i);
      if (c.tid >= nref || c.mtid >= nref) {
        throw std::invalid_argument("BamWriter: record reference id beyond the header's @SQ lines");
      }
      run->entries.push_back(Entry{Key::of(c), nullptr,
                                   bam_record_size(c, RecordBatch::data_length(p))});
      // Measured whether or not this writer marks: a writer of a part tells the merging one.
      run->duplicate_reach = std::max(run->duplicate_reach,
                                      DuplicateMarker::lag(c, p + RecordBatch::kHeaderBytes));
    }
    records.swap_buffers(run->bytes, run->starts);  // the buffers move, not the records
    for (size_t i = 0; i < n; ++i) run->entries[i].bytes = run->bytes.data() + run->starts[i];
    if (opt.sort) {
      std::stable_sort(run->entries.begin(), run->entries.end(),
                       [](const Entry& a, const Entry& b) { return a.key < b.key; });
    }
    return run;
  }

  void keep(RunPtr run) {
    {
      std::lock_guard<std::mutex> lk(spare_mu);
      last_run_bytes = run->bytes.size();
      last_run_records = run->starts.size();
    }
    held += run->memory();
    duplicate_reach = std::max(duplicate_reach, run->duplicate_reach);
    runs.push_back(std::move(run));
  }
  // The records added one at a time, as a run; `open` goes on in a spilled run's buffers.
  void seal_open() {
    if (open.size() == 0) return;
    keep(make_run(open));
    refill(open);
  }

  // Takes a run (sorted output): spills the runs in memory once they reach the threshold.
  void take(RunPtr run) {
    seal_open();
    keep(std::move(run));
    if (held >= spill_threshold()) start_spill();
  }
  // After a record went into `open`: it becomes a run of its own every few MiB (one growing
  // buffer as large as the sort memory would briefly need three times that to grow).
  void opened() {
    const size_t run_bytes = std::max<size_t>(64u << 10, std::min<size_t>(8u << 20,
                                                                         spill_threshold() / 4));
    if (open.record_bytes() >= run_bytes) seal_open();
    if (held + open.memory() >= spill_threshold()) {
      seal_open();
      start_spill();
    }
  }

  // Waits for the spill in progress; rethrows its failure.
  void wait_spill() {
    if (spilling.joinable()) spilling.join();
    if (spill_failure) {
      failed = true;
      std::rethrow_exception(std::exchange(spill_failure, nullptr));
    }
  }

  // Spills the runs in memory: on a thread of its own (threads > 1), after the previous spill.
  void start_spill() {
    try {
      spill_now();
    } catch (...) {
      failed = true;  // the runs handed to the spill may be gone
      throw;
    }
  }
  void spill_now() {
    wait_spill();
    auto job = std::make_shared<std::vector<RunPtr>>(std::move(runs));
    runs.clear();
    held = 0;
    const std::string name = new_spill_name();  // named now: spills keep arrival order
    auto work = [this, job, name] {
      write_spill(*job, name);
      give_back(*job);
    };
    if (opt.threads <= 1) {
      work();
      return;
    }
    spilling = std::thread([this, work] {
      const auto t0 = std::chrono::steady_clock::now();
      try {
        work();
      } catch (...) {
        spill_failure = std::current_exception();
      }
      spill_thread_seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    });
  }

  // A spilled run's buffers for records, when there is one; else room like the last run's.
  void refill(RecordBatch& records) {
    std::lock_guard<std::mutex> lk(spare_mu);
    if (spare.empty()) {  // at once rather than by doubling
      records.reserve(last_run_bytes + last_run_bytes / 8, last_run_records);
      return;
    }
    auto& [bytes, starts] = spare.back();
    spare_bytes -= bytes.capacity() + starts.capacity() * sizeof(size_t);
    records.swap_buffers(bytes, starts);
    spare.pop_back();
  }
  void drop_spares() {
    std::lock_guard<std::mutex> lk(spare_mu);
    spare.clear();
    spare_bytes = 0;
  }

  // Spilled runs' buffers, kept for recycle().
  void give_back(std::vector<RunPtr>& done) {
    std::lock_guard<std::mutex> lk(spare_mu);
    for (RunPtr& r : done) {
      const size_t bytes = r->bytes.capacity() + r->starts.capacity() * sizeof(size_t);
      if (spare_bytes + bytes > opt.memory_bytes) break;
      spare_bytes += bytes;
      r->bytes.clear();
      r->starts.clear();
      spare.emplace_back(std::move(r->bytes), std::move(r->starts));
    }
    done.clear();
  }

  // Spill files live beside the output (or in tmp_dir) and carry the pid and the writer's
  // number in the process, so that two writers of the same name (in two processes, or in one
  // sharing a tmp_dir) do not collide.
  const uint64_t writer_number = next_writer_number();
  static uint64_t next_writer_number() {
    static std::atomic<uint64_t> n{0};
    return n++;
  }
  std::string new_spill_name() {
    char num[48];
    std::snprintf(num, sizeof num, "%llu.%04zu", static_cast<unsigned long long>(writer_number),
                  spill_serial++);
    const std::string dir = opt.tmp_dir.empty() ? (to_stdout ? "." : dir_of(path)) : opt.tmp_dir;
    const std::string name = dir + "/" + (to_stdout ? std::string("stdout") : base_of(path)) +
                             (opt.keep_checkpoints ? ".spill." + spill_tag
                                                   : ".tmp." + std::to_string(::getpid())) +
                             "." + num + ".run";
    spills.push_back(name);  // registered first so that any failure still cleans it up
    return name;
  }

  // Spill runs are this writer's own files: records as the arena holds them (bam1_core_t,
  // uint32 l_data, data), back to back and uncompressed, so that reading them back needs no BGZF
  // framing, checksums or BAM decoding.
  static constexpr size_t kSpillBuffer = 128u << 10;

  FilePtr create_spill(const std::string& name) {
    errno = 0;
    // (never over a file, which may be an earlier run's spill, with checkpoints)
    FilePtr f(std::fopen(name.c_str(), opt.keep_checkpoints ? "wbx" : "wb"));
    if (!f) io_fail("cannot create temporary file", name, errno);
    std::setvbuf(f.get(), nullptr, _IOFBF, kSpillBuffer);
    return f;
  }

  void spill_bytes(std::FILE* f, const void* p, size_t n, const std::string& name) {
    errno = 0;
    if (n && std::fwrite(p, n, 1, f) != 1) io_fail("cannot write temporary file", name, errno);
  }

  void finish_spill(FilePtr f, const std::string& name) {
    errno = 0;
#ifdef __linux__
    // A checkpoint will sync this spill: its writeback starts now, beside the alignment,
    // rather than then, while the workers wait.
    if (opt.keep_checkpoints && std::fflush(f.get()) == 0) {
      ::sync_file_range(::fileno(f.get()), 0, 0, SYNC_FILE_RANGE_WRITE);
    }
#endif
    if (std::fclose(f.release()) != 0) io_fail("cannot write temporary file", name, errno);
  }

  // A spill file open for reading (pread: any number of readers, any threads).
  class SpillFile {
   public:
    explicit SpillFile(const std::string& name) : name(name) {
      errno = 0;
      fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) throw std::runtime_error("cannot read back temporary file " + name + ": " +
                                           errno_text(errno));
    }
    ~SpillFile() { ::close(fd); }
    SpillFile(const SpillFile&) = delete;
    SpillFile& operator=(const SpillFile&) = delete;
    std::string name;
    int fd = -1;
  };

  // A spill run read back a chunk at a time from some record on. Records are handed out where
  // they lie in the chunk, and a chunk lives as long as anything holds it (the ISA-L writer's
  // blocks, until their records are serialised), so reading back costs one copy.
  class SpillReader {
   public:
    static constexpr uint64_t kUnchecked = UINT64_MAX;
    // From byte `from` of the file (a record's start), in chunks of about `chunk` bytes;
    // `records`, when known, is checked against what was read at the end of the file.
    // Nothing at or past byte `limit` is read (a record's start, or the file's end).
    // info: the spill's, for a compressed one (its blocks are read and inflated whole).
    SpillReader(const SpillFile& file, const SpillInfo* info, uint64_t from, size_t chunk,
                uint64_t records = kUnchecked, uint64_t limit = UINT64_MAX)
        : file_(file),
          packed_(info && !info->block_raw.empty() ? info : nullptr),
          pos_(from),
          limit_(limit),
          chunk_size_(chunk),
          records_(records) {
      if (packed_) {  // the block that holds `from`
        const auto& starts = packed_->block_raw;
        block_ = static_cast<size_t>(std::upper_bound(starts.begin(), starts.end(), from) -
                                     starts.begin());
        block_ = block_ > 0 ? block_ - 1 : 0;
      }
    }
    // The next record, or nullptr at the end of the run.
    const uint8_t* next() {
      if (!have(RecordBatch::kHeaderBytes)) {
        if (records_ != kUnchecked && read_ != records_) {
          throw std::runtime_error("cannot read back temporary file " + file_.name +
                                   ": it holds " + std::to_string(read_) + " records, not " +
                                   std::to_string(records_));
        }
        return nullptr;
      }
      const size_t n = RecordBatch::kHeaderBytes + RecordBatch::data_length(chunk_->data + at_);
      if (!have(n)) broken();
      ++read_;
      const uint8_t* r = chunk_->data + at_;
      at_ += n;
      return r;
    }
    // What holds the last record handed out.
    std::shared_ptr<const void> owner() const { return chunk_; }
    const void* owner_id() const { return chunk_.get(); }

   private:
    struct Chunk {
      explicit Chunk(size_t n) : data(new uint8_t[n]), size(n) {}
      ~Chunk() { delete[] data; }
      Chunk(const Chunk&) = delete;
      Chunk& operator=(const Chunk&) = delete;
      uint8_t* data;
      size_t size;
    };
    [[noreturn]] void broken() const {
      throw std::runtime_error("cannot read back temporary file " + file_.name +
                               ": it ends inside a record");
    }
    // At least n bytes from at_ on (false at the run's end); a new chunk each time, since the
    // old one may still be held: the part of a record it ends with is carried over.
    bool have(size_t n) {
      if (end_ - at_ >= n) return true;
      if (packed_) return next_block(n);
      const size_t carry = end_ - at_;
      // No larger than what is left before the limit (a range's share of a spill is often
      // small), nor smaller than the record being read.
      const uint64_t left = limit_ > pos_ ? limit_ - pos_ : 0;
      auto fresh = std::make_shared<Chunk>(
          std::max<size_t>(n, static_cast<size_t>(std::min<uint64_t>(chunk_size_, carry + left))));
      if (carry) std::memcpy(fresh->data, chunk_->data + at_, carry);
      size_t got = 0;
      while (carry + got < fresh->size && pos_ < limit_) {
        const size_t want = static_cast<size_t>(
            std::min<uint64_t>(fresh->size - carry - got, limit_ - pos_));
        errno = 0;
        const ssize_t r = ::pread(file_.fd, fresh->data + carry + got, want,
                                  static_cast<off_t>(pos_));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
          throw std::runtime_error("cannot read back temporary file " + file_.name + ": " +
                                   errno_text(errno));
        }
        if (r == 0) break;
        got += static_cast<size_t>(r);
        pos_ += static_cast<uint64_t>(r);
      }
      chunk_ = std::move(fresh);
      at_ = 0;
      end_ = carry + got;
      if (end_ >= n) return true;
      if (end_ == 0) return false;
      broken();
    }
    // A compressed spill: the next block, inflated whole, as the chunk (records never span
    // two blocks); false past the limit or the last block.
    bool next_block(size_t n) {
      if (at_ != end_) broken();  // a record that does not fit in its block
      const std::vector<uint64_t>& raw = packed_->block_raw;
      const std::vector<uint64_t>& in_file = packed_->block_file;
      if (block_ >= raw.size() || raw[block_] >= limit_) return false;
      const bool last = block_ + 1 == raw.size();
      const uint64_t raw_end = last ? packed_->bytes : raw[block_ + 1];
      const uint64_t file_end = last ? packed_->file_bytes : in_file[block_ + 1];
      if (raw_end <= raw[block_] || file_end <= in_file[block_]) broken();
      stored_.resize(static_cast<size_t>(file_end - in_file[block_]));
      for (size_t got = 0; got < stored_.size();) {
        errno = 0;
        const ssize_t r = ::pread(file_.fd, stored_.data() + got, stored_.size() - got,
                                  static_cast<off_t>(in_file[block_] + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
          throw std::runtime_error("cannot read back temporary file " + file_.name + ": " +
                                   errno_text(errno));
        }
        if (r == 0) broken();
        got += static_cast<size_t>(r);
      }
      auto fresh = std::make_shared<Chunk>(static_cast<size_t>(raw_end - raw[block_]));
      if (!inflate_spill_block(stored_.data(), stored_.size(), fresh->data, fresh->size)) {
        throw std::runtime_error("cannot read back temporary file " + file_.name +
                                 ": a damaged block at byte " + std::to_string(in_file[block_]));
      }
      chunk_ = std::move(fresh);
      at_ = pos_ > raw[block_] ? static_cast<size_t>(pos_ - raw[block_]) : 0;
      end_ = static_cast<size_t>(std::min(raw_end, limit_) - raw[block_]);
      pos_ = raw_end;
      ++block_;
      if (at_ > end_) broken();
      return end_ - at_ >= n ? true : (at_ == end_ ? next_block(n) : (broken(), false));
    }

    const SpillFile& file_;
    const SpillInfo* packed_;  // a compressed spill's, else nullptr
    size_t block_ = 0;         // the next block to read
    std::vector<uint8_t> stored_;
    uint64_t pos_, limit_;
    size_t chunk_size_;
    std::shared_ptr<Chunk> chunk_;
    size_t at_ = 0, end_ = 0;
    uint64_t records_, read_ = 0;
  };

  // Writes one spill (records in key order) and files its SpillInfo when finished.
  class SpillWriter {
   public:
    SpillWriter(Impl& w, const std::string& name)
        : w_(w), name_(name), fp_(w.create_spill(name)),
          compress_(w.opt.spill_compression == "always") {}
    void put(const uint8_t* r) {  // the runs' layout
      bam1_core_t c;
      std::memcpy(&c, r, sizeof c);
      note(Key::of(c));
      const size_t n = RecordBatch::kHeaderBytes + RecordBatch::data_length(r);
      out(r, n);
      info_.bytes += n;
      end_record();
    }
    void put(const bam1_t* b) {
      note(Key::of(b->core));
      const uint32_t l_data = static_cast<uint32_t>(b->l_data);
      out(&b->core, sizeof(bam1_core_t));
      out(&l_data, sizeof l_data);
      out(b->data, l_data);
      info_.bytes += RecordBatch::kHeaderBytes + l_data;
      end_record();
    }
    void finish(int level = 0) {
      flush_block();
      w_.finish_spill(std::move(fp_), name_);
      info_.level = level;
      info_.checksum = sum_.value();
      w_.spill_bytes_written += info_.file_bytes;
      w_.spill_bytes_live += info_.file_bytes;
      w_.spill_bytes_peak = std::max(w_.spill_bytes_peak, w_.spill_bytes_live);
      w_.spill_info[name_] = std::move(info_);
    }

   private:
    void note(const Key& k) {
      if (info_.records % kSampleEvery == 0) {
        info_.keys.push_back(k);
        info_.offsets.push_back(info_.bytes);
      }
      ++info_.records;
    }
    // Bytes of a record: to the file, or to the block being filled.
    void out(const void* p, size_t n) {
      if (compress_) {
        const auto* b = static_cast<const uint8_t*>(p);
        block_.insert(block_.end(), b, b + n);
        return;
      }
      w_.spill_bytes(fp_.get(), p, n, name_);
      sum_.update(p, n);
      info_.file_bytes += n;
    }
    // After a whole record: a full block is compressed and written.
    void end_record() {
      if (compress_ && block_.size() >= kSpillBlock) flush_block();
    }
    void flush_block() {
      if (block_.empty()) return;
      deflate_spill_block(block_.data(), block_.size(), stored_);
      info_.block_raw.push_back(info_.bytes - block_.size());
      info_.block_file.push_back(info_.file_bytes);
      w_.spill_bytes(fp_.get(), stored_.data(), stored_.size(), name_);
      sum_.update(stored_.data(), stored_.size());
      info_.file_bytes += stored_.size();
      block_.clear();
    }
    Impl& w_;
    std::string name_;
    FilePtr fp_;
    const bool compress_;
    std::vector<uint8_t> block_, stored_;
    SpillInfo info_;
    StreamChecksum sum_;
  };
  // Records' bytes per compressed block (a larger record makes a block of its own).
  static constexpr size_t kSpillBlock = 64u << 10;

  // Merges runs (sorted) into the spill file `name`; folds spills as they accumulate.
  void write_spill(const std::vector<RunPtr>& job, const std::string& name) {
    SpillWriter out(*this, name);
    merge_runs(job, [&](const uint8_t* r) { out.put(r); });
    out.finish();
    fold_spills();
  }

  int level_of(const std::string& spill) const {
    const auto it = spill_info.find(spill);
    return it == spill_info.end() ? 0 : it->second.level;
  }
  // Bounds the merge fan-in (open files, buffers). Levels never rise towards the newest spill,
  // so the newest spills of the lowest level are consecutive: while there are kFoldGroup of
  // them, they are merged into one that takes their place, which keeps arrival order. Past
  // kMaxFanIn spills (only beyond 32^4 of them) every spill is folded into one.
  void fold_spills() {
    for (;;) {
      const size_t n = spills.size();
      size_t begin = n;
      while (begin > 0 && level_of(spills[begin - 1]) == level_of(spills[n - 1])) --begin;
      if (n - begin >= kFoldGroup) {
        begin = n - kFoldGroup;
      } else if (n >= kMaxFanIn) {
        begin = 0;
      } else {
        return;
      }
      int level = 0;
      for (size_t i = begin; i < n; ++i) level = std::max(level, level_of(spills[i]) + 1);
      const std::string folded = new_spill_name();  // (appended after the group)
      SpillWriter fold(*this, folded);
      merge(begin, n, false, [&](bam1_t* b) { fold.put(b); },
            [&](const uint8_t* r, uint32_t, const std::shared_ptr<const void>&) { fold.put(r); });
      fold.finish(level);
      for (size_t i = begin; i < n; ++i) {
        drop_spill_file(spills[i]);
        spill_bytes_live -= spill_info.at(spills[i]).file_bytes;
        spill_info.erase(spills[i]);
      }
      spills.erase(spills.begin() + static_cast<std::ptrdiff_t>(begin),
                   spills.begin() + static_cast<std::ptrdiff_t>(n));
    }
  }

  // A spill this writer no longer reads: removed, unless a checkpoint lists it.
  void drop_spill_file(const std::string& name) {
    {
      std::lock_guard<std::mutex> lk(keep_mu);
      if (kept.count(name) || kept_pending.count(name)) return;
    }
    unlink_quiet(name);
  }

  // A spill's index file (checkpoints): what SpillInfo holds, with a checksum, so that a later
  // run can merge the spill without reading it through first.
  static constexpr char kIndexMagic[8] = {'G', 'M', 'S', 'S', 'P', 'I', 'X', '3'};
  // magic; records, bytes, file bytes, level, the spill's checksum, samples, blocks
  static constexpr size_t kIndexHead = 8 + 7 * 8;
  static constexpr size_t kIndexBlock = 8 + 8;  // a block's start in the records, in the file
  static constexpr size_t kIndexSample = 8 + 4 + 4 + 8;  // key (pos, tid, rev), offset
  static uint64_t checksum(const char* bytes, size_t n) {
    StreamChecksum sum;
    sum.update(bytes, n);
    return sum.value();
  }
  template <class T>
  static void put_raw(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  template <class T>
  static T get_raw(const std::string& in, size_t at) {
    T v;
    std::memcpy(&v, in.data() + at, sizeof v);
    return v;
  }
  static void sync_fd(int fd, const std::string& name) {
    errno = 0;
    if (::fsync(fd) != 0) {
      const int e = errno;
      ::close(fd);
      throw std::runtime_error("cannot sync " + name + " to disk: " + errno_text(e));
    }
  }

  // Syncs the spill to disk, then writes its index beside it (synced, renamed into place).
  void write_spill_index(const std::string& name) {
    const SpillInfo& info = spill_info.at(name);
    errno = 0;
    const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) io_fail("cannot read back temporary file", name, errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != info.file_bytes) {
      ::close(fd);
      throw std::runtime_error("temporary file " + name + " does not hold what was written");
    }
    sync_fd(fd, name);
    ::close(fd);
    std::string out(kIndexMagic, sizeof kIndexMagic);
    put_raw<uint64_t>(out, info.records);
    put_raw<uint64_t>(out, info.bytes);
    put_raw<uint64_t>(out, info.file_bytes);
    put_raw<int64_t>(out, info.level);
    put_raw<uint64_t>(out, info.checksum);
    put_raw<uint64_t>(out, info.keys.size());
    put_raw<uint64_t>(out, info.block_raw.size());
    for (size_t i = 0; i < info.keys.size(); ++i) {
      put_raw<int64_t>(out, info.keys[i].pos);
      put_raw<uint32_t>(out, info.keys[i].tid);
      put_raw<uint32_t>(out, info.keys[i].rev);
      put_raw<uint64_t>(out, info.offsets[i]);
    }
    for (size_t i = 0; i < info.block_raw.size(); ++i) {
      put_raw<uint64_t>(out, info.block_raw[i]);
      put_raw<uint64_t>(out, info.block_file[i]);
    }
    put_raw<uint64_t>(out, checksum(out.data(), out.size()));
    const std::string idx = name + ".idx", tmp = idx + ".tmp";
    errno = 0;
    const int out_fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out_fd < 0) io_fail("cannot create", tmp, errno);
    for (size_t at = 0; at < out.size();) {
      errno = 0;
      const ssize_t w = ::write(out_fd, out.data() + at, out.size() - at);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        const int e = errno;
        ::close(out_fd);
        unlink_quiet(tmp);
        io_fail("cannot write", tmp, e);
      }
      at += static_cast<size_t>(w);
    }
    sync_fd(out_fd, tmp);
    ::close(out_fd);
    if (std::rename(tmp.c_str(), idx.c_str()) != 0) {
      const int e = errno;
      unlink_quiet(tmp);
      io_fail("cannot rename " + tmp + " to", idx, e);
    }
  }

  // An earlier run's spill, from its index file; InputError where either is not as written.
  static SpillInfo read_spill_index(const std::string& name) {
    const std::string idx = name + ".idx";
    auto bad = [&](const std::string& why) { return InputError(idx + ": " + why); };
    std::string in;
    {
      errno = 0;
      const int fd = ::open(idx.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) throw bad("cannot open (" + errno_text(errno) + ")");
      char buf[1 << 16];
      for (;;) {
        const ssize_t r = ::read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
          const int e = errno;
          ::close(fd);
          throw bad("cannot read (" + errno_text(e) + ")");
        }
        if (r == 0) break;
        in.append(buf, static_cast<size_t>(r));
      }
      ::close(fd);
    }
    if (in.size() < kIndexHead + 8 || in.compare(0, 8, kIndexMagic, 8) != 0) {
      throw bad("not a spill index of this version");
    }
    const size_t body = in.size() - 8;
    if (checksum(in.data(), body) != get_raw<uint64_t>(in, body)) {
      throw bad("damaged (checksum)");
    }
    SpillInfo info;
    info.records = get_raw<uint64_t>(in, 8);
    info.bytes = get_raw<uint64_t>(in, 16);
    info.file_bytes = get_raw<uint64_t>(in, 24);
    info.level = static_cast<int>(get_raw<int64_t>(in, 32));
    info.checksum = get_raw<uint64_t>(in, 40);
    const uint64_t n = get_raw<uint64_t>(in, 48);
    const uint64_t blocks = get_raw<uint64_t>(in, 56);
    if (n != (info.records + kSampleEvery - 1) / kSampleEvery || blocks > info.bytes ||
        body != kIndexHead + n * kIndexSample + blocks * kIndexBlock ||
        (blocks == 0 && info.file_bytes != info.bytes)) {
      throw bad("damaged (its sizes disagree)");
    }
    for (uint64_t i = 0; i < n; ++i) {
      const size_t at = kIndexHead + i * kIndexSample;
      info.keys.push_back(Key{get_raw<int64_t>(in, at), get_raw<uint32_t>(in, at + 8),
                              get_raw<uint32_t>(in, at + 12)});
      info.offsets.push_back(get_raw<uint64_t>(in, at + 16));
      if (info.offsets.back() >= info.bytes || (i > 0 && info.offsets[i] <= info.offsets[i - 1]) ||
          (i > 0 && info.keys[i] < info.keys[i - 1])) {
        throw bad("damaged (its samples are out of order)");
      }
    }
    for (uint64_t i = 0; i < blocks; ++i) {
      const size_t at = kIndexHead + n * kIndexSample + i * kIndexBlock;
      info.block_raw.push_back(get_raw<uint64_t>(in, at));
      info.block_file.push_back(get_raw<uint64_t>(in, at + 8));
      if ((i == 0 && (info.block_raw[0] != 0 || info.block_file[0] != 0)) ||
          (i > 0 && (info.block_raw[i] <= info.block_raw[i - 1] ||
                     info.block_file[i] <= info.block_file[i - 1])) ||
          info.block_raw[i] >= info.bytes || info.block_file[i] >= info.file_bytes) {
        throw bad("damaged (its blocks are out of order)");
      }
    }
    struct stat st {};
    errno = 0;
    if (::stat(name.c_str(), &st) != 0) {
      throw InputError(name + ": cannot open (" + errno_text(errno) + ")");
    }
    if (static_cast<uint64_t>(st.st_size) != info.file_bytes) {
      throw InputError(name + ": holds " + std::to_string(st.st_size) + " bytes, its index " +
                       std::to_string(info.file_bytes));
    }
    return info;
  }

  // The records of sorted runs in key order, ties in run order, to dest.
  static void merge_runs(const std::vector<RunPtr>& job,
                         const std::function<void(const uint8_t*)>& dest) {
    if (job.size() == 1) {
      for (const Entry& e : job[0]->entries) dest(e.bytes);
      return;
    }
    MergeQueue pq;
    std::vector<size_t> next(job.size(), 0);
    for (size_t r = 0; r < job.size(); ++r)
      if (!job[r]->entries.empty()) pq.emplace(job[r]->entries[0].key, r);
    while (!pq.empty()) {
      const size_t r = pq.top().second;
      pq.pop();
      const std::vector<Entry>& es = job[r]->entries;
      dest(es[next[r]++].bytes);
      if (next[r] < es.size()) pq.emplace(es[next[r]].key, r);
    }
  }

  // One sorted BAM given to add_sorted_part, read record by record with its order checked.
  struct PartReader {
    std::string path;
    htsFile* fp = nullptr;
    sam_hdr_t* hdr = nullptr;
    uint64_t records = 0;
    Key last{INT64_MIN, 0, 0};
    PartReader(const std::string& p, const sam_hdr_t* want, hts_tpool* pool) : path(p) {
      fp = sam_open(p.c_str(), "r");
      if (!fp) throw InputError(p + ": cannot open (" + errno_text(errno) + ")");
      if (pool) {
        htsThreadPool tp{pool, 0};
        hts_set_opt(fp, HTS_OPT_THREAD_POOL, &tp);
      }
      hdr = sam_hdr_read(fp);
      if (!hdr) throw InputError(p + ": cannot read its BAM header");
      bool same = sam_hdr_nref(hdr) == sam_hdr_nref(want);
      for (int i = 0; same && i < sam_hdr_nref(hdr); ++i) {
        same = std::strcmp(sam_hdr_tid2name(hdr, i), sam_hdr_tid2name(want, i)) == 0 &&
               sam_hdr_tid2len(hdr, i) == sam_hdr_tid2len(want, i);
      }
      if (!same) throw InputError(p + ": its @SQ lines differ from the output's");
    }
    ~PartReader() {
      if (hdr) sam_hdr_destroy(hdr);
      if (fp) sam_close(fp);
    }
    PartReader(const PartReader&) = delete;
    PartReader& operator=(const PartReader&) = delete;
    // The next record into b; false at the end.
    bool next(bam1_t* b) {
      const int rc = sam_read1(fp, hdr, b);
      if (rc == -1) return false;
      if (rc < -1) {
        throw InputError(path + ": record " + std::to_string(records + 1) +
                         " is truncated or corrupt");
      }
      ++records;
      const Key k = Key::of(b->core);
      if (k < last) {
        throw InputError(path + ": record " + std::to_string(records) + " (" + bam_get_qname(b) +
                         ") comes before the one above it: the part is not coordinate-sorted");
      }
      last = k;
      return true;
    }
  };

  // Decompression threads shared by the parts being merged.
  struct PoolFree {
    void operator()(hts_tpool* p) const { hts_tpool_destroy(p); }
  };
  std::unique_ptr<hts_tpool, PoolFree> part_pool;
  hts_tpool* pool_for_parts() {
    if (!part_pool && opt.threads > 1) part_pool.reset(hts_tpool_init(opt.threads));
    return part_pool.get();
  }

  // k-way merge of spills[spill_begin, spill_end), when with_memory the runs in memory, then
  // parts[part_begin, part_end), into dest. Equal keys come out in that order of runs, i.e.
  // arrival order. dest may take the record's buffers (reloaded from its run after each call).
  // Records held as bytes (spills, runs in memory) go to dest_bytes instead where it is given,
  // without a copy, with what holds them (a spill's chunk; nullptr for runs in memory).
  // (record, its bam_record_size, what holds it)
  using BytesDest =
      std::function<void(const uint8_t*, uint32_t, const std::shared_ptr<const void>&)>;
  void merge(size_t spill_begin, size_t spill_end, bool with_memory,
             const std::function<void(bam1_t*)>& dest, const BytesDest& dest_bytes = nullptr,
             size_t part_begin = 0, size_t part_end = 0) {
    const size_t nruns = spill_end - spill_begin;
    struct Source {
      std::unique_ptr<SpillFile> file;
      std::unique_ptr<SpillReader> spill;
      std::unique_ptr<PartReader> part;
      BamPtr rec = new_bam();           // a part's current record, or a loaded copy for dest
      const uint8_t* bytes = nullptr;   // a spill's or a run's current record
      Key key;                          // the current record's (a run's from its entry, so
      uint32_t bam_bytes = 0;           // that the merge never touches the record itself)
    };
    const size_t mem = with_memory ? runs.size() : 0;
    const size_t nsrc = nruns + mem + (part_end - part_begin);
    std::vector<Source> src(nsrc);
    std::vector<size_t> next_entry(mem, 0);
    auto advance = [&](size_t r) -> bool {
      Source& s = src[r];
      if (s.part) {
        if (!s.part->next(s.rec.get())) return false;
        s.key = Key::of(s.rec->core);
        return true;
      }
      if (r >= nruns) {
        const std::vector<Entry>& es = runs[r - nruns]->entries;
        size_t& i = next_entry[r - nruns];
        if (i == es.size()) return false;
        s.bytes = es[i].bytes;
        s.key = es[i].key;
        s.bam_bytes = es[i].bam_bytes;
        ++i;
        return true;
      }
      s.bytes = s.spill->next();
      if (!s.bytes) return false;
      bam1_core_t c;
      std::memcpy(&c, s.bytes, sizeof c);
      s.key = Key::of(c);
      s.bam_bytes = bam_record_size(c, RecordBatch::data_length(s.bytes));
      return true;
    };
    MergeQueue pq;
    for (size_t r = 0; r < nsrc; ++r) {
      if (r < nruns) {
        const std::string& name = spills[spill_begin + r];
        const auto known = spill_info.find(name);
        src[r].file = std::make_unique<SpillFile>(name);
        const SpillInfo* info = known == spill_info.end() ? nullptr : &known->second;
        src[r].spill = std::make_unique<SpillReader>(*src[r].file, info, 0, kReadChunk,
                                                     info ? info->records : 0);
      } else if (r >= nruns + mem) {
        src[r].part = std::make_unique<PartReader>(parts[part_begin + (r - nruns - mem)], hdr,
                                                   pool_for_parts());
      }
      if (advance(r)) pq.emplace(src[r].key, r);
    }
    uint64_t merged = 0;
    while (!pq.empty()) {
      if (closing && opt.check_interrupt && (++merged & 0xFFFF) == 0) opt.check_interrupt();
      const size_t r = pq.top().second;
      pq.pop();
      Source& s = src[r];
      if (s.part) {
        check_addable(s.rec->core);
        dest(s.rec.get());
      } else if (dest_bytes) {
        dest_bytes(s.bytes, s.bam_bytes, s.spill ? s.spill->owner() : nullptr);
      } else {
        RecordBatch::load_record(s.bytes, s.rec.get());
        dest(s.rec.get());
      }
      if (advance(r)) pq.emplace(s.key, r);
    }
  }

  // The final merge (no parts) on opt.threads threads. The merged order is (key, source, rank
  // in source): sources are the spills, oldest first, then the runs in arrival order. It is cut
  // into ranges at sampled records (every kSampleEvery-th of each source), so that even a long
  // run of equal keys (unmapped reads) is spread over several ranges; each range is merged on
  // its own (spills read with pread between the samples around it, runs from their entries),
  // and the ranges are handed over in order, a bounded number in flight. The records, and so
  // the bytes, are the sequential merge's; for the ISA-L writer this thread only places them
  // into blocks.
  struct Cut {
    Key key;
    size_t source = 0;
    uint64_t rank = 0;
    bool operator<(const Cut& o) const {
      if (key < o.key) return true;
      if (o.key < key) return false;
      return std::tie(source, rank) < std::tie(o.source, o.rank);
    }
  };
  // each: where the records go, one by one, instead of to the ISA-L writer (which takes them
  // where they lie).
  void merge_in_ranges(const std::function<void(const uint8_t*)>& each) {
    const size_t ns = spills.size(), nsrc = ns + runs.size();
    std::vector<const SpillInfo*> infos;
    std::vector<Cut> samples;
    uint64_t total_bytes = 0;
    for (size_t s = 0; s < ns; ++s) {
      const auto it = spill_info.find(spills[s]);
      if (it == spill_info.end()) throw std::logic_error("BamWriter: spill without its record");
      const SpillInfo& info = it->second;
      infos.push_back(&info);
      for (size_t j = 0; j < info.keys.size(); ++j)
        samples.push_back(Cut{info.keys[j], s, j * kSampleEvery});
      total_bytes += info.bytes;
    }
    for (size_t k = 0; k < runs.size(); ++k) {
      const std::vector<Entry>& es = runs[k]->entries;
      for (size_t i = 0; i < es.size(); i += kSampleEvery)
        samples.push_back(Cut{es[i].key, ns + k, i});
      total_bytes += runs[k]->bytes.size();
    }
    std::sort(samples.begin(), samples.end());
    const size_t workers = static_cast<size_t>(std::max(1, opt.threads));
    const size_t window = 2 * workers;  // ranges merged but not yet handed over, at most
    // The ranges in flight hold about half the sort memory.
    const size_t range_bytes =
        opt.merge_range_bytes ? opt.merge_range_bytes
                              : std::clamp<size_t>(opt.memory_bytes / (2 * window),
                                                   size_t{512} << 10, size_t{4} << 20);
    const size_t n_ranges =
        std::max<size_t>(1, std::min<size_t>(samples.size(), total_bytes / range_bytes));
    std::vector<Cut> cuts;  // range r holds [cuts[r - 1], cuts[r]), the ends open
    for (size_t i = 1; i < n_ranges; ++i) {
      const Cut& c = samples[i * samples.size() / n_ranges];
      if (cuts.empty() || cuts.back() < c) cuts.push_back(c);
    }
    const size_t n = cuts.size() + 1;
    std::vector<std::unique_ptr<SpillFile>> files;
    for (const std::string& name : spills) files.push_back(std::make_unique<SpillFile>(name));

    // The first of `count` positions of source s that lies at or after cut c, position i being
    // a record of rank i * step (a run's entries: step 1; a spill's samples: kSampleEvery).
    auto first_at = [](const Cut& c, size_t s, size_t count, uint64_t step, const auto& key_at) {
      size_t lo = 0, hi = count;
      while (lo < hi) {
        const size_t mid = (lo + hi) / 2;
        if (Cut{key_at(mid), s, mid * step} < c) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };

    struct RangeOut {
      std::vector<const uint8_t*> records;
      std::vector<uint32_t> sizes;
      std::shared_ptr<std::vector<std::shared_ptr<const void>>> owners =
          std::make_shared<std::vector<std::shared_ptr<const void>>>();
      std::vector<uint64_t> from_spill;  // records read from each spill
      std::exception_ptr failure;
      bool done = false;
    };
    std::vector<RangeOut> outs(n);

    auto merge_range = [&](size_t r, RangeOut& out) {
      struct Src {
        std::unique_ptr<SpillReader> reader;
        uint64_t rank = 0;  // of the next record; a run's range ends before end_rank
        uint64_t end_rank = 0;
        const void* owner_used = nullptr;  // the chunk last added to the range's owners
        const std::vector<Entry>* entries = nullptr;
        const uint8_t* bytes = nullptr;
        Key key;
        uint32_t bam_bytes = 0;
        std::shared_ptr<const void> owner;  // holds bytes (a spill's chunk)
      };
      std::vector<Src> src(nsrc);
      out.from_spill.assign(ns, 0);
      for (size_t s = 0; s < nsrc; ++s) {
        Src& x = src[s];
        if (s < ns) {
          // A spill's ranks are known only at its samples: read from the last sample before
          // the range to the first sample at or after its end, and tell the records between by
          // their (key, source, rank).
          const SpillInfo& info = *infos[s];
          const size_t m = info.keys.size();
          auto sample_key = [&](size_t j) -> const Key& { return info.keys[j]; };
          size_t from_sample = 0, to_sample = m;  // m: the file's end
          if (r > 0) {
            const size_t j = first_at(cuts[r - 1], s, m, kSampleEvery, sample_key);
            from_sample = j > 0 ? j - 1 : 0;
          }
          if (r + 1 < n) to_sample = first_at(cuts[r], s, m, kSampleEvery, sample_key);
          x.rank = from_sample * kSampleEvery;
          const uint64_t from = from_sample < m ? info.offsets[from_sample] : info.bytes;
          const uint64_t limit = to_sample < m ? info.offsets[to_sample] : info.bytes;
          x.reader = std::make_unique<SpillReader>(*files[s], &info, from, kRangeChunk,
                                                   SpillReader::kUnchecked, limit);
        } else {
          const std::vector<Entry>& es = runs[s - ns]->entries;
          auto entry_key = [&](size_t i) -> const Key& { return es[i].key; };
          x.entries = &es;
          x.rank = r > 0 ? first_at(cuts[r - 1], s, es.size(), 1, entry_key) : 0;
          x.end_rank = r + 1 < n ? first_at(cuts[r], s, es.size(), 1, entry_key) : es.size();
        }
      }
      // Whether (key, s, rank) lies at or after cut c.
      auto at_or_after = [](const Key& key, size_t s, uint64_t rank, const Cut& c) {
        return !(Cut{key, s, rank} < c);
      };
      auto advance = [&](size_t s) -> bool {
        Src& x = src[s];
        if (x.entries) {
          if (x.rank >= x.end_rank) return false;
          const Entry& e = (*x.entries)[x.rank++];
          x.bytes = e.bytes;
          x.key = e.key;
          x.bam_bytes = e.bam_bytes;
          return true;
        }
        for (;;) {
          const uint8_t* rec = x.reader->next();
          if (!rec) return false;
          const uint64_t rank = x.rank++;
          bam1_core_t c;
          std::memcpy(&c, rec, sizeof c);
          const Key k = Key::of(c);
          if (r > 0 && !at_or_after(k, s, rank, cuts[r - 1])) continue;
          if (r + 1 < n && at_or_after(k, s, rank, cuts[r])) return false;
          x.bytes = rec;
          x.key = k;
          x.bam_bytes = bam_record_size(c, RecordBatch::data_length(rec));
          if (x.owner.get() != x.reader->owner_id()) x.owner = x.reader->owner();
          ++out.from_spill[s];
          return true;
        }
      };
      MergeQueue pq;
      for (size_t s = 0; s < src.size(); ++s)
        if (advance(s)) pq.emplace(src[s].key, s);
      while (!pq.empty()) {
        const size_t s = pq.top().second;
        pq.pop();
        Src& x = src[s];
        out.records.push_back(x.bytes);
        out.sizes.push_back(x.bam_bytes);
        if (x.owner && x.owner_used != x.owner.get()) {
          out.owners->push_back(x.owner);
          x.owner_used = x.owner.get();
        }
        if (advance(s)) pq.emplace(x.key, s);
      }
    };

    std::mutex mu;
    std::condition_variable cv;
    size_t next = 0, handed = 0;
    bool stop = false;
    auto worker = [&] {
      for (;;) {
        size_t r;
        {
          std::unique_lock<std::mutex> lk(mu);
          cv.wait(lk, [&] { return stop || next >= n || next < handed + window; });
          if (stop || next >= n) return;
          r = next++;
        }
        try {
          merge_range(r, outs[r]);
        } catch (...) {
          outs[r].failure = std::current_exception();
        }
        {
          std::lock_guard<std::mutex> lk(mu);
          outs[r].done = true;
        }
        cv.notify_all();
      }
    };
    std::vector<std::thread> pool;
    auto finish = [&] {
      {
        std::lock_guard<std::mutex> lk(mu);
        stop = true;
      }
      cv.notify_all();
      for (std::thread& t : pool) t.join();
      pool.clear();
    };
    try {
      for (size_t i = 0; i < std::min(workers, n); ++i) pool.emplace_back(worker);
      std::vector<uint64_t> read(spills.size(), 0);
      for (size_t r = 0; r < n; ++r) {
        if (opt.check_interrupt) opt.check_interrupt();
        {
          std::unique_lock<std::mutex> lk(mu);
          cv.wait(lk, [&] { return outs[r].done; });
        }
        RangeOut& out = outs[r];
        if (out.failure) std::rethrow_exception(out.failure);
        for (size_t s = 0; s < read.size(); ++s) read[s] += out.from_spill[s];
        if (each) {
          for (const uint8_t* rec : out.records) each(rec);
        } else if (!out.records.empty()) {
          fast->write_records(out.records.data(), out.sizes.data(), out.records.size(),
                              out.owners);
        }
        out = RangeOut{};  // the blocks hold what they need
        {
          std::lock_guard<std::mutex> lk(mu);
          ++handed;
        }
        cv.notify_all();
      }
      finish();
      for (size_t s = 0; s < read.size(); ++s) {
        if (read[s] != infos[s]->records) {
          throw std::runtime_error("cannot read back temporary file " + spills[s] +
                                   ": it holds " + std::to_string(read[s]) +
                                   " records, not " + std::to_string(infos[s]->records));
        }
      }
    } catch (...) {
      finish();
      throw;
    }
  }

  // Bounds the final merge's fan-in when there are many parts: the oldest parts are folded
  // into spill runs, which keep their place before the parts that remain.
  void fold_parts() {
    size_t done = 0;
    while (spills.size() + 1 + (parts.size() - done) > kMaxFanIn) {
      const size_t n = std::min(kMaxFanIn, parts.size() - done);
      const std::string folded = new_spill_name();
      SpillWriter fold(*this, folded);
      merge(0, 0, false, [&](bam1_t* b) { fold.put(b); }, nullptr, done, done + n);
      fold.finish();
      done += n;
    }
    parts.erase(parts.begin(), parts.begin() + static_cast<std::ptrdiff_t>(done));
  }

  void finish_sorted() {
    seal_open();
    wait_spill();
    closing = true;  // the merges from here on run on the closing thread
    if (!parts.empty()) {
      if (!runs.empty() || !spills.empty()) {
        throw std::logic_error("BamWriter: records added beside sorted parts");
      }
      fold_parts();
    }
    std::unique_ptr<DuplicateMarker> marker;
    std::function<void(bam1_t*)> dest = [this](bam1_t* b) { emit(b); };
    if (opt.mark_duplicates) {
      marker = std::make_unique<DuplicateMarker>(duplicate_reach,
                                                 [this](const bam1_t* b) { emit(b); });
      dest = [&marker](bam1_t* b) { marker->push(b); };
    }
    // Without marking, the ISA-L writer takes records where they lie (the runs, the mapped
    // spills) and serialises them on its threads.
    BytesDest dest_bytes;
    if (fast && !marker && parts.empty()) {  // parts' records come as copies: all of them, then
      dest_bytes = [this](const uint8_t* r, uint32_t bam_bytes,
                          const std::shared_ptr<const void>& owner) {
        to_direct(r, bam_bytes, owner);
      };
    }
    if (dest_bytes && opt.threads > 1) {
      merge_in_ranges(nullptr);
    } else if (parts.empty() && opt.threads > 1) {
      // The merge on the threads; the marker, or htslib's writer, takes the records in turn.
      BamPtr rec = new_bam();
      merge_in_ranges([&](const uint8_t* r) {
        RecordBatch::load_record(r, rec.get());
        dest(rec.get());
      });
    } else {
      merge(0, spills.size(), true, dest, dest_bytes, 0, parts.size());
    }
    if (marker) {
      marker->finish();
      duplicates = marker->stats();
    }
    if (fast) {  // every block written before the runs that hold records go
      flush_direct();
      flush_round();
      fast->flush();
    }
  }

  // Counts a record about to be added, after checking that the writer takes it.
  void check_addable(const bam1_core_t& c) {
    check_usable();
    const int nref = sam_hdr_nref(hdr);
    if (c.tid >= nref || c.mtid >= nref) {
      throw std::invalid_argument("BamWriter: record reference id beyond the header's @SQ lines");
    }
    ++added;
  }
  void check_usable() const {
    if (state != State::open) throw std::logic_error("BamWriter: add() after close/abort");
    if (failed) throw std::logic_error("BamWriter: an earlier error lost records; abort()");
  }
  std::string display_out() const { return to_stdout ? std::string("standard output") : path; }
};

BamWriter::BamWriter(const std::string& path, const std::string& header_text,
                     const BamWriterOptions& options)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.path = path;
  s.opt = options;
  s.to_stdout = path == "-";
  if (s.opt.format != "bam" && s.opt.format != "sam" && s.opt.format != "cram") {
    throw std::invalid_argument("output format must be \"bam\", \"cram\" or \"sam\", not \"" +
                                s.opt.format + "\"");
  }
  const bool bam = s.opt.format == "bam";
  const bool cram = s.opt.format == "cram";
  if (cram && s.opt.reference.empty()) {
    throw std::invalid_argument("CRAM output needs the reference FASTA: " + path);
  }
  if (s.opt.spill_compression != "never" && s.opt.spill_compression != "always") {
    throw std::invalid_argument("spill compression must be \"never\" or \"always\"");
  }
  if (s.opt.spill_compression == "always" && !spill_compression_available()) {
    throw std::invalid_argument("compressed spills need ISA-L, which this build lacks");
  }
  if (s.opt.mark_duplicates && !s.opt.sort) {
    throw std::invalid_argument("marking duplicates needs coordinate-sorted output");
  }

  s.hdr = sam_hdr_parse(header_text.size(), header_text.c_str());
  if (!s.hdr) throw std::invalid_argument("cannot parse the SAM header text for " + path);
  // The @HD SO tag must say what the file really is; add an @HD line when there is none.
  const char* so = s.opt.sort ? "coordinate" : "unsorted";
  kstring_t ks = KS_INITIALIZE;
  const bool has_hd = sam_hdr_find_hd(s.hdr, &ks) == 0;
  ks_free(&ks);
  const int rc = has_hd ? sam_hdr_update_hd(s.hdr, "SO", so)
                        : sam_hdr_add_line(s.hdr, "HD", "VN", "1.6", "SO", so, nullptr);
  if (rc < 0) throw std::invalid_argument("cannot set @HD SO in the header for " + path);

  // An index needs sorted BGZF (or CRAM) output in a real file.
  if (s.opt.write_index && s.opt.sort && (bam || cram) && !s.to_stdout) {
    bool big = false;
    for (int i = 0; i < sam_hdr_nref(s.hdr); ++i) big |= sam_hdr_tid2len(s.hdr, i) > (1LL << 29) - 1;
    s.idx_ext = cram ? ".crai" : big ? ".csi" : ".bai";
  }

  s.tmp_path = s.to_stdout ? "-" : path + ".tmp-" + std::to_string(::getpid());
  if (!s.idx_ext.empty()) s.tmp_idx = s.tmp_path + s.idx_ext;
  // Compressed BAM goes through ISA-L where the build has it (level 0 stays with htslib).
  if (bam && s.opt.fast_deflate && s.opt.compression_level != 0 && fast_bam_deflate_available()) {
    errno = 0;
    s.out_fd = s.to_stdout ? 1 : ::open(s.tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                                        0644);
    if (s.out_fd < 0) s.io_fail("cannot create output", s.tmp_path, errno);
    try {
      s.fast = std::make_unique<IsalBamOutput>(s.out_fd, s.display_out(), s.hdr,
                                               s.opt.compression_level, s.opt.threads, s.tmp_idx,
                                               s.idx_ext == ".csi" ? 14 : 0);
      s.deflated_by_isal = true;
    } catch (...) {
      s.discard();
      throw;
    }
    return;
  }
  errno = 0;
  s.out = sam_open(s.tmp_path.c_str(), s.mode(s.opt.format, s.opt.compression_level).c_str());
  if (!s.out) s.io_fail("cannot create output", s.to_stdout ? "standard output" : s.tmp_path, errno);
  // CRAM stores reads as differences from the reference, read through its .fai.
  if (cram && hts_set_fai_filename(s.out, s.opt.reference.c_str()) < 0) {
    s.discard();
    throw InputError(s.opt.reference + ": cannot open as the FASTA for CRAM output");
  }
  if ((bam || cram) && s.opt.threads > 1 && hts_set_threads(s.out, s.opt.threads) < 0) {
    s.discard();
    throw std::runtime_error("cannot start compression threads for " + path);
  }
  errno = 0;
  if (sam_hdr_write(s.out, s.hdr) < 0) {
    const int e = errno;
    s.discard();
    s.io_fail("cannot write", s.display_out(), e);
  }
  if (!s.idx_ext.empty()) {
    // Built while writing, so the finished BAM never has to be read back.
    if (sam_idx_init(s.out, s.hdr, s.idx_ext == ".csi" ? 14 : 0, s.tmp_idx.c_str()) < 0) {
      s.discard();
      throw std::runtime_error("cannot start the index for " + path);
    }
  }
}

BamWriter::~BamWriter() = default;

const sam_hdr_t* BamWriter::header() const { return impl_->hdr; }

void BamWriter::add(const bam1_t* record) {
  Impl& s = *impl_;
  s.check_addable(record->core);
  if (!s.opt.sort) {
    s.emit(record);
    return;
  }
  s.open.append(record);
  s.opened();
}

BamWriter::RunPtr BamWriter::prepare(RecordBatch& records) const {
  return impl_->make_run(records);
}

void BamWriter::add(RunPtr run) {
  Impl& s = *impl_;
  s.check_usable();
  s.added += run->entries.size();
  if (s.opt.sort) {
    s.take(std::move(run));
    return;
  }
  for (const Entry& e : run->entries) {
    RecordBatch::load_record(e.bytes, s.scratch.get());
    s.emit(s.scratch.get());
  }
  std::vector<RunPtr> done;
  done.push_back(std::move(run));
  s.give_back(done);
}

void BamWriter::recycle(RecordBatch& records) { impl_->refill(records); }

void BamWriter::close() {
  Impl& s = *impl_;
  if (s.state != Impl::State::open) {
    if (s.state == Impl::State::closed) return;
    throw std::logic_error("BamWriter: close() after abort()");
  }
  try {
    if (s.failed) throw std::logic_error("BamWriter: an earlier error lost records; abort()");
    if (s.opt.sort) s.finish_sorted();
    s.drop_spares();
    std::vector<std::string> gone;
    // A checkpoint's spills (and index files) stay: the caller removes them once the
    // checkpoint that lists them is forgotten, so that none ever lists a missing file.
    for (const auto& name : s.spills) {
      std::lock_guard<std::mutex> lk(s.keep_mu);
      if (!s.kept.count(name) && !s.kept_pending.count(name)) gone.push_back(name);
    }
    const FileReaper reaper(std::move(gone));  // joined as the block ends, either way
    s.spills.clear();
    s.runs.clear();
    s.open = RecordBatch();
    if (s.fast) {
      s.flush_round();  // unsorted output's last records
      s.fast->finish();
      s.fast.reset();
      errno = 0;
      const int rc = s.out_fd > 1 ? ::close(s.out_fd) : 0;
      s.out_fd = -1;
      if (rc < 0) s.io_fail("cannot finish", s.display_out(), errno);
    } else {
      errno = 0;
      if (!s.idx_ext.empty() && sam_idx_save(s.out) < 0) {
        s.io_fail("cannot write index", s.tmp_idx, errno);
      }
      errno = 0;
      const int rc = sam_close(s.out);
      s.out = nullptr;
      if (rc < 0) s.io_fail("cannot finish", s.display_out(), errno);
    }
    if (!s.to_stdout) {
      // An index left from an earlier run would not match the new file.
      unlink_quiet(s.path + ".bai");
      unlink_quiet(s.path + ".csi");
      unlink_quiet(s.path + ".crai");
      if (std::rename(s.tmp_path.c_str(), s.path.c_str()) != 0) {
        s.io_fail("cannot rename " + s.tmp_path + " to", s.path, errno);
      }
      // Index last: a visible index always belongs to the visible BAM. Without its index the
      // run has failed, and the BAM goes too.
      if (!s.tmp_idx.empty() &&
          std::rename(s.tmp_idx.c_str(), (s.path + s.idx_ext).c_str()) != 0) {
        const int e = errno;
        unlink_quiet(s.path);
        s.io_fail("cannot rename " + s.tmp_idx + " to", s.path + s.idx_ext, e);
      }
    }
  } catch (...) {
    s.discard();
    s.state = Impl::State::aborted;
    throw;
  }
  s.state = Impl::State::closed;
}

void BamWriter::abort() {
  Impl& s = *impl_;
  if (s.state == Impl::State::open) s.discard();
  if (s.state != Impl::State::closed) s.state = Impl::State::aborted;
}

void BamWriter::add_sorted_part(const std::string& bam_path, int64_t duplicate_reach) {
  Impl& s = *impl_;
  if (s.state != Impl::State::open) throw std::logic_error("BamWriter: add_sorted_part() after close/abort");
  if (!s.opt.sort) throw std::invalid_argument("sorted parts need a coordinate-sorted writer");
  if (s.added > 0) throw std::logic_error("BamWriter: sorted parts and added records cannot mix");
  s.parts.push_back(bam_path);
  s.duplicate_reach = std::max(s.duplicate_reach, duplicate_reach);
}

SpillCheckpoint BamWriter::checkpoint() {
  Impl& s = *impl_;
  s.check_usable();
  if (!s.opt.sort || !s.opt.keep_checkpoints || !s.parts.empty()) {
    throw std::logic_error("BamWriter: checkpoint() needs sorted records and keep_checkpoints");
  }
  s.seal_open();
  s.wait_spill();
  if (!s.runs.empty()) {
    s.start_spill();
    s.wait_spill();
  }
  std::set<std::string> listed(s.spills.begin(), s.spills.end());
  for (const auto& name : s.spills) {
    {
      std::lock_guard<std::mutex> lk(s.keep_mu);
      if (s.indexed.count(name)) continue;
    }
    s.write_spill_index(name);
    std::lock_guard<std::mutex> lk(s.keep_mu);
    s.indexed.insert(name);
  }
  if (!s.spills.empty()) {  // the new names themselves, on disk
    const std::string dir = dir_of(s.spills.front());
    errno = 0;
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) s.io_fail("cannot open", dir, errno);
    Impl::sync_fd(fd, dir);
    ::close(fd);
  }
  {
    std::lock_guard<std::mutex> lk(s.keep_mu);
    s.kept_pending = std::move(listed);
  }
  return SpillCheckpoint{s.spills, s.added, s.duplicate_reach};
}

void BamWriter::release_checkpoint() {
  Impl& s = *impl_;
  std::vector<std::string> gone;
  {
    std::lock_guard<std::mutex> lk(s.keep_mu);
    if (s.kept_pending.empty()) return;
    for (const auto& k : s.kept) {
      if (!s.kept_pending.count(k)) gone.push_back(k);
    }
    s.kept = std::move(s.kept_pending);
    s.kept_pending.clear();
    for (const auto& g : gone) s.indexed.erase(g);
  }
  for (const auto& g : gone) {  // folded since: the writer reads them no more
    unlink_quiet(g + ".idx");
    unlink_quiet(g);
  }
}

void BamWriter::adopt_spills(const std::vector<std::string>& spills, int64_t duplicate_reach) {
  Impl& s = *impl_;
  s.check_usable();
  if (!s.opt.sort || !s.parts.empty() || s.added > 0 || !s.spills.empty()) {
    throw std::logic_error("BamWriter: adopt_spills() needs a sorted writer with no records");
  }
  std::vector<Impl::SpillInfo> infos;
  for (const auto& name : spills) infos.push_back(Impl::read_spill_index(name));
  std::lock_guard<std::mutex> lk(s.keep_mu);
  for (size_t i = 0; i < spills.size(); ++i) {
    s.added += infos[i].records;
    s.spill_bytes_live += infos[i].file_bytes;
    s.spill_info[spills[i]] = std::move(infos[i]);
    s.spills.push_back(spills[i]);
    s.kept.insert(spills[i]);  // the earlier run's checkpoint lists them
    s.indexed.insert(spills[i]);
  }
  s.spill_bytes_peak = std::max(s.spill_bytes_peak, s.spill_bytes_live);
  s.duplicate_reach = std::max(s.duplicate_reach, duplicate_reach);
}

uint64_t BamWriter::checked_spill_records(const std::string& spill,
                                         const std::function<void()>& check_interrupt) {
  const Impl::SpillInfo info = Impl::read_spill_index(spill);
  // Every byte, against the checksum taken as the spill was written.
  const FileChecksum sum = checksum_file(spill, false, check_interrupt);
  if (sum.bytes != info.file_bytes || sum.value != info.checksum) {
    throw InputError(spill + ": damaged (its bytes are not those its index was written for)");
  }
  return info.records;
}

int64_t BamWriter::duplicate_reach() const { return impl_->duplicate_reach; }

uint64_t BamWriter::records_written() const { return impl_->added; }
double BamWriter::spill_seconds() const { return impl_->spill_thread_seconds; }
uint64_t BamWriter::spilled_bytes() const { return impl_->spill_bytes_written; }
uint64_t BamWriter::spill_peak_bytes() const { return impl_->spill_bytes_peak; }
const DuplicateStats& BamWriter::duplicate_stats() const { return impl_->duplicates; }
const char* BamWriter::deflater() const { return impl_->deflated_by_isal ? "isa-l" : "htslib"; }

}  // namespace gms
