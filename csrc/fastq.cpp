// FASTQ reader on htslib's BGZF layer, which transparently reads plain text, gzip and BGZF.
#include "gmsaccel/fastq.hpp"

#include <htslib/bgzf.h>
#include <htslib/hts.h>
#include <htslib/kstring.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "gmsaccel/errors.hpp"

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

}  // namespace

struct FastqReader::Impl {
  std::string path;
  BGZF* fp = nullptr;
  kstring_t line = KS_INITIALIZE;
  uint64_t records = 0;  // records fully parsed (including a pending one)
  bool eof = false;

  // A record parsed but not yet placed in a batch because it would have exceeded max_bases.
  bool has_pending = false;
  std::string p_name, p_comment, p_seq, p_qual;

  bool eof_marker_missing = false;
  ~Impl() {
    if (fp) bgzf_close(fp);
    ks_free(&line);
  }

  [[noreturn]] void fail(uint64_t record, const std::string& name, const std::string& what) const {
    std::string msg = path + ": record " + std::to_string(record);
    if (!name.empty()) msg += " (" + name + ")";
    throw InputError(msg + ": " + what);
  }

  // Reads one line into `line` without its '\n' or a trailing '\r'. Returns false at a clean end
  // of file; a decompression error (or a stream that stopped early) is an error, not an EOF.
  bool next_line(uint64_t record, const std::string& name) {
    errno = 0;
    const int r = bgzf_getline(fp, '\n', &line);
    // A stream that stops early can look like EOF (-1); errcode tells the two apart. It is not
    // checked on success: with decompression threads it may be set ahead of the data consumed.
    if (r <= -2 || (r == -1 && fp->errcode)) {
      fail(record, name, "truncated or corrupt compressed input (" + decompress_problem() + ")");
    }
    if (r == -1) return false;
    if (line.l > 0 && line.s[line.l - 1] == '\r') line.s[--line.l] = '\0';
    return true;
  }

  std::string decompress_problem() const {
    const unsigned e = fp->errcode;
    if (e & BGZF_ERR_CRC) return "checksum mismatch";
    if (e & BGZF_ERR_HEADER) return "bad block header";
    if ((e & BGZF_ERR_IO) && errno) return std::string("read error: ") + std::strerror(errno);
    if (e & BGZF_ERR_ZLIB) return "inflate failed";
    return "stream cut short or unreadable";
  }

  // Parses the next record into the p_* fields. Returns false at end of input.
  bool parse_record() {
    const uint64_t rec = records + 1;
    if (!next_line(rec, "")) return false;
    if (line.l == 0) {
      // Blank lines are tolerated only at the very end (editors and `echo` leave them).
      while (next_line(rec, "")) {
        if (line.l != 0) fail(rec, "", "blank line where a header line starting with '@' was expected");
      }
      return false;
    }
    if (line.s[0] != '@') {
      fail(rec, "", "header line does not start with '@' (found \"" + excerpt(line.s, line.l) +
                        "\"; only 4-line FASTQ is supported)");
    }
    // Name: up to the first space or tab; comment: what follows the whitespace.
    size_t i = 1;
    while (i < line.l && line.s[i] != ' ' && line.s[i] != '\t') ++i;
    p_name.assign(line.s + 1, i - 1);
    while (i < line.l && (line.s[i] == ' ' || line.s[i] == '\t')) ++i;
    p_comment.assign(line.s + i, line.l - i);
    if (p_name.empty()) fail(rec, "", "empty read name after '@'");

    if (!next_line(rec, p_name)) fail(rec, p_name, "truncated record at end of file (no SEQ line)");
    p_seq.assign(line.s, line.l);

    if (!next_line(rec, p_name)) fail(rec, p_name, "truncated record at end of file (no '+' line)");
    if (line.l == 0 || line.s[0] != '+') {
      fail(rec, p_name, "missing '+' line (found \"" + excerpt(line.s, line.l) +
                            "\"; only 4-line FASTQ is supported)");
    }

    if (!next_line(rec, p_name)) fail(rec, p_name, "truncated record at end of file (no QUAL line)");
    p_qual.assign(line.s, line.l);
    if (p_qual.size() != p_seq.size()) {
      fail(rec, p_name, "SEQ and QUAL lengths differ (" + std::to_string(p_seq.size()) + " vs " +
                            std::to_string(p_qual.size()) + ")");
    }
    ++records;
    return true;
  }
};

FastqReader::FastqReader(const std::string& path, int decompression_threads)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  errno = 0;
  // bgzf_open goes through hopen, which maps "-" to standard input.
  impl_->fp = bgzf_open(path.c_str(), "r");
  if (!impl_->fp) {
    const int e = errno;
    throw InputError(path + ": cannot open (" + (e ? std::strerror(e) : "not a readable file") +
                     ")");
  }
  // A BGZF file cut at a block boundary decompresses cleanly: only its missing end-of-file
  // marker tells. (Not checkable on pipes, where bgzf_check_EOF answers 2.)
  impl_->eof_marker_missing =
      bgzf_compression(impl_->fp) == bgzf && bgzf_check_EOF(impl_->fp) == 0;
  // Only BGZF has independent blocks to decompress in parallel; plain gzip is one stream.
  if (decompression_threads > 0 && bgzf_compression(impl_->fp) == bgzf) {
    if (bgzf_mt(impl_->fp, decompression_threads, 256) < 0) {
      throw InputError(path + ": cannot start decompression threads");
    }
  }
}

FastqReader::~FastqReader() = default;

size_t FastqReader::read(ReadBatch& batch, size_t max_reads, size_t max_bases) {
  batch.clear();
  Impl& s = *impl_;
  batch.first_record = s.records + 1 - (s.has_pending ? 1 : 0);
  if (max_reads == 0) return 0;
  while (batch.size() < max_reads) {
    if (!s.has_pending) {
      if (s.eof || !s.parse_record()) {
        if (!s.eof && s.eof_marker_missing) {
          throw InputError(s.path + ": record " + std::to_string(s.records + 1) +
                           ": truncated (file ends without the BGZF end-of-file marker)");
        }
        s.eof = true;
        break;
      }
      s.has_pending = true;
    }
    // Keep the base limit, but always deliver at least one record so progress is guaranteed.
    if (batch.size() > 0 && batch.bases.size() + s.p_seq.size() > max_bases) break;
    batch.names.push_back(std::move(s.p_name));
    batch.comments.push_back(std::move(s.p_comment));
    batch.bases += s.p_seq;
    batch.quals += s.p_qual;
    batch.offsets.push_back(batch.bases.size());
    s.has_pending = false;
    if (batch.bases.size() >= max_bases) break;
  }
  return batch.size();
}

const std::string& FastqReader::path() const { return impl_->path; }

uint64_t FastqReader::records_read() const {
  return impl_->records - (impl_->has_pending ? 1 : 0);
}

}  // namespace gms
