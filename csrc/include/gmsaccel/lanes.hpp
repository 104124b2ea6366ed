// Lane policies for the tiled extension sweep (extend_tiled.hpp): the same recurrence runs on
// one job per thread in 32-bit values (Lanes32) or on two jobs at once in the 16-bit halves of
// 32-bit words (Lanes16x2; low half: lane 0). Each policy gives the few operations the sweep
// uses; their meaning is lane-wise and identical in both: two's-complement adds, signed maxima,
// and max_ge's predicates a >= b.
//
// On sm_90 every Lanes16x2 operation is one instruction (VIADD.16x2, VIMNMX.S16x2,
// VIADDMNMX.S16x2; the maximum with both lanes' predicates is a single VIMNMX.S16x2 too);
// elsewhere the CUDA intrinsics emulate them, and host code (the kernels' emulation, tests) uses
// the plain definitions below, which say what every form computes.
#pragma once
#include <cstdint>

#include "gmsaccel/hd.hpp"

namespace gms {

struct Lanes32 {
  static constexpr int kLanes = 1;
  using V = int32_t;
  static constexpr int32_t kLowest = INT32_MIN;
  // Where the gap chains outside the band are floored: far below any in-band value (parameters
  // are at most 2^20), far above overflow.
  static constexpr int32_t kGapFloor = INT32_MIN / 2;

  GMS_HD static V splat(int32_t x) { return x; }
  GMS_HD static V pack(const int32_t (&x)[kLanes]) { return x[0]; }
  GMS_HD static int32_t lane(V v, int) { return v; }
  GMS_HD static int32_t to_word(V v) { return v; }
  GMS_HD static V from_word(int32_t w) { return w; }
  GMS_HD static V add(V a, V b) { return a + b; }
  GMS_HD static V max(V a, V b) { return a > b ? a : b; }
  GMS_HD static V max_ge(V a, V b, bool (&ge)[kLanes]) {
    ge[0] = a >= b;
    return ge[0] ? a : b;
  }
  GMS_HD static V add_max(V a, V b, V c) { return a + b > c ? a + b : c; }
  // x where the job's query base equals t, else y (t: a code, or -1 for nothing)
  GMS_HD static V select_equal(V q, V t, V x, V y) { return q == t ? x : y; }
  // a in the lanes set in `lanes`, else b
  GMS_HD static V select_lanes(const bool (&lanes)[kLanes], V a, V b) { return lanes[0] ? a : b; }
};

struct Lanes16x2 {
  static constexpr int kLanes = 2;
  using V = uint32_t;
  static constexpr int32_t kLowest = INT16_MIN;
  // Where the gap chains outside the band are floored: in-band E and F stay above -18432, and
  // -30000 minus a gap extension (at most 2048) cannot wrap.
  static constexpr int32_t kGapFloor = -30000;

  GMS_HD static V splat(int32_t x) { return pack({x, x}); }
  GMS_HD static V pack(const int32_t (&x)[kLanes]) {
    return (static_cast<uint32_t>(x[0]) & 0xffffu) | (static_cast<uint32_t>(x[1]) << 16);
  }
  GMS_HD static int32_t lane(V v, int l) {
    return static_cast<int16_t>(static_cast<uint16_t>(l == 0 ? v : v >> 16));
  }
  GMS_HD static int32_t to_word(V v) { return static_cast<int32_t>(v); }
  GMS_HD static V from_word(int32_t w) { return static_cast<uint32_t>(w); }
  GMS_HD static V add(V a, V b) {
#if defined(__CUDA_ARCH__)
    return __vadd2(a, b);
#else
    return pack({lane(a, 0) + lane(b, 0), lane(a, 1) + lane(b, 1)});
#endif
  }
  GMS_HD static V max(V a, V b) {
#if defined(__CUDA_ARCH__)
    return __vmaxs2(a, b);
#else
    return pack({lane(a, 0) > lane(b, 0) ? lane(a, 0) : lane(b, 0),
                 lane(a, 1) > lane(b, 1) ? lane(a, 1) : lane(b, 1)});
#endif
  }
  GMS_HD static V max_ge(V a, V b, bool (&ge)[kLanes]) {
#if defined(__CUDA_ARCH__)
    return __vibmax_s16x2(a, b, &ge[1], &ge[0]);
#else
    ge[0] = lane(a, 0) >= lane(b, 0);
    ge[1] = lane(a, 1) >= lane(b, 1);
    return pack({ge[0] ? lane(a, 0) : lane(b, 0), ge[1] ? lane(a, 1) : lane(b, 1)});
#endif
  }
  // max(a + b, c) per lane, the addition wrapping
  GMS_HD static V add_max(V a, V b, V c) {
#if defined(__CUDA_ARCH__)
    return __viaddmax_s16x2(a, b, c);
#else
    const V s = add(a, b);
    return max(s, c);
#endif
  }
  GMS_HD static V select_equal(V q, V t, V x, V y) {
    // q ^ t is 0 exactly where equal; min(., 1) as unsigned is 0 or 1 per lane, and times
    // 0xffff it fills the lane without carrying into the next
#if defined(__CUDA_ARCH__)
    const uint32_t differ = __vminu2(q ^ t, 0x00010001u) * 0xffffu;
#else
    const uint32_t d = q ^ t;
    const uint32_t differ = ((d & 0xffffu) ? 0xffffu : 0u) | ((d >> 16) ? 0xffff0000u : 0u);
#endif
    return (x & ~differ) | (y & differ);
  }
  GMS_HD static V select_lanes(const bool (&lanes)[kLanes], V a, V b) {
    const uint32_t m = (lanes[0] ? 0xffffu : 0u) | (lanes[1] ? 0xffff0000u : 0u);
    return (a & m) | (b & ~m);
  }
};

}  // namespace gms
