// FASTQ reader. Plain text, gzip and BGZF come through htslib's BGZF layer; in builds with ISA-L,
// compressed files (not standard input, not BGZF read with threads) are inflated by igzip
// instead, which is faster than zlib on this serial stage. Lines are split here, over whichever
// byte source is in use.
#include "gmsaccel/fastq.hpp"

#include <htslib/bgzf.h>
#include <htslib/hts.h>
#include <sys/stat.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "gmsaccel/errors.hpp"
#include "gmsaccel/gzip_inflate.hpp"
#include "gmsaccel/stage_clock.hpp"

namespace gms {

namespace {

// Bounded, printable excerpt of a bad line so that error messages stay one short line.
std::string excerpt(const char* s, size_t n) {
  std::string out;
  const size_t limit = 40;
  for (size_t i = 0; i < n && i < limit; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  if (n > limit) out += "...";
  return out;
}

constexpr size_t kReadChunk = size_t{1} << 18;

// Runs a byte source ahead on a thread of its own, a few blocks in front of the parser, so that
// a compressed file's floor is the slower of inflating and parsing rather than their sum. Same
// contract as the source: bytes, 0 at the end, -1 on an error (then errno_at_error()).
class ReadAhead {
 public:
  using Source = std::function<std::ptrdiff_t(char*, size_t)>;
  explicit ReadAhead(Source source) : source_(std::move(source)), thread_([this] { run(); }) {}
  ~ReadAhead() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  std::ptrdiff_t read(char* out, size_t cap) {
    std::unique_lock<std::mutex> lk(mu_);
    StageClock wait;
    cv_.wait(lk, [this] { return !full_.empty(); });
    waited_ += wait.lap();
    Block& b = full_.front();
    if (b.n <= 0) return b.n;  // the end or the error stays queued for later calls
    const size_t take = std::min(cap, static_cast<size_t>(b.n) - b.used);
    std::memcpy(out, b.data.data() + b.used, take);
    b.used += take;
    if (b.used == static_cast<size_t>(b.n)) {
      spare_.push_back(std::move(b.data));
      full_.pop_front();
      cv_.notify_all();
    }
    return static_cast<std::ptrdiff_t>(take);
  }
  int errno_at_error() const { return saved_errno_; }  // after read() returned -1
  double busy_seconds() const {                        // the source's own time
    std::lock_guard<std::mutex> lk(mu_);
    return busy_;
  }
  double waited_seconds() const {  // read()'s time waiting for the source
    std::lock_guard<std::mutex> lk(mu_);
    return waited_;
  }

 private:
  static constexpr size_t kBlocks = 4;
  struct Block {
    std::vector<char> data;
    std::ptrdiff_t n = 0;
    size_t used = 0;
  };

  void run() {
    for (;;) {
      std::vector<char> data;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [this] { return stop_ || full_.size() < kBlocks; });
        if (stop_) return;
        if (!spare_.empty()) {
          data = std::move(spare_.back());
          spare_.pop_back();
        }
      }
      data.resize(kReadChunk);
      StageClock clock;
      errno = 0;
      const std::ptrdiff_t n = source_(data.data(), data.size());
      const int err = errno;
      {
        std::lock_guard<std::mutex> lk(mu_);
        busy_ += clock.lap();
        if (n < 0) saved_errno_ = err;
        full_.push_back(Block{std::move(data), n, 0});
      }
      cv_.notify_all();
      if (n <= 0) return;
    }
  }

  Source source_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Block> full_;
  std::vector<std::vector<char>> spare_;
  bool stop_ = false;
  int saved_errno_ = 0;
  double busy_ = 0, waited_ = 0;
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace

struct FastqReader::Impl {
  std::string path;
  BGZF* fp = nullptr;                        // htslib source, or
  std::unique_ptr<GzipFileInflater> isal;  // igzip source
  std::unique_ptr<ReadAhead> ahead;        // either one on its own thread (declared after both)
  std::vector<char> buf;                     // unparsed bytes are buf[pos, end)
  size_t pos = 0, end = 0;
  bool source_end = false;
  std::string_view line;  // the current line, valid until the next next_line()
  uint64_t records = 0;   // records fully parsed (including a pending one)
  char format = 0;        // '@' FASTQ or '>' FASTA, from the first record
  bool eof = false;

  // A record parsed but not yet placed in a batch because it would have exceeded max_bases.
  bool has_pending = false;
  ReadBatch pending;

  bool eof_marker_missing = false;
  ~Impl() {
    ahead.reset();  // stop its thread before closing what it reads
    if (fp) bgzf_close(fp);
  }

  std::ptrdiff_t source_read(char* out, size_t cap) {
    return isal ? isal->read(out, cap) : bgzf_read(fp, out, cap);
  }

  [[noreturn]] void fail(uint64_t record, const std::string& name, const std::string& what) const {
    std::string msg = path + ": record " + std::to_string(record);
    if (!name.empty()) msg += " (" + name + ")";
    throw InputError(msg + ": " + what);
  }

  // Appends source bytes at buf[end...); false on a decompression or read error.
  bool fill(uint64_t record, const std::string& name) {
    if (pos > 0) {  // slide the partial line to the front
      std::memmove(buf.data(), buf.data() + pos, end - pos);
      end -= pos;
      pos = 0;
    }
    if (buf.size() - end < kReadChunk) buf.resize(end + kReadChunk);
    errno = 0;
    const std::ptrdiff_t n = ahead ? ahead->read(buf.data() + end, buf.size() - end)
                                   : source_read(buf.data() + end, buf.size() - end);
    if (n < 0) {
      if (ahead) errno = ahead->errno_at_error();
      fail(record, name, "truncated or corrupt compressed input (" +
                             (isal ? isal->problem() : decompress_problem()) + ")");
    }
    source_end = n == 0;
    end += static_cast<size_t>(n);
    return n > 0;
  }

  // Sets `line` to the next line without its '\n' or a trailing '\r'. Returns false at a clean
  // end of input; a decompression error (or a stream that stopped early) is an error, not an EOF.
  bool next_line(uint64_t record, const std::string& name) {
    size_t scanned = pos;
    for (;;) {
      // (an empty buffer's data() may be null, which memchr must not get even for 0 bytes)
      const void* nl =
          end > scanned ? std::memchr(buf.data() + scanned, '\n', end - scanned) : nullptr;
      if (nl) {
        const size_t at = static_cast<const char*>(nl) - buf.data();
        set_line(pos, at);
        pos = at + 1;
        return true;
      }
      if (source_end) {  // a last line without its newline
        if (pos == end) return false;
        set_line(pos, end);
        pos = end;
        return true;
      }
      scanned = end - pos;  // fill() moves the partial line to the front
      fill(record, name);
    }
  }

  void set_line(size_t b, size_t e) {
    if (e > b && buf[e - 1] == '\r') --e;
    line = std::string_view(buf.data() + b, e - b);
  }

  std::string decompress_problem() const {
    const unsigned e = fp->errcode;
    if (e & BGZF_ERR_CRC) return "checksum mismatch";
    if (e & BGZF_ERR_HEADER) return "bad block header";
    if ((e & BGZF_ERR_IO) && errno) return std::string("read error: ") + std::strerror(errno);
    if (e & BGZF_ERR_ZLIB) return "inflate failed";
    return "stream cut short or unreadable";
  }

  // The first byte of the next line without consuming it, or -1 at the end of input. Invalidates
  // `line` (the buffer may move).
  int peek(uint64_t record, const std::string& name) {
    while (pos == end) {
      if (source_end) return -1;
      fill(record, name);
    }
    return static_cast<unsigned char>(buf[pos]);
  }

  // Parses the next record and appends it to batch (name, comment, bases, quals, offsets), the
  // lines copied straight from the input buffer. Returns false at end of input. Accepts what
  // bwa and minimap2 read: 4-line FASTQ, FASTQ with wrapped SEQ and QUAL lines, and FASTA
  // (whose reads get kNoQualities). A file's first record fixes which of FASTQ and FASTA it is.
  bool parse_into(ReadBatch& batch) {
    const uint64_t rec = records + 1;
    if (!next_line(rec, "")) return false;
    if (line.empty()) {
      // Blank lines are tolerated only at the very end (editors and `echo` leave them).
      while (next_line(rec, "")) {
        if (!line.empty()) fail(rec, "", "blank line where a header line was expected");
      }
      return false;
    }
    if (format == 0 && (line[0] == '@' || line[0] == '>')) format = line[0];
    if (format == 0 || line[0] != format) {
      const std::string wanted = format == 0     ? "'@' (FASTQ) or '>' (FASTA)"
                                 : format == '@' ? "'@' (FASTQ file)"
                                                 : "'>' (FASTA file)";
      fail(rec, "", "header line does not start with " + wanted + " (found \"" +
                        excerpt(line.data(), line.size()) + "\")");
    }
    // Name: up to the first space or tab; comment: what follows the whitespace.
    size_t i = 1;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i == 1) fail(rec, "", std::string("empty read name after '") + format + "'");
    const std::string& name = batch.names.emplace_back(line.data() + 1, i - 1);
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    batch.comments.emplace_back(line.data() + i, line.size() - i);
    const size_t seq_start = batch.bases.size();

    if (format == '>') {
      // Sequence lines up to the next header; blank lines between them are skipped. A line
      // starting with '@' ends the record too (so that FASTQ after FASTA is an error).
      for (int c = peek(rec, name); c != -1 && c != '>' && c != '@'; c = peek(rec, name)) {
        next_line(rec, name);
        batch.bases.append(line.data(), line.size());
      }
      batch.quals.append(batch.bases.size() - seq_start, kNoQualities);
      batch.offsets.push_back(batch.bases.size());
      ++records;
      return true;
    }

    if (!next_line(rec, name)) fail(rec, name, "truncated record at end of file (no SEQ line)");
    batch.bases.append(line.data(), line.size());
    // Wrapped SEQ: further lines up to the '+' line. A line that cannot be sequence (blank, or a
    // header's first character) means the '+' line is missing.
    bool wrapped = false;
    for (;;) {
      if (!next_line(rec, name)) fail(rec, name, "truncated record at end of file (no '+' line)");
      if (!line.empty() && line[0] == '+') break;
      if (line.empty() || line[0] == '@' || line[0] == '>') {
        fail(rec, name, "missing '+' line (found \"" + excerpt(line.data(), line.size()) + "\")");
      }
      batch.bases.append(line.data(), line.size());
      wrapped = true;
    }
    const size_t seq_len = batch.bases.size() - seq_start;

    if (!next_line(rec, name)) fail(rec, name, "truncated record at end of file (no QUAL line)");
    const size_t qual_start = batch.quals.size();
    batch.quals.append(line.data(), line.size());
    // Wrapped QUAL (only after wrapped SEQ): lines until it is as long as SEQ. QUAL lines may
    // begin with '@', so their length, not their first character, ends them.
    while (wrapped && batch.quals.size() - qual_start < seq_len) {
      if (!next_line(rec, name)) {
        fail(rec, name, "truncated record at end of file (QUAL shorter than SEQ)");
      }
      batch.quals.append(line.data(), line.size());
    }
    if (batch.quals.size() - qual_start != seq_len) {
      fail(rec, name, "SEQ and QUAL lengths differ (" + std::to_string(seq_len) + " vs " +
                          std::to_string(batch.quals.size() - qual_start) + ")");
    }
    batch.offsets.push_back(batch.bases.size());
    ++records;
    return true;
  }

  // Moves the batch's last record into pending (it goes first into the next batch).
  void hold_back_last(ReadBatch& batch) {
    const size_t n = batch.size();
    const size_t from = batch.offsets[n - 1];
    pending.clear();
    pending.names.push_back(std::move(batch.names.back()));
    pending.comments.push_back(std::move(batch.comments.back()));
    pending.bases.assign(batch.bases, from, std::string::npos);
    pending.quals.assign(batch.quals, from, std::string::npos);
    pending.offsets.push_back(pending.bases.size());
    batch.names.pop_back();
    batch.comments.pop_back();
    batch.bases.resize(from);
    batch.quals.resize(from);
    batch.offsets.pop_back();
    has_pending = true;
  }
};

FastqReader::FastqReader(const std::string& path, int decompression_threads, Inflater inflater,
                         bool read_ahead)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.path = path;
  errno = 0;
  // bgzf_open goes through hopen, which maps "-" to standard input.
  s.fp = bgzf_open(path.c_str(), "r");
  if (!s.fp) {
    const int e = errno;
    throw InputError(path + ": cannot open (" + (e ? std::strerror(e) : "not a readable file") +
                     ")");
  }
  const int kind = bgzf_compression(s.fp);  // an htsCompression value
  // A BGZF file cut at a block boundary decompresses cleanly: only its missing end-of-file
  // marker tells. (Not checkable on pipes, where bgzf_check_EOF answers 2.)
  s.eof_marker_missing = kind == bgzf && bgzf_check_EOF(s.fp) == 0;
  // Only BGZF has independent blocks to decompress in parallel; plain gzip is one stream.
  const bool threaded = decompression_threads > 0 && kind == bgzf;
  // igzip reopens the file by name and the read-ahead thread may block in a read: both only for
  // regular files (not "-", pipes, process substitution or URLs, where htslib keeps the stream).
  struct stat st {};
  const bool regular = path != "-" && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
  const bool igzip = inflater == Inflater::Auto && fast_inflate_available() &&
                     (kind == gzip || (kind == bgzf && !threaded)) && regular;
  if (igzip) {
    bgzf_close(s.fp);
    s.fp = nullptr;
    s.isal = std::make_unique<GzipFileInflater>(path);
  } else if (threaded && bgzf_mt(s.fp, decompression_threads, 256) < 0) {
    throw InputError(path + ": cannot start decompression threads");
  }
  // htslib's threads already inflate BGZF ahead; plain text needs no helper.
  if (read_ahead && !threaded && kind != no_compression && regular) {
    s.ahead = std::make_unique<ReadAhead>(
        [&s](char* out, size_t cap) { return s.source_read(out, cap); });
  }
}

FastqReader::~FastqReader() = default;

size_t FastqReader::read(ReadBatch& batch, size_t max_reads, size_t max_bases) {
  batch.clear();
  Impl& s = *impl_;
  batch.first_record = s.records + 1 - (s.has_pending ? 1 : 0);
  batch.source = s.path;
  if (max_reads == 0) return 0;
  if (s.has_pending) {
    batch.names.push_back(std::move(s.pending.names[0]));
    batch.comments.push_back(std::move(s.pending.comments[0]));
    batch.bases += s.pending.bases;
    batch.quals += s.pending.quals;
    batch.offsets.push_back(batch.bases.size());
    s.has_pending = false;
  }
  // Keep the base limit, but always deliver at least one record so progress is guaranteed.
  while (batch.size() < max_reads && (batch.size() == 0 || batch.bases.size() < max_bases)) {
    if (s.eof || !s.parse_into(batch)) {
      if (!s.eof && s.eof_marker_missing) {
        throw InputError(s.path + ": record " + std::to_string(s.records + 1) +
                         ": truncated (file ends without the BGZF end-of-file marker)");
      }
      s.eof = true;
      break;
    }
    if (batch.size() > 1 && batch.bases.size() > max_bases) {
      s.hold_back_last(batch);
      break;
    }
  }
  batch.fasta = s.format == '>';  // (known once the first record is parsed)
  return batch.size();
}

const std::string& FastqReader::path() const { return impl_->path; }
const char* FastqReader::inflater() const { return impl_->isal ? "isa-l" : "htslib"; }
bool FastqReader::reads_ahead() const { return impl_->ahead != nullptr; }
double FastqReader::read_ahead_seconds() const {
  return impl_->ahead ? impl_->ahead->busy_seconds() : 0;
}
double FastqReader::read_ahead_waited_seconds() const {
  return impl_->ahead ? impl_->ahead->waited_seconds() : 0;
}

uint64_t FastqReader::records_read() const {
  return impl_->records - (impl_->has_pending ? 1 : 0);
}

std::string mate_base_name(const std::string& n) {
  if (n.size() > 2 && n[n.size() - 2] == '/' && (n.back() == '1' || n.back() == '2'))
    return n.substr(0, n.size() - 2);
  return n;
}

void split_interleaved(const ReadBatch& in, ReadBatch& r1, ReadBatch& r2,
                       const std::string& path) {
  r1.clear();
  r2.clear();
  if (in.size() % 2) {
    throw InputError(path + ": ends after " + std::to_string(in.first_record - 1 + in.size()) +
                     " records, an odd number: an interleaved file holds pairs, two records "
                     "each");
  }
  for (ReadBatch* half : {&r1, &r2}) {
    half->source = in.source;
    half->file = in.file;
    half->fasta = in.fasta;
    half->record_stride = 2 * in.record_stride;
  }
  r1.first_record = in.first_record;
  r2.first_record = in.first_record + in.record_stride;
  for (size_t i = 0; i < in.size(); ++i) {
    ReadBatch& half = i % 2 ? r2 : r1;
    const size_t a = in.offsets[i], n = in.offsets[i + 1] - a;
    half.names.push_back(in.names[i]);
    half.comments.push_back(in.comments[i]);
    half.bases.append(in.bases, a, n);
    half.quals.append(in.quals, a, n);
    half.offsets.push_back(half.bases.size());
    if (i % 2 && mate_base_name(in.names[i - 1]) != mate_base_name(in.names[i])) {
      const uint64_t rec = in.first_record + (i - 1) * in.record_stride;
      throw InputError(path + ": records " + std::to_string(rec) + " (" + in.names[i - 1] +
                       ") and " + std::to_string(rec + in.record_stride) + " (" + in.names[i] +
                       ") are not mates: an interleaved file holds each pair's two reads one "
                       "after the other");
    }
  }
}

void check_mates(const ReadBatch& r1, const ReadBatch& r2, const std::string& path1,
                 const std::string& path2) {
  if (r1.size() != r2.size()) {
    const bool r1_short = r1.size() < r2.size();
    const ReadBatch& shorter = r1_short ? r1 : r2;  // the last batch of its file
    const uint64_t total = shorter.first_record - 1 + shorter.size();
    throw InputError((r1_short ? path1 : path2) + ": ends after " + std::to_string(total) +
                     " records but its mate file " + (r1_short ? path2 : path1) +
                     " has more: R1 and R2 must hold the same reads in the same order");
  }
  for (size_t i = 0; i < r1.size(); ++i) {
    const std::string a = mate_base_name(r1.names[i]), b = mate_base_name(r2.names[i]);
    if (a != b)
      throw InputError(path2 + ": record " + std::to_string(r2.first_record + i) + " (" + b +
                       ") does not match record " + std::to_string(r1.first_record + i) + " (" +
                       a + ") of " + path1 + ": R1 and R2 must be in the same order");
  }
}

}  // namespace gms
