// Batched banded extension on the GPU (inter-sequence parallelism: each thread aligns its own
// jobs), every thread running shared GMS_HD code, so the GPU's results are those of the CPU by
// construction.
//
// DP-state layouts (CudaExtendOptions::scratch):
//  - tile pairs (default where the scores fit 16 bits): extend_tiled_pair, two jobs of one shape
//    per thread in 16-bit lanes; their directions go to traceback lanes 2l and 2l + 1 of the warp
//    (stride twice the warp's threads), their shared edge record to lane l;
//  - tiles (32-bit; default for the other jobs, `tiles32` for all): extend_tiled, one job per
//    thread. Both tiles layouts evaluate the scalar recurrences in strips of 8 target bases whose
//    cells live in registers; only each strip's left edge (8 bytes per row) and one 64-bit
//    traceback word per strip row go to global memory, lane-interleaved within the warp (value i
//    of lane l at base + i * lanes + l), so a warp's loads and stores are coalesced;
//  - rows: extend_scalar + extend_traceback unchanged, the two DP rows (band + 1 int32 each) in
//    shared memory (one run per thread, odd word stride: conflict-free banks) or global memory,
//    and traceback bytes lane-interleaved (cell c of lane l at warp_base + c * lanes + l).
// Jobs are sorted by (band, qlen) descending so that a warp's jobs have near-equal work (little
// divergence, tight warp regions) and a chunk's first job has its largest band; each traceback
// writes a CIGAR slot of 2 * qlen + band ops, then appends the ops to a packed buffer through one
// atomicAdd, so only the ops actually produced cross PCIe.
// Two slots of buffers and two streams let the host pack chunk c+1 and unpack chunk c-1 while
// the GPU runs chunk c. Several workspaces per device let concurrent callers (the aligner's
// worker threads) pack and launch at the same time on their own streams instead of queueing
// behind one lock.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "gmsaccel/extend.hpp"
#include "gmsaccel/extend_tiled.hpp"
#include "gmsaccel/stage_clock.hpp"
#include "gpu_common.hpp"
#include "gpu_extend.hpp"

namespace gms::cuda {
namespace {

constexpr size_t kDefaultChunkJobs = size_t{1} << 17;
constexpr uint64_t kMaxChunkOps = uint64_t{1} << 31;  // packed offsets are uint32

struct DevJob {
  uint64_t q_off, t_off;  // into the chunk's sequence buffer
  uint64_t dir_off;       // first traceback byte (rows) or 64-bit word (tiles), lane-interleaved
  uint64_t slot_off;      // CIGAR slot: 2 * qlen + band ops
  uint64_t scr_off;       // global rows: first int32; tiles: first TileEdge (lane-interleaved)
  int32_t qlen, band;
  int32_t stride;  // traceback stride: lanes of this job's warp (tile pairs: twice that)
  int32_t flags;   // kDuplicate: tile pairs' second lane repeating the first job (no output)
};
constexpr int32_t kDuplicate = 1;

struct JobOut {
  ExtendResult res;
  uint32_t n_ops;
  uint32_t off;  // first op in the chunk's packed buffer
};

// Appends job i's traced CIGAR (n_ops ops in its slot) to the packed buffer and records its
// output.
GMS_HD void publish(unsigned i, const ExtendResult& res, int32_t n_ops,
                    const uint32_t* __restrict__ slot, uint32_t* __restrict__ packed,
                    JobOut* __restrict__ out, uint32_t* __restrict__ counter) {
#if defined(__CUDA_ARCH__)
  const uint32_t off = atomicAdd(counter, static_cast<uint32_t>(n_ops));
#else
  const uint32_t off = *counter;  // the emulation runs jobs one at a time
  *counter += static_cast<uint32_t>(n_ops);
#endif
  for (int32_t k = 0; k < n_ops; ++k) packed[off + k] = slot[k];
  out[i] = JobOut{res, static_cast<uint32_t>(n_ops), off};
}

// One job: the body of the kernel's thread i, also run on the host by the emulation (tests).
template <Layout kLayout>
GMS_HD void extend_one(unsigned i, const DevJob* __restrict__ jobs,
                       const uint8_t* __restrict__ seq, uint8_t* __restrict__ dirs,
                       int32_t* __restrict__ gscratch, uint32_t* __restrict__ slots,
                       uint32_t* __restrict__ packed, JobOut* __restrict__ out,
                       uint32_t* __restrict__ counter, const Scoring& sc, int32_t* my_smem) {
  const DevJob d = jobs[i];
  const ExtendJob job{seq + d.q_off, seq + d.t_off, d.qlen, d.band};
  const size_t stride = static_cast<size_t>(d.stride);
  uint32_t* slot = slots + d.slot_off;
  ExtendResult res;
  int32_t n_ops;
  if constexpr (kLayout == Layout::Tiles) {
    uint64_t* my_dirs = reinterpret_cast<uint64_t*>(dirs) + d.dir_off;
    TileEdge* edge = reinterpret_cast<TileEdge*>(gscratch) + d.scr_off;
    res = extend_tiled(job, sc, my_dirs, stride, edge, stride);
    n_ops = extend_tiled_traceback(my_dirs, stride, d.qlen, d.band, res, slot);
  } else {
    int32_t* h_row = kLayout == Layout::SharedRows ? my_smem : gscratch + d.scr_off;
    int32_t* f_row = h_row + d.band + 1;
    uint8_t* my_dirs = dirs + d.dir_off;
    res = extend_scalar(job, sc, my_dirs, stride, h_row, f_row);
    n_ops = extend_traceback(my_dirs, stride, d.band, res, slot);
  }
  publish(i, res, n_ops, slot, packed, out, counter);
}

// Two jobs of one shape (jobs 2t and 2t + 1; the second may repeat the first, kDuplicate): the
// body of the tile-pair kernel's thread t. Their directions go to lanes 2l and 2l + 1 of the
// warp's traceback region (stride 2 * lanes), their shared edge record to lane l.
GMS_HD void extend_pair_one(unsigned t, const DevJob* __restrict__ jobs,
                            const uint8_t* __restrict__ seq, uint8_t* __restrict__ dirs,
                            int32_t* __restrict__ gscratch, uint32_t* __restrict__ slots,
                            uint32_t* __restrict__ packed, JobOut* __restrict__ out,
                            uint32_t* __restrict__ counter, const Scoring& sc) {
  const DevJob da = jobs[2 * t], db = jobs[2 * t + 1];
  const ExtendJob a{seq + da.q_off, seq + da.t_off, da.qlen, da.band};
  const ExtendJob b{seq + db.q_off, seq + db.t_off, db.qlen, db.band};
  const size_t stride = static_cast<size_t>(da.stride);
  uint64_t* dirs_a = reinterpret_cast<uint64_t*>(dirs) + da.dir_off;
  uint64_t* dirs_b = reinterpret_cast<uint64_t*>(dirs) + db.dir_off;
  TileEdge* edge = reinterpret_cast<TileEdge*>(gscratch) + da.scr_off;
  ExtendResult ra, rb;
  extend_tiled_pair(a, b, sc, dirs_a, dirs_b, stride, edge, stride / 2, ra, rb);
  uint32_t* slot_a = slots + da.slot_off;
  publish(2 * t, ra, extend_tiled_traceback(dirs_a, stride, a.qlen, a.band, ra, slot_a), slot_a,
          packed, out, counter);
  if (db.flags & kDuplicate) return;
  uint32_t* slot_b = slots + db.slot_off;
  publish(2 * t + 1, rb, extend_tiled_traceback(dirs_b, stride, b.qlen, b.band, rb, slot_b),
          slot_b, packed, out, counter);
}

__global__ void extend_pair_kernel(const DevJob* __restrict__ jobs, int n_units,
                                   const uint8_t* __restrict__ seq, uint8_t* __restrict__ dirs,
                                   int32_t* __restrict__ gscratch, uint32_t* __restrict__ slots,
                                   uint32_t* __restrict__ packed, JobOut* __restrict__ out,
                                   uint32_t* __restrict__ counter, Scoring sc) {
  const unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= static_cast<unsigned>(n_units)) return;  // no barrier below: early exit is safe
  extend_pair_one(t, jobs, seq, dirs, gscratch, slots, packed, out, counter, sc);
}

template <Layout kLayout>
__global__ void extend_kernel(const DevJob* __restrict__ jobs, int n_jobs,
                              const uint8_t* __restrict__ seq, uint8_t* __restrict__ dirs,
                              int32_t* __restrict__ gscratch, uint32_t* __restrict__ slots,
                              uint32_t* __restrict__ packed, JobOut* __restrict__ out,
                              uint32_t* __restrict__ counter, Scoring sc, int smem_stride) {
  extern __shared__ int32_t smem[];
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= static_cast<unsigned>(n_jobs)) return;  // no barrier below: early exit is safe
  extend_one<kLayout>(i, jobs, seq, dirs, gscratch, slots, packed, out, counter, sc,
                      smem + static_cast<size_t>(threadIdx.x) * smem_stride);
}

// Grow-only device buffer (plain host memory under emulation).
template <typename T>
struct DevBuf {
  T* ptr = nullptr;
  size_t cap = 0;
  bool host = false;
  void reserve(size_t n, bool emulate, uint64_t emulate_limit = 0) {
    if (n <= cap) return;
    release();
    const size_t bytes = std::max<size_t>(n, 1) * sizeof(T);
    if (emulate && emulate_limit && bytes > emulate_limit) {
      throw CudaOutOfMemory("emulated out of GPU memory (emulate_alloc_limit)");
    }
    if (emulate) {
      ptr = static_cast<T*>(std::malloc(bytes));
      if (!ptr) throw std::bad_alloc();
    } else {
      GMS_CUDA(cudaMalloc(&ptr, bytes));
    }
    host = emulate;
    cap = n;
  }
  void release() {
    if (ptr && host) std::free(ptr);
    else if (ptr) cudaFree(ptr);  // teardown: errors are not actionable here
    ptr = nullptr;
    cap = 0;
  }
};

// Grow-only pinned host buffer (pinned so that the async copies really are asynchronous).
template <typename T>
struct HostBuf {
  T* ptr = nullptr;
  size_t cap = 0;
  bool plain = false;
  void reserve(size_t n, bool emulate) {
    if (n <= cap) return;
    release();
    const size_t bytes = std::max<size_t>(n, 1) * sizeof(T);
    if (emulate) {
      ptr = static_cast<T*>(std::malloc(bytes));
      if (!ptr) throw std::bad_alloc();
    } else {
      GMS_CUDA(cudaMallocHost(&ptr, bytes));
    }
    plain = emulate;
    cap = n;
  }
  void release() {
    if (ptr && plain) std::free(ptr);
    else if (ptr) cudaFreeHost(ptr);
    ptr = nullptr;
    cap = 0;
  }
};

struct Slot : SlotStreams {
  DevBuf<DevJob> d_jobs;
  DevBuf<uint8_t> d_seq, d_dirs;
  DevBuf<int32_t> d_scratch;
  DevBuf<uint32_t> d_slots, d_packed, d_counter;
  DevBuf<JobOut> d_out;
  HostBuf<DevJob> h_jobs;
  HostBuf<uint8_t> h_seq;
  HostBuf<JobOut> h_out;
  HostBuf<uint32_t> h_counter;
  double emu_kernel_s = 0;  // emulation: host time of the last "launch"

  void release() {
    d_jobs.release(); d_seq.release(); d_dirs.release(); d_scratch.release();
    d_slots.release(); d_packed.release(); d_counter.release(); d_out.release();
    h_jobs.release(); h_seq.release(); h_out.release(); h_counter.release();
    destroy_streams();
  }
};

// A workspace: two buffer slots (see WorkspacePool).
struct Workspace {
  Slot slots[2];
  bool ready = false;
  bool smem_attr_set = false;
  bool busy = false;
  void release() {
    for (Slot& s : slots) s.release();
    ready = false;
    smem_attr_set = false;
  }
};

WorkspacePool<Workspace> g_pool;

// A kernel thread's work: one job, or in tile-pair chunks two jobs of one shape (b == kNoJob:
// the thread runs job a in both lanes and keeps one).
constexpr uint32_t kNoJob = UINT32_MAX;
struct Unit {
  uint32_t a, b;
};

struct Chunk {
  size_t begin = 0, end = 0;  // range of the units
  size_t entries = 0;         // DevJob records: one per unit, two per tile-pair unit
  uint64_t seq_bytes = 0, dir_bytes = 0, slot_ops = 0, scratch_words = 0;
  int32_t max_band = 0;
  Layout layout = Layout::Tiles;
  int threads = 128;
};

uint64_t ops_of(const ExtendJob& j) {
  return 2 * static_cast<uint64_t>(j.qlen) + static_cast<uint64_t>(j.band);
}
uint64_t seq_of(const ExtendJob& j) {
  return 2 * static_cast<uint64_t>(j.qlen) + static_cast<uint64_t>(j.band) - 1;
}
// Traceback bytes of one job (warp-interleaved in every layout).
uint64_t dir_bytes_of(const ExtendJob& j, Layout layout) {
  if (is_tiled(layout)) return 8 * tiled_dir_words(j.qlen, j.band);
  return static_cast<uint64_t>(j.qlen) * static_cast<uint64_t>(j.band);
}
// int32 scratch words of one unit: the tiles' strip edge (warp-interleaved; a pair's two jobs
// share one record per row), global rows (per job).
uint64_t scratch_words_of(const ExtendJob& j, Layout layout) {
  if (is_tiled(layout)) return 2 * static_cast<uint64_t>(j.qlen);
  if (layout == Layout::GlobalRows) return 2 * (static_cast<uint64_t>(j.band) + 1);
  return 0;
}

// Device bytes of a chunk (both CIGAR buffers, rows, per-job records included).
uint64_t chunk_bytes(const Chunk& c, size_t entries) {
  return c.seq_bytes + c.dir_bytes + 2 * 4 * c.slot_ops + 4 * c.scratch_words +
         entries * (sizeof(DevJob) + sizeof(JobOut));
}

// The units of a batch in sorted job order: first the single jobs the 32-bit layouts take, then
// (tiles, when the scores fit 16-bit lanes) the tile pairs: neighbours of one shape that both fit
// extend_job_fits_int16 pair up; a fitting job without such a neighbour runs alone in a pair.
// Returns the units and how many of them come first as singles.
std::vector<Unit> make_units(const ExtendJob* jobs, const std::vector<uint32_t>& order,
                             const Scoring& sc, ScratchMode mode, size_t& n_single) {
  std::vector<Unit> single, pairs;
  const bool pairing = (mode == ScratchMode::Auto || mode == ScratchMode::Tiles) &&
                       extend_scoring_fits_int16(sc);
  for (size_t i = 0; i < order.size();) {
    const ExtendJob& j = jobs[order[i]];
    if (!pairing || !extend_job_fits_int16(j, sc)) {
      single.push_back(Unit{order[i++], kNoJob});
      continue;
    }
    if (i + 1 < order.size()) {
      const ExtendJob& k = jobs[order[i + 1]];
      if (k.qlen == j.qlen && k.band == j.band && extend_job_fits_int16(k, sc)) {
        pairs.push_back(Unit{order[i], order[i + 1]});
        i += 2;
        continue;
      }
    }
    pairs.push_back(Unit{order[i++], kNoJob});
  }
  n_single = single.size();
  single.insert(single.end(), pairs.begin(), pairs.end());
  return single;
}

// Splits units [from, to) (one kind) into launches that fit `budget` bytes of device memory each.
void plan_range(const ExtendJob* jobs, const std::vector<Unit>& units, size_t from, size_t to,
                bool pairs, uint64_t budget, size_t max_entries, ScratchMode mode,
                std::vector<Chunk>& chunks) {
  size_t i = from;
  while (i < to) {
    Chunk c;
    c.begin = i;
    c.max_band = jobs[units[i].a].band;  // sorted by band descending
    choose_launch(c, mode);
    if (pairs) c.layout = Layout::TilePairs;
    const bool tiled = is_tiled(c.layout);
    const size_t per_unit = pairs ? 2 : 1;
    WarpRegions dir_regions, edge_regions;
    size_t n = 0;
    for (; i < to && (n + 1) * per_unit <= std::max(max_entries, per_unit); ++i, ++n) {
      const Unit& u = units[i];
      const ExtendJob& j = jobs[u.a];
      // the launch is sized by its first job's band (shared rows, block size)
      if (j.band > c.max_band) throw std::logic_error("plan_chunks: jobs not sorted by band");
      const size_t lane = n % kWarp;
      const bool second = pairs && u.b != kNoJob;
      // a pair's lanes share the shape: two lanes' traceback words per unit lane
      const uint64_t dir_need = dir_bytes_of(j, c.layout) * per_unit;
      const uint64_t scr_need = scratch_words_of(j, c.layout);
      Chunk t = c;
      t.dir_bytes = dir_regions.with(lane, dir_need, kWarp);
      t.seq_bytes += seq_of(j) + (second ? seq_of(jobs[u.b]) : 0);
      t.slot_ops += ops_of(j) + (second ? ops_of(jobs[u.b]) : 0);
      t.scratch_words = tiled ? edge_regions.with(lane, scr_need, kWarp)
                              : t.scratch_words + scr_need;
      const size_t entries = (n + 1) * per_unit;
      if (chunk_bytes(t, entries) > budget || t.slot_ops > kMaxChunkOps) {
        if (n > 0) break;
        throw CudaOutOfMemory("extension job " + std::to_string(u.a) + " (qlen " +
                                 std::to_string(j.qlen) + ", band " + std::to_string(j.band) +
                                 ") needs " + std::to_string(chunk_bytes(t, entries)) +
                                 " bytes of GPU memory; " + std::to_string(budget) +
                                 " are available");
      }
      c.seq_bytes = t.seq_bytes;
      c.dir_bytes = t.dir_bytes;
      c.slot_ops = t.slot_ops;
      c.scratch_words = t.scratch_words;
      dir_regions.commit(lane, dir_need, kWarp);
      if (tiled) edge_regions.commit(lane, scr_need, kWarp);
    }
    c.end = i;
    c.entries = n * per_unit;
    chunks.push_back(c);
  }
}

// Launches for every unit: the singles first, then the tile pairs.
std::vector<Chunk> plan_chunks(const ExtendJob* jobs, const std::vector<Unit>& units,
                               size_t n_single, uint64_t budget, size_t max_entries,
                               ScratchMode mode) {
  std::vector<Chunk> chunks;
  plan_range(jobs, units, 0, n_single, false, budget, max_entries, mode, chunks);
  plan_range(jobs, units, n_single, units.size(), true, budget, max_entries, mode, chunks);
  return chunks;
}

void ensure_ready(Workspace& ws, bool emulate) {
  if (ws.ready) return;
  for (Slot& s : ws.slots) {
    if (!emulate) s.create_streams();
    s.h_counter.reserve(1, emulate);
    s.d_counter.reserve(1, emulate);
  }
  ws.ready = true;
}

uint64_t held_bytes(const Workspace& ws) {
  uint64_t held = 0;
  for (const Slot& s : ws.slots) {
    held += s.d_jobs.cap * sizeof(DevJob) + s.d_seq.cap + s.d_dirs.cap + s.d_scratch.cap * 4 +
            s.d_slots.cap * 4 + s.d_packed.cap * 4 + s.d_out.cap * sizeof(JobOut);
  }
  return held;
}

// Runs a chunk's threads on the host, blocks in reverse order so that the packed CIGAR offsets
// differ from job order as they may on the GPU.
template <Layout kLayout>
void emulate_launch(Slot& s, unsigned blocks, int threads, int n, const Scoring& sc,
                    int smem_stride) {
  constexpr bool kShared = kLayout == Layout::SharedRows;
  std::vector<int32_t> smem(kShared ? static_cast<size_t>(threads) * smem_stride : 0);
  for (unsigned b = blocks; b-- > 0;) {
    for (int t = 0; t < threads; ++t) {
      const unsigned i = b * static_cast<unsigned>(threads) + static_cast<unsigned>(t);
      if (i >= static_cast<unsigned>(n)) continue;
      if constexpr (kLayout == Layout::TilePairs) {
        extend_pair_one(i, s.d_jobs.ptr, s.d_seq.ptr, s.d_dirs.ptr, s.d_scratch.ptr,
                        s.d_slots.ptr, s.d_packed.ptr, s.d_out.ptr, s.d_counter.ptr, sc);
      } else {
        extend_one<kLayout>(i, s.d_jobs.ptr, s.d_seq.ptr, s.d_dirs.ptr, s.d_scratch.ptr,
                            s.d_slots.ptr, s.d_packed.ptr, s.d_out.ptr, s.d_counter.ptr, sc,
                            kShared ? smem.data() + static_cast<size_t>(t) * smem_stride
                                    : nullptr);
      }
    }
  }
}

}  // namespace

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the recorded error so that later calls start clean
    return 0;
  }
  return n;
}

std::string device_problem() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e == cudaSuccess) return n > 0 ? "" : "no CUDA device";
  cudaGetLastError();
  return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

std::vector<DeviceInfo> devices() {
  std::vector<DeviceInfo> list;
  const int n = device_count();
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    DeviceInfo d;
    d.index = i;
    d.name = p.name;
    d.total_memory = p.totalGlobalMem;
    d.major = p.major;
    d.minor = p.minor;
    d.multiprocessors = p.multiProcessorCount;
    list.push_back(d);
  }
  return list;
}

void release_workspaces() { g_pool.release_idle(); }

// Sizes both slots for the largest chunk, releasing first what must grow so that old and new
// allocations never coexist. Returns the dynamic shared memory the chunks need per block.
static size_t reserve_for_chunks(Workspace& ws, const std::vector<Chunk>& chunks, bool emu,
                                 uint64_t lim) {
  size_t mj = 0;
  uint64_t mseq = 0, mdir = 0, mops = 0, mscr = 0;
  size_t need_smem = 0;
  for (const Chunk& c : chunks) {
    mj = std::max(mj, c.entries);
    mseq = std::max(mseq, c.seq_bytes);
    mdir = std::max(mdir, c.dir_bytes);
    mops = std::max(mops, c.slot_ops);
    mscr = std::max(mscr, c.scratch_words);
    if (c.layout == Layout::SharedRows) {
      need_smem = std::max(need_smem, c.threads * smem_stride_words(c.max_band) * 4);
    }
  }
  for (Slot& s : ws.slots) {
    if (s.d_dirs.cap < mdir) s.d_dirs.release();
    if (s.d_slots.cap < mops) { s.d_slots.release(); s.d_packed.release(); }
    if (s.d_scratch.cap < mscr) s.d_scratch.release();
  }
  for (Slot& s : ws.slots) {
    s.d_jobs.reserve(mj, emu, lim);
    s.d_out.reserve(mj, emu, lim);
    s.d_seq.reserve(mseq, emu, lim);
    s.d_dirs.reserve(mdir, emu, lim);
    s.d_slots.reserve(mops, emu, lim);
    s.d_packed.reserve(mops, emu, lim);
    s.d_scratch.reserve(mscr, emu, lim);
    s.h_jobs.reserve(mj, emu);
    s.h_out.reserve(mj, emu);
    s.h_seq.reserve(mseq, emu);
  }
  return need_smem;
}

static void release_slot_buffers(Slot& s) {
  s.d_jobs.release(); s.d_out.release(); s.d_seq.release(); s.d_dirs.release();
  s.d_slots.release(); s.d_packed.release(); s.d_scratch.release();
  s.h_jobs.release(); s.h_out.release(); s.h_seq.release();
}

void extend_batch_cuda(const ExtendJob* jobs, size_t n_jobs, const Scoring& sc,
                       ExtendBatchOutput& out, int device_id, const CudaExtendOptions& opt,
                       CudaExtendStats* stats) {
  const bool emu = opt.emulate;
  if (!emu) check_device(device_id);
  for (size_t i = 0; i < n_jobs; ++i) {
    if (jobs[i].qlen < 1 || jobs[i].band < 1) {
      throw std::invalid_argument("extension job " + std::to_string(i) +
                                  " needs qlen >= 1 and band >= 1");
    }
  }
  if (n_jobs > UINT32_MAX) throw std::invalid_argument("too many extension jobs in one batch");
  if (!emu) GMS_CUDA(cudaSetDevice(device_id));
  WorkspacePool<Workspace>::Lease lease(g_pool, emu ? -1 : device_id);
  Workspace& ws = lease.ws();
  ensure_ready(ws, emu);
  // a call that threw part-way may have left copies in flight into the pinned buffers
  if (!emu) {
    for (Slot& s : ws.slots) GMS_CUDA(cudaStreamSynchronize(s.stream));
  }
  CudaExtendStats st;
  StageClock order_timer;

  // Similar jobs side by side: uniform warps, and each chunk starts with its widest band.
  const std::vector<uint32_t> order = sorted_order(jobs, n_jobs, &ExtendJob::qlen);
  size_t n_single = 0;
  const std::vector<Unit> units = make_units(jobs, order, sc, opt.scratch, n_single);

  // Each slot of each workspace may take an equal share of what is free now (plus what this
  // workspace already holds), less a margin for the context and fragmentation.
  uint64_t budget = opt.memory_budget;
  if (budget == 0) {
    uint64_t usable = uint64_t{1} << 32;  // emulation: 4 GiB of host memory
    if (!emu) {
      size_t free_b = 0, total_b = 0;
      GMS_CUDA(cudaMemGetInfo(&free_b, &total_b));
      usable = static_cast<uint64_t>(static_cast<double>(free_b + held_bytes(ws)) * 0.85);
    }
    const uint64_t margin = uint64_t{256} << 20;
    const uint64_t share = 2 * kMaxWorkspaces;
    budget = usable > 4 * margin ? (usable - margin) / share : usable / (2 * share);
  }
  size_t max_jobs = opt.chunk_jobs ? opt.chunk_jobs : kDefaultChunkJobs;
  std::vector<Chunk> chunks;
  size_t need_smem = 0;
  size_t oom_retries = 0;
  if (emu && opt.emulate_alloc_limit) {
    for (Slot& s : ws.slots) release_slot_buffers(s);  // the limit applies to fresh allocations
  }
  // Out of memory (another process, another workspace): halve the chunks and try again.
  for (;;) {
    chunks = plan_chunks(jobs, units, n_single, budget, max_jobs, opt.scratch);
    try {
      need_smem = reserve_for_chunks(ws, chunks, emu, opt.emulate_alloc_limit);
      break;
    } catch (const CudaOutOfMemory&) {
      for (Slot& s : ws.slots) release_slot_buffers(s);
      size_t largest = 0, largest_units = 0;
      for (const Chunk& c : chunks) {
        largest = std::max(largest, c.entries);
        largest_units = std::max(largest_units, c.end - c.begin);
      }
      if (largest_units <= 1) throw;  // a single unit per launch does not fit
      max_jobs = std::max<size_t>(largest / 2, 1);
      budget = std::max<uint64_t>(budget / 2, 1);
      ++oom_retries;
    }
  }
  st.host.order_s += order_timer.lap();
  if (!emu && need_smem > 48 * 1024 && !ws.smem_attr_set) {
    // blocks above 48 KB of dynamic shared memory must opt in
    GMS_CUDA(cudaFuncSetAttribute(extend_kernel<Layout::SharedRows>,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(kMaxSharedBytes)));
    ws.smem_attr_set = true;
  }

  // Copies: asynchronous on the slot's stream, or plain memcpy under emulation.
  auto copy = [emu](void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                    cudaStream_t stream) {
    if (bytes == 0) return;
    if (emu) std::memcpy(dst, src, bytes);
    else GMS_CUDA(cudaMemcpyAsync(dst, src, bytes, kind, stream));
  };

  out.results.assign(n_jobs, ExtendResult{});
  std::vector<uint32_t> pool;  // CIGARs in harvest order
  std::vector<uint64_t> pool_begin(n_jobs, 0);
  std::vector<uint32_t> pool_len(n_jobs, 0);

  auto launch = [&](size_t ci) {
    const Chunk& c = chunks[ci];
    Slot& s = ws.slots[ci % 2];
    const size_t n = c.end - c.begin;  // units
    StageClock pack_timer;
    // Pack: per-warp interleaved traceback (and, for tiles, strip-edge) regions, sequences back
    // to back. Tile pairs: unit l of a warp has traceback lanes 2l and 2l + 1 (stride twice the
    // warp's units) and edge lane l.
    const bool pairs = c.layout == Layout::TilePairs;
    const bool tiled = is_tiled(c.layout);
    const size_t per_unit = pairs ? 2 : 1;
    uint64_t seq_off = 0, dir_base = 0, slot_off = 0, scr_off = 0;
    auto place = [&](DevJob& d, const ExtendJob& j, uint64_t dir_lane, size_t stride) {
      const size_t ql = static_cast<size_t>(j.qlen), tl = ql + static_cast<size_t>(j.band) - 1;
      std::memcpy(s.h_seq.ptr + seq_off, j.query, ql);
      std::memcpy(s.h_seq.ptr + seq_off + ql, j.target, tl);
      d.q_off = seq_off;
      d.t_off = seq_off + ql;
      seq_off += ql + tl;
      // tiles count in 64-bit words and 8-byte edge records, rows in bytes and int32 words
      d.dir_off = tiled ? dir_base / 8 + dir_lane : dir_base + dir_lane;
      d.slot_off = slot_off;
      slot_off += ops_of(j);
      d.qlen = j.qlen;
      d.band = j.band;
      d.stride = static_cast<int32_t>(stride);
      d.flags = 0;
    };
    for (size_t w = 0; w < n; w += kWarp) {
      const size_t lanes = std::min<size_t>(kWarp, n - w);
      uint64_t dir_max = 0, edge_max = 0;
      for (size_t l = 0; l < lanes; ++l) {
        const ExtendJob& j = jobs[units[c.begin + w + l].a];
        dir_max = std::max(dir_max, dir_bytes_of(j, c.layout) * per_unit);
        edge_max = std::max(edge_max, scratch_words_of(j, c.layout));
      }
      for (size_t l = 0; l < lanes; ++l) {
        const Unit& u = units[c.begin + w + l];
        DevJob* d = s.h_jobs.ptr + (w + l) * per_unit;
        const ExtendJob& a = jobs[u.a];
        place(d[0], a, pairs ? 2 * l : l, lanes * per_unit);
        if (pairs) {
          if (u.b != kNoJob) {
            place(d[1], jobs[u.b], 2 * l + 1, 2 * lanes);
          } else {  // lane 1 repeats job a: its own traceback lane, no output
            d[1] = d[0];
            d[1].dir_off += 1;
            d[1].flags = kDuplicate;
          }
        }
        if (tiled) {
          d[0].scr_off = scr_off / 2 + l;
          if (pairs) d[1].scr_off = d[0].scr_off;
        } else {
          d[0].scr_off = scr_off;
          scr_off += scratch_words_of(a, c.layout);
        }
      }
      dir_base += dir_max * lanes;
      if (tiled) scr_off += edge_max * lanes;
    }
    if (dir_base != c.dir_bytes || seq_off != c.seq_bytes || slot_off != c.slot_ops ||
        scr_off != c.scratch_words) {
      throw std::logic_error("extend_batch_cuda: chunk layout disagrees with its plan");
    }
    st.host.pack_s += pack_timer.lap();
    copy(s.d_jobs.ptr, s.h_jobs.ptr, c.entries * sizeof(DevJob), cudaMemcpyHostToDevice,
         s.stream);
    copy(s.d_seq.ptr, s.h_seq.ptr, seq_off, cudaMemcpyHostToDevice, s.stream);
    const int threads = c.threads;
    const unsigned blocks = static_cast<unsigned>((n + threads - 1) / threads);
    const int stride_words = static_cast<int>(smem_stride_words(c.max_band));
    const int ni = static_cast<int>(n);
    if (emu) {
      *s.d_counter.ptr = 0;
      const auto t0 = std::chrono::steady_clock::now();
      with_layout(c.layout, [&](auto layout) {
        emulate_launch<decltype(layout)::value>(s, blocks, threads, ni, sc, stride_words);
      });
      s.emu_kernel_s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } else {
      GMS_CUDA(cudaMemsetAsync(s.d_counter.ptr, 0, sizeof(uint32_t), s.stream));
      // Consecutive chunks' kernels run one after the other, so that k_start..k_stop times this
      // kernel alone, not the tail of the previous chunk's too (its copies still overlap it).
      if (ci > 0) GMS_CUDA(cudaStreamWaitEvent(s.stream, ws.slots[(ci - 1) % 2].k_stop, 0));
      GMS_CUDA(cudaEventRecord(s.k_start, s.stream));
      const size_t smem = c.layout == Layout::SharedRows
                              ? static_cast<size_t>(threads) * stride_words * sizeof(int32_t)
                              : 0;
      if (pairs) {
        extend_pair_kernel<<<blocks, threads, 0, s.stream>>>(
            s.d_jobs.ptr, ni, s.d_seq.ptr, s.d_dirs.ptr, s.d_scratch.ptr, s.d_slots.ptr,
            s.d_packed.ptr, s.d_out.ptr, s.d_counter.ptr, sc);
      } else {
        auto kernel = c.layout == Layout::Tiles        ? extend_kernel<Layout::Tiles>
                      : c.layout == Layout::SharedRows ? extend_kernel<Layout::SharedRows>
                                                       : extend_kernel<Layout::GlobalRows>;
        kernel<<<blocks, threads, smem, s.stream>>>(
            s.d_jobs.ptr, ni, s.d_seq.ptr, s.d_dirs.ptr, s.d_scratch.ptr, s.d_slots.ptr,
            s.d_packed.ptr, s.d_out.ptr, s.d_counter.ptr, sc, stride_words);
      }
      GMS_CUDA(cudaGetLastError());
      GMS_CUDA(cudaEventRecord(s.k_stop, s.stream));
    }
    copy(s.h_out.ptr, s.d_out.ptr, c.entries * sizeof(JobOut), cudaMemcpyDeviceToHost,
         s.stream);
    copy(s.h_counter.ptr, s.d_counter.ptr, sizeof(uint32_t), cudaMemcpyDeviceToHost, s.stream);
    if (!emu) GMS_CUDA(cudaEventRecord(s.done, s.stream));
    st.threads_per_block = threads;
    st.layout = layout_name(c.layout);
  };

  auto harvest = [&](size_t ci) {
    const Chunk& c = chunks[ci];
    Slot& s = ws.slots[ci % 2];
    const size_t per_unit = c.layout == Layout::TilePairs ? 2 : 1;
    if (emu) {
      st.kernel_seconds += s.emu_kernel_s;
    } else {
      GMS_CUDA(cudaEventSynchronize(s.done));
      float ms = 0;
      GMS_CUDA(cudaEventElapsedTime(&ms, s.k_start, s.k_stop));
      st.kernel_seconds += ms * 1e-3;
    }
    const uint32_t total = *s.h_counter.ptr;
    if (total > c.slot_ops) throw std::logic_error("extend_batch_cuda: CIGAR buffer overrun");
    const size_t base = pool.size();
    pool.resize(base + total);
    // pageable destination: the copy has completed once the stream is synchronised
    copy(pool.data() + base, s.d_packed.ptr, total * sizeof(uint32_t), cudaMemcpyDeviceToHost,
         s.stream);
    if (!emu && total) GMS_CUDA(cudaStreamSynchronize(s.stream));
    StageClock unpack_timer;
    for (size_t p = 0; p < c.entries; ++p) {
      const Unit& u = units[c.begin + p / per_unit];
      const uint32_t id = p % per_unit == 0 ? u.a : u.b;
      if (id == kNoJob) continue;  // a pair's repeated lane
      const JobOut& o = s.h_out.ptr[p];
      out.results[id] = o.res;
      pool_begin[id] = base + o.off;
      pool_len[id] = o.n_ops;
    }
    st.host.unpack_s += unpack_timer.lap();
  };

  // Chunk c is queued before chunk c-1 is unpacked, so the GPU never waits for the host; slot
  // c % 2 is free again because chunk c-2 was unpacked in the previous iteration.
  for (size_t ci = 0; ci < chunks.size(); ++ci) {
    launch(ci);
    if (ci > 0) harvest(ci - 1);
  }
  if (!chunks.empty()) harvest(chunks.size() - 1);

  StageClock unpack_timer;
  out.cigar.clear();
  out.cigar.reserve(pool.size());
  out.cigar_offset.assign(n_jobs + 1, 0);
  for (size_t id = 0; id < n_jobs; ++id) {
    const auto b = pool.begin() + static_cast<std::ptrdiff_t>(pool_begin[id]);
    out.cigar.insert(out.cigar.end(), b, b + pool_len[id]);
    out.cigar_offset[id + 1] = static_cast<uint32_t>(out.cigar.size());
  }
  st.host.unpack_s += unpack_timer.lap();
  st.chunks = chunks.size();
  st.oom_retries = oom_retries;
  if (stats) *stats = st;
}

}  // namespace gms::cuda
