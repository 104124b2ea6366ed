// Host interface of the CUDA extension kernels. Deliberately free of CUDA types so that the
// pybind11 bindings (bind_cuda.cpp) compile with the host compiler alone.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "gmsaccel/extend_batch.hpp"

namespace gms::cuda {

// Out of device (or pinned host) memory: callers that can work in smaller pieces catch this; the
// application's backends (bind_cuda.cpp) hand the work to the CPU when not even one job fits.
struct CudaOutOfMemory : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct DeviceInfo {
  int index = 0;
  std::string name;
  size_t total_memory = 0;  // bytes
  int major = 0, minor = 0;  // compute capability
  int multiprocessors = 0;
};

// Number of usable CUDA devices; 0 (never an exception) without a GPU or a driver.
int device_count();
// Why no device is usable ("" when one is): the CUDA runtime's error, such as a driver older
// than this build's toolkit (cudaErrorInsufficientDriver), which device_count() reports as 0.
std::string device_problem();
std::vector<DeviceInfo> devices();

// Where each thread keeps its DP state: register tiles with a strip edge in global memory
// (extend_tiled.hpp; Auto, Tiles: two jobs per thread in 16-bit lanes where they fit,
// extend_tiled_pair, one in 32 bits otherwise, extend_tiled; Tiles32: always one in 32 bits), or
// the scalar definition's two rows in shared or global memory. The haplotype kernel has no pair form: its
// Tiles and Tiles32 are the same.
enum class ScratchMode : int { Auto = 0, Shared = 1, Global = 2, Tiles = 3, Tiles32 = 4 };

struct CudaExtendOptions {
  ScratchMode scratch = ScratchMode::Auto;
  size_t chunk_jobs = 0;                    // jobs per launch at most; 0 = automatic
  uint64_t memory_budget = 0;  // device bytes per buffer slot; 0 = from cudaMemGetInfo
  // Runs the same planning, packing and unpacking with the kernel's threads executed on the host
  // (no GPU needed): lets the CPU-only CI test everything but the device itself.
  bool emulate = false;
  // Emulation only: device allocations above this many bytes fail as out of memory, so that
  // tests reach the halve-and-retry path (0 = no limit).
  uint64_t emulate_alloc_limit = 0;
};

// Host seconds of one call, by phase (the rest of a call's wall time is waiting for the GPU).
struct HostPhases {
  double order_s = 0;   // sorting the jobs and planning the chunks
  double pack_s = 0;    // writing the jobs into the pinned buffers
  double unpack_s = 0;  // reading results back into job order (after each chunk completes)
};

struct CudaExtendStats {
  HostPhases host;
  double kernel_seconds = 0;  // sum of the extension kernels' cudaEvent times
  size_t chunks = 0;
  int threads_per_block = 0;  // of the last launch
  const char* layout = "";  // of the last launch: "tile pairs", "tiles", "shared rows", "global rows"
  size_t oom_retries = 0;       // times the chunks were halved after running out of memory
};

// Same contract as gms::extend_batch: results and CIGARs in job order, bit-identical to
// extend_scalar + extend_traceback on each job. Throws std::invalid_argument for a bad device
// index and std::runtime_error (naming the failing CUDA call) for any CUDA error.
void extend_batch_cuda(const ExtendJob* jobs, size_t n_jobs, const Scoring& sc,
                       ExtendBatchOutput& out, int device_id, const CudaExtendOptions& opt = {},
                       CudaExtendStats* stats = nullptr);

// Frees the cached device and pinned buffers of every device.
void release_workspaces();

}  // namespace gms::cuda
