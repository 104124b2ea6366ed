// Compression of the sort's spill files: blocks of whole records, each a raw deflate stream
// (ISA-L, level 1) or, where deflate would not shrink it, the bytes themselves. Builds without
// ISA-L write raw spills only.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace gms {

// Whether spills can be compressed in this build.
bool spill_compression_available();

// Deflates n bytes into out (replaced); out holds the n bytes themselves where deflate would
// not make them smaller, so that a block is stored as-is exactly when its sizes are equal.
void deflate_spill_block(const uint8_t* raw, size_t n, std::vector<uint8_t>& out);

// Inflates a block of `stored` bytes into raw_n bytes at raw (a copy when the sizes are equal).
// False where the block is damaged (not a deflate stream of exactly raw_n bytes).
bool inflate_spill_block(const uint8_t* stored, size_t n, uint8_t* raw, size_t raw_n);

}  // namespace gms
