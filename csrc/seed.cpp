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
  const uint32_t n = static_cast<uint32_t>(len);
  const MinimizerRing ring = thread_minimizer_ring(n, k, w);
  for_each_anchor(index.minimizer_table(), k, w, fwd, n, ring.hash, ring.strand, ring.mask,
                  [&out](const Anchor& a) { out.push_back(a); });
}

namespace {
std::atomic<SeedBackendFn> g_seed_backend{nullptr};
}  // namespace

void set_seed_backend(SeedBackendFn fn) { g_seed_backend.store(fn); }
SeedBackendFn seed_backend() { return g_seed_backend.load(); }

}  // namespace gms
