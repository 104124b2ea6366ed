// (w,k)-minimizers of a base-code sequence: the seeds shared by index building, read mapping on
// the CPU and the GPU seed kernel. scan_minimizers is the one definition (GMS_HD).
#pragma once
#include <cstdint>
#include <vector>

#include "gmsaccel/hd.hpp"

namespace gms {

struct Minimizer {
  uint64_t hash;  // invertible hash of the canonical k-mer (2k bits)
  uint32_t pos;   // 0-based start of the k-mer in the sequence
  uint32_t rev;   // 1 when the canonical k-mer is the reverse complement of the sequence's
};

// Invertible mixing restricted to 2k bits: xor with a constant, multiplications by odd constants
// (bijective mod 2^bits) and right xor-shifts (bijective on any width). The constant xor keeps
// poly-A (encoding 0) from always being the smallest hash; the last multiply makes the top bits,
// which the index buckets on, depend on every input bit.
GMS_HD uint64_t kmer_hash(uint64_t x, int bits, uint64_t mask) {
  const int s1 = (bits + 1) / 2;
  const int s2 = (bits + 2) / 3;
  x = ((x ^ 0x9E3779B97F4A7C15ULL) * 0xBF58476D1CE4E5B9ULL) & mask;
  x ^= x >> s1;
  x = (x * 0x94D049BB133111EBULL) & mask;
  x ^= x >> s2;
  x = (x * 0xD6E8FEB86659FD93ULL) & mask;
  return x;
}

// Smallest power of two >= the k-mers a window scan of len bases must remember.
GMS_HD uint32_t minimizer_ring_size(uint32_t len, int k, int w) {
  const uint32_t n_kmers = len >= static_cast<uint32_t>(k) ? len - static_cast<uint32_t>(k) + 1 : 1;
  const uint32_t win = static_cast<uint32_t>(w) < n_kmers ? static_cast<uint32_t>(w) : n_kmers;
  uint32_t size = 1;
  while (size < win) size <<= 1;
  return size;
}

// Calls emit(const Minimizer&) for the (w,k)-minimizers of seq[0..len), in increasing pos order,
// in one pass. 1 <= k <= 28, w >= 1 (unchecked here). K-mers containing an N (code >= 4), and
// palindromes, are no candidates. A minimizer is the k-mer of smallest hash in each window of w
// consecutive k-mers (the whole sequence when shorter); ties take the leftmost; a k-mer winning
// several windows is reported once. The current minimum is kept until it leaves the window, then
// the window is rescanned. ring_hash / ring_strand: scratch of ring_mask + 1 entries,
// minimizer_ring_size(len, k, w) or more, holding the last window's k-mers.
template <class Emit>
GMS_HD void scan_minimizers(const uint8_t* seq, uint32_t len, int k, int w, uint64_t* ring_hash,
                            uint8_t* ring_strand, uint32_t ring_mask, Emit&& emit) {
  if (len < static_cast<uint32_t>(k)) return;
  constexpr uint64_t kNone = ~0ULL;  // no candidate
  const int bits = 2 * k;
  const uint64_t mask = (uint64_t{1} << bits) - 1;  // k <= 28: bits < 64
  const int top_shift = bits - 2;
  const uint32_t n_kmers = len - static_cast<uint32_t>(k) + 1;
  const uint32_t win = static_cast<uint32_t>(w) < n_kmers ? static_cast<uint32_t>(w) : n_kmers;
  uint64_t fwd = 0, rc = 0;
  int valid = 0;  // consecutive non-N bases ending at the current one
  uint32_t cur = 0, last_pos = 0;
  bool have_last = false;
  for (uint32_t i = 0; i < len; ++i) {
    const uint8_t c = seq[i];
    const bool base = c < 4;
    const uint64_t cc = base ? c : 0;
    fwd = ((fwd << 2) | cc) & mask;
    rc = (rc >> 2) | ((3 - cc) << top_shift);
    valid = base ? valid + 1 : 0;
    if (i + 1 < static_cast<uint32_t>(k)) continue;
    const uint32_t p = i + 1 - static_cast<uint32_t>(k);
    const bool is_rev = rc < fwd;
    ring_hash[p & ring_mask] =
        (valid >= k && fwd != rc) ? kmer_hash(is_rev ? rc : fwd, bits, mask) : kNone;
    ring_strand[p & ring_mask] = is_rev ? 1 : 0;
    if (p + 1 < win) continue;
    const uint32_t lo = p + 1 - win;  // the window is [lo, p]
    if (p + 1 == win || cur < lo) {   // the first window, or the minimum left: rescan
      cur = lo;
      uint64_t best = ring_hash[lo & ring_mask];
      for (uint32_t j = lo + 1; j <= p; ++j) {  // selects, not branches: the order is random
        const uint64_t h = ring_hash[j & ring_mask];
        const bool lower = h < best;
        cur = lower ? j : cur;
        best = lower ? h : best;
      }
    } else if (ring_hash[p & ring_mask] < ring_hash[cur & ring_mask]) {
      cur = p;
    }
    const uint64_t h = ring_hash[cur & ring_mask];
    if (h == kNone || (have_last && cur == last_pos)) continue;
    emit(Minimizer{h, cur, ring_strand[cur & ring_mask]});
    have_last = true;
    last_pos = cur;
  }
}

// This thread's ring scratch for scan_minimizers over len bases (CPU callers; grows, never
// shrinks).
struct MinimizerRing {
  uint64_t* hash;
  uint8_t* strand;
  uint32_t mask;
};
MinimizerRing thread_minimizer_ring(uint32_t len, int k, int w);

// Appends the (w,k)-minimizers of seq[0..len) to out (scan_minimizers). Throws
// std::invalid_argument unless 1 <= k <= 28 and w >= 1.
void compute_minimizers(const uint8_t* seq, uint32_t len, int k, int w,
                        std::vector<Minimizer>& out);

}  // namespace gms
