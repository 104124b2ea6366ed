// Seeding on the GPU: one read per thread runs the shared for_each_anchor (seed.hpp), so the
// GPU's anchors are the CPU's by construction. Two passes over a batch: the first counts each
// read's anchors, the host turns the counts into offsets (a prefix sum over one number per read),
// the second writes the anchors in place. The index's minimizer table is copied to each device
// once and kept while that index is in use; reads travel as one byte per base.
#include <cuda_runtime.h>

#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "gmsaccel/seed.hpp"
#include "gmsaccel/stage_clock.hpp"
#include "gpu_common.hpp"
#include "gpu_seed.hpp"

namespace gms::cuda {
namespace {

constexpr int kThreads = 128;
constexpr uint32_t kRing = kGpuSeedMaxWindow;  // a power of two: minimizer_ring_size <= it

// One read: the body of kernel thread i, also run on the host by the emulation. Counting pass:
// slot[i] = the read's anchors; writing pass: slot[i] = its first anchor's offset in out.
template <bool kWrite>
GMS_HD void seed_one(unsigned i, const MinimizerTable& table, int k, int w,
                     const uint8_t* __restrict__ seq, const uint64_t* __restrict__ read_off,
                     uint64_t* __restrict__ slot, Anchor* __restrict__ out) {
  uint64_t ring_hash[kRing];
  uint8_t ring_strand[kRing];
  const uint64_t b = read_off[i];
  const uint32_t len = static_cast<uint32_t>(read_off[i + 1] - b);
  const uint32_t mask = minimizer_ring_size(len, k, w) - 1;
  if constexpr (kWrite) {
    uint64_t at = slot[i];
    for_each_anchor(table, k, w, seq + b, len, ring_hash, ring_strand, mask,
                    [&](const Anchor& a) { out[at++] = a; });
  } else {
    uint64_t n = 0;
    for_each_anchor(table, k, w, seq + b, len, ring_hash, ring_strand, mask,
                    [&](const Anchor&) { ++n; });
    slot[i] = n;
  }
}

template <bool kWrite>
__global__ void seed_kernel(MinimizerTable table, int k, int w, const uint8_t* __restrict__ seq,
                            const uint64_t* __restrict__ read_off, int n,
                            uint64_t* __restrict__ slot, Anchor* __restrict__ out) {
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= static_cast<unsigned>(n)) return;
  seed_one<kWrite>(i, table, k, w, seq, read_off, slot, out);
}

// ---- the index's table on a device ------------------------------------------------------------

// A copy of one index's minimizer table (device memory, or host memory under emulation).
struct DeviceTable {
  MinimizerTable view;  // pointers into the copy
  int device = -1;      // -1: emulation
  Buf<uint32_t> buckets, keys, offs, positions;
  Buf<uint64_t> rev_bits;
  ~DeviceTable() {  // on the table's device, whichever is current
    int prev = -1;
    if (device >= 0 && cudaGetDevice(&prev) == cudaSuccess) cudaSetDevice(device);
    buckets.release(); keys.release(); offs.release(); positions.release(); rev_bits.release();
    if (prev >= 0) cudaSetDevice(prev);
    cudaGetLastError();
  }
};

std::mutex g_tables_mu;
// Most recently used first. Never destroyed: at process exit the statically linked CUDA runtime
// may already be unloading when a static's destructor would free device memory with it (the
// process's exit frees that memory anyway).
std::list<std::shared_ptr<DeviceTable>>& g_tables = *new std::list<std::shared_ptr<DeviceTable>>;
std::set<std::pair<int, uint64_t>> g_no_fit;        // (device, table id) that did not fit
constexpr size_t kTablesPerDevice = 2;

template <typename T>
const T* upload(Buf<T>& buf, const T* src, uint64_t count, bool emu, const CudaSeedOptions& opt) {
  GMS_CUDA(buf.reserve(count, Mem::Device, emu, opt.emulate_alloc_limit));
  if (count == 0) return buf.ptr;
  if (emu) std::memcpy(buf.ptr, src, count * sizeof(T));
  else GMS_CUDA(cudaMemcpy(buf.ptr, src, count * sizeof(T), cudaMemcpyHostToDevice));
  return buf.ptr;
}

std::shared_ptr<DeviceTable> copy_table(const MinimizerTable& host, int key,
                                        const CudaSeedOptions& opt) {
  auto t = std::make_shared<DeviceTable>();
  t->device = key;
  t->view = host;
  const bool emu = key < 0;
  t->view.buckets = upload(t->buckets, host.buckets, host.n_buckets + 1, emu, opt);
  t->view.keys = upload(t->keys, host.keys, host.n_keys, emu, opt);
  t->view.offs = upload(t->offs, host.offs, host.n_keys + 1, emu, opt);
  t->view.positions = upload(t->positions, host.positions, host.n_positions, emu, opt);
  t->view.rev_bits = upload(t->rev_bits, host.rev_bits,
                            MinimizerTable::rev_bit_words(host.n_positions), emu, opt);
  return t;
}

// The device's copy of the table, made on first use (the caller has set the device); nullptr
// when it does not fit even after dropping this device's unused copies (remembered).
std::shared_ptr<DeviceTable> device_table(const MinimizerTable& host, int key,
                                          const CudaSeedOptions& opt, CudaSeedStats* stats) {
  std::lock_guard<std::mutex> lock(g_tables_mu);
  for (auto it = g_tables.begin(); it != g_tables.end(); ++it) {
    if ((*it)->device == key && (*it)->view.id == host.id) {
      g_tables.splice(g_tables.begin(), g_tables, it);
      return g_tables.front();
    }
  }
  if (g_no_fit.count({key, host.id})) return nullptr;
  StageClock clock;
  std::shared_ptr<DeviceTable> t;
  try {
    t = copy_table(host, key, opt);
  } catch (const CudaOutOfMemory&) {
    // Copies of indexes no call is using (perhaps of indexes already gone) may be in the way.
    g_tables.remove_if([key](const std::shared_ptr<DeviceTable>& d) {
      return d->device == key && d.use_count() == 1;
    });
    try {
      t = copy_table(host, key, opt);
    } catch (const CudaOutOfMemory&) {
      g_no_fit.insert({key, host.id});
      return nullptr;
    }
  }
  // Keep the newest kTablesPerDevice of this device; a table still in use by another call lives
  // on through that call's reference.
  size_t kept = 0;
  for (auto it = g_tables.begin(); it != g_tables.end();) {
    if ((*it)->device == key && ++kept >= kTablesPerDevice) it = g_tables.erase(it);
    else ++it;
  }
  g_tables.push_front(t);
  if (stats) stats->upload_s += clock.lap();
  return t;
}

// ---- per-call buffers -------------------------------------------------------------------------

struct Workspace {
  SlotStreams io;
  Buf<uint8_t> d_seq, h_seq;
  Buf<uint64_t> d_read_off, h_read_off, d_slot, h_slot;
  Buf<Anchor> d_anchors, h_anchors;
  bool ready = false;
  bool busy = false;
  void release() {
    d_seq.release(); h_seq.release(); d_read_off.release(); h_read_off.release();
    d_slot.release(); h_slot.release(); d_anchors.release(); h_anchors.release();
    io.destroy_streams();
    ready = false;
  }
};

WorkspacePool<Workspace> g_pool;

struct Call {
  Workspace& ws;
  const MinimizerTable& table;  // the device copy's view
  int k, w;
  bool emu;
  uint64_t emu_limit;
  CudaSeedStats* stats;

  void copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
    if (bytes == 0) return;
    if (emu) std::memcpy(dst, src, bytes);
    else GMS_CUDA(cudaMemcpyAsync(dst, src, bytes, kind, ws.io.stream));
  }
  void sync() {
    if (!emu) GMS_CUDA(cudaStreamSynchronize(ws.io.stream));
  }

  template <bool kWrite>
  double launch(int n) {
    if (emu) {
      StageClock clock;
      for (int i = n; i-- > 0;)  // reverse order: no reliance on launch order
        seed_one<kWrite>(static_cast<unsigned>(i), table, k, w, ws.d_seq.ptr, ws.d_read_off.ptr,
                         ws.d_slot.ptr, ws.d_anchors.ptr);
      return clock.lap();
    }
    const unsigned blocks = static_cast<unsigned>((n + kThreads - 1) / kThreads);
    GMS_CUDA(cudaEventRecord(ws.io.k_start, ws.io.stream));
    seed_kernel<kWrite><<<blocks, kThreads, 0, ws.io.stream>>>(
        table, k, w, ws.d_seq.ptr, ws.d_read_off.ptr, n, ws.d_slot.ptr, ws.d_anchors.ptr);
    GMS_CUDA(cudaGetLastError());
    GMS_CUDA(cudaEventRecord(ws.io.k_stop, ws.io.stream));
    GMS_CUDA(cudaEventSynchronize(ws.io.k_stop));
    float ms = 0;
    GMS_CUDA(cudaEventElapsedTime(&ms, ws.io.k_start, ws.io.k_stop));
    return ms / 1e3;
  }

  // Reads [b, e) appended to out; throws CudaOutOfMemory when their buffers do not fit.
  void run(const uint8_t* const* reads, const uint32_t* lens, size_t b, size_t e,
           SeedBatchOutput& out) {
    StageClock clock;
    const size_t n = e - b;
    uint64_t bases = 0;
    for (size_t i = b; i < e; ++i) bases += lens[i];
    GMS_CUDA(ws.d_seq.reserve(bases, Mem::Device, emu, emu_limit));
    GMS_CUDA(ws.h_seq.reserve(bases, Mem::Pinned, emu, emu_limit));
    GMS_CUDA(ws.d_read_off.reserve(n + 1, Mem::Device, emu, emu_limit));
    GMS_CUDA(ws.h_read_off.reserve(n + 1, Mem::Pinned, emu, emu_limit));
    GMS_CUDA(ws.d_slot.reserve(n + 1, Mem::Device, emu, emu_limit));
    GMS_CUDA(ws.h_slot.reserve(n + 1, Mem::Pinned, emu, emu_limit));
    uint64_t at = 0;
    for (size_t i = b; i < e; ++i) {
      ws.h_read_off.ptr[i - b] = at;
      std::memcpy(ws.h_seq.ptr + at, reads[i], lens[i]);
      at += lens[i];
    }
    ws.h_read_off.ptr[n] = at;
    if (stats) stats->pack_s += clock.lap();
    copy(ws.d_seq.ptr, ws.h_seq.ptr, bases, cudaMemcpyHostToDevice);
    copy(ws.d_read_off.ptr, ws.h_read_off.ptr, (n + 1) * sizeof(uint64_t), cudaMemcpyHostToDevice);
    double kernel_s = launch<false>(static_cast<int>(n));
    copy(ws.h_slot.ptr, ws.d_slot.ptr, n * sizeof(uint64_t), cudaMemcpyDeviceToHost);
    sync();
    clock.lap();
    uint64_t total = 0;
    for (size_t i = 0; i < n; ++i) {  // counts -> first offsets
      const uint64_t c = ws.h_slot.ptr[i];
      ws.h_slot.ptr[i] = total;
      total += c;
    }
    ws.h_slot.ptr[n] = total;
    GMS_CUDA(ws.d_anchors.reserve(total, Mem::Device, emu, emu_limit));
    GMS_CUDA(ws.h_anchors.reserve(total, Mem::Pinned, emu, emu_limit));
    copy(ws.d_slot.ptr, ws.h_slot.ptr, n * sizeof(uint64_t), cudaMemcpyHostToDevice);
    kernel_s += launch<true>(static_cast<int>(n));
    copy(ws.h_anchors.ptr, ws.d_anchors.ptr, total * sizeof(Anchor), cudaMemcpyDeviceToHost);
    sync();
    clock.lap();
    const uint64_t base = out.anchors.size();
    out.anchors.insert(out.anchors.end(), ws.h_anchors.ptr, ws.h_anchors.ptr + total);
    for (size_t i = 1; i <= n; ++i) out.offsets.push_back(base + ws.h_slot.ptr[i]);
    if (stats) {
      stats->unpack_s += clock.lap();
      stats->kernel_seconds += kernel_s;
      stats->anchors += total;
    }
  }

  // Halves the batch on out of memory until single reads; a read that alone does not fit fails.
  // (run() appends nothing before its last allocation, so a failed try leaves out as it was.)
  void run_split(const uint8_t* const* reads, const uint32_t* lens, size_t b, size_t e,
                 SeedBatchOutput& out) {
    try {
      run(reads, lens, b, e, out);
    } catch (const CudaOutOfMemory&) {
      if (e - b <= 1) throw;
      if (stats) ++stats->oom_splits;
      const size_t mid = b + (e - b) / 2;
      run_split(reads, lens, b, mid, out);
      run_split(reads, lens, mid, e, out);
    }
  }
};

}  // namespace

bool seed_anchors_cuda(const MinimizerTable& table, int k, int w, const uint8_t* const* reads,
                       const uint32_t* lens, size_t n_reads, SeedBatchOutput& out, int device_id,
                       const CudaSeedOptions& opt, CudaSeedStats* stats) {
  if (w < 1 || w > kGpuSeedMaxWindow || k < 1 || k > 28) {
    throw std::invalid_argument("GPU seeding needs 1 <= k <= 28 and 1 <= w <= " +
                                std::to_string(kGpuSeedMaxWindow) + " (got k=" +
                                std::to_string(k) + ", w=" + std::to_string(w) + ")");
  }
  const bool emu = opt.emulate;
  if (!emu) {
    check_device(device_id);
    GMS_CUDA(cudaSetDevice(device_id));
  }
  out.anchors.clear();
  out.offsets.assign(1, 0);
  if (n_reads == 0) return true;
  const int key = emu ? -1 : device_id;
  const std::shared_ptr<DeviceTable> dev = device_table(table, key, opt, stats);
  if (!dev) return false;
  WorkspacePool<Workspace>::Lease lease(g_pool, key);
  Workspace& ws = lease.ws();
  if (!ws.ready) {
    if (!emu) ws.io.create_streams();
    ws.ready = true;
  }
  Call call{ws, dev->view, k, w, emu, opt.emulate_alloc_limit, stats};
  try {
    call.run_split(reads, lens, 0, n_reads, out);
  } catch (const CudaOutOfMemory&) {  // one read alone does not fit: the CPU seeds the batch
    out.anchors.clear();
    out.offsets.assign(1, 0);
    return false;
  }
  return true;
}

void release_seed_workspaces() {
  {
    std::lock_guard<std::mutex> lock(g_tables_mu);
    g_tables.clear();
    g_no_fit.clear();
  }
  g_pool.release_idle();
}

}  // namespace gms::cuda
