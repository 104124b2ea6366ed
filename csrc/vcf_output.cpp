// Bgzipped VCF with its tabix index built while writing (see vcf_output.hpp). pysam's BGZFile
// deflated on the calling thread with zlib, then tabix re-read the whole file to index it.
#include <fcntl.h>
#include <htslib/tbx.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "gmsaccel/bgzf_writer.hpp"
#include "gmsaccel/vcf_output.hpp"

namespace gms {

struct VcfBgzfOutput::Impl {
  int fd = -1;
  std::string path;
  std::unique_ptr<BgzfBlockWriter> out;
  std::string index_path;  // empty: no index
  int csi_min_shift = 0;   // 0: TBI
  std::vector<std::string> contigs;  // by tabix number: order of first appearance
  std::unordered_map<std::string, int> tid_of;

  ~Impl() {
    out.reset();  // stops the threads before the file goes
    if (fd >= 0) ::close(fd);
  }

  BgzfBlockWriter& writer() {
    if (!out) throw std::logic_error("VcfBgzfOutput: " + path + " is already finished");
    return *out;
  }

  // tabix's binning (TBI, or CSI with levels up to tabix's largest shift); its first offset
  // is the one after the header: where the file now ends.
  void start_index() {
    if (index_path.empty() || out->index()) return;
    if (csi_min_shift > 0) {
      out->start_index(0, HTS_FMT_CSI, csi_min_shift, (TBX_MAX_SHIFT - csi_min_shift + 2) / 3,
                       index_path);
    } else {
      out->start_index(0, HTS_FMT_TBI, 14, 5, index_path);
    }
  }

  int tid(std::string_view contig) {
    auto it = tid_of.find(std::string(contig));
    if (it != tid_of.end()) return it->second;
    const int t = static_cast<int>(contigs.size());
    contigs.emplace_back(contig);
    tid_of.emplace(contigs.back(), t);
    return t;
  }

  // tabix's metadata: its VCF configuration, then the contig names in number order.
  void set_tabix_meta(hts_idx_t* idx) const {
    std::vector<uint8_t> meta(sizeof(tbx_conf_t) + 4);
    std::memcpy(meta.data(), &tbx_conf_vcf, sizeof(tbx_conf_t));
    uint32_t l_names = 0;
    for (const auto& c : contigs) l_names += static_cast<uint32_t>(c.size() + 1);
    std::memcpy(meta.data() + sizeof(tbx_conf_t), &l_names, 4);
    for (const auto& c : contigs) meta.insert(meta.end(), c.c_str(), c.c_str() + c.size() + 1);
    if (hts_idx_set_meta(idx, static_cast<uint32_t>(meta.size()), meta.data(), 1) < 0) {
      throw std::runtime_error("cannot set the tabix metadata of " + path);
    }
  }
};

VcfBgzfOutput::VcfBgzfOutput(const std::string& path, int level, int threads,
                             const std::string& index_path, int csi_min_shift)
    : impl_(std::make_unique<Impl>()) {
  static_assert(sizeof(tbx_conf_t) == 24, "tabix metadata starts with six 32-bit fields");
  Impl& s = *impl_;
  s.path = path;
  s.fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (s.fd < 0) {
    throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
  }
  try {
    s.out = std::make_unique<BgzfBlockWriter>(
        s.fd, path, level, threads, [] { return std::make_unique<BgzfBlockWriter::Block>(); });
  } catch (const std::system_error& e) {  // its threads could not start: no file either
    ::unlink(path.c_str());
    throw std::runtime_error("cannot start " + std::to_string(threads) + " threads to write " +
                             path + ": " + e.what());
  } catch (...) {
    ::unlink(path.c_str());
    throw;
  }
  s.index_path = index_path;
  s.csi_min_shift = csi_min_shift;
}

VcfBgzfOutput::~VcfBgzfOutput() = default;

void VcfBgzfOutput::write_header(std::string_view text) {
  Impl& s = *impl_;
  s.writer().append(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  s.out->drain();
  s.start_index();
}

void VcfBgzfOutput::write_lines(std::string_view contig, std::string_view text,
                                const int64_t* beg, const int64_t* end, size_t n) {
  Impl& s = *impl_;
  BgzfBlockWriter& out = s.writer();
  // Checked whole before anything is written: a bad call writes nothing.
  const char* const stop = text.data() + text.size();
  std::vector<const char*> line_ends(n);
  const char* p = text.data();
  for (size_t i = 0; i < n; ++i) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(stop - p)));
    if (!nl) {
      throw std::invalid_argument("VCF text for " + s.path + " holds fewer lines than intervals");
    }
    if (end[i] <= beg[i] || beg[i] < 0) {
      throw std::invalid_argument("VCF line interval [" + std::to_string(beg[i]) + ", " +
                                  std::to_string(end[i]) + ") is empty, in " + s.path);
    }
    line_ends[i] = nl + 1;
    p = nl + 1;
  }
  if (p != stop) {
    throw std::invalid_argument("VCF text for " + s.path + " holds more lines than intervals");
  }
  const bool indexed = !s.index_path.empty();
  if (indexed) s.start_index();
  const int tid = indexed && n > 0 ? s.tid(contig) : -1;
  // A block's worth of text at a time, each line's index entry in the block its end falls in
  // (a line ending exactly at a block's end belongs to that block, as with one append a line).
  constexpr size_t kBlock = BgzfBlockWriter::kBlockData;
  const char* const first = text.data();
  const size_t total = text.size();
  size_t pos = 0, line = 0;
  while (pos < total) {
    if (out.open_bytes == kBlock) out.seal();
    const size_t in_block = out.open_bytes;
    const size_t take = std::min(total - pos, kBlock - in_block);
    out.append(reinterpret_cast<const uint8_t*>(first + pos), take);
    const char* const chunk_end = first + pos + take;
    if (indexed) {
      auto& entries = out.current().entries;
      for (; line < n && line_ends[line] <= chunk_end; ++line) {
        const size_t end_in_block = in_block + static_cast<size_t>(line_ends[line] - (first + pos));
        entries.push_back(BgzfBlockWriter::IndexEntry{tid, beg[line], end[line],
                                                      static_cast<uint32_t>(end_in_block), true});
      }
    }
    pos += take;
  }
}

void VcfBgzfOutput::finish() {
  Impl& s = *impl_;
  s.writer();
  s.start_index();  // a file without lines still gets its (empty) index
  s.out->finish([&s](hts_idx_t* idx) { s.set_tabix_meta(idx); });
  s.out.reset();
  const int fd = s.fd;
  s.fd = -1;
  if (::close(fd) != 0) throw std::runtime_error("cannot close " + s.path + ": " + std::strerror(errno));
}

}  // namespace gms
