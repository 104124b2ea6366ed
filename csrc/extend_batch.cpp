// Batched extension: level dispatch, and the group driver shared by the SIMD kernels (kept here,
// in a translation unit built for the baseline ISA; see extend_simd_impl.hpp).
#include <atomic>
#include "gmsaccel/extend_batch.hpp"

#include <algorithm>
#include <numeric>
#include <vector>

#include "band_groups.hpp"
#include "extend_simd_impl.hpp"

namespace gms {
namespace detail {

namespace {
// Runs one job through the scalar definition, appending its CIGAR to `pool`.
void scalar_job(const ExtendJob& job, const Scoring& sc, std::vector<uint8_t>& dirs,
                std::vector<int32_t>& h, std::vector<int32_t>& e, std::vector<uint32_t>& ops,
                ExtendResult& res, std::vector<uint32_t>& pool) {
  const size_t cells = static_cast<size_t>(job.qlen) * static_cast<size_t>(job.band);
  if (dirs.size() < cells) dirs.resize(cells);
  const size_t row = static_cast<size_t>(job.band) + 1;
  if (h.size() < row) { h.resize(row); e.resize(row); }
  const size_t max_ops = 2 * static_cast<size_t>(job.qlen) + static_cast<size_t>(job.band);
  if (ops.size() < max_ops) ops.resize(max_ops);
  res = extend_scalar(job, sc, dirs.data(), 1, h.data(), e.data());
  const int32_t n = extend_traceback(dirs.data(), 1, job.band, res, ops.data());
  pool.insert(pool.end(), ops.begin(), ops.begin() + n);
}
}  // namespace

void extend_batch_grouped(const ExtendJob* jobs, size_t n_jobs, const Scoring& sc,
                          ExtendBatchOutput& out, int lanes, GroupKernel kernel) {
  if (!extend_scoring_fits_int16(sc)) {
    extend_batch_scalar(jobs, n_jobs, sc, out);
    return;
  }
  out.results.assign(n_jobs, ExtendResult{});
  // CIGARs are produced in group order; remember where each landed, then lay them out in job order.
  std::vector<uint32_t> pool;
  std::vector<size_t> pool_begin(n_jobs), pool_len(n_jobs);
  std::vector<uint8_t> sdirs;
  std::vector<int32_t> sh, se;
  std::vector<uint32_t> ops;

  const auto scalar_one = [&](size_t id) {
    pool_begin[id] = pool.size();
    scalar_job(jobs[id], sc, sdirs, sh, se, ops, out.results[id], pool);
    pool_len[id] = pool.size() - pool_begin[id];
  };

  std::vector<uint32_t> order;
  order.reserve(n_jobs);
  for (size_t i = 0; i < n_jobs; ++i) {
    if (extend_job_fits_int16(jobs[i], sc)) {
      order.push_back(static_cast<uint32_t>(i));
    } else {
      scalar_one(i);
    }
  }
  const size_t L = static_cast<size_t>(lanes);
  std::vector<const ExtendJob*> lane_job(L);
  std::vector<int16_t> query, target, tscore, h, f;
  std::vector<uint8_t> dirs, stage;
  std::vector<int32_t> score(L), r_end(L), k_end(L);
  const auto scalar = [&](const uint32_t* ids, size_t count) {
    for (size_t g = 0; g < count; ++g) scalar_one(ids[g]);
  };
  const auto group = [&](const uint32_t* ids, size_t live, int32_t band, int32_t max_qlen) {
    const size_t rows = static_cast<size_t>(max_qlen);
    const size_t tlen = rows + static_cast<size_t>(band) - 1;
    query.resize(rows * L);
    target.resize(tlen * L);
    tscore.resize(tlen * L);
    h.resize((static_cast<size_t>(band) + 1) * L);
    f.resize(h.size());
    dirs.resize(rows * static_cast<size_t>(band) * L);
    stage.resize(tlen * L);
    for (size_t l = 0; l < L; ++l) lane_job[l] = l < live ? &jobs[ids[l]] : nullptr;
    GroupWork w;
    w.lane_job = lane_job.data();
    w.band = band;
    w.max_qlen = max_qlen;
    w.query = query.data();
    w.target = target.data();
    w.tscore = tscore.data();
    w.h = h.data();
    w.f = f.data();
    w.dirs = dirs.data();
    w.stage = stage.data();
    w.score = score.data();
    w.r_end = r_end.data();
    w.k_end = k_end.data();
    kernel(w, sc);
    const size_t max_ops = 2 * rows + static_cast<size_t>(band);
    if (ops.size() < max_ops) ops.resize(max_ops);
    for (size_t l = 0; l < live; ++l) {
      const uint32_t id = ids[l];
      ExtendResult& res = out.results[id];
      res.score = score[l];
      res.q_end = r_end[l] + 1;
      res.t_end = r_end[l] + k_end[l] + 1;
      const int32_t n = extend_traceback(dirs.data() + l, L, band, res, ops.data());
      pool_begin[id] = pool.size();
      pool_len[id] = static_cast<size_t>(n);
      pool.insert(pool.end(), ops.begin(), ops.begin() + n);
    }
  };
  for_each_band_group(jobs, order, &ExtendJob::qlen, L, scalar, group);

  out.cigar.clear();
  out.cigar.reserve(pool.size());
  out.cigar_offset.assign(n_jobs + 1, 0);
  for (size_t id = 0; id < n_jobs; ++id) {
    out.cigar.insert(out.cigar.end(), pool.begin() + static_cast<std::ptrdiff_t>(pool_begin[id]),
                     pool.begin() + static_cast<std::ptrdiff_t>(pool_begin[id] + pool_len[id]));
    out.cigar_offset[id + 1] = static_cast<uint32_t>(out.cigar.size());
  }
}

}  // namespace detail

void extend_batch(const ExtendJob* jobs, size_t n_jobs, const Scoring& sc, ExtendBatchOutput& out,
                  SimdLevel level) {
  const SimdLevel hw = max_supported_simd_level();
  if (static_cast<int>(level) > static_cast<int>(hw)) level = hw;  // never run what the CPU lacks
  switch (level) {
    case SimdLevel::AVX512: extend_batch_avx512(jobs, n_jobs, sc, out); return;
    case SimdLevel::AVX2: extend_batch_avx2(jobs, n_jobs, sc, out); return;
    case SimdLevel::Scalar: break;
  }
  extend_batch_scalar(jobs, n_jobs, sc, out);
}

namespace {
std::atomic<ExtendBackendFn> g_backend{nullptr};
}  // namespace

void set_extend_backend(ExtendBackendFn fn) { g_backend.store(fn); }
ExtendBackendFn extend_backend() { return g_backend.load(); }

}  // namespace gms
