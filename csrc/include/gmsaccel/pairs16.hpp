// Two signed 16-bit lanes in one 32-bit word (low half: lane 0, high half: lane 1), for kernels
// that run two jobs per thread. On sm_90 each operation here is one instruction (VIADD.16x2,
// VIMNMX.S16x2, VIADDMNMX.S16x2; the maximum with both lanes' "a >= b" predicates is a single
// VIMNMX.S16x2 too); elsewhere the CUDA intrinsics emulate them, and host code (the kernels'
// emulation, tests) uses the plain definitions below, which say what every form computes:
// lane-wise two's-complement wrapping adds, signed maxima, predicates a >= b.
#pragma once
#include <cstdint>

#include "gmsaccel/hd.hpp"

namespace gms::pairs16 {

GMS_HD uint32_t pack(int32_t lane0, int32_t lane1) {
  return (static_cast<uint32_t>(lane0) & 0xffffu) | (static_cast<uint32_t>(lane1) << 16);
}
GMS_HD int32_t lane0(uint32_t v) { return static_cast<int16_t>(static_cast<uint16_t>(v)); }
GMS_HD int32_t lane1(uint32_t v) { return static_cast<int16_t>(static_cast<uint16_t>(v >> 16)); }

// a + b per lane (wrapping)
GMS_HD uint32_t add(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __vadd2(a, b);
#else
  return pack(lane0(a) + lane0(b), lane1(a) + lane1(b));
#endif
}

// max(a, b) per lane
GMS_HD uint32_t max(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __vmaxs2(a, b);
#else
  const int32_t x = lane0(a) > lane0(b) ? lane0(a) : lane0(b);
  const int32_t y = lane1(a) > lane1(b) ? lane1(a) : lane1(b);
  return pack(x, y);
#endif
}

// max(a, b) per lane, and whether a >= b in each lane
GMS_HD uint32_t max_ge(uint32_t a, uint32_t b, bool& ge0, bool& ge1) {
#if defined(__CUDA_ARCH__)
  return __vibmax_s16x2(a, b, &ge1, &ge0);
#else
  ge0 = lane0(a) >= lane0(b);
  ge1 = lane1(a) >= lane1(b);
  return pack(ge0 ? lane0(a) : lane0(b), ge1 ? lane1(a) : lane1(b));
#endif
}

// max(a + b, c) per lane (the addition wrapping)
GMS_HD uint32_t add_max(uint32_t a, uint32_t b, uint32_t c) {
#if defined(__CUDA_ARCH__)
  return __viaddmax_s16x2(a, b, c);
#else
  const int32_t x = static_cast<int16_t>(static_cast<uint16_t>(lane0(a) + lane0(b)));
  const int32_t y = static_cast<int16_t>(static_cast<uint16_t>(lane1(a) + lane1(b)));
  return pack(x > lane0(c) ? x : lane0(c), y > lane1(c) ? y : lane1(c));
#endif
}

// 0xffff in each lane where a and b differ, 0 where they are equal (codes: any 16-bit values)
GMS_HD uint32_t differ_mask(uint32_t a, uint32_t b) {
  // x = a ^ b is 0 exactly where equal; min(x, 1) as unsigned is 0 or 1 per lane, and times
  // 0xffff it fills the lane without carrying into the next
#if defined(__CUDA_ARCH__)
  return __vminu2(a ^ b, 0x00010001u) * 0xffffu;
#else
  const uint32_t x = a ^ b;
  return ((x & 0xffffu) ? 0xffffu : 0u) | ((x >> 16) ? 0xffff0000u : 0u);
#endif
}

}  // namespace gms::pairs16
