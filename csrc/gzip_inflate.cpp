// Multi-member gzip inflation with ISA-L's igzip (compiled only where CMake found ISA-L).
#include "gmsaccel/gzip_inflate.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "gmsaccel/errors.hpp"

#if GMSACCEL_HAVE_ISAL
#include <isa-l.h>
#endif

namespace gms {

#if GMSACCEL_HAVE_ISAL

#define GMS_STR2(x) #x
#define GMS_STR(x) GMS_STR2(x)

const char* fast_inflate_library() {
  return "isa-l " GMS_STR(ISAL_MAJOR_VERSION) "." GMS_STR(ISAL_MINOR_VERSION) "." GMS_STR(
      ISAL_PATCH_VERSION);
}

namespace {

std::string describe(int rc, uint64_t members) {
  switch (rc) {
    case ISAL_INCORRECT_CHECKSUM: return "checksum mismatch";
    case ISAL_INVALID_WRAPPER:
      return members ? "data after the last gzip member is not gzip" : "bad gzip header";
    case ISAL_UNSUPPORTED_METHOD: return "not deflate-compressed";
    case ISAL_NEED_DICT: return "stream needs a preset dictionary";
    default: return "inflate failed (corrupt deflate data)";
  }
}

// Length of the gzip member header at p[0, n), or 0 while it is not all there. igzip 2.30 checks
// a header CRC (FHCRC) wrongly when the header arrives over several calls, so each header is
// gathered first and handed over in one piece.
size_t header_length(const uint8_t* p, size_t n) {
  if (n < 10) return 0;
  const uint8_t flags = p[3];
  size_t at = 10;
  if (flags & 4) {  // FEXTRA
    if (n < at + 2) return 0;
    at += 2 + (size_t{p[at]} | size_t{p[at + 1]} << 8);
  }
  for (const uint8_t field : {uint8_t{8}, uint8_t{16}}) {  // FNAME, FCOMMENT: zero-terminated
    if (!(flags & field)) continue;
    const void* z = at < n ? std::memchr(p + at, 0, n - at) : nullptr;
    if (!z) return 0;
    at = static_cast<size_t>(static_cast<const uint8_t*>(z) - p) + 1;
  }
  if (flags & 2) at += 2;  // FHCRC
  return at <= n ? at : 0;
}

constexpr size_t kMaxGatheredHeader = size_t{1} << 20;  // past this igzip streams it as it can

}  // namespace

std::ptrdiff_t inflate_gzip_member(const uint8_t* in, size_t n, uint8_t* out, size_t cap,
                                   std::string& problem) {
  thread_local inflate_state st;
  isal_inflate_init(&st);
  st.crc_flag = ISAL_GZIP;  // header parsed, CRC-32 and length checked
  st.next_in = const_cast<uint8_t*>(in);
  st.avail_in = static_cast<uint32_t>(std::min<size_t>(n, UINT32_MAX));
  st.next_out = out;
  st.avail_out = static_cast<uint32_t>(std::min<size_t>(cap, UINT32_MAX));
  const int rc = isal_inflate(&st);
  if (rc != ISAL_DECOMP_OK) {
    problem = describe(rc, 0);
    return -1;
  }
  if (st.block_state != ISAL_BLOCK_FINISH) {
    problem = st.avail_out == 0 ? "member inflates to more than its block" : "stream cut short";
    return -1;
  }
  if (st.avail_in != 0) {
    problem = "data after the gzip member";
    return -1;
  }
  return static_cast<std::ptrdiff_t>(cap - st.avail_out);
}

struct GzipFileInflater::Impl {
  std::string path;
  int fd = -1;
  size_t chunk = 0;
  std::vector<uint8_t> in;  // input not yet consumed starts at st.next_in
  bool file_end = false;
  bool member_done = false;  // the last member ended; more input must start another
  bool member_new = false;   // a member starts at next_in: gather its header
  uint64_t members = 0;      // members finished
  inflate_state st{};
  std::string problem;

  ~Impl() {
    if (fd >= 0) ::close(fd);
  }

  void start_member() {
    uint8_t* next = st.next_in;
    const uint32_t avail = st.avail_in;
    isal_inflate_init(&st);
    st.crc_flag = ISAL_GZIP;  // parse the header, check the CRC-32 in the trailer
    st.next_in = next;
    st.avail_in = avail;
    member_done = false;
    member_new = true;
  }

  bool header_pending() const {
    const uint8_t* p = st.next_in;
    const size_t n = st.avail_in;
    const bool gzip_so_far = (n < 1 || p[0] == 0x1f) && (n < 2 || p[1] == 0x8b);
    return gzip_so_far && n < kMaxGatheredHeader && header_length(p, n) == 0;
  }

  // Appends a chunk of the file after the input not yet consumed.
  bool refill() {
    const size_t pending = st.avail_in;
    const size_t at = static_cast<size_t>(st.next_in - in.data());  // resize() may move `in`
    if (in.size() < pending + chunk) in.resize(pending + chunk);
    if (pending) std::memmove(in.data(), in.data() + at, pending);
    st.next_in = in.data();
    ssize_t n;
    do {
      n = ::read(fd, in.data() + pending, chunk);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      problem = std::string("read error: ") + std::strerror(errno);
      return false;
    }
    file_end = n == 0;
    st.avail_in = static_cast<uint32_t>(pending + static_cast<size_t>(n));
    return true;
  }

  std::ptrdiff_t read(char* out, size_t cap) {
    // igzip makes no progress into an empty buffer: 0 would spin (and 0 means the end).
    if (cap == 0) throw std::invalid_argument("GzipFileInflater::read: empty output buffer");
    cap = std::min<size_t>(cap, UINT32_MAX);
    for (;;) {
      if (st.avail_in == 0 && !file_end && !refill()) return -1;
      if (member_done) {
        if (st.avail_in == 0) {
          if (file_end) return 0;
          continue;
        }
        start_member();
      }
      if (member_new) {
        while (!file_end && header_pending())
          if (!refill()) return -1;
        member_new = false;
      }
      st.next_out = reinterpret_cast<uint8_t*>(out);
      st.avail_out = static_cast<uint32_t>(cap);
      const int rc = isal_inflate(&st);
      if (rc != ISAL_DECOMP_OK) {
        problem = describe(rc, members);
        return -1;
      }
      const size_t produced = cap - st.avail_out;
      // At a member's end igzip has checked its CRC-32 and length and left next_in on the byte
      // after it.
      if (st.block_state == ISAL_BLOCK_FINISH) {
        member_done = true;
        ++members;
      }
      if (produced > 0) return static_cast<std::ptrdiff_t>(produced);
      if (!member_done && st.avail_in == 0 && file_end) {
        problem = "stream cut short";
        return -1;
      }
    }
  }
};

GzipFileInflater::GzipFileInflater(const std::string& path, size_t input_chunk)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.path = path;
  s.chunk = std::clamp<size_t>(input_chunk, 1, size_t{1} << 30);
  s.in.resize(s.chunk);
  s.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (s.fd < 0) throw InputError(path + ": cannot open (" + std::strerror(errno) + ")");
  s.st.next_in = s.in.data();
  s.st.avail_in = 0;
  s.start_member();
}

std::ptrdiff_t GzipFileInflater::read(char* out, size_t cap) { return impl_->read(out, cap); }
const std::string& GzipFileInflater::problem() const { return impl_->problem; }

#else  // no ISA-L in this build

const char* fast_inflate_library() { return ""; }

std::ptrdiff_t inflate_gzip_member(const uint8_t*, size_t, uint8_t*, size_t,
                                   std::string& problem) {
  problem = "this build of gmsaccel has no ISA-L inflater";
  return -1;
}

struct GzipFileInflater::Impl {
  std::string problem;
};

GzipFileInflater::GzipFileInflater(const std::string&, size_t) {
  throw std::logic_error("this build of gmsaccel has no ISA-L inflater");
}
std::ptrdiff_t GzipFileInflater::read(char*, size_t) { return -1; }
const std::string& GzipFileInflater::problem() const { return impl_->problem; }

#endif

GzipFileInflater::~GzipFileInflater() = default;

}  // namespace gms
