// Checksums of whole files (stream_checksum.hpp): a checkpoint's spills and parts.
#include "gmsaccel/stream_checksum.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "gmsaccel/errors.hpp"

namespace gms {

FileChecksum checksum_file(const std::string& path, bool sync,
                           const std::function<void()>& check_interrupt) {
  auto fail = [&](const char* what, int e) {
    return InputError(path + ": cannot " + what + " (" + std::strerror(e) + ")");
  };
  errno = 0;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw fail("open", errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (sync && ::fsync(fd) != 0) throw fail("sync to disk", errno);
  StreamChecksum sum;
  FileChecksum out;
  std::vector<char> buf(1u << 20);
  for (uint64_t n = 0;; ++n) {
    if (check_interrupt && n % 64 == 63) check_interrupt();  // (every 64 MiB)
    const ssize_t r = ::read(fd, buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw fail("read", errno);
    if (r == 0) break;
    sum.update(buf.data(), static_cast<size_t>(r));
    out.bytes += static_cast<uint64_t>(r);
  }
  out.value = sum.value();
  return out;
}

}  // namespace gms
