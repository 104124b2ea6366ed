// BAM output deflated by ISA-L: records serialised into the blocks of a BgzfBlockWriter, which
// compresses them in order-preserving parallel and indexes them as they land (bam_deflate.hpp).
#include "gmsaccel/bam_deflate.hpp"

#include <htslib/hts.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "gmsaccel/bgzf_writer.hpp"
#include "gmsaccel/record_batch.hpp"

namespace gms {

#if GMSACCEL_HAVE_ISAL

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "BAM is little-endian: this writer "
                                                          "copies host integers as they are");

bool fast_bam_deflate_available() { return true; }

namespace {

constexpr size_t kBlockData = BgzfBlockWriter::kBlockData;
using IndexEntry = BgzfBlockWriter::IndexEntry;

// A slice of one record's BAM bytes, placed in a block by write_records.
struct Piece {
  const uint8_t* record;  // the sorted writer's layout (record_batch.hpp)
  uint32_t from, len, total;
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

// A block of BAM records: the pieces placed in it are serialised by fill().
struct BamBlock : BgzfBlockWriter::Block {
  std::vector<Piece> pieces;
  std::vector<std::shared_ptr<const void>> keep;  // owners of the pieces' records

  // Appends the pieces to data, with an index entry for each record ending here.
  void fill() override {
    if (pieces.empty()) return;
    thread_local std::vector<uint8_t> whole;  // a record split over blocks, serialised once
    if (data.capacity() < kBlockData) data.reserve(kBlockData);
    for (const Piece& p : pieces) {
      bam1_core_t c;
      uint32_t l_data;
      std::memcpy(&c, p.record, sizeof c);
      std::memcpy(&l_data, p.record + sizeof c, sizeof l_data);
      const uint8_t* rec = p.record + RecordBatch::kHeaderBytes;
      if ((error = unfit_for_bam(c))) break;
      const size_t at = data.size();
      data.resize(at + p.len);
      if (p.from == 0 && p.len == p.total) {
        serialise_bam(c, rec, l_data, data.data() + at);
      } else {
        whole.resize(p.total);
        serialise_bam(c, rec, l_data, whole.data());
        std::memcpy(data.data() + at, whole.data() + p.from, p.len);
      }
      if (p.from + p.len == p.total) entries.push_back(index_entry(c, rec, l_data, data.size()));
    }
    pieces.clear();
    keep.clear();
  }
};

}  // namespace

struct IsalBamOutput::Impl {
  BgzfBlockWriter out;
  Impl(int fd, const std::string& name, int level, int threads)
      : out(fd, name, level, threads, [] { return std::make_unique<BamBlock>(); }) {}
  BamBlock& current() { return static_cast<BamBlock&>(out.current()); }
};

IsalBamOutput::IsalBamOutput(int fd, const std::string& display_name, const sam_hdr_t* hdr,
                             int level, int threads, const std::string& index_path,
                             int csi_min_shift)
    : impl_(std::make_unique<Impl>(fd, display_name, level, threads)) {
  BgzfBlockWriter& out = impl_->out;
  const int n_ref = sam_hdr_nref(hdr);
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
  out.append(h.data(), h.size());
  out.drain();
  if (!index_path.empty()) {
    int fmt = HTS_FMT_BAI, min_shift = 14, n_lvls = 5;  // BAI's fixed binning
    if (csi_min_shift > 0) {  // levels enough for the longest contig, as htslib sizes them
      fmt = HTS_FMT_CSI;
      min_shift = csi_min_shift;
      int64_t span = int64_t{1} << csi_min_shift;
      n_lvls = 0;
      for (max_len += 256; max_len > span; span <<= 3) ++n_lvls;
    }
    out.start_index(n_ref, fmt, min_shift, n_lvls, index_path);
  }
}

IsalBamOutput::~IsalBamOutput() = default;

void IsalBamOutput::write_records(const uint8_t* const* records, const uint32_t* bam_sizes,
                                  size_t n, std::shared_ptr<const void> keep) {
  BgzfBlockWriter& out = impl_->out;
  // A record that fits in a block never straddles two (htslib's bgzf_flush_try): a new block
  // when the next record would overflow this one (records longer than a block are split).
  // Sealed blocks are filled in on the compressing threads; the open one here, before returning.
  auto place = [&](const uint8_t* rec, uint32_t total) {
    if (out.open_bytes != 0 && out.open_bytes + total > kBlockData) out.seal();
    for (uint32_t from = 0; from < total;) {
      if (out.open_bytes == kBlockData) out.seal();
      const uint32_t take = static_cast<uint32_t>(
          std::min<size_t>(total - from, kBlockData - out.open_bytes));
      BamBlock& b = impl_->current();
      if (keep && (b.keep.empty() || b.keep.back() != keep)) b.keep.push_back(keep);
      b.pieces.push_back(Piece{rec, from, take, total});
      out.open_bytes += take;
      from += take;
    }
  };
  for (size_t i = 0; i < n; ++i) place(records[i], bam_sizes[i]);
  BamBlock& open = impl_->current();
  if (!open.pieces.empty()) {
    open.fill();
    if (open.error) out.fail(open.error);
  }
}

void IsalBamOutput::flush() { impl_->out.drain(); }

void IsalBamOutput::finish() { impl_->out.finish(); }

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
