// SIMD levels and run-time dispatch: one build runs on any x86-64 and uses the widest unit present.
#pragma once
#include <string>

namespace gms {

enum class SimdLevel : int { Scalar = 0, AVX2 = 1, AVX512 = 2 };

// Widest level this CPU supports, capped by the environment variable GMSACCEL_SIMD
// (scalar|avx2|avx512) when set, so tests and users can force a narrower path.
SimdLevel detect_simd_level();
SimdLevel max_supported_simd_level();
const char* simd_level_name(SimdLevel level);
SimdLevel parse_simd_level(const std::string& name);  // throws std::invalid_argument

}  // namespace gms
