// Host-side pieces shared by extend_kernel.cu and haplotype_kernel.cu: the CUDA error check, the
// per-slot stream and events, the choice of DP-state layout and warp-interleaved sizing. Only what
// both files do identically lives here; their buffers, workspaces and chunk plans differ.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "gpu_extend.hpp"  // ScratchMode

namespace gms::cuda {

// Throws on a CUDA error, naming the call and "file.cu:line" (the file's base name).
// (CudaOutOfMemory, which callers that can work in smaller pieces catch: gpu_extend.hpp)

inline void cuda_check(cudaError_t err, const char* call, const char* file, int line) {
  if (err == cudaSuccess) return;
  const char* slash = std::strrchr(file, '/');
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // allocation failures are not sticky; leave no recorded error behind
    throw CudaOutOfMemory(std::string("CUDA error cudaErrorMemoryAllocation (out of memory) in ") +
                          call + " at " + (slash ? slash + 1 : file) + ":" + std::to_string(line));
  }
  throw std::runtime_error(std::string("CUDA error ") + cudaGetErrorName(err) + " (" +
                           cudaGetErrorString(err) + ") in " + call + " at " +
                           (slash ? slash + 1 : file) + ":" + std::to_string(line));
}
#define GMS_CUDA(call) ::gms::cuda::cuda_check((call), #call, __FILE__, __LINE__)

// Throws std::invalid_argument unless device_id names a visible CUDA device.
inline void check_device(int device_id) {
  const int n_dev = device_count();
  if (device_id < 0 || device_id >= n_dev) {
    throw std::invalid_argument("CUDA device " + std::to_string(device_id) +
                                " does not exist (" + std::to_string(n_dev) +
                                " device(s) found)");
  }
}

// Above this per-block shared memory the occupancy is too low to pay; rows move to global memory.
constexpr size_t kMaxSharedBytes = 96 * 1024;

// Shared-memory words per thread for the two rows of bands <= max_band; odd so that the 32
// threads of a warp, reading the same column, hit 32 different banks.
inline size_t smem_stride_words(int32_t max_band) {
  return (2 * (static_cast<size_t>(max_band) + 1)) | 1;
}

// A launch's DP-state layout (see ScratchMode). TilePairs: tiles with two jobs per thread in
// 16-bit lanes (extension only).
enum class Layout { Tiles, SharedRows, GlobalRows, TilePairs };

// Register-tiled layouts (strip edges in scratch, 64-bit traceback words).
inline bool is_tiled(Layout l) { return l == Layout::Tiles || l == Layout::TilePairs; }

constexpr size_t kWarp = 32;

inline const char* layout_name(Layout l) {
  switch (l) {
    case Layout::Tiles: return "tiles";
    case Layout::SharedRows: return "shared rows";
    case Layout::GlobalRows: return "global rows";
    case Layout::TilePairs: return "tile pairs";
  }
  return "?";
}

// Calls f(std::integral_constant<Layout, L>{}) for layout l: run-time layout to template argument
// (the emulation's launches).
template <class F>
void with_layout(Layout l, F&& f) {
  switch (l) {
    case Layout::Tiles: f(std::integral_constant<Layout, Layout::Tiles>{}); return;
    case Layout::SharedRows: f(std::integral_constant<Layout, Layout::SharedRows>{}); return;
    case Layout::GlobalRows: f(std::integral_constant<Layout, Layout::GlobalRows>{}); return;
    case Layout::TilePairs: f(std::integral_constant<Layout, Layout::TilePairs>{}); return;
  }
}

// Picks the layout and block size for a chunk (any type with max_band, layout and threads) whose
// largest band is c.max_band.
template <class Chunk>
void choose_launch(Chunk& c, ScratchMode mode) {
  c.threads = 128;
  if (mode == ScratchMode::Auto || mode == ScratchMode::Tiles || mode == ScratchMode::Tiles32) {
    c.layout = Layout::Tiles;
    return;
  }
  c.layout = Layout::GlobalRows;
  if (mode == ScratchMode::Global) return;
  const size_t per_thread = smem_stride_words(c.max_band) * sizeof(int32_t);
  for (int t : {128, 64, 32}) {
    if (static_cast<size_t>(t) * per_thread <= kMaxSharedBytes) {
      c.layout = Layout::SharedRows;
      c.threads = t;
      return;
    }
  }
  throw std::invalid_argument("band " + std::to_string(c.max_band) +
                              " is too wide for shared-memory DP rows (scratch='shared')");
}

// Sizes a warp-interleaved region (a value of lane l at base + i * lanes + l): each warp takes
// its lanes times its largest per-lane need. Jobs are added in launch order.
struct WarpRegions {
  uint64_t closed = 0;    // units of the completed warps
  uint64_t warp_max = 0;  // largest need in the open warp
  // Total units with one more job (need units) as lane `lane` of the open warp; commit() keeps it.
  uint64_t with(size_t lane, uint64_t need, size_t warp) const {
    const uint64_t c = lane == 0 ? closed + warp_max * warp : closed;
    const uint64_t mx = lane == 0 ? need : std::max(warp_max, need);
    return c + mx * (lane + 1);
  }
  void commit(size_t lane, uint64_t need, size_t warp) {
    if (lane == 0) closed += warp_max * warp;
    warp_max = lane == 0 ? need : std::max(warp_max, need);
  }
};

// Job order for a launch: band descending, then length descending, then index ascending, so that
// a warp's jobs have near-equal work and a chunk's first job has its widest band. Two stable
// counting-sort passes (length, then band) over precomputed keys, each histogram as wide as the
// batch's range of that key: linear time, and no fixed cost for small batches (a comparison sort
// of a million jobs costs more than their kernel); std::sort where a range is huge.
template <class Job>
std::vector<uint32_t> sorted_order(const Job* jobs, size_t n, int32_t Job::*len) {
  constexpr int32_t kMaxRange = 1 << 16;
  std::vector<uint32_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = static_cast<uint32_t>(i);
  if (n == 0) return order;
  int32_t len_lo = jobs[0].*len, len_hi = len_lo, band_lo = jobs[0].band, band_hi = band_lo;
  for (size_t i = 1; i < n; ++i) {
    len_lo = std::min(len_lo, jobs[i].*len);
    len_hi = std::max(len_hi, jobs[i].*len);
    band_lo = std::min(band_lo, jobs[i].band);
    band_hi = std::max(band_hi, jobs[i].band);
  }
  if (len_hi - len_lo >= kMaxRange || band_hi - band_lo >= kMaxRange) {
    std::sort(order.begin(), order.end(), [jobs, len](uint32_t a, uint32_t b) {
      if (jobs[a].band != jobs[b].band) return jobs[a].band > jobs[b].band;
      if (jobs[a].*len != jobs[b].*len) return jobs[a].*len > jobs[b].*len;
      return a < b;
    });
    return order;
  }
  // keys ascend as band and length descend
  std::vector<uint16_t> len_key(n), band_key(n);
  for (size_t i = 0; i < n; ++i) {
    len_key[i] = static_cast<uint16_t>(len_hi - jobs[i].*len);
    band_key[i] = static_cast<uint16_t>(band_hi - jobs[i].band);
  }
  std::vector<uint32_t> tmp(n);
  std::vector<size_t> start;
  auto pass = [&](const std::vector<uint16_t>& key, int32_t range) {  // stable
    start.assign(static_cast<size_t>(range) + 1, 0);
    for (uint32_t id : order) ++start[key[id] + 1u];
    for (size_t k = 1; k < start.size(); ++k) start[k] += start[k - 1];
    for (uint32_t id : order) tmp[start[key[id]]++] = id;
    order.swap(tmp);
  };
  pass(len_key, len_hi - len_lo + 1);
  pass(band_key, band_hi - band_lo + 1);
  return order;
}

// Per device (key -1: the host emulation), up to kMaxWorkspaces workspaces of buffers, streams and
// events, cached between calls (allocation and pinning cost more than a typical batch's
// transfers). A call leases one for its duration, so concurrent callers (the aligner's and the
// caller's worker threads) pack, copy and launch on their own streams at the same time; beyond
// kMaxWorkspaces they wait. W needs `bool busy` and `void release()` (frees everything).
constexpr size_t kMaxWorkspaces = 4;

template <class W>
class WorkspacePool {
 public:
  // Exclusive use of one of a device's workspaces for the lifetime of this object.
  class Lease {
   public:
    Lease(WorkspacePool& pool, int key) : pool_(pool) {
      std::unique_lock<std::mutex> lock(pool_.mu_);
      auto& list = pool_.pools_[key];
      for (;;) {
        for (auto& w : list) {
          if (!w->busy) {
            ws_ = w.get();
            break;
          }
        }
        if (!ws_ && list.size() < kMaxWorkspaces) {
          list.push_back(std::make_unique<W>());
          ws_ = list.back().get();
        }
        if (ws_) break;
        pool_.cv_.wait(lock);
      }
      ws_->busy = true;
    }
    ~Lease() {
      {
        std::lock_guard<std::mutex> lock(pool_.mu_);
        ws_->busy = false;
      }
      pool_.cv_.notify_one();
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    W& ws() { return *ws_; }

   private:
    WorkspacePool& pool_;
    W* ws_ = nullptr;
  };

  // Frees the idle workspaces of every device (those in use stay: their callers need them).
  void release_idle() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [dev, list] : pools_) {
      if (dev >= 0 && cudaSetDevice(dev) != cudaSuccess) {
        cudaGetLastError();
        continue;
      }
      list.erase(std::remove_if(list.begin(), list.end(),
                                [](std::unique_ptr<W>& w) {
                                  if (w->busy) return false;
                                  w->release();
                                  return true;
                                }),
                 list.end());
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, std::vector<std::unique_ptr<W>>> pools_;
};

enum class Mem { Device, Pinned };

// Grow-only buffer: device or pinned host memory, plain host memory under emulation. reserve()
// returns the allocation's error instead of throwing, so that out-of-memory can be retried.
template <typename T>
struct Buf {
  T* ptr = nullptr;
  size_t cap = 0;
  Mem mem = Mem::Device;
  bool host = false;

  cudaError_t reserve(size_t n, Mem m, bool emulate, uint64_t emu_limit) {
    if (n <= cap) return cudaSuccess;
    release();
    const size_t bytes = std::max<size_t>(n, 1) * sizeof(T);
    void* p = nullptr;
    if (emulate) {
      if (m == Mem::Device && emu_limit && bytes > emu_limit) return cudaErrorMemoryAllocation;
      p = std::malloc(bytes);
      if (!p) return cudaErrorMemoryAllocation;
    } else {
      const cudaError_t e = m == Mem::Device ? cudaMalloc(&p, bytes) : cudaMallocHost(&p, bytes);
      if (e != cudaSuccess) return e;
    }
    ptr = static_cast<T*>(p);
    cap = n;
    mem = m;
    host = emulate;
    return cudaSuccess;
  }
  void release() {
    if (ptr && host) std::free(ptr);
    else if (ptr && mem == Mem::Device) cudaFree(ptr);  // teardown: errors are not actionable
    else if (ptr) cudaFreeHost(ptr);
    ptr = nullptr;
    cap = 0;
  }
};

// A buffer slot's stream and its kernel-timing / completion events (none under emulation).
struct SlotStreams {
  cudaStream_t stream = nullptr;
  cudaEvent_t k_start = nullptr, k_stop = nullptr, done = nullptr;

  void create_streams() {
    // non-blocking: the legacy default stream must not serialise the slots and workspaces
    GMS_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    // The events a host thread waits on block it rather than spin: with one context on a
    // many-core node the default spin-wait takes a core from each waiting aligner thread.
    GMS_CUDA(cudaEventCreate(&k_start));
    GMS_CUDA(cudaEventCreateWithFlags(&k_stop, cudaEventBlockingSync));
    GMS_CUDA(cudaEventCreateWithFlags(&done, cudaEventDisableTiming | cudaEventBlockingSync));
  }
  void destroy_streams() {  // teardown: errors are not actionable here
    if (stream) cudaStreamDestroy(stream);
    if (k_start) cudaEventDestroy(k_start);
    if (k_stop) cudaEventDestroy(k_stop);
    if (done) cudaEventDestroy(done);
    stream = nullptr;
    k_start = k_stop = done = nullptr;
  }
};

}  // namespace gms::cuda
