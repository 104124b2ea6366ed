// Base codes and the substitution/gap scores shared by every alignment kernel.
#pragma once
#include <cstdint>

#include "gmsaccel/hd.hpp"

namespace gms {

// Bases are coded A=0 C=1 G=2 T=3; N (and any IUPAC ambiguity) = 4; kBaseOff marks target
// positions beyond a contig's end, which no alignment may use profitably.
constexpr uint8_t kBaseN = 4;
constexpr uint8_t kBaseOff = 5;
constexpr int32_t kOffContigPenalty = 100;

struct Scoring {
  int32_t match = 1;       // added for identical bases
  int32_t mismatch = 4;    // subtracted for different bases
  int32_t gap_open = 6;    // subtracted once per gap ...
  int32_t gap_extend = 1;  // ... plus this per gap base (a 1-base gap costs open + extend)
  int32_t clip = 5;        // subtracted for soft clipping either read end
  int32_t n_penalty = 1;   // subtracted when either base is N
};

GMS_HD int32_t substitution_score(const Scoring& sc, uint8_t q, uint8_t t) {
  if (t == kBaseOff) return -kOffContigPenalty;
  if (q == kBaseN || t == kBaseN) return -sc.n_penalty;
  return q == t ? sc.match : -sc.mismatch;
}

// ASCII to base code (lowercase soft-masked bases are ordinary bases; IUPAC codes become N).
GMS_HD uint8_t base_code(char c) {
  switch (c) {
    case 'A': case 'a': return 0;
    case 'C': case 'c': return 1;
    case 'G': case 'g': return 2;
    case 'T': case 't': case 'U': case 'u': return 3;
    default: return kBaseN;
  }
}

// Base code to its letter; codes past N (kBaseOff) read as N.
inline char base_letter(uint8_t code) { return "ACGTN"[code < kBaseN ? code : kBaseN]; }

}  // namespace gms
