// A 64-bit checksum of a byte stream that does not depend on how the stream is cut into
// pieces: four lanes of 64-bit words, each mixed by a multiply-rotate-multiply round, folded
// with the length at the end. Not cryptographic; it catches damaged or substituted files (a
// checkpoint's spills) at several GB/s, so it can run over every byte a spill writes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>

namespace gms {

class StreamChecksum {
 public:
  void update(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    total_ += n;
    if (held_ > 0) {
      const size_t take = n < kBlock - held_ ? n : kBlock - held_;
      std::memcpy(pending_ + held_, p, take);
      held_ += take;
      p += take;
      n -= take;
      if (held_ < kBlock) return;
      block(pending_);
      held_ = 0;
    }
    for (; n >= kBlock; p += kBlock, n -= kBlock) block(p);
    std::memcpy(pending_, p, n);
    held_ = n;
  }

  uint64_t value() const {
    uint64_t h = total_ * kPrime1;
    for (const uint64_t lane : lanes_) h = round(h, lane);
    for (size_t i = 0; i < held_; ++i) h = round(h, pending_[i]);
    h ^= h >> 33;
    h *= kPrime2;
    h ^= h >> 29;
    return h;
  }

 private:
  static constexpr size_t kBlock = 32;
  static constexpr uint64_t kPrime1 = 0x9E3779B185EBCA87ULL;
  static constexpr uint64_t kPrime2 = 0xC2B2AE3D27D4EB4FULL;
  static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
  static uint64_t round(uint64_t acc, uint64_t word) {
    return rotl(acc + word * kPrime2, 31) * kPrime1;
  }
  void block(const uint8_t* p) {
    for (int i = 0; i < 4; ++i) {
      uint64_t w;
      std::memcpy(&w, p + 8 * i, 8);
      lanes_[i] = round(lanes_[i], w);
    }
  }

  uint64_t lanes_[4] = {1, 2, 3, 4};
  uint8_t pending_[kBlock] = {};
  size_t held_ = 0;
  uint64_t total_ = 0;
};

// The StreamChecksum of a file's bytes (and how many there are), read a MiB at a time;
// check_interrupt (where given) is called between reads, sync fsyncs the file first.
// InputError where it cannot be opened or read.
struct FileChecksum {
  uint64_t value = 0, bytes = 0;
};
FileChecksum checksum_file(const std::string& path, bool sync = false,
                           const std::function<void()>& check_interrupt = nullptr);

}  // namespace gms
