// AVX-512 (F + BW) instantiation of the inter-sequence extension kernel: 32 int16 lanes per
// 512-bit vector. Compiled with -mavx512f -mavx512bw on x86; only called when the CPU has both.
#include "extend_simd_impl.hpp"

namespace gms {

#if defined(GMSACCEL_X86)
namespace {
typedef int16_t V16x32 __attribute__((vector_size(64)));
typedef int8_t V8x32 __attribute__((vector_size(32)));
}  // namespace

void extend_batch_avx512(const ExtendJob* jobs, size_t n_jobs, const Scoring& sc,
                         ExtendBatchOutput& out) {
  detail::extend_batch_grouped(jobs, n_jobs, sc, out, 32, &extend_group_kernel<V16x32, V8x32>);
}
#else
// No AVX-512 on this architecture: the dispatcher never gets here, but keep the symbol defined.
void extend_batch_avx512(const ExtendJob* jobs, size_t n_jobs, const Scoring& sc,
                         ExtendBatchOutput& out) {
  extend_batch_scalar(jobs, n_jobs, sc, out);
}
#endif

}  // namespace gms
