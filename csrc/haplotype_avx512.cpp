// AVX-512 (F + BW) instantiation of the inter-sequence haplotype-cost kernel: 32 int16 lanes per
// 512-bit vector. Compiled with -mavx512f -mavx512bw on x86; only called when the CPU has both.
#include "haplotype_simd_impl.hpp"

namespace gms::detail {

#if defined(GMSACCEL_X86)
namespace {
typedef int16_t HapV16x32 __attribute__((vector_size(64)));
}  // namespace

void haplotype_costs_avx512(const HaplotypeJob* jobs, size_t n, const HaplotypeScoring& sc,
                            int32_t* costs) {
  haplotype_costs_grouped(jobs, n, sc, costs, 32, &haplotype_group_kernel<HapV16x32>);
}
#else
// No AVX-512 on this architecture: the dispatcher never gets here, but keep the symbol defined.
void haplotype_costs_avx512(const HaplotypeJob* jobs, size_t n, const HaplotypeScoring& sc,
                            int32_t* costs) {
  haplotype_costs_scalar(jobs, n, sc, costs);
}
#endif

}  // namespace gms::detail
