// (w,k)-minimizers of a base-code sequence: the seeds shared by index building and read mapping.
#pragma once
#include <cstdint>
#include <vector>

namespace gms {

struct Minimizer {
  uint64_t hash;  // invertible hash of the canonical k-mer (2k bits)
  uint32_t pos;   // 0-based start of the k-mer in the sequence
  uint32_t rev;   // 1 when the canonical k-mer is the reverse complement of the sequence's
};

// Appends the (w,k)-minimizers of seq[0..len) to out, in increasing pos order. k <= 28, w >= 1.
// K-mers containing an N (code >= 4) are skipped. A minimizer is the k-mer of smallest hash in
// each window of w consecutive k-mers; ties take the leftmost; one k-mer is reported once.
void compute_minimizers(const uint8_t* seq, uint32_t len, int k, int w,
                        std::vector<Minimizer>& out);

}  // namespace gms
