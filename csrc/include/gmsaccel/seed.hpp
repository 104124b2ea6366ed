// Seeding's shared definitions (GMS_HD), run by the CPU aligner and the GPU seed kernel alike:
// the index's minimizer table as plain arrays, its lookup, and the anchors of one read.
#pragma once
#include <cstdint>

#include "gmsaccel/hd.hpp"
#include "gmsaccel/minimizer.hpp"

namespace gms {

// A seed hit: the read (in orientation rev) and the reference share a k-mer on diagonal
// diag = global reference position - position in the oriented read.
struct Anchor {
  uint32_t rev;
  int32_t qpos;
  int64_t diag;
};

// The index's minimizer hash table. keys ascend; buckets[b] is the first key whose top bits (the
// hash >> bucket_shift) are >= b, for b in [0, n_buckets]; key i's positions are
// positions[offs[i] .. offs[i + 1]), empty when it was filtered as too frequent. Each position is
// (global_pos << 1) | rev, rev being the Minimizer::rev seen in the reference.
struct MinimizerTable {
  const uint32_t* buckets = nullptr;
  const uint64_t* keys = nullptr;
  const uint64_t* offs = nullptr;
  const uint64_t* positions = nullptr;
  uint64_t n_buckets = 0;
  uint64_t n_keys = 0;
  uint64_t n_positions = 0;
  int bucket_shift = 0;
  uint64_t hash_limit = 0;  // hashes are < 2^(2k)
  uint64_t id = 0;          // unique to one Index object in this process (device copies key on it)

  // Index into keys of hash, or n_keys if absent.
  GMS_HD uint64_t find(uint64_t hash) const {
    if (n_keys == 0 || hash >= hash_limit) return n_keys;
    const uint64_t b = hash >> bucket_shift;
    for (uint64_t i = buckets[b], e = buckets[b + 1]; i < e; ++i) {
      if (keys[i] >= hash) return keys[i] == hash ? i : n_keys;
    }
    return n_keys;
  }

  // Positions of key i (find()'s answer; count 0 for n_keys or a filtered key).
  GMS_HD const uint64_t* positions_of(uint64_t i, uint32_t& count) const {
    count = i == n_keys ? 0 : static_cast<uint32_t>(offs[i + 1] - offs[i]);
    return count ? positions + offs[i] : nullptr;
  }

  // Positions of an indexed hash (count 0 when absent or filtered).
  GMS_HD const uint64_t* lookup(uint64_t hash, uint32_t& count) const {
    return positions_of(find(hash), count);
  }
};

// Minimizers gathered before their lookups: independent table loads can then be in flight
// together instead of each waiting behind the window scan.
constexpr int kAnchorLookupBatch = 32;

// Calls sink(const Anchor&) for every anchor of the read fwd[0..len): its minimizers in order,
// each one's indexed positions in table order. Ring scratch as for scan_minimizers.
template <class Sink>
GMS_HD void for_each_anchor(const MinimizerTable& table, int k, int w, const uint8_t* fwd,
                            uint32_t len, uint64_t* ring_hash, uint8_t* ring_strand,
                            uint32_t ring_mask, Sink&& sink) {
  Minimizer batch[kAnchorLookupBatch];
  int n = 0;
  uint64_t key[kAnchorLookupBatch];
  auto flush = [&]() {
    // Each lookup is four dependent loads (bucket, key, offsets, positions); walking the batch
    // stage by stage with prefetches keeps a batch's misses in flight together.
    for (int b = 0; b < n; ++b) {
      if (batch[b].hash < table.hash_limit && table.n_keys)
        GMS_PREFETCH(table.buckets + (batch[b].hash >> table.bucket_shift));
    }
    for (int b = 0; b < n; ++b) {
      if (batch[b].hash < table.hash_limit && table.n_keys)
        GMS_PREFETCH(table.keys + table.buckets[batch[b].hash >> table.bucket_shift]);
    }
    for (int b = 0; b < n; ++b) {
      key[b] = table.find(batch[b].hash);
      if (key[b] != table.n_keys) GMS_PREFETCH(table.offs + key[b]);
    }
    for (int b = 0; b < n; ++b) {
      if (key[b] != table.n_keys) GMS_PREFETCH(table.positions + table.offs[key[b]]);
    }
    for (int b = 0; b < n; ++b) {
      const Minimizer& mz = batch[b];
      uint32_t count = 0;
      const uint64_t* values = table.positions_of(key[b], count);
      for (uint32_t i = 0; i < count; ++i) {
        const uint64_t v = values[i];
        const int64_t gpos = static_cast<int64_t>(v >> 1);
        // Same canonical orientation on both sides means the read maps forward.
        const uint32_t rev = static_cast<uint32_t>(v & 1) ^ mz.rev;
        const int32_t qpos = rev ? static_cast<int32_t>(len - mz.pos) - k
                                 : static_cast<int32_t>(mz.pos);
        sink(Anchor{rev, qpos, gpos - qpos});
      }
    }
    n = 0;
  };
  scan_minimizers(fwd, len, k, w, ring_hash, ring_strand, ring_mask, [&](const Minimizer& mz) {
    batch[n++] = mz;
    if (n == kAnchorLookupBatch) flush();
  });
  flush();
}

}  // namespace gms
