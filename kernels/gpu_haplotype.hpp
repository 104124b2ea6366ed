// Host interface of the CUDA read-versus-haplotype kernel (the calling likelihoods). Free of CUDA
// types, like gpu_extend.hpp, so that bind_cuda.cpp compiles with the host compiler alone.
#pragma once
#include <cstddef>
#include <cstdint>

#include "gmsaccel/haplotype.hpp"
#include "gpu_extend.hpp"

namespace gms::cuda {

struct CudaHaplotypeOptions {
  ScratchMode scratch = ScratchMode::Auto;  // where each thread keeps its DP state
  size_t chunk_jobs = 0;                    // jobs per launch at most; 0 = automatic
  uint64_t memory_budget = 0;  // device bytes per buffer slot; 0 = from cudaMemGetInfo
  bool emulate = false;        // kernel threads executed on the host (no GPU needed)
  // Emulation only: a device allocation above this many bytes fails as cudaMalloc would with
  // cudaErrorMemoryAllocation, so that tests can exercise the out-of-memory retry. 0 = off.
  uint64_t emulate_alloc_limit = 0;
};

struct CudaHaplotypeStats {
  HostPhases host;
  double kernel_seconds = 0;  // sum of the kernels' cudaEvent times
  size_t chunks = 0;
  size_t oom_retries = 0;       // times an allocation failed and the chunk was halved
  size_t chunk_jobs = 0;        // jobs per launch at most, after any halving
  int threads_per_block = 0;    // of the last launch
  const char* layout = "";      // of the last launch: "tiles", "shared rows" or "global rows"
};

// costs[i] = haplotype_cost_scalar(jobs[i]) for every job, computed on the GPU (bit-identical to
// gms::haplotype_costs at every SIMD level). Throws std::invalid_argument for a bad device index
// or job and std::runtime_error (naming the failing CUDA call) for CUDA errors other than a
// recoverable out-of-memory, which halves the chunk and retries.
void haplotype_costs_cuda(const HaplotypeJob* jobs, size_t n, const HaplotypeScoring& sc,
                          int32_t* costs, int device_id, const CudaHaplotypeOptions& opt,
                          CudaHaplotypeStats* stats = nullptr);

inline void haplotype_costs_cuda(const HaplotypeJob* jobs, size_t n, const HaplotypeScoring& sc,
                                 int32_t* costs, int device_id, bool emulate) {
  CudaHaplotypeOptions opt;
  opt.emulate = emulate;
  haplotype_costs_cuda(jobs, n, sc, costs, device_id, opt);
}

// Frees the haplotype kernel's cached device and pinned buffers of every device.
void release_haplotype_workspaces();

}  // namespace gms::cuda
