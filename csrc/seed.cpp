// Seeding: the read's minimizers looked up in the index become anchors on both strands.
#include "align_internal.hpp"
#include "gmsaccel/minimizer.hpp"

namespace gms {

void collect_anchors(const Index& index, const uint8_t* fwd, int32_t len,
                     std::vector<Minimizer>& scratch, std::vector<Anchor>& out) {
  out.clear();
  scratch.clear();
  const int k = index.params().k;
  if (len < k) return;
  compute_minimizers(fwd, static_cast<uint32_t>(len), k, index.params().w, scratch);
  for (const Minimizer& mz : scratch) {
    auto [values, count] = index.lookup(mz.hash);
    for (uint32_t i = 0; i < count; ++i) {
      const uint64_t v = values[i];
      const int64_t gpos = static_cast<int64_t>(v >> 1);
      // Same canonical orientation on both sides means the read maps forward.
      const uint32_t rev = static_cast<uint32_t>(v & 1) ^ mz.rev;
      const int32_t qpos = rev ? len - static_cast<int32_t>(mz.pos) - k
                               : static_cast<int32_t>(mz.pos);
      out.push_back(Anchor{rev, qpos, gpos - qpos});
    }
  }
}

}  // namespace gms
