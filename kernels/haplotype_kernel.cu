// Read-versus-haplotype costs (the caller's pair-HMM) on the GPU: one job per thread, each thread
// running shared GMS_HD code, so the GPU's costs are the CPU's by construction (integer
// arithmetic, no reassociation).
//
// Two DP-state layouts (CudaHaplotypeOptions::scratch):
//  - tiles (default): haplotype_cost_tiled (haplotype_tiled.hpp), the scalar recurrences in
//    strips of 8 haplotype bases held in registers; only each strip's left edge (8 bytes per row)
//    goes to global memory, lane-interleaved within the warp (row r of lane l at
//    base + r * lanes + l), so a warp's edge loads and stores are coalesced;
//  - rows: haplotype_cost_scalar unchanged, its two DP rows (band + 1 int32 each) in shared
//    memory (one run per thread, odd word stride: conflict-free banks) or global memory.
// Jobs are sorted by (band, len) descending (a counting sort: both are small integers), so that a
// warp's 32 jobs have near-equal work and a chunk's first job has its widest band; each job's
// bytes are packed back to back: read codes, qualities, haplotype window.
// Two slots (buffers + stream) per workspace let the host pack chunk c+1 and unpack chunk c-1
// while the GPU runs chunk c. Several workspaces per device let concurrent callers (the variant
// caller's shard threads) pack and launch at the same time on their own streams instead of
// queueing behind one lock.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "gmsaccel/haplotype_tiled.hpp"
#include "gmsaccel/stage_clock.hpp"
#include "gpu_common.hpp"
#include "gpu_haplotype.hpp"

namespace gms::cuda {
namespace {

// ~1000 blocks of 128 threads: several waves on an H100, and 8 chunks per million jobs to overlap
// packing with the kernels.
constexpr size_t kDefaultChunkJobs = size_t{1} << 17;


struct DevJob {
  uint64_t off;      // read at off, qualities at off + len, haplotype at off + 2 * len
  uint64_t scr_off;  // global rows: first int32; tiles: first TileEdge (lane-interleaved)
  int32_t len, band;
  int32_t stride;  // tiles: lanes of this job's warp = edge stride
  int32_t pad_;
};

// One job: the body of the kernel's thread i, also run on the host by the emulation.
template <Layout kLayout>
GMS_HD void haplotype_one(unsigned i, const DevJob* __restrict__ jobs,
                          const uint8_t* __restrict__ seq, int32_t* __restrict__ gscratch,
                          int32_t* __restrict__ out, const HaplotypeScoring& sc,
                          int32_t* my_smem) {
  const DevJob d = jobs[i];
  const uint8_t* r = seq + d.off;
  const HaplotypeJob job{r, r + d.len, r + 2 * static_cast<size_t>(d.len), d.len, d.band};
  if constexpr (kLayout == Layout::Tiles) {
    TileEdge* edge = reinterpret_cast<TileEdge*>(gscratch) + d.scr_off;
    out[i] = haplotype_cost_tiled(job, sc, edge, static_cast<size_t>(d.stride));
  } else {
    int32_t* row_h = kLayout == Layout::SharedRows ? my_smem : gscratch + d.scr_off;
    int32_t* row_i = row_h + d.band + 1;
    out[i] = haplotype_cost_scalar(job, sc, row_h, row_i);
  }
}

template <Layout kLayout>
__global__ void haplotype_kernel(const DevJob* __restrict__ jobs, int n_jobs,
                                 const uint8_t* __restrict__ seq, int32_t* __restrict__ gscratch,
                                 int32_t* __restrict__ out, HaplotypeScoring sc,
                                 int smem_stride) {
  extern __shared__ int32_t smem[];
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= static_cast<unsigned>(n_jobs)) return;  // no barrier below: early exit is safe
  haplotype_one<kLayout>(i, jobs, seq, gscratch, out, sc,
                         smem + static_cast<size_t>(threadIdx.x) * smem_stride);
}

struct Slot : SlotStreams {
  Buf<DevJob> d_jobs, h_jobs;
  Buf<uint8_t> d_seq, h_seq;
  Buf<int32_t> d_scratch, d_out, h_out;
  double emu_kernel_s = 0;

  void release_buffers() {
    d_jobs.release(); h_jobs.release(); d_seq.release(); h_seq.release();
    d_scratch.release(); d_out.release(); h_out.release();
  }
  void release() {
    release_buffers();
    destroy_streams();
  }
  uint64_t device_bytes() const {
    return d_jobs.cap * sizeof(DevJob) + d_seq.cap + 4 * (d_scratch.cap + d_out.cap);
  }
};

// A workspace: two buffer slots (see WorkspacePool).
struct Workspace {
  Slot slots[2];
  bool ready = false;
  bool busy = false;
  void release() {
    for (Slot& s : slots) s.release();
    ready = false;
  }
};

WorkspacePool<Workspace> g_pool;

struct Chunk {
  size_t begin = 0, end = 0;  // range of the sorted order
  uint64_t seq_bytes = 0, scratch_words = 0;
  int32_t max_band = 0;
  Layout layout = Layout::Tiles;
  int threads = 128;
};

uint64_t seq_of(const HaplotypeJob& j) {
  return 3 * static_cast<uint64_t>(j.len) + static_cast<uint64_t>(j.band) - 1;
}
// int32 scratch words of one job: tiles' strip edge (warp-interleaved), global rows (per job).
uint64_t scratch_words_of(const HaplotypeJob& j, Layout layout) {
  if (layout == Layout::Tiles) return 2 * static_cast<uint64_t>(j.len);
  if (layout == Layout::GlobalRows) return 2 * (static_cast<uint64_t>(j.band) + 1);
  return 0;
}

uint64_t chunk_bytes(const Chunk& c, size_t n) {
  return c.seq_bytes + 4 * c.scratch_words + n * (sizeof(DevJob) + sizeof(int32_t));
}

std::vector<Chunk> plan_chunks(const HaplotypeJob* jobs, const std::vector<uint32_t>& order,
                               uint64_t budget, size_t max_jobs, ScratchMode mode) {
  std::vector<Chunk> chunks;
  size_t i = 0;
  while (i < order.size()) {
    Chunk c;
    c.begin = i;
    c.max_band = jobs[order[i]].band;  // sorted by band descending
    choose_launch(c, mode);
    const bool tiles = c.layout == Layout::Tiles;
    WarpRegions edge_regions;
    size_t n = 0;
    for (; i < order.size() && n < max_jobs; ++i, ++n) {
      const HaplotypeJob& j = jobs[order[i]];
      const size_t lane = n % kWarp;
      // the launch is sized by its first job's band (shared rows, block size)
      if (j.band > c.max_band) throw std::logic_error("plan_chunks: jobs not sorted by band");
      const uint64_t scr_need = scratch_words_of(j, c.layout);
      Chunk t = c;
      t.seq_bytes += seq_of(j);
      t.scratch_words = tiles ? edge_regions.with(lane, scr_need, kWarp)
                              : t.scratch_words + scr_need;
      if (chunk_bytes(t, n + 1) > budget) {
        if (n > 0) break;
        throw CudaOutOfMemory("haplotype job " + std::to_string(order[i]) + " (len " +
                                 std::to_string(j.len) + ", band " + std::to_string(j.band) +
                                 ") needs " + std::to_string(chunk_bytes(t, 1)) +
                                 " bytes of GPU memory; " + std::to_string(budget) +
                                 " are available");
      }
      c.seq_bytes = t.seq_bytes;
      c.scratch_words = t.scratch_words;
      if (tiles) edge_regions.commit(lane, scr_need, kWarp);
    }
    c.end = i;
    chunks.push_back(c);
  }
  return chunks;
}

void ensure_ready(Workspace& ws, bool emulate) {
  if (ws.ready) return;
  if (!emulate) {
    for (Slot& s : ws.slots) s.create_streams();
  }
  ws.ready = true;
}

// Sizes both slots for the largest chunk: the first allocation error (buffers that must grow are
// released first, so that old and new allocations never coexist).
cudaError_t reserve_slots(Workspace& ws, const std::vector<Chunk>& chunks, bool emu,
                          uint64_t emu_limit) {
  size_t mj = 0;
  uint64_t mseq = 0, mscr = 0;
  for (const Chunk& c : chunks) {
    mj = std::max(mj, c.end - c.begin);
    mseq = std::max(mseq, c.seq_bytes);
    mscr = std::max(mscr, c.scratch_words);
  }
  for (Slot& s : ws.slots) {
    if (s.d_seq.cap < mseq) { s.d_seq.release(); s.h_seq.release(); }
    if (s.d_jobs.cap < mj) { s.d_jobs.release(); s.h_jobs.release(); }
    if (s.d_out.cap < mj) { s.d_out.release(); s.h_out.release(); }
    if (s.d_scratch.cap < mscr) s.d_scratch.release();
  }
  for (Slot& s : ws.slots) {
    for (cudaError_t e :
         {s.d_jobs.reserve(mj, Mem::Device, emu, emu_limit),
          s.d_out.reserve(mj, Mem::Device, emu, emu_limit),
          s.d_seq.reserve(mseq, Mem::Device, emu, emu_limit),
          s.d_scratch.reserve(mscr, Mem::Device, emu, emu_limit),
          s.h_jobs.reserve(mj, Mem::Pinned, emu, emu_limit),
          s.h_out.reserve(mj, Mem::Pinned, emu, emu_limit),
          s.h_seq.reserve(mseq, Mem::Pinned, emu, emu_limit)}) {
      if (e != cudaSuccess) return e;
    }
  }
  return cudaSuccess;
}

template <Layout kLayout>
void emulate_launch(Slot& s, unsigned blocks, int threads, int n, const HaplotypeScoring& sc,
                    int smem_stride) {
  constexpr bool kShared = kLayout == Layout::SharedRows;
  std::vector<int32_t> smem(kShared ? static_cast<size_t>(threads) * smem_stride : 0);
  for (unsigned b = blocks; b-- > 0;) {  // reverse block order: no reliance on launch order
    for (int t = 0; t < threads; ++t) {
      const unsigned i = b * static_cast<unsigned>(threads) + static_cast<unsigned>(t);
      if (i >= static_cast<unsigned>(n)) continue;
      haplotype_one<kLayout>(i, s.d_jobs.ptr, s.d_seq.ptr, s.d_scratch.ptr, s.d_out.ptr, sc,
                             kShared ? smem.data() + static_cast<size_t>(t) * smem_stride
                                     : nullptr);
    }
  }
}

void validate(const HaplotypeJob* jobs, size_t n, const HaplotypeScoring& sc) {
  for (int32_t p : {sc.gap_open, sc.gap_extend, sc.max_qual}) {
    if (p < 0 || p > kMaxHaplotypeParam) {
      throw std::invalid_argument("haplotype scoring parameters must lie in 0.." +
                                  std::to_string(kMaxHaplotypeParam));
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (jobs[i].len < 1 || jobs[i].band < 1) {
      throw std::invalid_argument("haplotype job " + std::to_string(i) +
                                  " needs len >= 1 and band >= 1");
    }
  }
  if (n > UINT32_MAX) throw std::invalid_argument("too many haplotype jobs in one batch");
}

}  // namespace

void release_haplotype_workspaces() { g_pool.release_idle(); }

void haplotype_costs_cuda(const HaplotypeJob* jobs, size_t n, const HaplotypeScoring& sc,
                          int32_t* costs, int device_id, const CudaHaplotypeOptions& opt,
                          CudaHaplotypeStats* stats) {
  const bool emu = opt.emulate;
  if (!emu) check_device(device_id);
  validate(jobs, n, sc);
  CudaHaplotypeStats st;
  if (n == 0) {
    if (stats) *stats = st;
    return;
  }
  if (!emu) GMS_CUDA(cudaSetDevice(device_id));
  StageClock order_timer;
  const std::vector<uint32_t> order = sorted_order(jobs, n, &HaplotypeJob::len);

  WorkspacePool<Workspace>::Lease lease(g_pool, emu ? -1 : device_id);
  Workspace& ws = lease.ws();
  ensure_ready(ws, emu);
  // a call that threw part-way may have left copies in flight into the pinned buffers
  if (!emu) {
    for (Slot& s : ws.slots) GMS_CUDA(cudaStreamSynchronize(s.stream));
  }

  // Each slot of each workspace may take an equal share of what is free now (plus what this
  // workspace already holds), less a margin for the context and fragmentation. An allocation
  // that fails anyway (another process, another workspace) halves the chunk and retries.
  uint64_t budget = opt.memory_budget;
  if (budget == 0) {
    uint64_t usable = uint64_t{1} << 32;  // emulation: 4 GiB of host memory
    if (!emu) {
      size_t free_b = 0, total_b = 0;
      GMS_CUDA(cudaMemGetInfo(&free_b, &total_b));
      uint64_t held = 0;
      for (const Slot& s : ws.slots) held += s.device_bytes();
      usable = static_cast<uint64_t>(static_cast<double>(free_b + held) * 0.85);
    }
    const uint64_t margin = uint64_t{256} << 20;
    const uint64_t share = 2 * kMaxWorkspaces;
    budget = usable > 4 * margin ? (usable - margin) / share : usable / (2 * share);
  }
  size_t max_jobs = opt.chunk_jobs ? opt.chunk_jobs : kDefaultChunkJobs;
  if (emu && opt.emulate_alloc_limit) {
    // the simulated limit applies to allocations: start without the cached (grown) buffers
    for (Slot& s : ws.slots) s.release_buffers();
  }
  std::vector<Chunk> chunks;
  for (;;) {
    chunks = plan_chunks(jobs, order, budget, max_jobs, opt.scratch);
    const cudaError_t e = reserve_slots(ws, chunks, emu, opt.emulate_alloc_limit);
    if (e == cudaSuccess) break;
    if (e != cudaErrorMemoryAllocation) {
      cuda_check(e, "cudaMalloc/cudaMallocHost", __FILE__, __LINE__);
    }
    if (!emu) cudaGetLastError();  // not sticky, but leave no recorded error behind
    for (Slot& s : ws.slots) s.release_buffers();
    size_t largest = 0;
    for (const Chunk& c : chunks) largest = std::max(largest, c.end - c.begin);
    if (largest <= 1) {
      throw CudaOutOfMemory("CUDA error cudaErrorMemoryAllocation: out of GPU memory for a "
                            "single haplotype job (haplotype_kernel.cu)");
    }
    max_jobs = largest / 2;
    budget = std::max<uint64_t>(budget / 2, 1);
    ++st.oom_retries;
  }
  st.host.order_s += order_timer.lap();
  size_t need_smem = 0;
  for (const Chunk& c : chunks) {
    if (c.layout == Layout::SharedRows) {
      need_smem = std::max(need_smem, c.threads * smem_stride_words(c.max_band) * 4);
    }
  }
  if (!emu && need_smem > 48 * 1024) {
    // blocks above 48 KB of dynamic shared memory must opt in (per device; cheap to repeat)
    GMS_CUDA(cudaFuncSetAttribute(haplotype_kernel<Layout::SharedRows>,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(kMaxSharedBytes)));
  }

  auto copy = [emu](void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                    cudaStream_t stream) {
    if (bytes == 0) return;
    if (emu) std::memcpy(dst, src, bytes);
    else GMS_CUDA(cudaMemcpyAsync(dst, src, bytes, kind, stream));
  };

  auto launch = [&](size_t ci) {
    const Chunk& c = chunks[ci];
    Slot& s = ws.slots[ci % 2];
    const size_t cn = c.end - c.begin;
    StageClock pack_timer;
    const bool tiles = c.layout == Layout::Tiles;
    uint64_t seq_off = 0, scr_off = 0;
    for (size_t w = 0; w < cn; w += kWarp) {
      const size_t lanes = std::min(kWarp, cn - w);
      uint64_t edge_max = 0;
      for (size_t l = 0; l < lanes && tiles; ++l) {
        edge_max = std::max(edge_max, scratch_words_of(jobs[order[c.begin + w + l]], c.layout));
      }
      for (size_t l = 0; l < lanes; ++l) {
        const size_t p = w + l;
        const HaplotypeJob& j = jobs[order[c.begin + p]];
        const size_t m = static_cast<size_t>(j.len), hl = m + static_cast<size_t>(j.band) - 1;
        uint8_t* dst = s.h_seq.ptr + seq_off;
        std::memcpy(dst, j.read, m);
        std::memcpy(dst + m, j.qual, m);
        std::memcpy(dst + 2 * m, j.hap, hl);
        // tiles count in 8-byte edge records (lane-interleaved), rows in int32 words
        const uint64_t scr = tiles ? scr_off / 2 + l : scr_off;
        s.h_jobs.ptr[p] = DevJob{seq_off, scr, j.len, j.band, static_cast<int32_t>(lanes), 0};
        seq_off += 2 * m + hl;
        if (!tiles) scr_off += scratch_words_of(j, c.layout);
      }
      if (tiles) scr_off += edge_max * lanes;
    }
    if (seq_off != c.seq_bytes || scr_off != c.scratch_words) {
      throw std::logic_error("haplotype_costs_cuda: chunk layout disagrees with its plan");
    }
    st.host.pack_s += pack_timer.lap();
    copy(s.d_jobs.ptr, s.h_jobs.ptr, cn * sizeof(DevJob), cudaMemcpyHostToDevice, s.stream);
    copy(s.d_seq.ptr, s.h_seq.ptr, seq_off, cudaMemcpyHostToDevice, s.stream);
    const int threads = c.threads;
    const unsigned blocks = static_cast<unsigned>((cn + threads - 1) / threads);
    const int stride_words = static_cast<int>(smem_stride_words(c.max_band));
    const int ni = static_cast<int>(cn);
    if (emu) {
      const auto t0 = std::chrono::steady_clock::now();
      with_layout(c.layout, [&](auto layout) {
        constexpr Layout kLayout = decltype(layout)::value;
        if constexpr (kLayout == Layout::TilePairs) {  // extension only: never planned here
          throw std::logic_error("haplotype_costs_cuda: no tile-pair layout");
        } else {
          emulate_launch<kLayout>(s, blocks, threads, ni, sc, stride_words);
        }
      });
      s.emu_kernel_s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } else {
      // Consecutive chunks' kernels run one after the other, so that k_start..k_stop times this
      // kernel alone, not the tail of the previous chunk's too (its copies still overlap it).
      if (ci > 0) GMS_CUDA(cudaStreamWaitEvent(s.stream, ws.slots[(ci - 1) % 2].k_stop, 0));
      GMS_CUDA(cudaEventRecord(s.k_start, s.stream));
      const size_t smem = c.layout == Layout::SharedRows
                              ? static_cast<size_t>(threads) * stride_words * sizeof(int32_t)
                              : 0;
      auto kernel = c.layout == Layout::Tiles        ? haplotype_kernel<Layout::Tiles>
                    : c.layout == Layout::SharedRows ? haplotype_kernel<Layout::SharedRows>
                                                     : haplotype_kernel<Layout::GlobalRows>;
      kernel<<<blocks, threads, smem, s.stream>>>(s.d_jobs.ptr, ni, s.d_seq.ptr,
                                                  s.d_scratch.ptr, s.d_out.ptr, sc,
                                                  stride_words);
      GMS_CUDA(cudaGetLastError());
      GMS_CUDA(cudaEventRecord(s.k_stop, s.stream));
    }
    copy(s.h_out.ptr, s.d_out.ptr, cn * sizeof(int32_t), cudaMemcpyDeviceToHost, s.stream);
    if (!emu) GMS_CUDA(cudaEventRecord(s.done, s.stream));
    st.threads_per_block = threads;
    st.layout = layout_name(c.layout);
  };

  auto harvest = [&](size_t ci) {
    const Chunk& c = chunks[ci];
    Slot& s = ws.slots[ci % 2];
    if (emu) {
      st.kernel_seconds += s.emu_kernel_s;
    } else {
      GMS_CUDA(cudaEventSynchronize(s.done));
      float ms = 0;
      GMS_CUDA(cudaEventElapsedTime(&ms, s.k_start, s.k_stop));
      st.kernel_seconds += ms * 1e-3;
    }
    StageClock unpack_timer;
    for (size_t p = c.begin; p < c.end; ++p) costs[order[p]] = s.h_out.ptr[p - c.begin];
    st.host.unpack_s += unpack_timer.lap();
  };

  // Chunk c is queued before chunk c-1 is unpacked, so the GPU never waits for the host; slot
  // c % 2 is free again because chunk c-2 was unpacked in the previous iteration.
  for (size_t ci = 0; ci < chunks.size(); ++ci) {
    launch(ci);
    if (ci > 0) harvest(ci - 1);
  }
  harvest(chunks.size() - 1);
  st.chunks = chunks.size();
  st.chunk_jobs = max_jobs;
  if (stats) *stats = st;
}

}  // namespace gms::cuda
