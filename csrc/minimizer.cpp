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
  thread_local std::vector<uint64_t> ring_hash;
  thread_local std::vector<uint8_t> ring_strand;
  const uint32_t ring = minimizer_ring_size(len, k, w);
  if (ring_hash.size() < ring) {
    ring_hash.resize(ring);
    ring_strand.resize(ring);
  }
  scan_minimizers(seq, len, k, w, ring_hash.data(), ring_strand.data(), ring - 1,
                  [&out](const Minimizer& m) { out.push_back(m); });
}

}  // namespace gms
