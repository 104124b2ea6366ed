// BAM output deflated by ISA-L: BGZF blocks of up to 0xff00 bytes, compressed in order-preserving
// parallel, indexed with htslib as each block reaches the file (see bam_deflate.hpp).
#include "gmsaccel/bam_deflate.hpp"

#include <htslib/hts.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if GMSACCEL_HAVE_ISAL
#include <isa-l.h>
#endif

#include "gmsaccel/record_batch.hpp"

namespace gms {

#if GMSACCEL_HAVE_ISAL

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "BAM is little-endian: this writer "
                                                          "copies host integers as they are");

bool fast_bam_deflate_available() { return true; }

namespace {

constexpr size_t kBlockData = 0xff00;  // uncompressed bytes per block, as htslib
constexpr size_t kMaxBlock = 65536;     // a BGZF block's largest size
constexpr size_t kHeader = 18, kFooter = 8;
constexpr uint8_t kEofBlock[28] = {0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, 0x42, 0x43,
                                   2,    0,    0x1b, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0};

// A record whose last byte lies in this block: what the index needs of it.
struct IndexEntry {
  int tid;
  hts_pos_t beg, end;
  uint32_t end_in_block;  // offset just past the record in the block's data
  bool mapped;
};

// A slice of one record's BAM bytes, placed in a block by write_records.
struct Piece {
  const uint8_t* record;  // the sorted writer's layout (record_batch.hpp)
  uint32_t from, len, total;
};

struct Block {
  std::vector<uint8_t> data;  // uncompressed
  std::vector<uint8_t> out;   // the BGZF block
  std::vector<IndexEntry> entries;
  // Appended to data (with their index entries) on a compressing thread, before deflating.
  std::vector<Piece> pieces;
  std::vector<std::shared_ptr<const void>> keep;  // owners of the pieces' records
  const char* error = nullptr;  // why a piece's record cannot be written as BAM
  std::exception_ptr failure;   // anything else thrown while filling or compressing it
  bool ready = false;
};

// Why BAM cannot hold a record (completed with the file's name), or nullptr.
const char* unfit_for_bam(const bam1_core_t& c) {
  if (c.l_qname - c.l_extranul > 255) return "read name longer than 254 characters in";
  if (c.n_cigar > 0xffff) return "more than 65535 CIGAR operations (not supported here) in";
  if (c.pos > INT32_MAX || c.mpos > INT32_MAX || c.isize > INT32_MAX || c.isize < INT32_MIN) {
    return "position beyond 2^31-1 (BAM cannot hold it) in";
  }
  return nullptr;
}

// A record's BAM bytes (bam_record_size of them) at out: block_size and the fixed fields, the
// name without its extra NULs, then CIGAR, sequence, qualities and tags, as bam_write1 writes.
void serialise_bam(const bam1_core_t& c, const uint8_t* data, uint32_t l_data, uint8_t* out) {
  const uint32_t name_len = static_cast<uint32_t>(c.l_qname - c.l_extranul);
  const uint32_t rest = l_data - static_cast<uint32_t>(c.l_qname);
  const uint32_t x[9] = {
      32 + name_len + rest,
      static_cast<uint32_t>(c.tid),
      static_cast<uint32_t>(c.pos),
      static_cast<uint32_t>(c.bin) << 16 | static_cast<uint32_t>(c.qual) << 8 | name_len,
      static_cast<uint32_t>(c.flag) << 16 | c.n_cigar,
      static_cast<uint32_t>(c.l_qseq),
      static_cast<uint32_t>(c.mtid),
      static_cast<uint32_t>(c.mpos),
      static_cast<uint32_t>(c.isize)};
  std::memcpy(out, x, sizeof x);
  std::memcpy(out + sizeof x, data, name_len);
  std::memcpy(out + sizeof x + name_len, data + c.l_qname, rest);
}

IndexEntry index_entry(const bam1_core_t& c, const uint8_t* data, uint32_t l_data,
                       size_t end_in_block) {
  bam1_t view{};  // bam_endpos only reads the core and the CIGAR
  view.core = c;
  view.data = const_cast<uint8_t*>(data);
  view.l_data = static_cast<int>(l_data);
  return IndexEntry{c.tid, c.pos, bam_endpos(&view), static_cast<uint32_t>(end_in_block),
                    !(c.flag & BAM_FUNMAP)};
}

// Appends a block's pieces to its data, with an index entry for each record ending there.
void fill(Block& b) {
  thread_local std::vector<uint8_t> whole;  // a record split over blocks, serialised once here
  if (b.data.capacity() < kBlockData) b.data.reserve(kBlockData);
  for (const Piece& p : b.pieces) {
    bam1_core_t c;
    uint32_t l_data;
    std::memcpy(&c, p.record, sizeof c);
    std::memcpy(&l_data, p.record + sizeof c, sizeof l_data);
    const uint8_t* data = p.record + RecordBatch::kHeaderBytes;
    if ((b.error = unfit_for_bam(c))) break;
    const size_t at = b.data.size();
    b.data.resize(at + p.len);
    if (p.from == 0 && p.len == p.total) {
      serialise_bam(c, data, l_data, b.data.data() + at);
    } else {
      whole.resize(p.total);
      serialise_bam(c, data, l_data, whole.data());
      std::memcpy(b.data.data() + at, whole.data() + p.from, p.len);
    }
    if (p.from + p.len == p.total) b.entries.push_back(index_entry(c, data, l_data, b.data.size()));
  }
  b.pieces.clear();
  b.keep.clear();
}

void put16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, v);
  put16(p + 2, v >> 16);
}

int isal_level(int zlib_level) {
  if (zlib_level >= 0 && zlib_level <= 1) return 1;
  if (zlib_level >= 2 && zlib_level <= 5) return 2;
  return 3;  // 6-9, and -1 (zlib's default, 6)
}

size_t level_buffer_size(int level) {
  switch (level) {
    case 1: return ISAL_DEF_LVL1_DEFAULT;
    case 2: return ISAL_DEF_LVL2_DEFAULT;
    default: return ISAL_DEF_LVL3_DEFAULT;
  }
}

// Deflates b.data into b.out as one BGZF block; a stored block when deflate would not fit.
void compress(Block& b, int level) {
  thread_local std::vector<uint8_t> level_buf;
  if (level_buf.size() < level_buffer_size(level)) level_buf.resize(level_buffer_size(level));
  const size_t n = b.data.size();
  b.out.resize(kMaxBlock);
  uint8_t* o = b.out.data();
  const uint8_t head[16] = {0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, 0x42, 0x43, 2, 0};
  std::memcpy(o, head, sizeof head);
  // Zeroed first: the init leaves some fields (the history window's size among them) as they
  // were, and stack leftovers there made a block's bytes depend on what ran before.
  isal_zstream z{};
  isal_deflate_stateless_init(&z);
  z.level = static_cast<uint32_t>(level);
  z.level_buf = level_buf.data();
  // Exactly the level's size: ISA-L sizes its tables from it (a larger buffer, left by an
  // earlier, higher level on this thread, could change the bytes).
  z.level_buf_size = static_cast<uint32_t>(level_buffer_size(level));
  z.gzip_flag = IGZIP_DEFLATE;
  z.end_of_stream = 1;
  z.flush = NO_FLUSH;
  z.next_in = b.data.data();
  z.avail_in = static_cast<uint32_t>(n);
  z.next_out = o + kHeader;
  z.avail_out = static_cast<uint32_t>(kMaxBlock - kHeader - kFooter);
  size_t clen;
  if (isal_deflate_stateless(&z) == COMP_OK) {
    clen = z.total_out;
  } else {  // incompressible: one stored deflate block (n <= 0xff00 always fits)
    o[kHeader] = 1;  // BFINAL, BTYPE 00
    put16(o + kHeader + 1, static_cast<uint32_t>(n));
    put16(o + kHeader + 3, static_cast<uint32_t>(~n & 0xffff));
    std::memcpy(o + kHeader + 5, b.data.data(), n);
    clen = n + 5;
  }
  const size_t total = kHeader + clen + kFooter;
  put16(o + 16, static_cast<uint32_t>(total - 1));
  put32(o + kHeader + clen, crc32_gzip_refl(0, b.data.data(), n));
  put32(o + kHeader + clen + 4, static_cast<uint32_t>(n));
  b.out.resize(total);
}

}  // namespace

struct IsalBamOutput::Impl {
  int fd = -1;
  std::string name;
  int level = 1;
  uint64_t written = 0;  // compressed bytes in the file so far
  std::unique_ptr<Block> current = std::make_unique<Block>();

  // Blocks handed to the compressors, in file order.
  std::deque<std::unique_ptr<Block>> inflight;
  std::deque<Block*> todo;  // not yet taken by a compressor
  size_t max_inflight = 1;
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable cv_work, cv_done;
  bool stop = false;

  hts_idx_t* idx = nullptr;
  std::string idx_path;
  int idx_fmt = HTS_FMT_BAI;

  // With workers, blocks reach the file on a thread of their own (land_loop), in order, so that
  // the caller's thread only places records; sealed and landed count blocks, and room lets
  // the caller wait for the lander or report its failure.
  std::thread lander;
  std::condition_variable cv_room;
  uint64_t sealed = 0, landed = 0;
  std::exception_ptr land_failure;

  ~Impl() {
    {
      std::lock_guard<std::mutex> lk(mu);
      stop = true;
    }
    cv_work.notify_all();
    cv_done.notify_all();
    for (auto& t : workers) t.join();
    if (lander.joinable()) lander.join();
    if (idx) hts_idx_destroy(idx);
  }

  [[noreturn]] void fail(const std::string& what, int e = 0) const {
    throw std::runtime_error(what + " " + name + (e ? std::string(": ") + std::strerror(e) : ""));
  }

  void work() {
    for (;;) {
      Block* b;
      {
        std::unique_lock<std::mutex> lk(mu);
        cv_work.wait(lk, [this] { return stop || !todo.empty(); });
        if (stop) return;
        b = todo.front();
        todo.pop_front();
      }
      process(*b);
      {
        std::lock_guard<std::mutex> lk(mu);
        b->ready = true;
      }
      cv_done.notify_all();
    }
  }

  void process(Block& b) {
    try {
      if (!b.pieces.empty()) fill(b);
      if (!b.error) compress(b, level);
    } catch (...) {  // e.g. bad_alloc on a compressing thread: the writer's error, at landing
      b.failure = std::current_exception();
    }
  }

  void write_all(const uint8_t* p, size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(fd, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) fail("cannot write", errno);
      p += w;
      n -= static_cast<size_t>(w);
    }
  }

  // The oldest block is compressed: write it and index the records ending in it.
  void land(Block& b) {
    if (b.failure) std::rethrow_exception(b.failure);
    if (b.error) fail(b.error);
    const uint64_t at = written;
    write_all(b.out.data(), b.out.size());
    written += b.out.size();
    for (const IndexEntry& e : b.entries) {
      // A record ending exactly at the block's end ends where the next block starts.
      const uint64_t voff = e.end_in_block == b.data.size()
                                ? written << 16
                                : (at << 16) | e.end_in_block;
      if (idx && hts_idx_push(idx, e.tid, e.beg, e.end, voff, e.mapped) < 0) {
        fail("cannot index (records out of order?)");
      }
    }
  }

  void land_loop() {
    for (;;) {
      std::unique_ptr<Block> b;
      {
        std::unique_lock<std::mutex> lk(mu);
        cv_done.wait(lk, [this] {
          return stop || (!land_failure && !inflight.empty() && inflight.front()->ready);
        });
        if (stop) return;
        b = std::move(inflight.front());
        inflight.pop_front();
      }
      cv_room.notify_all();
      std::exception_ptr failure;
      try {
        land(*b);
      } catch (...) {
        failure = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lk(mu);
        if (failure) land_failure = failure;
        ++landed;
      }
      cv_room.notify_all();
    }
  }

  // Rethrows the lander's failure (mu held).
  void check_landed() {
    if (land_failure) std::rethrow_exception(land_failure);
  }

  // Ends the current block (if it holds anything) and queues it.
  void seal() {
    if (current->data.empty() && current->pieces.empty()) return;
    open_bytes = 0;
    if (workers.empty()) {
      process(*current);
      land(*current);
      current->data.clear();
      current->entries.clear();
      return;
    }
    {
      std::unique_lock<std::mutex> lk(mu);
      cv_room.wait(lk, [this] { return land_failure || inflight.size() < max_inflight; });
      check_landed();
      todo.push_back(current.get());
      inflight.push_back(std::move(current));
      ++sealed;
    }
    cv_work.notify_one();
    current = std::make_unique<Block>();
  }

  // Seals the open block and waits until every block is in the file.
  void drain() {
    seal();
    if (workers.empty()) return;
    std::unique_lock<std::mutex> lk(mu);
    cv_room.wait(lk, [this] { return land_failure || landed == sealed; });
    check_landed();
  }

  // Appends bytes, sealing full blocks.
  void append(const uint8_t* p, size_t n) {
    while (n > 0) {
      if (open_bytes == kBlockData) seal();
      if (current->data.capacity() < kBlockData) current->data.reserve(kBlockData);
      const size_t take = std::min(n, kBlockData - open_bytes);
      current->data.insert(current->data.end(), p, p + take);
      open_bytes += take;
      p += take;
      n -= take;
    }
  }

  // Bytes in the open block, its pieces included (they are filled in when it is sealed).
  size_t open_bytes = 0;
};

IsalBamOutput::IsalBamOutput(int fd, const std::string& display_name, const sam_hdr_t* hdr,
                             int level, int threads, const std::string& index_path,
                             int csi_min_shift)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.fd = fd;
  s.name = display_name;
  s.level = isal_level(level);
  s.idx_path = index_path;
  const int n_ref = sam_hdr_nref(hdr);
  if (threads > 1) {
    s.max_inflight = static_cast<size_t>(threads) * 4;
    for (int t = 0; t < threads; ++t) s.workers.emplace_back([&s] { s.work(); });
    s.lander = std::thread([&s] { s.land_loop(); });
  }
  // Header: "BAM\1", the text, the references; then a block boundary, as htslib writes it.
  std::vector<uint8_t> h(4);
  std::memcpy(h.data(), "BAM\1", 4);
  auto i32 = [&h](int64_t v) {
    const uint32_t u = static_cast<uint32_t>(v);
    const uint8_t b[4] = {static_cast<uint8_t>(u), static_cast<uint8_t>(u >> 8),
                          static_cast<uint8_t>(u >> 16), static_cast<uint8_t>(u >> 24)};
    h.insert(h.end(), b, b + 4);
  };
  const char* text = sam_hdr_str(const_cast<sam_hdr_t*>(hdr));
  const size_t l_text = text ? std::strlen(text) : 0;
  i32(static_cast<int64_t>(l_text));
  h.insert(h.end(), text, text + l_text);
  i32(n_ref);
  int64_t max_len = 0;
  for (int i = 0; i < n_ref; ++i) {
    const char* nm = sam_hdr_tid2name(hdr, i);
    const size_t ln = std::strlen(nm) + 1;
    const hts_pos_t len = sam_hdr_tid2len(hdr, i);
    if (len > INT32_MAX) throw std::invalid_argument(display_name + ": contig longer than 2^31-1");
    max_len = std::max<int64_t>(max_len, len);
    i32(static_cast<int64_t>(ln));
    h.insert(h.end(), nm, nm + ln);
    i32(len);
  }
  s.append(h.data(), h.size());
  s.drain();
  if (!index_path.empty()) {
    int min_shift = 14, n_lvls = 5;  // BAI's fixed binning
    if (csi_min_shift > 0) {  // levels enough for the longest contig, as htslib sizes them
      s.idx_fmt = HTS_FMT_CSI;
      min_shift = csi_min_shift;
      int64_t span = int64_t{1} << csi_min_shift;
      n_lvls = 0;
      for (max_len += 256; max_len > span; span <<= 3) ++n_lvls;
    }
    s.idx = hts_idx_init(n_ref, s.idx_fmt, s.written << 16, min_shift, n_lvls);
    if (!s.idx) throw std::runtime_error("cannot start the index for " + display_name);
  }
}

IsalBamOutput::~IsalBamOutput() = default;

void IsalBamOutput::write_records(const uint8_t* const* records, const uint32_t* bam_sizes,
                                  size_t n, std::shared_ptr<const void> keep) {
  Impl& s = *impl_;
  // A record that fits in a block never straddles two (htslib's bgzf_flush_try): a new block
  // when the next record would overflow this one (records longer than a block are split). Sealed blocks are filled
  // in on the compressing threads; the open one here, before returning.
  auto place = [&](const uint8_t* rec, uint32_t total) {
    if (s.open_bytes != 0 && s.open_bytes + total > kBlockData) s.seal();
    for (uint32_t from = 0; from < total;) {
      if (s.open_bytes == kBlockData) s.seal();
      const uint32_t take = static_cast<uint32_t>(
          std::min<size_t>(total - from, kBlockData - s.open_bytes));
      Block& b = *s.current;
      if (keep && (b.keep.empty() || b.keep.back() != keep)) b.keep.push_back(keep);
      b.pieces.push_back(Piece{rec, from, take, total});
      s.open_bytes += take;
      from += take;
    }
  };
  for (size_t i = 0; i < n; ++i) place(records[i], bam_sizes[i]);
  if (!s.current->pieces.empty()) {
    fill(*s.current);
    if (s.current->error) s.fail(s.current->error);
  }
}

void IsalBamOutput::flush() { impl_->drain(); }

void IsalBamOutput::finish() {
  Impl& s = *impl_;
  s.drain();
  s.write_all(kEofBlock, sizeof kEofBlock);
  if (s.idx) {
    if (hts_idx_finish(s.idx, s.written << 16) < 0) s.fail("cannot finish the index of");
    if (hts_idx_save_as(s.idx, s.idx_path.c_str(), s.idx_path.c_str(), s.idx_fmt) < 0) {
      s.fail("cannot write index " + s.idx_path + " for", errno);
    }
  }
}

#else  // no ISA-L in this build

bool fast_bam_deflate_available() { return false; }

struct IsalBamOutput::Impl {};

IsalBamOutput::IsalBamOutput(int, const std::string&, const sam_hdr_t*, int, int,
                             const std::string&, int) {
  throw std::logic_error("this build of gmsaccel has no ISA-L BAM writer");
}
IsalBamOutput::~IsalBamOutput() = default;
void IsalBamOutput::write_records(const uint8_t* const*, const uint32_t*, size_t,
                                  std::shared_ptr<const void>) {}
void IsalBamOutput::flush() {}
void IsalBamOutput::finish() {}

#endif

}  // namespace gms
