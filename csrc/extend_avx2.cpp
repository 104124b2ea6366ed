// AVX2 instantiation of the inter-sequence extension kernel: 16 int16 lanes per 256-bit vector.
// Compiled with -mavx2 on x86 (see CMakeLists.txt); only called when the CPU has AVX2.
#include "extend_simd_impl.hpp"

namespace gms {

#if defined(GMSACCEL_X86)
namespace {
typedef int16_t V16x16 __attribute__((vector_size(32)));
typedef int8_t V8x16 __attribute__((vector_size(16)));
}  // namespace

void extend_batch_avx2(const ExtendJob* jobs, size_t n_jobs, const Scoring& sc,
                       ExtendBatchOutput& out) {
  detail::extend_batch_grouped(jobs, n_jobs, sc, out, 16, &extend_group_kernel<V16x16, V8x16>);
}
#else
// No AVX2 on this architecture: the dispatcher never gets here, but keep the symbol defined.
void extend_batch_avx2(const ExtendJob* jobs, size_t n_jobs, const Scoring& sc,
                       ExtendBatchOutput& out) {
  extend_batch_scalar(jobs, n_jobs, sc, out);
}
#endif

}  // namespace gms
