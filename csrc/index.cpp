// Reference index: FASTA parsing (plain/gzip via BGZF), 2-bit packed sequence with N intervals,
// and a minimizer hash table laid out as flat arrays so that one mmap of the file serves lookups.
#include "gmsaccel/index.hpp"

#include <fcntl.h>
#include <htslib/bgzf.h>
#include <htslib/hts.h>
#include <htslib/kstring.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <unordered_set>

#include "gmsaccel/errors.hpp"
#include "gmsaccel/minimizer.hpp"
#include "gmsaccel/scoring.hpp"

namespace gms {

namespace {

// ---------------------------------------------------------------------------------------------
// File layout (all integers little-endian, every section starts on an 8-byte boundary):
//   FileHeader | contig records | packed seq (u64) | N intervals (u64 pairs)
//   | keys (u32, n_keys: each hash's low bucket_shift bits) | offsets (u32, n_keys + 1)
//   | buckets (u32, 2^bucket_bits + 1) | positions (u32 global k-mer starts, n_positions)
//   | rev bits (u64 words, bit j = strand of position j) | filtered hashes (u64, n_filtered)
//   | their occurrences (u32, n_filtered)
// The table (keys to rev bits, MinimizerTable) holds the indexed minimizers only; the hashes
// filtered as too frequent are listed apart, ascending, to answer occurrences().
// Version 1 had u64 keys (filtered ones included), offsets and positions, and per-key counts.
constexpr char kMagic[8] = {'G', 'M', 'S', 'A', 'I', 'D', 'X', '\n'};
constexpr uint32_t kVersion = 2;

// Indexed keys per bucket aimed at (1 to 2, the buckets being a power of two). Four per bucket
// would save another 0.17 bytes per base, but seeding with a 1 GB index measured 2-3% slower than
// the version 1 layout and 5-8% slower than one per bucket; two per bucket seeded as fast as
// version 1.
constexpr uint64_t kKeysPerBucket = 2;
constexpr uint64_t kByteOrderMark = 0x0102030405060708ULL;

struct FileHeader {
  char magic[8];
  uint32_t version;
  uint32_t header_bytes;
  uint64_t byte_order;
  int32_t k;
  int32_t w;
  uint32_t max_occ;
  uint32_t bucket_bits;
  uint64_t n_contigs;
  uint64_t total_length;
  uint64_t n_nintervals;
  uint64_t n_keys;
  uint64_t n_positions;
  uint64_t n_filtered;  // entries in the filtered-hash section
  double build_seconds;
  uint64_t contigs_bytes;  // size of the contig record section
  uint64_t file_bytes;     // expected total size: a shorter file is truncated
};
static_assert(sizeof(FileHeader) % 8 == 0, "header keeps 8-byte alignment");

constexpr uint64_t align8(uint64_t n) { return (n + 7) & ~uint64_t{7}; }

// Section sizes in bytes, derived from the header counts; shared by save and load.

struct Layout {
  uint64_t contigs, packed, nint, keys, offs, buckets, positions, rev_bits, filtered_hashes,
      filtered_counts, total;
  uint64_t off_contigs, off_packed, off_nint, off_keys, off_offs, off_buckets, off_positions,
      off_rev_bits, off_filtered_hashes, off_filtered_counts;
};

Layout make_layout(uint64_t contigs_bytes, uint64_t total_length, uint64_t n_nint, uint64_t n_keys,
                   uint32_t bucket_bits, uint64_t n_positions, uint64_t n_filtered) {
  Layout L{};
  L.contigs = align8(contigs_bytes);
  L.packed = ((total_length + 31) / 32) * 8;
  L.nint = n_nint * 16;
  L.keys = align8(n_keys * 4);
  L.offs = align8((n_keys + 1) * 4);
  L.buckets = align8(((uint64_t{1} << bucket_bits) + 1) * 4);
  L.positions = align8(n_positions * 4);
  L.rev_bits = MinimizerTable::rev_bit_words(n_positions) * 8;
  L.filtered_hashes = n_filtered * 8;
  L.filtered_counts = align8(n_filtered * 4);
  uint64_t at = sizeof(FileHeader);
  L.off_contigs = at; at += L.contigs;
  L.off_packed = at; at += L.packed;
  L.off_nint = at; at += L.nint;
  L.off_keys = at; at += L.keys;
  L.off_offs = at; at += L.offs;
  L.off_buckets = at; at += L.buckets;
  L.off_positions = at; at += L.positions;
  L.off_rev_bits = at; at += L.rev_bits;
  L.off_filtered_hashes = at; at += L.filtered_hashes;
  L.off_filtered_counts = at; at += L.filtered_counts;
  L.total = at;
  return L;
}

std::string errno_text() { return std::strerror(errno); }

// ---------------------------------------------------------------------------------------------
// The implementation reads every array through plain pointers; they point either into vectors
// it owns (after build) or into a read-only mapping of the file (after load).
class IndexImpl final : public Index {
 public:
  ~IndexImpl() override {
    if (map_ != nullptr) munmap(map_, map_bytes_);
  }

  void save(const std::string& path) const override;
  const IndexParams& params() const override { return params_; }
  const IndexStats& stats() const override { return stats_; }
  size_t n_contigs() const override { return contigs_.size(); }
  const ContigInfo& contig(size_t i) const override {
    if (i >= contigs_.size()) throw std::out_of_range("contig index out of range");
    return contigs_[i];
  }
  uint64_t total_length() const override { return total_length_; }
  int contig_of(uint64_t global_pos) const override;
  void fetch(size_t contig, int64_t start, int64_t end, uint8_t* out) const override;
  std::vector<uint64_t> lookup(uint64_t hash) const override;
  uint32_t occurrences(uint64_t hash) const override;
  const MinimizerTable& minimizer_table() const override {
    check_table();
    return table_;
  }

  // Lookups index keys by buckets and positions by offsets: both must ascend, or a corrupt file
  // reads out of bounds. A loaded table is checked on its first use, not at load: the check reads
  // a third of the file (2.5 GB for a human genome), which calling, using only the reference,
  // never needs.
  void check_table() const {
    std::call_once(table_checked_, [this] {
      if (!table_.tables_ascend())
        throw InputError(path_ + ": corrupt index (bucket or offset table not ascending)");
    });
  }
  mutable std::once_flag table_checked_;
  std::string path_;  // the file it was loaded from ("" when built)

  // Filled by build_from_fasta / load_from_file.
  IndexParams params_;
  IndexStats stats_;
  std::vector<ContigInfo> contigs_;
  std::vector<uint64_t> contig_offsets_;  // starts, for contig_of's binary search
  uint64_t total_length_ = 0;
  uint32_t bucket_bits_ = 0;
  // The minimizer lookup arrays and their sizes (set by build or load); set_derived() fills in
  // the rest.
  MinimizerTable table_;

  const uint64_t* packed_ = nullptr;
  const uint64_t* nint_ = nullptr;  // (start, end) global pairs, sorted, disjoint
  uint64_t n_nint_ = 0;
  // Hashes filtered as too frequent, ascending, and their occurrences.
  const uint64_t* filtered_hashes_ = nullptr;
  const uint32_t* filtered_counts_ = nullptr;
  uint64_t n_filtered_ = 0;

  // Owned storage (build).
  std::vector<uint64_t> own_packed_, own_nint_, own_rev_bits_, own_filtered_hashes_;
  std::vector<uint32_t> own_keys_, own_offs_, own_buckets_, own_positions_, own_filtered_counts_;
  // Mapped storage (load).
  void* map_ = nullptr;
  size_t map_bytes_ = 0;

  void set_derived() {
    static std::atomic<uint64_t> next_id{1};
    const int bits = 2 * params_.k;
    table_.n_buckets = uint64_t{1} << bucket_bits_;
    table_.bucket_shift = bits - static_cast<int>(bucket_bits_);
    table_.hash_limit = (bits >= 64) ? ~uint64_t{0} : (uint64_t{1} << bits);
    table_.id = next_id++;
    contig_offsets_.clear();
    for (const auto& c : contigs_) contig_offsets_.push_back(c.offset);
  }
  std::string serialize_contigs() const;
};

int IndexImpl::contig_of(uint64_t global_pos) const {
  if (global_pos >= total_length_ || contig_offsets_.empty()) return -1;
  auto it = std::upper_bound(contig_offsets_.begin(), contig_offsets_.end(), global_pos);
  return static_cast<int>(it - contig_offsets_.begin()) - 1;
}

namespace {

// Byte b of the packed reference (four 2-bit bases, the first in the low bits) as the four base
// codes it holds, in memory order (little-endian uint32).
const uint32_t* four_codes() {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t b = 0; b < 256; ++b) {
      uint8_t codes[4];
      for (int i = 0; i < 4; ++i) codes[i] = static_cast<uint8_t>((b >> (2 * i)) & 3);
      std::memcpy(&t[b], codes, 4);
    }
    return t;
  }();
  return table.data();
}

}  // namespace

void IndexImpl::fetch(size_t ci, int64_t start, int64_t end, uint8_t* out) const {
  if (ci >= contigs_.size()) throw std::out_of_range("contig index out of range");
  if (end <= start) return;
  const ContigInfo& c = contigs_[ci];
  const int64_t len = static_cast<int64_t>(c.length);
  const int64_t lo = std::clamp<int64_t>(start, 0, len);
  const int64_t hi = std::clamp<int64_t>(end, 0, len);
  if (hi <= lo) {  // wholly outside the contig
    std::memset(out, kBaseOff, static_cast<size_t>(end - start));
    return;
  }
  std::memset(out, kBaseOff, static_cast<size_t>(lo - start));
  std::memset(out + (hi - start), kBaseOff, static_cast<size_t>(end - hi));
  uint8_t* dst = out + (lo - start);
  const uint64_t g0 = c.offset + static_cast<uint64_t>(lo);
  const uint64_t g1 = c.offset + static_cast<uint64_t>(hi);
  uint64_t g = g0;
  auto one = [this](uint64_t at) {
    return static_cast<uint8_t>((packed_[at >> 5] >> ((at & 31) * 2)) & 3);
  };
  for (; g < g1 && (g & 31); ++g) *dst++ = one(g);
  // Whole words: each packed byte (four bases) becomes four codes through one table load.
  const uint32_t* four = four_codes();
  for (; g + 32 <= g1; g += 32, dst += 32) {
    const uint64_t w = packed_[g >> 5];
    for (int b = 0; b < 8; ++b) std::memcpy(dst + 4 * b, &four[(w >> (8 * b)) & 0xff], 4);
  }
  for (; g < g1; ++g) *dst++ = one(g);
  // N runs are stored as A in the packed array; overlay them from the interval list.
  uint64_t a = 0, b = n_nint_;  // first interval whose end exceeds g0
  while (a < b) {
    const uint64_t m = (a + b) / 2;
    if (nint_[2 * m + 1] <= g0) a = m + 1; else b = m;
  }
  for (uint64_t i = a; i < n_nint_ && nint_[2 * i] < g1; ++i) {
    const uint64_t s = std::max(nint_[2 * i], g0), e = std::min(nint_[2 * i + 1], g1);
    std::memset(out + (lo - start) + (s - g0), kBaseN, e - s);
  }
}

std::vector<uint64_t> IndexImpl::lookup(uint64_t hash) const {
  check_table();
  uint64_t first = 0;
  const uint32_t count = table_.positions_of(table_.find(hash), first);
  std::vector<uint64_t> values(count);
  for (uint32_t i = 0; i < count; ++i) {
    values[i] = (uint64_t{table_.positions[first + i]} << 1) | table_.rev_at(first + i);
  }
  return values;
}

uint32_t IndexImpl::occurrences(uint64_t hash) const {
  uint64_t first = 0;
  const uint32_t count = table_.positions_of(table_.find(hash), first);
  if (count > 0) return count;
  const uint64_t* end = filtered_hashes_ + n_filtered_;
  const uint64_t* at = std::lower_bound(filtered_hashes_, end, hash);
  return at != end && *at == hash ? filtered_counts_[at - filtered_hashes_] : 0;
}

std::string IndexImpl::serialize_contigs() const {
  std::string s;
  auto put = [&s](const void* p, size_t n) { s.append(static_cast<const char*>(p), n); };
  for (const auto& c : contigs_) {
    const uint32_t name_len = static_cast<uint32_t>(c.name.size());
    put(&c.length, 8);
    put(&c.offset, 8);
    put(&name_len, 4);
    put(c.name.data(), c.name.size());
    s.append(c.md5.size() == 32 ? c.md5 : std::string(32, '0'));
  }
  return s;
}

void IndexImpl::save(const std::string& path) const {
  const std::string contig_bytes = serialize_contigs();
  const Layout L = make_layout(contig_bytes.size(), total_length_, n_nint_, table_.n_keys,
                               bucket_bits_, table_.n_positions, n_filtered_);
  FileHeader h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kVersion;
  h.header_bytes = sizeof(FileHeader);
  h.byte_order = kByteOrderMark;
  h.k = params_.k;
  h.w = params_.w;
  h.max_occ = params_.max_occ;
  h.bucket_bits = bucket_bits_;
  h.n_contigs = contigs_.size();
  h.total_length = total_length_;
  h.n_nintervals = n_nint_;
  h.n_keys = table_.n_keys;
  h.n_positions = table_.n_positions;
  h.n_filtered = n_filtered_;
  h.build_seconds = stats_.build_seconds;
  h.contigs_bytes = contig_bytes.size();
  h.file_bytes = L.total;

  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) throw InputError(path + ": cannot write index: " + errno_text());
  bool ok = true;
  static const char zeros[8] = {};
  auto put = [&](const void* p, uint64_t n, uint64_t padded) {
    if (!ok) return;
    if (n > 0 && std::fwrite(p, 1, n, f) != n) ok = false;
    if (padded > n && std::fwrite(zeros, 1, padded - n, f) != padded - n) ok = false;
  };
  put(&h, sizeof h, sizeof h);
  put(contig_bytes.data(), contig_bytes.size(), L.contigs);
  put(packed_, L.packed, L.packed);
  put(nint_, L.nint, L.nint);
  put(table_.keys, table_.n_keys * 4, L.keys);
  put(table_.offs, (table_.n_keys + 1) * 4, L.offs);
  put(table_.buckets, ((uint64_t{1} << bucket_bits_) + 1) * 4, L.buckets);
  put(table_.positions, table_.n_positions * 4, L.positions);
  put(table_.rev_bits, L.rev_bits, L.rev_bits);
  put(filtered_hashes_, L.filtered_hashes, L.filtered_hashes);
  put(filtered_counts_, n_filtered_ * 4, L.filtered_counts);
  const int saved_errno = errno;
  if (std::fflush(f) != 0) ok = false;
  if (std::fclose(f) != 0) ok = false;
  if (!ok) {
    errno = saved_errno;
    const std::string why = errno_text();
    std::remove(tmp.c_str());
    throw InputError(path + ": cannot write index: " + why);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = errno_text();
    std::remove(tmp.c_str());
    throw InputError(path + ": cannot rename " + tmp + " over it: " + why);
  }
}

// ---------------------------------------------------------------------------------------------
// FASTA reading.

enum CharClass : uint8_t { kInvalid = 0, kSkip = 1, kBase = 2 };

struct CharTable {
  uint8_t cls[256];
  uint8_t code[256];
  char upper[256];
  CharTable() {
    for (int c = 0; c < 256; ++c) {
      const char ch = static_cast<char>(c);
      const bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
      if (letter || ch == '*' || ch == '-') {
        cls[c] = kBase;
      } else if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f') {
        cls[c] = kSkip;
      } else {
        cls[c] = kInvalid;
      }
      code[c] = base_code(ch);
      upper[c] = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : ch;
    }
  }
};

const CharTable& char_table() {
  static const CharTable t;
  return t;
}

std::string printable(unsigned char c) {
  if (c >= 33 && c < 127) return std::string("'") + static_cast<char>(c) + "'";
  char buf[16];
  std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
  return buf;
}

struct Md5 {
  hts_md5_context* ctx = hts_md5_init();
  Md5() {
    if (ctx == nullptr) throw std::bad_alloc();
  }
  ~Md5() { hts_md5_destroy(ctx); }
  Md5(const Md5&) = delete;
  Md5& operator=(const Md5&) = delete;
  void update(const char* p, size_t n) {
    if (n > 0) hts_md5_update(ctx, p, static_cast<unsigned long>(n));
  }
  std::string hex() {
    unsigned char digest[16];
    char out[33];
    hts_md5_final(digest, ctx);
    hts_md5_hex(out, digest);
    return std::string(out, 32);
  }
};

// Accumulates contigs as they are parsed and finally lays out the lookup arrays.
class Builder {
 public:
  Builder(const std::string& file, IndexImpl& idx, const IndexLimits& limits,
          const BuildOptions& options)
      : file_(file), idx_(idx), options_(options) {
    limits_.max_bases = std::min(limits.max_bases, kMaxIndexBases);
    limits_.max_positions = std::min(limits.max_positions, kMaxIndexPositions);
  }

  [[noreturn]] void fail(const std::string& problem) const {
    std::string where = file_ + ": ";
    if (record_ > 0) where += "record " + std::to_string(record_) + " (" + name_ + "): ";
    throw InputError(where + problem);
  }
  // A problem of the whole reference rather than of the record last read.
  [[noreturn]] void fail_reference(const std::string& problem) const {
    throw InputError(file_ + ": " + problem);
  }

  // A plain FASTA's size bounds its bases: room for them and their minimizers (about 2 in w + 1
  // positions) up front spares the copies of growing arrays of gigabytes. Untouched room costs
  // address space, not memory.
  void reserve_for(uint64_t fasta_bytes) {
    const uint64_t bases = std::min<uint64_t>(fasta_bytes, limits_.max_bases);
    const uint64_t window = static_cast<uint64_t>(idx_.params_.w) + 1;
    try {
      packed_.reserve(bases / 32 + 1);
      pairs_.reserve(bases / window * 2 + bases / 64 + 1024);
    } catch (const std::bad_alloc&) {  // (address space capped, ulimit -v): grow as needed
    } catch (const std::length_error&) {
    }
  }

  void start_record(const char* line, size_t n, uint64_t line_no) {
    finish_record();
    ++record_;
    size_t i = 1;  // skip '>'
    size_t j = i;
    while (j < n && !std::isspace(static_cast<unsigned char>(line[j]))) ++j;
    name_.assign(line + i, j - i);
    if (name_.empty()) fail("line " + std::to_string(line_no) + ": empty contig name");
    if (!names_.insert(name_).second) fail("duplicate contig name");
    codes_.clear();
    md5_ = std::make_unique<Md5>();
    in_record_ = true;
  }

  void add_sequence(const char* line, size_t n, uint64_t line_no) {
    const CharTable& t = char_table();
    upper_.resize(n);
    size_t m = 0;
    for (size_t i = 0; i < n; ++i) {
      const unsigned char c = static_cast<unsigned char>(line[i]);
      const uint8_t cls = t.cls[c];
      if (cls == kBase) {
        upper_[m++] = t.upper[c];
        codes_.push_back(t.code[c]);
      } else if (cls == kInvalid) {
        fail("line " + std::to_string(line_no) + ": invalid character " + printable(c) +
             " in sequence");
      }
    }
    md5_->update(upper_.data(), m);
  }

  void finish_record() {
    if (!in_record_) return;
    in_record_ = false;
    if (codes_.empty()) fail("empty contig (no sequence)");
    if (codes_.size() > UINT32_MAX) fail("contig longer than 4294967295 bases is not supported");
    if (total_ + codes_.size() > limits_.max_bases) {
      fail("the reference passes " + std::to_string(limits_.max_bases) +
           " bases here, more than the index can hold (it stores 32-bit positions)");
    }
    ContigInfo ci;
    ci.name = name_;
    ci.length = codes_.size();
    ci.offset = total_;
    ci.md5 = md5_->hex();
    md5_.reset();

    // Pack 2 bits per base; N runs become intervals (and A in the packed array).
    packed_.resize((total_ + codes_.size() + 31) / 32, 0);
    uint64_t g = total_;
    bool in_n = false;
    for (const uint8_t c : codes_) {
      if (c >= 4) {
        if (!in_n) {
          nint_.push_back(g);
          in_n = true;
        }
      } else {
        if (in_n) {
          nint_.push_back(g);
          in_n = false;
        }
        packed_[g >> 5] |= static_cast<uint64_t>(c) << ((g & 31) * 2);
      }
      ++g;
    }
    if (in_n) nint_.push_back(g);

    mins_.clear();
    compute_minimizers(codes_.data(), static_cast<uint32_t>(codes_.size()), idx_.params_.k,
                       idx_.params_.w, mins_);
    for (const Minimizer& m : mins_) {  // positions < max_bases <= 2^32 - 1 (checked above)
      pairs_.push_back({(m.hash << 1) | m.rev, static_cast<uint32_t>(total_ + m.pos)});
    }
    total_ += codes_.size();
    idx_.contigs_.push_back(std::move(ci));
  }

  void finish() {
    finish_record();
    if (record_ == 0) fail("no contigs (empty FASTA)");
    idx_.total_length_ = total_;
    idx_.own_packed_ = std::move(packed_);
    idx_.own_nint_ = std::move(nint_);
    build_table();
  }

 private:
  // One minimizer of the reference: 12 bytes, not 16, since a human genome's 600 million of them
  // are most of the build's memory. Hashes are below 2^56 (k <= 28), so the strand fits beside.
#pragma pack(push, 4)
  struct Pair {
    uint64_t hash_rev;  // hash << 1 | rev
    uint32_t pos;       // global k-mer start
    uint64_t hash() const { return hash_rev >> 1; }
    bool operator<(const Pair& o) const {
      return hash() != o.hash() ? hash() < o.hash() : pos < o.pos;
    }
  };
#pragma pack(pop)
  static_assert(sizeof(Pair) == 12, "pairs are packed");

  // Lays out the table from the (hash, position) pairs: keys, offsets, positions and strand bits
  // for the hashes seen at most max_occ times, the filtered list for the others.
  void build_table() {
    sort_pairs();
    const uint64_t max_occ = idx_.params_.max_occ;
    // First pass: the indexed keys and positions, which size the arrays and the buckets.
    uint64_t n_keys = 0, n_positions = 0, n_filtered = 0;
    for_each_hash([&](size_t, size_t count) {
      if (count > max_occ) {
        ++n_filtered;
      } else {
        ++n_keys;
        n_positions += count;
      }
    });
    // For the u32 offsets (and buckets: n_keys <= n_positions). A reference within max_bases
    // meets it already, each k-mer start being reported once at most; it binds under a lower
    // test limit.
    if (n_positions > limits_.max_positions) {
      fail_reference(std::to_string(n_positions) + " minimizer positions to index, more than the " +
                     std::to_string(limits_.max_positions) + " the index can hold (32-bit offsets)");
    }

    // About kKeysPerBucket keys per bucket, but enough buckets that the bits of a hash below its
    // bucket's fit a u32 key.
    const int hash_bits = 2 * idx_.params_.k;
    int bucket_bits = std::max(0, hash_bits - 32);
    while (bucket_bits < hash_bits && (kKeysPerBucket << bucket_bits) < n_keys) ++bucket_bits;
    idx_.bucket_bits_ = static_cast<uint32_t>(bucket_bits);
    MinimizerTable split;  // its bucket_of and key_bits, the lookup's own, split each hash
    split.bucket_shift = hash_bits - bucket_bits;

    auto& keys = idx_.own_keys_;
    auto& offs = idx_.own_offs_;
    auto& positions = idx_.own_positions_;
    auto& rev_bits = idx_.own_rev_bits_;
    auto& buckets = idx_.own_buckets_;
    auto& filtered_hashes = idx_.own_filtered_hashes_;
    auto& filtered_counts = idx_.own_filtered_counts_;
    keys.reserve(n_keys);
    offs.reserve(n_keys + 1);
    positions.reserve(n_positions);
    rev_bits.assign(MinimizerTable::rev_bit_words(n_positions), 0);
    buckets.assign((size_t{1} << bucket_bits) + 1, 0);
    filtered_hashes.reserve(n_filtered);
    filtered_counts.reserve(n_filtered);
    uint64_t hashes = 0;
    for_each_hash([&](size_t first, size_t count) {
      if ((++hashes & 0xFFFFF) == 0 && options_.check_interrupt) options_.check_interrupt();
      const uint64_t hash = pairs_[first].hash();
      if (count > max_occ) {  // count < 2^32: there are fewer bases
        filtered_hashes.push_back(hash);
        filtered_counts.push_back(static_cast<uint32_t>(count));
        return;
      }
      keys.push_back(split.key_bits(hash));
      ++buckets[split.bucket_of(hash) + 1];  // a count for now; the prefix sum below makes it an index
      offs.push_back(static_cast<uint32_t>(positions.size()));
      for (size_t t = first; t < first + count; ++t) {
        const uint64_t j = positions.size();
        positions.push_back(pairs_[t].pos);
        rev_bits[j >> 6] |= (pairs_[t].hash_rev & 1) << (j & 63);
      }
    });
    offs.push_back(static_cast<uint32_t>(positions.size()));
    std::vector<Pair>().swap(pairs_);
    // buckets[b] becomes the first key whose bucket is >= b.
    for (size_t b = 1; b < buckets.size(); ++b) buckets[b] += buckets[b - 1];

    idx_.stats_.n_minimizers = n_keys;
    idx_.stats_.n_positions = n_positions;
    idx_.stats_.n_filtered = n_filtered;
  }

  // Puts a[0..n) in place into 256 parts by the hash's byte at shift (American flag sort): part
  // b is a[bounds[b] .. bounds[b + 1]). check (the top level's, on the calling thread): called
  // every few million pairs.
  static void partition_by_byte(Pair* a, size_t n, int shift, size_t (&bounds)[257],
                                const std::function<void()>* check = nullptr) {
    constexpr size_t kCheckEvery = size_t{1} << 22;
    size_t count[256] = {};
    for (size_t i = 0; i < n; ++i) {
      if (check && (i & (kCheckEvery - 1)) == 0) (*check)();
      ++count[(a[i].hash() >> shift) & 255];
    }
    size_t next[256];
    bounds[0] = 0;
    for (int b = 0; b < 256; ++b) {
      next[b] = bounds[b];
      bounds[b + 1] = bounds[b] + count[b];
    }
    size_t placed = 0;
    for (int b = 0; b < 256; ++b) {
      while (next[b] < bounds[b + 1]) {  // carry each pair to its part, picking up the one there
        Pair x = a[next[b]];
        for (int d = static_cast<int>((x.hash() >> shift) & 255); d != b;
             d = static_cast<int>((x.hash() >> shift) & 255)) {
          if (check && (++placed & (kCheckEvery - 1)) == 0) (*check)();
          std::swap(x, a[next[d]++]);
        }
        a[next[b]++] = x;
      }
    }
  }
  // a[0..n) in order: partitioned by the byte at shift, then each part by the next, down to
  // parts of `small` pairs, which are sorted whole.
  static void sort_part(Pair* a, size_t n, int shift, size_t small) {
    if (n <= small || shift < 0) {
      std::sort(a, a + n);
      return;
    }
    size_t bounds[257];
    partition_by_byte(a, n, shift, bounds);
    for (int b = 0; b < 256; ++b) {
      sort_part(a + bounds[b], bounds[b + 1] - bounds[b], shift - 8, small);
    }
  }
  // pairs_ in (hash, pos) order, each pair being unique (a k-mer start is one minimizer at
  // most): the one order, whatever the threads. Partitioning in place streams through memory
  // where one std::sort of a genome's 600 million pairs jumps across it. The top byte's parts
  // are ordered on options_.threads threads; the calling thread checks for an interrupt
  // between its parts.
  void sort_pairs() {
    Pair* a = pairs_.data();
    const int top = 2 * idx_.params_.k - 8;  // hashes are below 2^(2k)
    const size_t small = std::max<size_t>(1, options_.small_part);
    if (pairs_.size() <= small || top < 0) {
      std::sort(pairs_.begin(), pairs_.end());
      return;
    }
    size_t bounds[257];
    partition_by_byte(a, pairs_.size(), top, bounds,
                      options_.check_interrupt ? &options_.check_interrupt : nullptr);
    std::atomic<int> next{0};
    std::atomic<bool> stop{false};
    auto work = [&](bool checking) {
      for (int b; !stop && (b = next++) < 256;) {
        if (checking && options_.check_interrupt) options_.check_interrupt();
        sort_part(a + bounds[b], bounds[b + 1] - bounds[b], top - 8, small);
      }
    };
    std::vector<std::thread> pool;
    try {
      // (256 parts at most to share; a thread the system cannot start leaves the work to those
      // that did)
      for (int t = 1; t < std::min(options_.threads, 256); ++t) pool.emplace_back(work, false);
    } catch (const std::system_error&) {
    }
    try {
      work(true);
    } catch (...) {
      stop = true;
      for (std::thread& t : pool) t.join();
      throw;
    }
    for (std::thread& t : pool) t.join();
  }

  // Calls fn(first, count) for each run of pairs_ sharing a hash, in hash order.
  template <class Fn>
  void for_each_hash(Fn&& fn) const {
    for (size_t i = 0; i < pairs_.size();) {
      size_t j = i + 1;
      while (j < pairs_.size() && pairs_[j].hash() == pairs_[i].hash()) ++j;
      fn(i, j - i);
      i = j;
    }
  }

  const std::string& file_;
  IndexImpl& idx_;
  const BuildOptions& options_;
  IndexLimits limits_;
  uint64_t record_ = 0;
  std::string name_;
  std::unordered_set<std::string> names_;
  std::vector<uint8_t> codes_;
  std::vector<char> upper_;
  std::unique_ptr<Md5> md5_;
  bool in_record_ = false;
  uint64_t total_ = 0;
  std::vector<uint64_t> packed_, nint_;
  std::vector<Minimizer> mins_;
  std::vector<Pair> pairs_;
};

void wire_owned(IndexImpl& idx) {
  idx.packed_ = idx.own_packed_.data();
  idx.nint_ = idx.own_nint_.data();
  idx.n_nint_ = idx.own_nint_.size() / 2;
  idx.table_.keys = idx.own_keys_.data();
  idx.table_.offs = idx.own_offs_.data();
  idx.table_.buckets = idx.own_buckets_.data();
  idx.table_.positions = idx.own_positions_.data();
  idx.table_.rev_bits = idx.own_rev_bits_.data();
  idx.table_.n_keys = idx.own_keys_.size();
  idx.table_.n_positions = idx.own_positions_.size();
  idx.filtered_hashes_ = idx.own_filtered_hashes_.data();
  idx.filtered_counts_ = idx.own_filtered_counts_.data();
  idx.n_filtered_ = idx.own_filtered_hashes_.size();
  idx.set_derived();
}

struct BgzfCloser {
  void operator()(BGZF* f) const {
    if (f != nullptr) bgzf_close(f);
  }
};

struct KString {
  kstring_t s = KS_INITIALIZE;
  ~KString() { ks_free(&s); }
};

}  // namespace

// -----------------------------------------------------------------------------------------------

std::unique_ptr<Index> Index::build(const std::string& fasta_path, const IndexParams& params,
                                    const IndexLimits& limits, const BuildOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  if (params.k < 1 || params.k > 28 || params.w < 1) {
    throw std::invalid_argument("index parameters need 1 <= k <= 28 and w >= 1");
  }
  off_t st_size = 0;
  {
    // bgzf_open reports little on failure; check readability first for a clear message.
    struct stat st {};
    if (::stat(fasta_path.c_str(), &st) != 0) {
      throw InputError(fasta_path + ": cannot open FASTA: " + errno_text());
    }
    if (S_ISDIR(st.st_mode)) throw InputError(fasta_path + ": cannot open FASTA: is a directory");
    st_size = st.st_size;
  }
  std::unique_ptr<BGZF, BgzfCloser> fp(bgzf_open(fasta_path.c_str(), "r"));
  if (!fp) throw InputError(fasta_path + ": cannot open FASTA: " + errno_text());

  auto idx = std::make_unique<IndexImpl>();
  idx->params_ = params;
  Builder b(fasta_path, *idx, limits, options);
  if (bgzf_compression(fp.get()) == 0) b.reserve_for(static_cast<uint64_t>(st_size));
  KString line;
  uint64_t line_no = 0;
  bool seen_header = false;
  int r;
  // Checked every 16 MiB of FASTA text, a long line (a whole contig on one) in pieces.
  constexpr size_t kCheckBytes = size_t{1} << 24;
  size_t unchecked = 0;
  auto check = [&](size_t bytes) {
    unchecked += bytes;
    if (unchecked >= kCheckBytes && options.check_interrupt) {
      unchecked = 0;
      options.check_interrupt();
    }
  };
  while ((r = bgzf_getline(fp.get(), '\n', &line.s)) >= 0) {
    ++line_no;
    const char* p = line.s.s;
    size_t n = line.s.l;
    check(1);  // (the newline: blank lines and headers count too)
    if (n > 0 && p[0] == '>') {
      check(n);
      b.start_record(p, n, line_no);
      seen_header = true;
      continue;
    }
    if (!seen_header) {
      bool blank = true;
      for (size_t i = 0; i < n && blank; ++i) {
        blank = std::isspace(static_cast<unsigned char>(p[i])) != 0;
      }
      if (blank) continue;
      b.fail("line " + std::to_string(line_no) +
             ": not FASTA (expected a '>' header line first)");
    }
    for (size_t done = 0; done < n; done += kCheckBytes) {
      const size_t part = std::min(kCheckBytes, n - done);
      b.add_sequence(p + done, part, line_no);
      check(part);
    }
  }
  if (r < -1) {
    b.fail(line_no == 0 ? std::string("read error at the start of the file (truncated or corrupt "
                                      "gzip?)")
                        : "read error after line " + std::to_string(line_no) +
                              " (truncated or corrupt gzip?)");
  }
  if (bgzf_compression(fp.get()) == 2 && bgzf_check_EOF(fp.get()) == 0) {
    b.fail("BGZF end-of-file marker missing: the file is truncated");
  }
  b.finish();
  wire_owned(*idx);

  const std::string cb = idx->serialize_contigs();
  idx->stats_.file_bytes = make_layout(cb.size(), idx->total_length_, idx->n_nint_,
                                       idx->table_.n_keys, idx->bucket_bits_,
                                       idx->table_.n_positions, idx->n_filtered_)
                               .total;
  idx->stats_.build_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return idx;
}

std::unique_ptr<Index> Index::load(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(path + ": cannot open index: " + errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    throw InputError(path + ": cannot stat index: " + why);
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw InputError(path + ": cannot open index: is a directory");
  }
  if (size < sizeof(kMagic)) {
    ::close(fd);
    throw InputError(path + ": not a gmsaccel index (file too short)");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const std::string map_err = errno_text();
  ::close(fd);
  if (map == MAP_FAILED) throw InputError(path + ": cannot map index: " + map_err);

  auto idx = std::make_unique<IndexImpl>();
  idx->map_ = map;  // unmapped by the destructor on every error path below
  idx->map_bytes_ = size;
  ::madvise(map, size, MADV_WILLNEED);  // lookups touch pages at random: read ahead now
  const char* base = static_cast<const char*>(map);
  auto bad = [&path](const std::string& why) { return InputError(path + ": " + why); };

  if (std::memcmp(base, kMagic, sizeof kMagic) != 0) throw bad("not a gmsaccel index");
  if (size < 16) throw bad("truncated index (header incomplete)");
  uint32_t version = 0;
  std::memcpy(&version, base + 8, 4);
  if (version != kVersion) {
    throw bad("index format version " + std::to_string(version) + " but this gmsaccel reads " +
              std::to_string(kVersion) + "; rebuild the index");
  }
  if (size < sizeof(FileHeader)) throw bad("truncated index (header incomplete)");
  FileHeader h;
  std::memcpy(&h, base, sizeof h);
  if (h.byte_order != kByteOrderMark) throw bad("index written on a machine of other byte order");
  // The bits of a hash below its bucket's must fit the u32 keys; positions and offsets are u32.
  const uint32_t hash_bits = 2 * static_cast<uint32_t>(h.k);
  if (h.header_bytes != sizeof(FileHeader) || h.k < 1 || h.k > 28 || h.w < 1 ||
      h.bucket_bits > hash_bits || h.bucket_bits + 32 < hash_bits ||
      h.total_length > kMaxIndexBases || h.n_positions > kMaxIndexPositions ||
      h.n_keys > h.n_positions) {
    throw bad("corrupt index header");
  }
  // Counts beyond the file size can only come from corruption; they would overflow the layout.
  if (h.n_contigs > size || h.contigs_bytes > size || h.total_length / 4 > size ||
      h.n_nintervals > size || h.n_keys > size || h.n_positions > size || h.n_filtered > size) {
    throw bad("corrupt index header");
  }
  if (size < h.file_bytes) {
    throw bad("truncated index (" + std::to_string(size) + " of " + std::to_string(h.file_bytes) +
              " bytes)");
  }
  const Layout L = make_layout(h.contigs_bytes, h.total_length, h.n_nintervals, h.n_keys,
                               h.bucket_bits, h.n_positions, h.n_filtered);
  if (L.total != h.file_bytes) throw bad("corrupt index header (section sizes disagree)");

  idx->params_ = IndexParams{h.k, h.w, h.max_occ};
  idx->total_length_ = h.total_length;
  idx->bucket_bits_ = h.bucket_bits;

  // Contig records: length, offset, name length, name, md5; checked against the section bounds.
  const char* cp = base + L.off_contigs;
  const char* ce = cp + h.contigs_bytes;
  uint64_t expect_offset = 0;
  for (uint64_t i = 0; i < h.n_contigs; ++i) {
    ContigInfo c;
    uint32_t name_len = 0;
    if (ce - cp < 20) throw bad("corrupt index (contig table)");
    std::memcpy(&c.length, cp, 8);
    std::memcpy(&c.offset, cp + 8, 8);
    std::memcpy(&name_len, cp + 16, 4);
    cp += 20;
    if (static_cast<uint64_t>(ce - cp) < uint64_t{name_len} + 32) {
      throw bad("corrupt index (contig table)");
    }
    c.name.assign(cp, name_len);
    cp += name_len;
    c.md5.assign(cp, 32);
    cp += 32;
    if (c.offset != expect_offset || c.length == 0) throw bad("corrupt index (contig table)");
    expect_offset += c.length;
    idx->contigs_.push_back(std::move(c));
  }
  if (expect_offset != h.total_length) throw bad("corrupt index (contig lengths)");

  idx->packed_ = reinterpret_cast<const uint64_t*>(base + L.off_packed);
  idx->nint_ = reinterpret_cast<const uint64_t*>(base + L.off_nint);
  idx->n_nint_ = h.n_nintervals;
  idx->table_.keys = reinterpret_cast<const uint32_t*>(base + L.off_keys);
  idx->table_.offs = reinterpret_cast<const uint32_t*>(base + L.off_offs);
  idx->table_.buckets = reinterpret_cast<const uint32_t*>(base + L.off_buckets);
  idx->table_.positions = reinterpret_cast<const uint32_t*>(base + L.off_positions);
  idx->table_.rev_bits = reinterpret_cast<const uint64_t*>(base + L.off_rev_bits);
  idx->table_.n_keys = h.n_keys;
  idx->table_.n_positions = h.n_positions;
  if (idx->table_.offs[0] != 0 || idx->table_.offs[h.n_keys] != h.n_positions ||
      idx->table_.buckets[0] != 0 || idx->table_.buckets[uint64_t{1} << h.bucket_bits] != h.n_keys) {
    throw bad("corrupt index (table bounds)");
  }
  idx->filtered_hashes_ = reinterpret_cast<const uint64_t*>(base + L.off_filtered_hashes);
  idx->filtered_counts_ = reinterpret_cast<const uint32_t*>(base + L.off_filtered_counts);
  idx->n_filtered_ = h.n_filtered;
  idx->set_derived();
  idx->path_ = path;  // (the tables' ascending order is checked on their first use)
  // occurrences() binary-searches the filtered list: it must ascend within the hash range (a
  // short check, the list being a small fraction of the hashes).
  for (uint64_t i = 0; i < h.n_filtered; ++i) {
    const uint64_t hash = idx->filtered_hashes_[i];
    if (hash >= idx->table_.hash_limit || (i > 0 && hash <= idx->filtered_hashes_[i - 1]) ||
        idx->filtered_counts_[i] <= h.max_occ) {
      throw bad("corrupt index (filtered minimizers)");
    }
  }
  idx->stats_.n_minimizers = h.n_keys;
  idx->stats_.n_positions = h.n_positions;
  idx->stats_.n_filtered = h.n_filtered;
  idx->stats_.build_seconds = h.build_seconds;
  idx->stats_.file_bytes = size;
  return idx;
}

}  // namespace gms
