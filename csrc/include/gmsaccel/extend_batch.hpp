// Batched extension: many jobs at once, the unit of work for inter-sequence SIMD and the GPU.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "gmsaccel/extend.hpp"
#include "gmsaccel/simd.hpp"

namespace gms {

struct ExtendBatchOutput {
  std::vector<ExtendResult> results;   // one per job, in job order
  std::vector<uint32_t> cigar;         // all CIGARs back to back (BAM op encoding)
  std::vector<uint32_t> cigar_offset;  // job i's CIGAR is cigar[cigar_offset[i] .. [i+1])
};

// Aligns every job; results are identical (scores, coordinates, CIGARs) for every SIMD level,
// batch composition and order, and equal to extend_scalar + extend_traceback on each job.
void extend_batch(const ExtendJob* jobs, size_t n_jobs, const Scoring& sc, ExtendBatchOutput& out,
                  SimdLevel level);

// Per-level entry points (defined in extend_scalar.cpp, extend_avx2.cpp, extend_avx512.cpp).
void extend_batch_scalar(const ExtendJob* jobs, size_t n_jobs, const Scoring& sc,
                         ExtendBatchOutput& out);
void extend_batch_avx2(const ExtendJob* jobs, size_t n_jobs, const Scoring& sc,
                       ExtendBatchOutput& out);
void extend_batch_avx512(const ExtendJob* jobs, size_t n_jobs, const Scoring& sc,
                         ExtendBatchOutput& out);

// A device implementation of extend_batch (same contract), registered at run time by the optional
// gmsaccel._cuda module so that _core never links CUDA. device: GPU index; emulate: run the
// device code path with its threads executed on the host (for machines without a GPU). Returns
// false, computing nothing, when even one job does not fit in the device's memory.
using ExtendBackendFn = bool (*)(const ExtendJob* jobs, size_t n_jobs, const Scoring& sc,
                                 ExtendBatchOutput& out, int device, bool emulate);
void set_extend_backend(ExtendBackendFn fn);
ExtendBackendFn extend_backend();

}  // namespace gms
