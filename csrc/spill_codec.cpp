// Spill blocks through ISA-L's stateless deflate and inflate (see spill_codec.hpp).
#include "gmsaccel/spill_codec.hpp"

#include <cstring>
#include <stdexcept>

#if GMSACCEL_HAVE_ISAL
#include <isa-l.h>
#endif

namespace gms {

#if GMSACCEL_HAVE_ISAL

bool spill_compression_available() { return true; }

void deflate_spill_block(const uint8_t* raw, size_t n, std::vector<uint8_t>& out) {
  thread_local std::vector<uint8_t> level_buf(ISAL_DEF_LVL1_DEFAULT);
  out.resize(n);  // room for as much as the input: more would not be worth it
  isal_zstream z{};  // (zeroed: the init leaves fields such as the window size as they were)
  isal_deflate_stateless_init(&z);
  z.level = 1;
  z.level_buf = level_buf.data();
  z.level_buf_size = static_cast<uint32_t>(level_buf.size());
  z.gzip_flag = IGZIP_DEFLATE;
  z.end_of_stream = 1;
  z.flush = NO_FLUSH;
  z.next_in = const_cast<uint8_t*>(raw);
  z.avail_in = static_cast<uint32_t>(n);
  z.next_out = out.data();
  z.avail_out = static_cast<uint32_t>(n);
  if (n > 0 && isal_deflate_stateless(&z) == COMP_OK && z.total_out < n) {
    out.resize(z.total_out);
  } else {
    out.assign(raw, raw + n);
  }
}

bool inflate_spill_block(const uint8_t* stored, size_t n, uint8_t* raw, size_t raw_n) {
  if (n == raw_n) {
    std::memcpy(raw, stored, n);
    return true;
  }
  if (n > raw_n) return false;
  inflate_state st{};
  isal_inflate_init(&st);
  st.crc_flag = ISAL_DEFLATE;
  st.next_in = const_cast<uint8_t*>(stored);
  st.avail_in = static_cast<uint32_t>(n);
  st.next_out = raw;
  st.avail_out = static_cast<uint32_t>(raw_n);
  return isal_inflate_stateless(&st) == ISAL_DECOMP_OK && st.total_out == raw_n &&
         st.avail_in == 0;
}

#else

bool spill_compression_available() { return false; }

void deflate_spill_block(const uint8_t* raw, size_t n, std::vector<uint8_t>& out) {
  out.assign(raw, raw + n);
}

bool inflate_spill_block(const uint8_t* stored, size_t n, uint8_t* raw, size_t raw_n) {
  if (n != raw_n) return false;
  std::memcpy(raw, stored, n);
  return true;
}

#endif

}  // namespace gms
