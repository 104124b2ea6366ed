// Scalar batched extension: extend_scalar + extend_traceback on each job in turn.
#include <algorithm>
#include <vector>

#include "gmsaccel/extend_batch.hpp"

namespace gms {

void extend_batch_scalar(const ExtendJob* jobs, size_t n_jobs, const Scoring& sc,
                         ExtendBatchOutput& out) {
  out.results.assign(n_jobs, ExtendResult{});
  out.cigar.clear();
  out.cigar_offset.assign(n_jobs + 1, 0);
  std::vector<uint8_t> dirs;
  std::vector<int32_t> h, e;
  std::vector<uint32_t> ops;
  for (size_t i = 0; i < n_jobs; ++i) {
    const ExtendJob& job = jobs[i];
    const size_t cells = static_cast<size_t>(job.qlen) * static_cast<size_t>(job.band);
    if (dirs.size() < cells) dirs.resize(cells);
    const size_t row = static_cast<size_t>(job.band) + 1;
    if (h.size() < row) { h.resize(row); e.resize(row); }
    const size_t max_ops = 2 * static_cast<size_t>(job.qlen) + static_cast<size_t>(job.band);
    if (ops.size() < max_ops) ops.resize(max_ops);
    ExtendResult res = extend_scalar(job, sc, dirs.data(), 1, h.data(), e.data());
    const int32_t n = extend_traceback(dirs.data(), 1, job.band, res, ops.data());
    out.results[i] = res;
    out.cigar.insert(out.cigar.end(), ops.begin(), ops.begin() + n);
    out.cigar_offset[i + 1] = static_cast<uint32_t>(out.cigar.size());
  }
}

}  // namespace gms
