// Region reads of a BGZF-compressed BAM with ISA-L inflating each block (through
// gzip_inflate.hpp; available only where the build has ISA-L). Records selection follows
// sam_itr_next: the query's chunks in order,
// seeking only between chunks that do not touch, stopping at the first record on another contig
// or at or past the query's end, and returning those that overlap it.
#include "gmsaccel/bam_region_reader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "gmsaccel/errors.hpp"
#include "gmsaccel/gzip_inflate.hpp"
#include "gmsaccel/record_batch.hpp"

namespace gms {

namespace {

constexpr size_t kMaxBlock = 65536;         // BGZF's limit on a block, packed or not
constexpr size_t kWindow = size_t{1} << 20;  // file bytes read at a time
constexpr size_t kCoreBytes = 32;           // a record's fixed fields after its length

uint32_t le32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

// Records are decoded in place: only where the machine's byte order is BAM's.
constexpr bool kLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

}  // namespace

struct BamRegionReader::Impl {
  std::string path;
  int fd = -1;
  uint64_t file_size = 0;
  int32_t n_targets = 0;  // @SQ lines: valid reference ids are -1 .. n_targets - 1

  // File bytes [window_at, window_at + window.size()).
  std::vector<uint8_t> window;
  uint64_t window_at = 0;
  uint64_t window_hint = kWindow;  // bytes a fresh window should hold

  // The block being read: inflated bytes, where it starts in the file, where the next starts.
  std::vector<uint8_t> block = std::vector<uint8_t>(kMaxBlock);
  size_t block_len = 0, block_pos = 0;
  uint64_t block_at = 0, next_block_at = 0;
  bool have_block = false;

  // The query.
  const hts_itr_t* itr = nullptr;
  int chunk = -1;
  uint64_t curr_off = 0;
  bool finished = true;

  std::string problem;

  ~Impl() {
    if (fd >= 0) ::close(fd);
  }

  bool fail(const std::string& what) {
    problem = what;
    return false;
  }
  Next corrupt(const std::string& what) {
    problem = what;
    return Next::corrupt;
  }

  // Points p at n file bytes from offset at (n <= kMaxBlock); false at a read error or when the
  // file ends first.
  bool file_bytes(uint64_t at, size_t n, const uint8_t*& p) {
    if (at < window_at || at + n > window_at + window.size()) {
      if (at + n > file_size)
        return fail("BGZF block at offset " + std::to_string(at) +
                    " runs past the end of the file");
      // A window reaching the current chunk's last block (sparse queries seek between chunks),
      // at most kWindow.
      const uint64_t span = std::max<uint64_t>(n, std::min<uint64_t>(kWindow, window_hint));
      const size_t want = static_cast<size_t>(std::min<uint64_t>(span, file_size - at));
      window.resize(want);
      size_t got = 0;
      while (got < want) {
        const ssize_t r =
            ::pread(fd, window.data() + got, want - got, static_cast<off_t>(at + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
          window.clear();
          return fail(std::string("read error: ") + (r < 0 ? std::strerror(errno) : "file shrank"));
        }
        got += static_cast<size_t>(r);
      }
      window_at = at;
    }
    p = window.data() + (at - window_at);
    return true;
  }

  // Inflates the block starting at file offset at.
  bool load_block(uint64_t at) {
    have_block = false;
    const std::string where = "BGZF block at offset " + std::to_string(at);
    const uint8_t* h;
    if (!file_bytes(at, 18, h)) return false;
    if (h[0] != 31 || h[1] != 139 || h[2] != 8 || !(h[3] & 4))
      return fail(where + ": not a BGZF block header");
    const size_t xlen = le16(h + 10);
    const uint8_t* x;
    if (!file_bytes(at, 12 + xlen, x)) return false;
    size_t bsize = 0;  // the whole block's length, from the BC subfield
    for (size_t i = 12; i + 4 <= 12 + xlen;) {
      const size_t slen = le16(x + i + 2);
      if (x[i] == 66 && x[i + 1] == 67 && slen == 2 && i + 6 <= 12 + xlen) {
        bsize = size_t{le16(x + i + 4)} + 1;
        break;
      }
      i += 4 + slen;
    }
    if (bsize < 12 + xlen + 8) return fail(where + ": no valid BGZF block size");
    const uint8_t* whole;
    if (!file_bytes(at, bsize, whole)) return false;
    std::string why;
    const std::ptrdiff_t got = inflate_gzip_member(whole, bsize, block.data(), block.size(), why);
    if (got < 0) return fail(where + ": " + why);
    block_len = static_cast<size_t>(got);
    block_pos = 0;
    block_at = at;
    next_block_at = at + bsize;
    have_block = true;
    return true;
  }

  // BGZF virtual offset of the next unread byte, as bgzf_tell gives it after a read.
  uint64_t tell() const {
    if (have_block && block_pos == block_len) return next_block_at << 16;
    return block_at << 16 | block_pos;
  }

  bool seek(uint64_t voffset) {
    const uint64_t at = voffset >> 16;
    const size_t within = voffset & 0xffff;
    if (!(have_block && block_at == at) && !load_block(at)) return false;
    if (within > block_len)
      return fail("index points past the end of the BGZF block at offset " + std::to_string(at));
    block_pos = within;
    return true;
  }

  // Copies n bytes from the stream into out. got tells how many arrived when the file ends.
  bool read_bytes(uint8_t* out, size_t n, size_t& got) {
    got = 0;
    while (got < n) {
      if (!have_block || block_pos == block_len) {
        const uint64_t at = have_block ? next_block_at : 0;
        if (at >= file_size) return true;  // the end of the file
        if (!load_block(at)) return false;
        continue;
      }
      const size_t take = std::min(n - got, block_len - block_pos);
      std::memcpy(out + got, block.data() + block_pos, take);
      block_pos += take;
      got += take;
    }
    return true;
  }

  // The next record of the stream into b, decoded as bam_read1 does (and checked as htslib's
  // BAM reader checks it: reference ids within the header).
  Next read_record(bam1_t* b) {
    uint8_t head[4 + kCoreBytes];  // block_size, then the fixed fields
    size_t got;
    if (!read_bytes(head, 4, got)) return Next::corrupt;
    if (got == 0) return Next::end;
    if (got < 4) return corrupt("the file ends inside a record");
    const uint32_t block_size = le32(head);
    if (block_size < kCoreBytes || block_size > INT_MAX)
      return corrupt("impossible record length " + std::to_string(block_size));
    if (!read_bytes(head + 4, kCoreBytes, got)) return Next::corrupt;
    if (got < kCoreBytes) return corrupt("the file ends inside a record");
    const uint8_t* p = head + 4;
    bam1_core_t& c = b->core;
    c.tid = static_cast<int32_t>(le32(p));
    c.pos = static_cast<int32_t>(le32(p + 4));
    const uint32_t bin_mq_nl = le32(p + 8), flag_nc = le32(p + 12);
    c.bin = static_cast<uint16_t>(bin_mq_nl >> 16);
    c.qual = static_cast<uint8_t>(bin_mq_nl >> 8);
    const uint32_t l_read_name = bin_mq_nl & 0xff;
    c.flag = static_cast<uint16_t>(flag_nc >> 16);
    c.n_cigar = flag_nc & 0xffff;
    c.l_qseq = static_cast<int32_t>(le32(p + 16));
    c.mtid = static_cast<int32_t>(le32(p + 20));
    c.mpos = static_cast<int32_t>(le32(p + 24));
    c.isize = static_cast<int32_t>(le32(p + 28));
    // In memory the name is padded with NULs to a multiple of 4 so that the CIGAR is aligned.
    const uint32_t extranul = l_read_name % 4 ? 4 - l_read_name % 4 : 0;
    c.l_extranul = static_cast<uint8_t>(extranul);
    const uint64_t l_data = uint64_t{block_size} - kCoreBytes + extranul;
    const uint64_t needed = (uint64_t{c.n_cigar} << 2) + l_read_name + extranul +
                            ((uint64_t{static_cast<uint32_t>(c.l_qseq)} + 1) >> 1) +
                            static_cast<uint32_t>(c.l_qseq);
    if (l_data > INT_MAX || c.l_qseq < 0 || l_read_name < 1 || needed > l_data)
      return corrupt("record fields exceed its length");
    if (c.tid < -1 || c.tid >= n_targets || c.mtid < -1 || c.mtid >= n_targets)
      return corrupt("reference id " + std::to_string(c.tid < -1 || c.tid >= n_targets ? c.tid
                                                                                       : c.mtid) +
                     " is not in the header");
    // Straight into b: the name, its NUL padding, then the rest.
    RecordBatch::reserve_data(b, static_cast<uint32_t>(l_data));
    b->l_data = 0;
    if (!read_bytes(b->data, l_read_name, got)) return Next::corrupt;
    const uint32_t rest = block_size - kCoreBytes - l_read_name;
    size_t got_rest = 0;
    if (got == l_read_name && !read_bytes(b->data + l_read_name + extranul, rest, got_rest))
      return Next::corrupt;
    if (got < l_read_name || got_rest < rest) return corrupt("the file ends inside a record");
    std::memset(b->data + l_read_name, 0, extranul);
    c.l_qname = static_cast<uint16_t>(l_read_name + extranul);
    b->l_data = static_cast<int>(l_data);
    // A name without its NUL is mended by htslib: leave such a record to it.
    if (b->data[l_read_name - 1] != '\0') return Next::unsupported;
    if (c.n_cigar > 0) {
      const uint32_t* cigar = bam_get_cigar(b);
      // A first operation that soft-clips the whole read is how BAM stands in for a CIGAR kept
      // in the CG tag; htslib swaps the real one in.
      if (bam_cigar_op(cigar[0]) == BAM_CSOFT_CLIP &&
          static_cast<int64_t>(bam_cigar_oplen(cigar[0])) == c.l_qseq)
        return Next::unsupported;
      const int n = static_cast<int>(c.n_cigar);
      hts_pos_t rlen = bam_cigar2rlen(n, cigar);
      const hts_pos_t qlen = bam_cigar2qlen(n, cigar);
      if ((c.flag & BAM_FUNMAP) || rlen == 0) rlen = 1;
      c.bin = static_cast<uint16_t>(hts_reg2bin(c.pos, c.pos + rlen, 14, 5));
      if (c.l_qseq > 0 && !(c.flag & BAM_FUNMAP) && qlen != c.l_qseq)
        return corrupt(std::string("CIGAR and sequence lengths differ for ") + bam_get_qname(b));
    }
    return Next::record;
  }

  Next next(bam1_t* b) {
    if (finished) return Next::end;
    for (;;) {
      if (curr_off == 0 || curr_off >= itr->off[chunk].v) {  // on to the next chunk
        if (chunk == itr->n_off - 1) break;
        const hts_pair64_max_t& to = itr->off[chunk + 1];
        window_hint = (to.v >> 16) - std::min(to.v >> 16, to.u >> 16) + 2 * kMaxBlock;
        if (chunk < 0 || itr->off[chunk].v != to.u) {
          if (!seek(to.u)) return Next::corrupt;
          curr_off = tell();
        }
        ++chunk;
      }
      const Next got = read_record(b);
      if (got != Next::record) {
        if (got == Next::end) break;
        return got;
      }
      curr_off = tell();
      const bam1_core_t& c = b->core;
      if (c.tid != itr->tid || c.pos >= itr->end) break;
      if (bam_endpos(b) > itr->beg && itr->end > c.pos) return Next::record;
    }
    finished = true;
    return Next::end;
  }
};

bool BamRegionReader::available() { return kLittleEndian && fast_inflate_available(); }

BamRegionReader::BamRegionReader(const std::string& path, int n_targets)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.path = path;
  s.n_targets = n_targets;
  s.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (s.fd < 0) throw InputError("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(s.fd, &st) != 0)
    throw InputError("cannot open " + path + ": " + std::strerror(errno));
  s.file_size = static_cast<uint64_t>(st.st_size);
}

void BamRegionReader::start(const hts_itr_t* itr) {
  Impl& s = *impl_;
  s.itr = itr;
  s.chunk = -1;
  s.curr_off = 0;
  s.finished = itr->finished || itr->off == nullptr || itr->n_off <= 0;
  s.problem.clear();
}

BamRegionReader::Next BamRegionReader::next(bam1_t* b) { return impl_->next(b); }

BamRegionReader::~BamRegionReader() = default;
const std::string& BamRegionReader::problem() const { return impl_->problem; }

}  // namespace gms
