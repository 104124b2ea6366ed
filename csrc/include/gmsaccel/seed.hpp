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

// The index's minimizer hash table, for the minimizers it indexes (hashes seen more than max_occ
// times are left out). A hash's top bits (hash >> bucket_shift) pick its bucket and keys hold only
// the low bucket_shift bits (at most 32); keys ascend within a bucket, and buckets[b] is the first
// key of bucket b, for b in [0, n_buckets]. Key i's positions are positions[offs[i] .. offs[i + 1]),
// ascending global k-mer starts, and bit j of rev_bits (bit j % 64 of word j / 64) is the
// Minimizer::rev seen in the reference at positions[j].
struct MinimizerTable {
  const uint32_t* buckets = nullptr;
  const uint32_t* keys = nullptr;
  const uint32_t* offs = nullptr;
  const uint32_t* positions = nullptr;
  const uint64_t* rev_bits = nullptr;  // rev_bit_words(n_positions) words
  uint64_t n_buckets = 0;
  uint64_t n_keys = 0;
  uint64_t n_positions = 0;
  int bucket_shift = 0;     // 2k - log2(n_buckets), <= 32
  uint64_t hash_limit = 0;  // hashes are < 2^(2k)
  uint64_t id = 0;          // unique to one Index object in this process (device copies key on it)

  GMS_HD uint64_t bucket_of(uint64_t hash) const { return hash >> bucket_shift; }
  // The bits of hash that keys store (those below its bucket's).
  GMS_HD uint32_t key_bits(uint64_t hash) const {
    return static_cast<uint32_t>(hash - (bucket_of(hash) << bucket_shift));
  }

  // Index into keys of hash, or n_keys if it is not indexed.
  GMS_HD uint64_t find(uint64_t hash) const {
    if (n_keys == 0 || hash >= hash_limit) return n_keys;
    const uint64_t b = bucket_of(hash);
    const uint32_t low = key_bits(hash);
    uint64_t i = buckets[b];
    const uint64_t e = buckets[b + 1];
    while (i < e && keys[i] < low) ++i;
    return i < e && keys[i] == low ? i : n_keys;
  }

  // Key i's positions are positions[first .. first + count) (count 0 for n_keys).
  GMS_HD uint32_t positions_of(uint64_t i, uint64_t& first) const {
    if (i == n_keys) return 0;
    first = offs[i];
    return offs[i + 1] - offs[i];
  }

  GMS_HD uint32_t rev_at(uint64_t j) const {
    return static_cast<uint32_t>(rev_bits[j >> 6] >> (j & 63)) & 1;
  }
  // u64 words of strand bits for n positions.
  GMS_HD static constexpr uint64_t rev_bit_words(uint64_t n) { return (n + 63) / 64; }

  // Whether buckets and offsets ascend throughout, as every lookup's bounds need (host code:
  // checked on load and before a device copy).
  bool tables_ascend() const {
    uint32_t worse = 0;  // stays 0 while both ascend (branch-free, so that it vectorises)
    for (uint64_t b = 1; b <= n_buckets; ++b) worse |= buckets[b] < buckets[b - 1];
    for (uint64_t i = 1; i <= n_keys; ++i) worse |= offs[i] < offs[i - 1];
    return worse == 0;
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
    // Each lookup is four dependent loads (bucket, key, offsets, then positions with their
    // strand bits); walking the batch stage by stage with prefetches keeps a batch's misses in
    // flight together.
    for (int b = 0; b < n; ++b) {
      if (batch[b].hash < table.hash_limit && table.n_keys)
        GMS_PREFETCH(table.buckets + table.bucket_of(batch[b].hash));
    }
    for (int b = 0; b < n; ++b) {
      if (batch[b].hash < table.hash_limit && table.n_keys) {
        // A bucket's keys may cross into the next cache line: fetch its last key's line too.
        const uint64_t bucket = table.bucket_of(batch[b].hash);
        const uint32_t first = table.buckets[bucket], end = table.buckets[bucket + 1];
        GMS_PREFETCH(table.keys + first);
        GMS_PREFETCH(table.keys + (end > first ? end - 1 : first));
      }
    }
    for (int b = 0; b < n; ++b) {
      key[b] = table.find(batch[b].hash);
      if (key[b] != table.n_keys) GMS_PREFETCH(table.offs + key[b]);
    }
    for (int b = 0; b < n; ++b) {
      if (key[b] == table.n_keys) continue;
      const uint32_t first = table.offs[key[b]];
      GMS_PREFETCH(table.positions + first);
      GMS_PREFETCH(table.rev_bits + (first >> 6));
    }
    for (int b = 0; b < n; ++b) {
      const Minimizer& mz = batch[b];
      uint64_t first = 0;
      const uint32_t count = table.positions_of(key[b], first);
      for (uint64_t j = first; j < first + count; ++j) {
        const int64_t gpos = table.positions[j];
        // Same canonical orientation on both sides means the read maps forward.
        const uint32_t rev = table.rev_at(j) ^ mz.rev;
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
