// Ordered parallel BGZF output (see bgzf_writer.hpp): blocks of up to 0xff00 bytes, compressed
// on a pool of threads, written in order by a lander thread that pushes their index entries.
#include "gmsaccel/bgzf_writer.hpp"

#include <htslib/bgzf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>

#if GMSACCEL_HAVE_ISAL
#include <isa-l.h>
#endif

namespace gms {

namespace {

constexpr size_t kMaxBlock = 65536;  // a BGZF block's largest size
constexpr uint8_t kEofBlock[28] = {0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, 0x42, 0x43,
                                   2,    0,    0x1b, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0};

#if GMSACCEL_HAVE_ISAL

constexpr size_t kHeader = 18, kFooter = 8;

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

// Deflates data into out as one BGZF block; a stored block when deflate would not fit.
void compress(const std::vector<uint8_t>& data, std::vector<uint8_t>& out, int zlib_level) {
  if (data.size() > BgzfBlockWriter::kBlockData) {
    throw std::logic_error("BGZF block of " + std::to_string(data.size()) + " bytes");
  }
  const int level = isal_level(zlib_level);
  thread_local std::vector<uint8_t> level_buf;
  if (level_buf.size() < level_buffer_size(level)) level_buf.resize(level_buffer_size(level));
  const size_t n = data.size();
  out.resize(kMaxBlock);
  uint8_t* o = out.data();
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
  z.next_in = const_cast<uint8_t*>(data.data());
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
    std::memcpy(o + kHeader + 5, data.data(), n);
    clen = n + 5;
  }
  const size_t total = kHeader + clen + kFooter;
  put16(o + 16, static_cast<uint32_t>(total - 1));
  put32(o + kHeader + clen, crc32_gzip_refl(0, data.data(), n));
  put32(o + kHeader + clen + 4, static_cast<uint32_t>(n));
  out.resize(total);
}

#else  // htslib's zlib block compressor

void compress(const std::vector<uint8_t>& data, std::vector<uint8_t>& out, int zlib_level) {
  if (data.size() > BgzfBlockWriter::kBlockData) {
    throw std::logic_error("BGZF block of " + std::to_string(data.size()) + " bytes");
  }
  out.resize(kMaxBlock);
  size_t len = out.size();
  if (bgzf_compress(out.data(), &len, data.data(), data.size(), zlib_level) != 0) {
    throw std::runtime_error("BGZF compression failed");
  }
  out.resize(len);
}

#endif

}  // namespace

bool bgzf_writer_uses_isal() {
#if GMSACCEL_HAVE_ISAL
  return true;
#else
  return false;
#endif
}

// What the compressing threads and the lander share with the caller's thread.
struct BgzfBlockWriter::Shared {
  // Blocks handed to the compressors, in file order.
  std::deque<std::unique_ptr<Block>> inflight;
  std::deque<Block*> todo;  // not yet taken by a compressor
  size_t max_inflight = 1;
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable cv_work, cv_done;
  bool stop = false;
  // With workers, blocks reach the file on a thread of their own (land_loop), in order, so that
  // the caller's thread only places records; sealed and landed count blocks, and room lets
  // the caller wait for the lander or report its failure.
  std::thread lander;
  std::condition_variable cv_room;
  uint64_t sealed = 0, landed = 0;
  std::exception_ptr land_failure;
};

BgzfBlockWriter::BgzfBlockWriter(int fd, std::string display_name, int level, int threads,
                                 std::function<std::unique_ptr<Block>()> make_block)
    : fd_(fd),
      name_(std::move(display_name)),
      level_(level),
      make_block_(std::move(make_block)),
      current_(make_block_()),
      sh_(std::make_unique<Shared>()) {
  if (threads > 1) {
    threads = std::min(threads, kMaxThreads);
    sh_->max_inflight = static_cast<size_t>(threads) * 4;
    try {
      for (int t = 0; t < threads; ++t) sh_->workers.emplace_back([this] { work(); });
      sh_->lander = std::thread([this] { land_loop(); });
    } catch (...) {  // no more threads to be had: stop the ones started, then fail
      stop_threads();
      throw;
    }
  }
}

BgzfBlockWriter::~BgzfBlockWriter() {
  stop_threads();
  if (idx_) hts_idx_destroy(idx_);
}

void BgzfBlockWriter::stop_threads() {
  {
    std::lock_guard<std::mutex> lk(sh_->mu);
    sh_->stop = true;
  }
  sh_->cv_work.notify_all();
  sh_->cv_done.notify_all();
  for (auto& t : sh_->workers) t.join();
  sh_->workers.clear();
  if (sh_->lander.joinable()) sh_->lander.join();
}

void BgzfBlockWriter::fail(const std::string& what, int e) const {
  throw std::runtime_error(what + " " + name_ + (e ? std::string(": ") + std::strerror(e) : ""));
}

void BgzfBlockWriter::work() {
  Shared& s = *sh_;
  for (;;) {
    Block* b;
    {
      std::unique_lock<std::mutex> lk(s.mu);
      s.cv_work.wait(lk, [&s] { return s.stop || !s.todo.empty(); });
      if (s.stop) return;
      b = s.todo.front();
      s.todo.pop_front();
    }
    process(*b);
    {
      std::lock_guard<std::mutex> lk(s.mu);
      b->ready = true;
    }
    s.cv_done.notify_all();
  }
}

void BgzfBlockWriter::process(Block& b) {
  try {
    b.fill();
    if (!b.error) compress(b.data, b.out, level_);
  } catch (...) {  // e.g. bad_alloc on a compressing thread: the writer's error, at landing
    b.failure = std::current_exception();
  }
}

void BgzfBlockWriter::write_all(const uint8_t* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("cannot write", errno);
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// The oldest block is compressed: write it and index the records ending in it.
void BgzfBlockWriter::land(Block& b) {
  if (b.failure) std::rethrow_exception(b.failure);
  if (b.error) fail(b.error);
  const uint64_t at = written_;
  write_all(b.out.data(), b.out.size());
  written_ += b.out.size();
  for (const IndexEntry& e : b.entries) {
    // A record ending exactly at the block's end ends where the next block starts.
    const uint64_t voff = e.end_in_block == b.data.size() ? written_ << 16
                                                          : (at << 16) | e.end_in_block;
    if (idx_ && hts_idx_push(idx_, e.tid, e.beg, e.end, voff, e.mapped) < 0) {
      fail("cannot index (records out of order?)");
    }
  }
}

void BgzfBlockWriter::land_loop() {
  Shared& s = *sh_;
  for (;;) {
    std::unique_ptr<Block> b;
    {
      std::unique_lock<std::mutex> lk(s.mu);
      s.cv_done.wait(lk, [&s] {
        return s.stop || (!s.land_failure && !s.inflight.empty() && s.inflight.front()->ready);
      });
      if (s.stop) return;
      b = std::move(s.inflight.front());
      s.inflight.pop_front();
    }
    s.cv_room.notify_all();
    std::exception_ptr failure;
    try {
      land(*b);
    } catch (...) {
      failure = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lk(s.mu);
      if (failure) s.land_failure = failure;
      ++s.landed;
    }
    s.cv_room.notify_all();
  }
}

// Rethrows the writer's earlier failure, if any (mu held, or no threads): once a block has
// failed to land, nothing more is written.
void BgzfBlockWriter::check_landed() {
  if (sh_->land_failure) std::rethrow_exception(sh_->land_failure);
}

void BgzfBlockWriter::seal() {
  Shared& s = *sh_;
  if (s.workers.empty()) {
    check_landed();
    if (open_bytes == 0 && current_->data.empty()) return;
    // The block goes whether it lands or not: a failure is kept and rethrown by every later
    // call, so nothing piles up in an open block that can no longer be written.
    std::unique_ptr<Block> b = std::move(current_);
    current_ = make_block_();
    open_bytes = 0;
    try {
      process(*b);
      land(*b);
    } catch (...) {
      s.land_failure = std::current_exception();
      throw;
    }
    return;
  }
  if (open_bytes == 0 && current_->data.empty()) {
    std::lock_guard<std::mutex> lk(s.mu);
    check_landed();
    return;
  }
  {
    std::unique_lock<std::mutex> lk(s.mu);
    s.cv_room.wait(lk, [this, &s] { return s.land_failure || s.inflight.size() < s.max_inflight; });
    check_landed();
    s.todo.push_back(current_.get());
    s.inflight.push_back(std::move(current_));
    ++s.sealed;
  }
  s.cv_work.notify_one();
  current_ = make_block_();
  open_bytes = 0;
}

void BgzfBlockWriter::drain() {
  seal();
  Shared& s = *sh_;
  if (s.workers.empty()) return;
  std::unique_lock<std::mutex> lk(s.mu);
  s.cv_room.wait(lk, [&s] { return s.land_failure || s.landed == s.sealed; });
  check_landed();
}

void BgzfBlockWriter::append(const uint8_t* p, size_t n) {
  if (sh_->workers.empty()) check_landed();  // with threads, seal() reports it
  while (n > 0) {
    if (open_bytes == kBlockData) seal();
    if (current_->data.capacity() < kBlockData) current_->data.reserve(kBlockData);
    const size_t take = std::min(n, kBlockData - open_bytes);
    current_->data.insert(current_->data.end(), p, p + take);
    open_bytes += take;
    p += take;
    n -= take;
  }
}

void BgzfBlockWriter::start_index(int n_ref, int fmt, int min_shift, int n_lvls,
                                  std::string index_path) {
  idx_fmt_ = fmt;
  idx_path_ = std::move(index_path);
  idx_ = hts_idx_init(n_ref, fmt, written_ << 16, min_shift, n_lvls);
  if (!idx_) fail("cannot start the index for");
}

void BgzfBlockWriter::finish(const std::function<void(hts_idx_t*)>& before_save) {
  drain();
  write_all(kEofBlock, sizeof kEofBlock);
  if (idx_) {
    if (hts_idx_finish(idx_, written_ << 16) < 0) fail("cannot finish the index of");
    if (before_save) before_save(idx_);
    if (hts_idx_save_as(idx_, idx_path_.c_str(), idx_path_.c_str(), idx_fmt_) < 0) {
      fail("cannot write index " + idx_path_ + " for", errno);
    }
  }
}

}  // namespace gms
