// AVX2 instantiation of the inter-sequence haplotype-cost kernel: 16 int16 lanes per 256-bit
// vector. Compiled with -mavx2 on x86 (see CMakeLists.txt); only called when the CPU has AVX2.
#include "haplotype_simd_impl.hpp"

namespace gms::detail {

#if defined(GMSACCEL_X86)
namespace {
typedef int16_t HapV16x16 __attribute__((vector_size(32)));
}  // namespace

void haplotype_costs_avx2(const HaplotypeJob* jobs, size_t n, const HaplotypeScoring& sc,
                          int32_t* costs) {
  haplotype_costs_grouped(jobs, n, sc, costs, 16, &haplotype_group_kernel<HapV16x16>);
}
#else
// No AVX2 on this architecture: the dispatcher never gets here, but keep the symbol defined.
void haplotype_costs_avx2(const HaplotypeJob* jobs, size_t n, const HaplotypeScoring& sc,
                          int32_t* costs) {
  haplotype_costs_scalar(jobs, n, sc, costs);
}
#endif

}  // namespace gms::detail
