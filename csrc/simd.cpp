// Run-time SIMD level detection and naming.
#include "gmsaccel/simd.hpp"

#include <cctype>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace gms {

SimdLevel max_supported_simd_level() {
#if defined(GMSACCEL_X86) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();  // harmless when already done; needed if called from a static initialiser
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) {
    return SimdLevel::AVX512;
  }
  if (__builtin_cpu_supports("avx2")) return SimdLevel::AVX2;
#endif
  return SimdLevel::Scalar;
}

SimdLevel detect_simd_level() {
  const SimdLevel hw = max_supported_simd_level();
  // Read the variable on every call (it is cheap) so that tests and users can change it at run time.
  const char* cap = std::getenv("GMSACCEL_SIMD");
  if (cap == nullptr || *cap == '\0') return hw;
  const SimdLevel want = parse_simd_level(cap);
  return static_cast<int>(want) < static_cast<int>(hw) ? want : hw;
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::Scalar: return "scalar";
    case SimdLevel::AVX2: return "avx2";
    case SimdLevel::AVX512: return "avx512";
  }
  return "unknown";
}

SimdLevel parse_simd_level(const std::string& name) {
  std::string s;
  for (char c : name) {
    if (!std::isspace(static_cast<unsigned char>(c))) {
      s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  if (s == "scalar") return SimdLevel::Scalar;
  if (s == "avx2") return SimdLevel::AVX2;
  if (s == "avx512") return SimdLevel::AVX512;
  throw std::invalid_argument("unknown SIMD level '" + name +
                              "' (expected scalar, avx2 or avx512)");
}

}  // namespace gms
