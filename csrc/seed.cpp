// Seeding on the CPU: for_each_anchor (seed.hpp) over the index's minimizer table; and the
// registry of the GPU seeding backend.
#include <atomic>
#include <vector>

#include "align_internal.hpp"
#include "gmsaccel/seed.hpp"
#include "gmsaccel/seed_batch.hpp"

namespace gms {

void collect_anchors(const Index& index, const uint8_t* fwd, int32_t len,
                     std::vector<Anchor>& out) {
  out.clear();
  const int k = index.params().k, w = index.params().w;
  if (len < k) return;
  thread_local std::vector<uint64_t> ring_hash;
  thread_local std::vector<uint8_t> ring_strand;
  const uint32_t n = static_cast<uint32_t>(len);
  const uint32_t ring = minimizer_ring_size(n, k, w);
  if (ring_hash.size() < ring) {
    ring_hash.resize(ring);
    ring_strand.resize(ring);
  }
  for_each_anchor(index.minimizer_table(), k, w, fwd, n, ring_hash.data(), ring_strand.data(),
                  ring - 1, [&out](const Anchor& a) { out.push_back(a); });
}

namespace {
std::atomic<SeedBackendFn> g_seed_backend{nullptr};
}  // namespace

void set_seed_backend(SeedBackendFn fn) { g_seed_backend.store(fn); }
SeedBackendFn seed_backend() { return g_seed_backend.load(); }

}  // namespace gms
