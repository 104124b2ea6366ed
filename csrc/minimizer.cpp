// (w,k)-minimizers with a sliding-window minimum kept in a monotone ring buffer: O(len) time,
// O(w) memory, and identical output to the naive "smallest hash per window, leftmost on ties".
#include "gmsaccel/minimizer.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace gms {

namespace {

// Invertible mixing restricted to 2k bits: xor with a constant, multiplications by odd constants
// (bijective mod 2^bits) and right xor-shifts (bijective on any width). The constant xor keeps
// poly-A (encoding 0) from always being the smallest hash; the last multiply makes the top bits,
// which the index buckets on, depend on every input bit.
inline uint64_t kmer_hash(uint64_t x, int bits, uint64_t mask) {
  const int s1 = (bits + 1) / 2;
  const int s2 = (bits + 2) / 3;
  x = ((x ^ 0x9E3779B97F4A7C15ULL) * 0xBF58476D1CE4E5B9ULL) & mask;
  x ^= x >> s1;
  x = (x * 0x94D049BB133111EBULL) & mask;
  x ^= x >> s2;
  x = (x * 0xD6E8FEB86659FD93ULL) & mask;
  return x;
}

struct Candidate {
  uint64_t hash;
  uint32_t pos;
  uint32_t rev;
};

}  // namespace

void compute_minimizers(const uint8_t* seq, uint32_t len, int k, int w,
                        std::vector<Minimizer>& out) {
  if (k < 1 || k > 28 || w < 1) {
    throw std::invalid_argument("compute_minimizers: need 1 <= k <= 28 and w >= 1 (got k=" +
                                std::to_string(k) + ", w=" + std::to_string(w) + ")");
  }
  if (len < static_cast<uint32_t>(k)) return;
  const int bits = 2 * k;
  const uint64_t mask = (bits == 64) ? ~0ULL : ((1ULL << bits) - 1);
  const int top_shift = bits - 2;
  const uint32_t n_kmers = len - static_cast<uint32_t>(k) + 1;

  // Entries never span more than w+1 positions (nor exceed the k-mer count), so a power-of-two
  // ring of that size suffices.
  const uint64_t need = std::min<uint64_t>(static_cast<uint64_t>(w) + 1, uint64_t{n_kmers} + 1);
  uint32_t cap = 1;
  while (cap < need) cap <<= 1;
  const uint32_t cmask = cap - 1;
  std::vector<Candidate> ring(cap);
  uint32_t head = 0, tail = 0;  // live entries are ring[head..tail) modulo cap

  uint64_t fwd = 0, rc = 0;
  int valid = 0;  // consecutive non-N bases ending at the current one
  bool have_last = false;
  uint32_t last_pos = 0;

  auto emit = [&](const Candidate& c) {
    if (have_last && c.pos == last_pos) return;  // the same k-mer can win several windows
    out.push_back(Minimizer{c.hash, c.pos, c.rev});
    have_last = true;
    last_pos = c.pos;
  };

  for (uint32_t i = 0; i < len; ++i) {
    const uint8_t c = seq[i];
    if (c < 4) {
      fwd = ((fwd << 2) | c) & mask;
      rc = (rc >> 2) | (static_cast<uint64_t>(3 - c) << top_shift);
      ++valid;
    } else {
      valid = 0;
    }
    if (i + 1 < static_cast<uint32_t>(k)) continue;
    const uint32_t p = i + 1 - static_cast<uint32_t>(k);  // start of the k-mer ending at i

    if (valid >= k && fwd != rc) {  // palindromes have no strand, so they are skipped
      const bool is_rev = rc < fwd;
      const Candidate cand{kmer_hash(is_rev ? rc : fwd, bits, mask), p, is_rev ? 1u : 0u};
      // Strictly greater: equal hashes stay, so the front holds the leftmost minimum.
      while (tail != head && ring[(tail - 1) & cmask].hash > cand.hash) --tail;
      ring[tail & cmask] = cand;
      ++tail;
    }
    // Window of k-mers [p - w + 1, p]: drop candidates that slid out.
    while (tail != head && ring[head & cmask].pos + static_cast<uint32_t>(w) <= p) ++head;
    if (p + 1 >= static_cast<uint32_t>(w) && tail != head) emit(ring[head & cmask]);
  }
  // A sequence with fewer than w k-mers is treated as one (short) window.
  if (n_kmers < static_cast<uint32_t>(w) && tail != head) emit(ring[head & cmask]);
}

}  // namespace gms
