// (w,k)-minimizers on the CPU: scan_minimizers (minimizer.hpp) with thread-local ring scratch.
#include "gmsaccel/minimizer.hpp"

#include <stdexcept>
#include <string>

namespace gms {

void compute_minimizers(const uint8_t* seq, uint32_t len, int k, int w,
                        std::vector<Minimizer>& out) {
  if (k < 1 || k > 28 || w < 1) {
    throw std::invalid_argument("compute_minimizers: need 1 <= k <= 28 and w >= 1 (got k=" +
                                std::to_string(k) + ", w=" + std::to_string(w) + ")");
  }
  if (len < static_cast<uint32_t>(k)) return;
  const MinimizerRing ring = thread_minimizer_ring(len, k, w);
  scan_minimizers(seq, len, k, w, ring.hash, ring.strand, ring.mask,
                  [&out](const Minimizer& m) { out.push_back(m); });
}

MinimizerRing thread_minimizer_ring(uint32_t len, int k, int w) {
  thread_local std::vector<uint64_t> hash;
  thread_local std::vector<uint8_t> strand;
  const uint32_t size = minimizer_ring_size(len, k, w);
  if (hash.size() < size) {
    hash.resize(size);
    strand.resize(size);
  }
  return MinimizerRing{hash.data(), strand.data(), size - 1};
}

}  // namespace gms
