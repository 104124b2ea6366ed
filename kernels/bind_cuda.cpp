// gmsaccel._cuda: Python bindings of the CUDA extension kernels. Host C++ only (no CUDA headers),
// so importing the module never touches the driver; device queries report 0 devices when there is
// no GPU or no driver.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "gmsaccel/extend.hpp"
#include "gmsaccel/extend_batch.hpp"
#include "gmsaccel/haplotype.hpp"
#include "gmsaccel/py_batches.hpp"
#include "gpu_extend.hpp"
#include "gpu_haplotype.hpp"
#include "gpu_seed.hpp"

namespace py = pybind11;

namespace gms::cuda {
namespace {

// Emulation only: GMSACCEL_GPU_EMULATE_MEMORY (bytes) makes larger device allocations fail as
// out of memory, so that tests reach the CPU fallback of the application's backends.
uint64_t emulated_memory(bool emulate) {
  const char* v = emulate ? std::getenv("GMSACCEL_GPU_EMULATE_MEMORY") : nullptr;
  return v ? std::strtoull(v, nullptr, 10) : 0;
}

// Options for an application backend's call: emulation, and its memory limit when testing.
template <class Options>
Options backend_options(bool emulate) {
  Options opt;
  opt.emulate = emulate;
  opt.emulate_alloc_limit = emulated_memory(emulate);
  return opt;
}

// Runs a device call; false, with nothing computed, when even one job does not fit in the
// device's memory (the caller then runs the batch on the CPU).
template <class Call>
bool if_it_fits(Call&& call) {
  try {
    call();
  } catch (const CudaOutOfMemory&) {
    return false;
  }
  return true;
}

// The C-style entry points handed to _core through capsules (gms::ExtendBackendFn,
// gms::HaplotypeBackendFn).
bool extend_backend_entry(const ExtendJob* jobs, size_t n_jobs, const Scoring& sc,
                          ExtendBatchOutput& out, int device, bool emulate) {
  const auto opt = backend_options<CudaExtendOptions>(emulate);
  return if_it_fits([&] { extend_batch_cuda(jobs, n_jobs, sc, out, device, opt); });
}

bool haplotype_backend_entry(const HaplotypeJob* jobs, size_t n, const HaplotypeScoring& sc,
                             int32_t* costs, int device, bool emulate) {
  const auto opt = backend_options<CudaHaplotypeOptions>(emulate);
  return if_it_fits([&] { haplotype_costs_cuda(jobs, n, sc, costs, device, opt); });
}

// The C-style entry point handed to _core through a capsule (gms::SeedBackendFn).
bool seed_backend_entry(const MinimizerTable& table, int k, int w, const uint8_t* const* reads,
                        const uint32_t* lens, size_t n, SeedBatchOutput& out, int device,
                        bool emulate) {
  CudaSeedOptions opt;
  opt.emulate = emulate;
  return seed_anchors_cuda(table, k, w, reads, lens, n, out, device, opt);
}

// ---- argument conversion (py_batches.hpp: same rules and messages as _core.extend_batch) -----

// Jobs borrowing the Python objects' buffers (kept alive by `keep` and the caller's arguments).
std::vector<ExtendJob> make_jobs(const py::sequence& queries, const py::sequence& targets,
                                 const py::object& bands_obj, std::vector<py::object>& keep) {
  const pybatch::BandArray bands = pybatch::extend_bands(queries, targets, bands_obj);
  return pybatch::extend_jobs(queries, targets, bands, keep);
}

ScratchMode parse_scratch(const std::string& s) {
  if (s == "auto") return ScratchMode::Auto;
  if (s == "shared") return ScratchMode::Shared;
  if (s == "global") return ScratchMode::Global;
  if (s == "tiles") return ScratchMode::Tiles;
  if (s == "tiles32") return ScratchMode::Tiles32;
  throw py::value_error("scratch must be 'auto', 'tiles', 'tiles32', 'shared' or 'global', got '" +
                        s + "'");
}

// ---- entry points -----------------------------------------------------------------------------

py::tuple seed_anchors_py(const py::dict& table, const py::sequence& reads, int device,
                          bool emulate, uint64_t emulate_alloc_limit, const py::object& stats) {
  // Views of the index's arrays (kept alive by the dict's arrays, which hold the index).
  auto arr = [&table](const char* name, auto* type_tag) {
    using T = std::remove_pointer_t<decltype(type_tag)>;
    auto a = py::array_t<T, py::array::c_style>::ensure(table[name]);
    if (!a) throw py::type_error(std::string("table['") + name + "'] has the wrong type");
    return a;
  };
  const auto buckets = arr("buckets", static_cast<uint32_t*>(nullptr));
  const auto keys = arr("keys", static_cast<uint32_t*>(nullptr));
  const auto offs = arr("offs", static_cast<uint32_t*>(nullptr));
  const auto positions = arr("positions", static_cast<uint32_t*>(nullptr));
  const auto rev_bits = arr("rev_bits", static_cast<uint64_t*>(nullptr));
  // The kernel trusts these arrays: check that they form a table (Index.table_arrays()). Key and
  // position values only steer comparisons and diagonals; the sizes and offsets bound every load.
  const auto nb = static_cast<size_t>(buckets.size()), nk = static_cast<size_t>(keys.size());
  const auto np = static_cast<uint64_t>(positions.size());
  const int shift = table["bucket_shift"].cast<int>();
  const uint64_t limit = table["hash_limit"].cast<uint64_t>();
  bool ok = nb >= 2 && static_cast<size_t>(offs.size()) == nk + 1 && shift >= 0 && shift <= 32 &&
            (limit >> shift) == nb - 1 && buckets.data()[nb - 1] == nk && offs.data()[0] == 0 &&
            offs.data()[nk] == np && buckets.data()[0] == 0 &&
            static_cast<uint64_t>(rev_bits.size()) == MinimizerTable::rev_bit_words(np);
  MinimizerTable t;
  t.buckets = buckets.data();
  t.keys = keys.data();
  t.offs = offs.data();
  t.positions = positions.data();
  t.rev_bits = rev_bits.data();
  t.n_buckets = nb - 1;
  t.n_keys = nk;
  t.n_positions = np;
  t.bucket_shift = shift;
  t.hash_limit = limit;
  t.id = table["id"].cast<uint64_t>();
  if (!ok || !t.tables_ascend())
    throw py::value_error("table is not a minimizer table (use Index.table_arrays())");
  if (t.id == 0) throw py::value_error("table['id'] must be nonzero");
  const int k = table["k"].cast<int>(), w = table["w"].cast<int>();
  std::vector<py::object> keep;
  const pybatch::SeedReads r = pybatch::seed_reads(reads, keep);
  CudaSeedOptions opt;
  opt.emulate = emulate;
  opt.emulate_alloc_limit = emulate_alloc_limit;
  CudaSeedStats st;
  SeedBatchOutput out;
  bool fitted = false;
  {
    py::gil_scoped_release nogil;
    fitted = seed_anchors_cuda(t, k, w, r.data.data(), r.lens.data(), r.data.size(), out, device,
                               opt, &st);
  }
  if (!fitted) throw std::runtime_error(kGpuSeedDoesNotFit);
  if (!stats.is_none()) {
    py::dict d = stats.cast<py::dict>();
    d["upload_s"] = st.upload_s;
    d["pack_s"] = st.pack_s;
    d["unpack_s"] = st.unpack_s;
    d["kernel_seconds"] = st.kernel_seconds;
    d["anchors"] = st.anchors;
    d["oom_splits"] = st.oom_splits;
  }
  return pybatch::anchor_arrays(out);
}


py::tuple extend_batch_py(const py::sequence& queries, const py::sequence& targets,
                          const py::object& bands, int device, int64_t match, int64_t mismatch,
                          int64_t gap_open, int64_t gap_extend, int64_t clip, int64_t n_penalty,
                          const std::string& scratch, size_t chunk_jobs, uint64_t memory_budget,
                          bool emulate, uint64_t emulate_alloc_limit, const py::object& stats) {
  const Scoring sc =
      pybatch::extend_scoring(match, mismatch, gap_open, gap_extend, clip, n_penalty);
  CudaExtendOptions opt;
  opt.scratch = parse_scratch(scratch);
  opt.chunk_jobs = chunk_jobs;
  opt.memory_budget = memory_budget;
  opt.emulate = emulate;
  opt.emulate_alloc_limit = emulate_alloc_limit;
  std::vector<py::object> keep;
  const std::vector<ExtendJob> jobs = make_jobs(queries, targets, bands, keep);
  ExtendBatchOutput out;
  CudaExtendStats st;
  {
    py::gil_scoped_release release;
    extend_batch_cuda(jobs.data(), jobs.size(), sc, out, device, opt, &st);
  }
  if (!stats.is_none()) {  // a dict to fill, for tests of the chunking and the retry
    py::dict d = stats.cast<py::dict>();
    d["chunks"] = st.chunks;
    d["oom_retries"] = st.oom_retries;
    d["layout"] = st.layout;
  }
  return pybatch::extend_results(out, jobs.size());
}

// The shared definition compiled by the host compiler, job by job: the CPU side of the GPU
// equivalence tests even where _core lacks extend_batch.
py::tuple extend_batch_host_py(const py::sequence& queries, const py::sequence& targets,
                               const py::object& bands, int64_t match, int64_t mismatch,
                               int64_t gap_open, int64_t gap_extend, int64_t clip,
                               int64_t n_penalty) {
  const Scoring sc =
      pybatch::extend_scoring(match, mismatch, gap_open, gap_extend, clip, n_penalty);
  std::vector<py::object> keep;
  const std::vector<ExtendJob> jobs = make_jobs(queries, targets, bands, keep);
  ExtendBatchOutput out;
  {
    py::gil_scoped_release release;
    out.results.resize(jobs.size());
    out.cigar_offset.assign(jobs.size() + 1, 0);
    std::vector<uint8_t> dirs;
    std::vector<int32_t> h, f;
    std::vector<uint32_t> ops;
    for (size_t i = 0; i < jobs.size(); ++i) {
      const ExtendJob& j = jobs[i];
      dirs.resize(static_cast<size_t>(j.qlen) * static_cast<size_t>(j.band));
      h.resize(static_cast<size_t>(j.band) + 1);
      f.resize(h.size());
      ops.resize(2 * static_cast<size_t>(j.qlen) + static_cast<size_t>(j.band));
      out.results[i] = extend_scalar(j, sc, dirs.data(), 1, h.data(), f.data());
      const int32_t n = extend_traceback(dirs.data(), 1, j.band, out.results[i], ops.data());
      out.cigar.insert(out.cigar.end(), ops.begin(), ops.begin() + n);
      out.cigar_offset[i + 1] = static_cast<uint32_t>(out.cigar.size());
    }
  }
  return pybatch::extend_results(out, jobs.size());
}

// Read-like jobs: the query is the target window's centre diagonal with ~1% substitutions, 0.1%
// N, and rare 1-base indels, so alignments look like real extensions (not pure noise).
struct Generated {
  std::vector<uint8_t> seq;
  std::vector<ExtendJob> jobs;
};

Generated generate(size_t n_jobs, int32_t qlen, int32_t band, uint64_t seed) {
  if (qlen < 1 || band < 1) throw py::value_error("qlen and band must be >= 1");
  Generated g;
  const size_t ql = static_cast<size_t>(qlen), tl = ql + static_cast<size_t>(band) - 1;
  g.seq.resize(n_jobs * (ql + tl));
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> base(0, 3);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (size_t i = 0; i < n_jobs; ++i) {
    uint8_t* q = g.seq.data() + i * (ql + tl);
    uint8_t* t = q + ql;
    for (size_t k = 0; k < tl; ++k) t[k] = static_cast<uint8_t>(u(rng) < 0.001 ? kBaseN : base(rng));
    size_t pos = static_cast<size_t>(band - 1) / 2;
    for (size_t r = 0; r < ql; ++r) {
      const double x = u(rng);
      if (x < 0.002) {  // insertion: a base the target lacks
        q[r] = static_cast<uint8_t>(base(rng));
        continue;
      }
      if (x < 0.004) ++pos;  // deletion: skip a target base
      uint8_t b = pos < tl ? t[pos] : static_cast<uint8_t>(base(rng));
      if (u(rng) < 0.01) b = static_cast<uint8_t>((b + 1 + base(rng) % 3) % 4);
      q[r] = b;
      ++pos;
    }
  }
  g.jobs.resize(n_jobs);
  for (size_t i = 0; i < n_jobs; ++i) {
    const uint8_t* q = g.seq.data() + i * (ql + tl);
    g.jobs[i] = ExtendJob{q, q + ql, qlen, band};
  }
  return g;
}

py::tuple random_jobs_py(size_t n_jobs, int32_t qlen, int32_t band, uint64_t seed) {
  const Generated g = generate(n_jobs, qlen, band, seed);
  py::list queries(n_jobs), targets(n_jobs);
  py::array_t<int64_t> bands(n_jobs);
  auto b = bands.mutable_unchecked<1>();
  for (size_t i = 0; i < n_jobs; ++i) {
    const ExtendJob& j = g.jobs[i];
    queries[i] = py::bytes(reinterpret_cast<const char*>(j.query), static_cast<size_t>(j.qlen));
    targets[i] = py::bytes(reinterpret_cast<const char*>(j.target),
                           static_cast<size_t>(j.qlen + j.band - 1));
    b(static_cast<py::ssize_t>(i)) = j.band;
  }
  return py::make_tuple(queries, targets, bands);
}

// Warm-up run, then the best of `repeats` end-to-end wall times and kernel times of run(),
// returned with the GCUPS figures both timing functions report. run() fills *stats.
template <typename Stats, typename Run>
py::dict best_of(Run run, int repeats, double cells, const char* len_key, int32_t len,
                 size_t n_jobs, int32_t band, Stats& st) {
  double best_kernel = 1e300, best_e2e = 1e300;
  HostPhases best_host;  // of the best end-to-end run
  {
    py::gil_scoped_release release;
    run();  // context, module load, workspace allocation and pinning stay out of the timings
    for (int r = 0; r < repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      run();
      const auto t1 = std::chrono::steady_clock::now();
      const double e2e = std::chrono::duration<double>(t1 - t0).count();
      if (e2e < best_e2e) {
        best_e2e = e2e;
        best_host = st.host;
      }
      best_kernel = std::min(best_kernel, st.kernel_seconds);
    }
  }
  py::dict d;
  d["n_jobs"] = n_jobs;
  d[len_key] = len;
  d["band"] = band;
  d["cells"] = cells;
  d["kernel_s"] = best_kernel;
  d["end_to_end_s"] = best_e2e;
  d["gcups_kernel"] = cells / best_kernel * 1e-9;
  d["gcups_end_to_end"] = cells / best_e2e * 1e-9;
  d["chunks"] = st.chunks;
  d["threads_per_block"] = st.threads_per_block;
  d["layout"] = st.layout;
  // host phases of the best end-to-end run (the rest of it is transfers and waiting)
  d["host_order_s"] = best_host.order_s;
  d["host_pack_s"] = best_host.pack_s;
  d["host_unpack_s"] = best_host.unpack_s;
  return d;
}

py::dict time_extend_py(size_t n_jobs, int32_t qlen, int32_t band, int repeats, uint64_t seed,
                        int device, const std::string& scratch, size_t chunk_jobs,
                        bool emulate) {
  if (repeats < 1) throw py::value_error("repeats must be >= 1");
  const Generated g = generate(n_jobs, qlen, band, seed);
  CudaExtendOptions opt;
  opt.scratch = parse_scratch(scratch);
  opt.chunk_jobs = chunk_jobs;
  opt.emulate = emulate;
  const Scoring sc;
  CudaExtendStats st;
  ExtendBatchOutput out;
  auto run = [&] { extend_batch_cuda(g.jobs.data(), n_jobs, sc, out, device, opt, &st); };
  return best_of(run, repeats, static_cast<double>(n_jobs) * qlen * band, "qlen", qlen, n_jobs,
                 band, st);
}

// ---- haplotype costs -------------------------------------------------------------------------

// Same argument rules as _core.haplotype_costs (type errors keep this module's "of base codes"
// wording); the jobs borrow the Python buffers.
std::vector<HaplotypeJob> make_hap_jobs(const py::sequence& reads, const py::sequence& quals,
                                        const py::sequence& haps, const py::object& bands_obj,
                                        std::vector<py::object>& keep) {
  const pybatch::BandArray bands = pybatch::haplotype_bands(reads, quals, haps, bands_obj);
  return pybatch::haplotype_jobs(reads, quals, haps, bands, keep,
                                 pybatch::SpanWording::BaseCodes);
}

py::array_t<int32_t> haplotype_costs_py(const py::sequence& reads, const py::sequence& quals,
                                        const py::sequence& haps, const py::object& bands,
                                        int device, int64_t gap_open, int64_t gap_extend,
                                        int64_t max_qual, const std::string& scratch,
                                        size_t chunk_jobs, uint64_t memory_budget, bool emulate,
                                        uint64_t emulate_alloc_limit, const py::object& stats) {
  const HaplotypeScoring sc = pybatch::haplotype_scoring(gap_open, gap_extend, max_qual);
  CudaHaplotypeOptions opt;
  opt.scratch = parse_scratch(scratch);
  opt.chunk_jobs = chunk_jobs;
  opt.memory_budget = memory_budget;
  opt.emulate = emulate;
  opt.emulate_alloc_limit = emulate_alloc_limit;
  std::vector<py::object> keep;
  const std::vector<HaplotypeJob> jobs = make_hap_jobs(reads, quals, haps, bands, keep);
  py::array_t<int32_t> costs(jobs.size());
  int32_t* out = costs.mutable_data();
  CudaHaplotypeStats st;
  {
    py::gil_scoped_release release;
    haplotype_costs_cuda(jobs.data(), jobs.size(), sc, out, device, opt, &st);
  }
  if (!stats.is_none()) {  // a dict to fill, for tests of the chunking and the retry
    py::dict d = stats.cast<py::dict>();
    d["chunks"] = st.chunks;
    d["oom_retries"] = st.oom_retries;
    d["chunk_jobs"] = st.chunk_jobs;
    d["threads_per_block"] = st.threads_per_block;
    d["layout"] = st.layout;
  }
  return costs;
}

// Caller-like jobs: the read is the haplotype window's centre diagonal with ~1% substitutions
// and rare 1-base indels, qualities 2..41 (some 0), rare N, and off-haplotype codes (5) at the
// window's ends as near contig ends.
struct HapGenerated {
  std::vector<uint8_t> seq;
  std::vector<HaplotypeJob> jobs;
};

HapGenerated generate_hap(size_t n_jobs, int32_t len, int32_t band, uint64_t seed) {
  if (len < 1 || band < 1) throw py::value_error("len and band must be >= 1");
  HapGenerated g;
  const size_t m = static_cast<size_t>(len), hl = m + static_cast<size_t>(band) - 1;
  const size_t per = 2 * m + hl;
  g.seq.resize(n_jobs * per);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> base(0, 3), qual(2, 41);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (size_t i = 0; i < n_jobs; ++i) {
    uint8_t* r = g.seq.data() + i * per;
    uint8_t* q = r + m;
    uint8_t* h = q + m;
    for (size_t k = 0; k < hl; ++k) h[k] = static_cast<uint8_t>(u(rng) < 0.001 ? kBaseN : base(rng));
    if (u(rng) < 0.02) {  // window overhanging a contig end
      const size_t cut = static_cast<size_t>(u(rng) * static_cast<double>(hl) * 0.3);
      const bool left = u(rng) < 0.5;
      for (size_t k = 0; k < cut; ++k) h[left ? k : hl - 1 - k] = kBaseOff;
    }
    size_t pos = static_cast<size_t>(band - 1) / 2;
    for (size_t k = 0; k < m; ++k) {
      const double x = u(rng);
      q[k] = static_cast<uint8_t>(u(rng) < 0.01 ? 0 : qual(rng));
      if (x < 0.002) {  // insertion: a base the haplotype lacks
        r[k] = static_cast<uint8_t>(base(rng));
        continue;
      }
      if (x < 0.004) ++pos;  // deletion: skip a haplotype base
      uint8_t b = pos < hl && h[pos] < kBaseN ? h[pos] : static_cast<uint8_t>(base(rng));
      if (u(rng) < 0.01) b = static_cast<uint8_t>((b + 1 + base(rng) % 3) % 4);
      if (u(rng) < 0.001) b = kBaseN;
      r[k] = b;
      ++pos;
    }
  }
  g.jobs.resize(n_jobs);
  for (size_t i = 0; i < n_jobs; ++i) {
    const uint8_t* r = g.seq.data() + i * per;
    g.jobs[i] = HaplotypeJob{r, r + m, r + 2 * m, len, band};
  }
  return g;
}

py::tuple random_haplotype_jobs_py(size_t n_jobs, int32_t len, int32_t band, uint64_t seed) {
  const HapGenerated g = generate_hap(n_jobs, len, band, seed);
  py::list reads(n_jobs), quals(n_jobs), haps(n_jobs);
  py::array_t<int64_t> bands(n_jobs);
  auto b = bands.mutable_unchecked<1>();
  for (size_t i = 0; i < n_jobs; ++i) {
    const HaplotypeJob& j = g.jobs[i];
    const size_t m = static_cast<size_t>(j.len);
    reads[i] = py::bytes(reinterpret_cast<const char*>(j.read), m);
    quals[i] = py::bytes(reinterpret_cast<const char*>(j.qual), m);
    haps[i] = py::bytes(reinterpret_cast<const char*>(j.hap), m + j.band - 1);
    b(static_cast<py::ssize_t>(i)) = j.band;
  }
  return py::make_tuple(reads, quals, haps, bands);
}

py::dict time_haplotype_py(size_t n_jobs, int32_t len, int32_t band, int repeats, uint64_t seed,
                           int device, const std::string& scratch, size_t chunk_jobs,
                           bool emulate) {
  if (repeats < 1) throw py::value_error("repeats must be >= 1");
  const HapGenerated g = generate_hap(n_jobs, len, band, seed);
  CudaHaplotypeOptions opt;
  opt.scratch = parse_scratch(scratch);
  opt.chunk_jobs = chunk_jobs;
  opt.emulate = emulate;
  const HaplotypeScoring sc;
  CudaHaplotypeStats st;
  std::vector<int32_t> costs(n_jobs);
  auto run = [&] {
    haplotype_costs_cuda(g.jobs.data(), n_jobs, sc, costs.data(), device, opt, &st);
  };
  return best_of(run, repeats, static_cast<double>(n_jobs) * len * band, "len", len, n_jobs,
                 band, st);
}

py::list devices_py() {
  py::list out;
  for (const DeviceInfo& d : devices()) {
    py::dict e;
    e["index"] = d.index;
    e["name"] = d.name;
    e["total_memory"] = d.total_memory;
    e["compute_capability"] = py::make_tuple(d.major, d.minor);
    e["multiprocessors"] = d.multiprocessors;
    out.append(e);
  }
  return out;
}

}  // namespace
}  // namespace gms::cuda

PYBIND11_MODULE(_cuda, m) {
  using namespace gms::cuda;
  m.doc() = "gmsaccel CUDA kernels: batched banded extension and haplotype costs on the GPU";
  m.def("extend_backend", [] {
        const gms::ExtendBackendFn fn = &extend_backend_entry;
        return py::capsule(reinterpret_cast<void*>(fn), "gmsaccel.extend_backend");
      }, "Capsule of the GPU extension entry point, for gmsaccel._core.set_extend_backend");
  m.def("seed_backend", [] {
        const gms::SeedBackendFn fn = &seed_backend_entry;
        return py::capsule(reinterpret_cast<void*>(fn), "gmsaccel.seed_backend");
      }, "Capsule of the GPU seeding entry point, for gmsaccel._core.set_seed_backend");
  m.def("seed_anchors", &seed_anchors_py, py::arg("table"), py::arg("reads"),
        py::arg("device") = 0, py::kw_only(), py::arg("emulate") = false,
        py::arg("emulate_alloc_limit") = 0, py::arg("stats") = py::none(),
        "Anchors of each read (base codes) on a CUDA device, as _core.batch_anchors returns\n"
        "them: table is Index.table_arrays() of the index. emulate=True runs the kernel's\n"
        "threads on the host; emulate_alloc_limit (emulation) makes larger device allocations\n"
        "fail as out of memory, to exercise the halving retry; stats, a dict to fill.");
  m.def("device_count", &device_count, "Number of usable CUDA devices (0 without GPU or driver)");
  m.def("device_problem", &device_problem,
        "Why no CUDA device is usable ('' when one is): the CUDA runtime's error name and text");
  m.def("devices", &devices_py,
        "One dict per device: index, name, total_memory (bytes), compute_capability (major, "
        "minor), multiprocessors");
  m.def("extend_batch", &extend_batch_py, py::arg("queries"), py::arg("targets"),
        py::arg("bands"), py::arg("device") = 0, py::arg("match") = 1, py::arg("mismatch") = 4,
        py::arg("gap_open") = 6, py::arg("gap_extend") = 1, py::arg("clip") = 5,
        py::arg("n_penalty") = 1, py::kw_only(), py::arg("scratch") = "auto",
        py::arg("chunk_jobs") = 0, py::arg("memory_budget") = 0, py::arg("emulate") = false,
        py::arg("emulate_alloc_limit") = 0, py::arg("stats") = py::none(),
        "_core.extend_batch on a CUDA device: same arguments (device instead of level), same\n"
        "results. For tests and tuning: scratch places the DP state (auto = tiles: register\n"
        "tiles with a strip edge in global memory, two jobs per thread in 16-bit lanes where\n"
        "they fit; tiles32: one job per thread in 32 bits; shared | global: the scalar rows),\n"
        "chunk_jobs caps the jobs per kernel launch and memory_budget the device bytes per\n"
        "buffer slot (0 = automatic), and emulate=True runs the whole pipeline with the kernel's\n"
        "threads executed on the host (no GPU needed).");
  m.def("extend_batch_host", &extend_batch_host_py, py::arg("queries"), py::arg("targets"),
        py::arg("bands"), py::arg("match") = 1, py::arg("mismatch") = 4, py::arg("gap_open") = 6,
        py::arg("gap_extend") = 1, py::arg("clip") = 5, py::arg("n_penalty") = 1,
        "Reference: the shared scalar definition run on the host, job by job (no GPU needed)");
  m.def("random_jobs", &random_jobs_py, py::arg("n_jobs"), py::arg("qlen"), py::arg("band"),
        py::arg("seed") = 0,
        "Read-like random jobs as (queries, targets, bands), the ones time_extend runs");
  m.def("time_extend", &time_extend_py, py::arg("n_jobs"), py::arg("qlen"), py::arg("band"),
        py::arg("repeats") = 3, py::arg("seed") = 0, py::arg("device") = 0,
        py::arg("scratch") = "auto", py::arg("chunk_jobs") = 0, py::arg("emulate") = false,
        "Times extension of random_jobs(n_jobs, qlen, band, seed) on the GPU after a warm-up.\n"
        "Returns a dict with the best kernel-only seconds (cudaEvent), the best end-to-end\n"
        "seconds (packing, transfers, kernels, unpacking) and their GCUPS (cells = qlen * band\n"
        "per job). emulate=True times the host emulation (for dry runs of scripts).");
  m.def("haplotype_backend", [] {
        const gms::HaplotypeBackendFn fn = &haplotype_backend_entry;
        return py::capsule(reinterpret_cast<void*>(fn), "gmsaccel.haplotype_backend");
      }, "Capsule of the GPU haplotype-cost entry point, for "
         "gmsaccel._core.set_haplotype_backend");
  m.def("haplotype_costs", &haplotype_costs_py, py::arg("reads"), py::arg("quals"),
        py::arg("haps"), py::arg("bands"), py::arg("device") = 0, py::arg("gap_open") = 45,
        py::arg("gap_extend") = 10, py::arg("max_qual") = 40, py::kw_only(),
        py::arg("scratch") = "auto", py::arg("chunk_jobs") = 0, py::arg("memory_budget") = 0,
        py::arg("emulate") = false, py::arg("emulate_alloc_limit") = 0,
        py::arg("stats") = py::none(),
        "_core.haplotype_costs on a CUDA device: same arguments (device instead of level), same\n"
        "costs. For tests and tuning: scratch (auto = tiles | shared | global: where the DP\n"
        "state lives, as for extend_batch), chunk_jobs (jobs per launch\n"
        "at most), memory_budget (device bytes per buffer slot), emulate=True (kernel threads\n"
        "run on the host), emulate_alloc_limit (emulation: device allocations above this many\n"
        "bytes fail as out of memory, to exercise the halving retry), stats (a dict to fill).");
  m.def("random_haplotype_jobs", &random_haplotype_jobs_py, py::arg("n_jobs"), py::arg("len"),
        py::arg("band"), py::arg("seed") = 0,
        "Caller-like random jobs as (reads, quals, haps, bands), the ones time_haplotype runs");
  m.def("time_haplotype", &time_haplotype_py, py::arg("n_jobs"), py::arg("len"), py::arg("band"),
        py::arg("repeats") = 3, py::arg("seed") = 0, py::arg("device") = 0,
        py::arg("scratch") = "auto", py::arg("chunk_jobs") = 0, py::arg("emulate") = false,
        "Times haplotype costs of random_haplotype_jobs(n_jobs, len, band, seed) on the GPU after\n"
        "a warm-up: best kernel-only and end-to-end seconds and GCUPS (cells = len * band).");
  m.def("release_workspaces", [] {
        release_workspaces();
        release_haplotype_workspaces();
        release_seed_workspaces();
      },
        "Frees the device and pinned buffers cached between calls");
}
