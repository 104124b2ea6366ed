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
  constexpr uint64_t kNone = ~0ULL;  // no candidate: an N inside, or a palindrome

  // Pass 1: every k-mer's canonical hash (kNone when it is no candidate). Separating it from the
  // window scan keeps both loops free of data-dependent branches on the hot path.
  thread_local std::vector<uint64_t> hash;
  thread_local std::vector<uint8_t> strand;
  hash.resize(n_kmers);
  strand.resize(n_kmers);
  uint64_t fwd = 0, rc = 0;
  int valid = 0;  // consecutive non-N bases ending at the current one
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
    hash[p] = (valid >= k && fwd != rc) ? kmer_hash(is_rev ? rc : fwd, bits, mask) : kNone;
    strand[p] = is_rev ? 1 : 0;
  }

  // Pass 2: window minima. The current minimum is kept until it leaves the window, then the
  // window is rescanned; ties keep the leftmost k-mer, and a k-mer winning several windows is
  // reported once.
  const uint32_t win = std::min<uint32_t>(static_cast<uint32_t>(w), n_kmers);
  bool have_last = false;
  uint32_t last_pos = 0;
  auto emit = [&](uint32_t p) {
    if (hash[p] == kNone || (have_last && p == last_pos)) return;
    out.push_back(Minimizer{hash[p], p, strand[p]});
    have_last = true;
    last_pos = p;
  };
  auto rescan = [&](uint32_t lo, uint32_t hi) {  // leftmost minimum of hash[lo, hi)
    uint32_t best = lo;
    for (uint32_t j = lo + 1; j < hi; ++j)
      if (hash[j] < hash[best]) best = j;
    return best;
  };
  uint32_t cur = rescan(0, win);
  emit(cur);
  for (uint32_t end = win; end < n_kmers; ++end) {  // window [end - win + 1, end]
    const uint32_t lo = end - win + 1;
    if (cur < lo) cur = rescan(lo, end + 1);
    else if (hash[end] < hash[cur]) cur = end;
    emit(cur);
  }
}

}  // namespace gms
