// Host interface of the CUDA seed kernel (no CUDA types: bind_cuda.cpp compiles without nvcc).
#pragma once
#include <cstddef>
#include <cstdint>

#include "gmsaccel/seed_batch.hpp"

namespace gms::cuda {

struct CudaSeedOptions {
  // Same packing, table upload, passes and unpacking with the kernel's threads run on the host.
  bool emulate = false;
  // Emulation only: device allocations above this many bytes fail as out of memory, so that
  // tests reach the split-and-retry path (0 = no limit).
  uint64_t emulate_alloc_limit = 0;
};

struct CudaSeedStats {
  double upload_s = 0;          // copying the index's table to the device (first call only)
  double pack_s = 0;            // reads into the pinned buffer
  double unpack_s = 0;          // anchors out of it
  double kernel_seconds = 0;    // both passes, cudaEvent time
  uint64_t anchors = 0;
  size_t oom_splits = 0;        // times a batch was halved after running out of memory
};

// Anchors of every read, identical to collect_anchors on each (one thread per read: a counting
// pass, a host prefix sum, a writing pass). The table is copied to the device once per index and
// device and kept (at most two indexes per device). Batches whose buffers do not fit are halved
// and retried. false (nothing computed: seed on the CPU) when the table does not fit on the
// device even after dropping unused copies (remembered until release_seed_workspaces), or a
// single read's buffers do not. Throws std::invalid_argument for w above
// kGpuSeedMaxWindow or k outside [1, 28], std::runtime_error for a CUDA error.
bool seed_anchors_cuda(const MinimizerTable& table, int k, int w, const uint8_t* const* reads,
                       const uint32_t* lens, size_t n_reads, SeedBatchOutput& out, int device_id,
                       const CudaSeedOptions& opt = {}, CudaSeedStats* stats = nullptr);

// Frees the seed kernel's cached tables and idle workspaces on every device.
void release_seed_workspaces();

}  // namespace gms::cuda
