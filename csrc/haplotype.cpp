// Read-versus-haplotype costs of many jobs: level dispatch, the scalar loop, and the group driver
// shared by the SIMD kernels (kept here, in a translation unit built for the baseline ISA; see
// haplotype_simd_impl.hpp).
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "gmsaccel/haplotype.hpp"
#include "band_groups.hpp"
#include "gmsaccel/simd.hpp"
#include "haplotype_simd_impl.hpp"

namespace gms {
namespace detail {

namespace {
// Wider bands would make a group's scratch large for little gain; they run scalar.
constexpr int32_t kMaxSimdBand = 4096;
constexpr int32_t kInt16Max = 32767;

// The int16 saturation value: ceiling + any single step (substitution, gap open or extend) must
// stay <= INT16_MAX. Returns <= 0 when no ceiling works (then everything runs scalar).
// quals are bytes, so no substitution costs more than 255 or the off-haplotype cost
int32_t max_sub_cost(const HaplotypeScoring& sc) {
  return std::max(std::min(sc.max_qual, 255), kOffHaplotypeCost);
}

int32_t simd_ceiling(const HaplotypeScoring& sc) {
  return kInt16Max - std::max({max_sub_cost(sc), sc.gap_open, sc.gap_extend});
}

// Whether the int16 kernel returns this job's exact cost: the all-match path along diagonal 0 is
// one alignment, so its cost bounds the optimum, and an optimum below the ceiling is reproduced
// exactly (see haplotype_simd_impl.hpp).
bool simd_job_ok(const HaplotypeJob& job, const HaplotypeScoring& sc, int32_t ceiling,
                 int32_t max_sub) {
  if (job.len > kInt16Max || job.band > kMaxSimdBand) return false;
  // Usual case, decided without touching the job's bases (a cache miss per job otherwise).
  if (static_cast<int64_t>(job.len) * max_sub < ceiling) return true;
  int32_t diag = 0;
  for (int32_t r = 0; r < job.len; ++r) {
    diag += haplotype_sub_cost(job.read[r], job.qual[r], job.hap[r], sc.max_qual);
    if (diag >= ceiling) return false;
  }
  return true;
}

void check_inputs(const HaplotypeJob* jobs, size_t n, const HaplotypeScoring& sc) {
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
}

// Scalar costs of the jobs listed in `ids` (all when ids is null), reusing one pair of rows.
void scalar_jobs(const HaplotypeJob* jobs, const uint32_t* ids, size_t n,
                 const HaplotypeScoring& sc, int32_t* costs, std::vector<int32_t>& rows) {
  for (size_t x = 0; x < n; ++x) {
    const size_t id = ids ? ids[x] : x;
    const size_t w = static_cast<size_t>(jobs[id].band) + 1;
    if (rows.size() < 2 * w) rows.resize(2 * w);
    costs[id] = haplotype_cost_scalar(jobs[id], sc, rows.data(), rows.data() + w);
  }
}
}  // namespace

void haplotype_costs_scalar(const HaplotypeJob* jobs, size_t n, const HaplotypeScoring& sc,
                            int32_t* costs) {
  std::vector<int32_t> rows;
  scalar_jobs(jobs, nullptr, n, sc, costs, rows);
}

void haplotype_costs_grouped(const HaplotypeJob* jobs, size_t n, const HaplotypeScoring& sc,
                             int32_t* costs, int lanes, HapGroupKernel kernel) {
  const int32_t ceiling = simd_ceiling(sc), max_sub = max_sub_cost(sc);
  std::vector<int32_t> rows;
  std::vector<uint32_t> order, rest;
  order.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (ceiling > 0 && simd_job_ok(jobs[i], sc, ceiling, max_sub)) {
      order.push_back(static_cast<uint32_t>(i));
    } else {
      rest.push_back(static_cast<uint32_t>(i));
    }
  }
  scalar_jobs(jobs, rest.data(), rest.size(), sc, costs, rows);
  const size_t L = static_cast<size_t>(lanes);
  std::vector<const HaplotypeJob*> lane_job(L);
  std::vector<int16_t> read, qcost, hap, tcost, h, iv;
  std::vector<uint8_t> row_end, stage;
  std::vector<int32_t> out(L);
  const auto scalar = [&](const uint32_t* ids, size_t count) {
    scalar_jobs(jobs, ids, count, sc, costs, rows);
  };
  const auto group = [&](const uint32_t* ids, size_t live, int32_t band, int32_t max_len) {
    const size_t rows_n = static_cast<size_t>(max_len);
    const size_t tlen = rows_n + static_cast<size_t>(band) - 1;
    read.resize(rows_n * L);
    qcost.resize(rows_n * L);
    hap.resize(tlen * L);
    tcost.resize(tlen * L);
    h.resize((static_cast<size_t>(band) + 1) * L);
    iv.resize(h.size());
    row_end.assign(rows_n, 0);
    stage.resize(2 * tlen * L);
    for (size_t l = 0; l < L; ++l) {
      lane_job[l] = l < live ? &jobs[ids[l]] : nullptr;
      if (l < live) row_end[static_cast<size_t>(lane_job[l]->len) - 1] = 1;
    }
    HapGroupWork w;
    w.lane_job = lane_job.data();
    w.band = band;
    w.max_len = max_len;
    w.ceiling = ceiling;
    w.read = read.data();
    w.qcost = qcost.data();
    w.hap = hap.data();
    w.tcost = tcost.data();
    w.row_end = row_end.data();
    w.stage = stage.data();
    w.h = h.data();
    w.i = iv.data();
    w.cost = out.data();
    kernel(w, sc);
    for (size_t l = 0; l < live; ++l) costs[ids[l]] = out[l];
  };
  for_each_band_group(jobs, order, &HaplotypeJob::len, L, scalar, group);
}

}  // namespace detail

namespace {
std::atomic<HaplotypeBackendFn> g_haplotype_backend{nullptr};
}  // namespace

void set_haplotype_backend(HaplotypeBackendFn fn) { g_haplotype_backend.store(fn); }
HaplotypeBackendFn haplotype_backend() { return g_haplotype_backend.load(); }

void haplotype_costs(const HaplotypeJob* jobs, size_t n, const HaplotypeScoring& sc,
                     int32_t* costs, int simd_level) {
  detail::check_inputs(jobs, n, sc);
  // never run what the CPU lacks
  const int level = std::min(simd_level, static_cast<int>(max_supported_simd_level()));
  if (level >= static_cast<int>(SimdLevel::AVX512)) {
    detail::haplotype_costs_avx512(jobs, n, sc, costs);
  } else if (level == static_cast<int>(SimdLevel::AVX2)) {
    detail::haplotype_costs_avx2(jobs, n, sc, costs);
  } else {
    detail::haplotype_costs_scalar(jobs, n, sc, costs);
  }
}

}  // namespace gms
