// Private to csrc/: the group-by-band driver loop shared by extend_batch.cpp and haplotype.cpp.
//
// Include it only from translation units built for the baseline ISA, never from the *_avx2.cpp /
// *_avx512.cpp files: its std::sort and lambdas are inline, and a copy emitted there with wider -m
// flags could be the one the linker keeps for the whole library (see extend_simd_impl.hpp).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace gms::detail {

// A group with fewer live lanes than this costs more in lockstep than job by job.
constexpr size_t kMinSimdLanes = 2;

// Sorts the job indices in `order` by (band, length, index) -- the SIMD kernels need one band per
// group, and similar lengths mean less padding -- then cuts them into runs of at most `lanes` jobs
// of one band, in order. A run of kMinSimdLanes or more goes to group(ids, live, band, max_len),
// a shorter one to scalar(ids, count). `len` names the job's length member (qlen or len).
template <class Job, class Scalar, class Group>
void for_each_band_group(const Job* jobs, std::vector<uint32_t>& order, int32_t Job::*len,
                         size_t lanes, Scalar&& scalar, Group&& group) {
  // The same order through one 64-bit key per job (band, length, index) when band and length
  // fit in 16 bits each, as they do for short reads: a plain integer sort, without a comparator
  // that loads two jobs at random for every comparison.
  thread_local std::vector<uint64_t> keys;
  keys.resize(order.size());
  bool packed = true;
  for (size_t i = 0; i < order.size() && packed; ++i) {
    const Job& j = jobs[order[i]];
    const int32_t band = j.band, length = j.*len;
    packed = band >= 0 && band <= 0xffff && length >= 0 && length <= 0xffff;
    keys[i] = uint64_t(uint32_t(band)) << 48 | uint64_t(uint32_t(length)) << 32 | order[i];
  }
  if (packed) {
    std::sort(keys.begin(), keys.end());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<uint32_t>(keys[i]);
  } else {
    std::sort(order.begin(), order.end(), [jobs, len](uint32_t a, uint32_t b) {
      if (jobs[a].band != jobs[b].band) return jobs[a].band < jobs[b].band;
      if (jobs[a].*len != jobs[b].*len) return jobs[a].*len < jobs[b].*len;
      return a < b;
    });
  }
  size_t i = 0;
  while (i < order.size()) {
    const int32_t band = jobs[order[i]].band;
    size_t j = i + 1;
    while (j < order.size() && j - i < lanes && jobs[order[j]].band == band) ++j;
    const size_t live = j - i;
    if (live < kMinSimdLanes) {
      scalar(order.data() + i, live);
    } else {
      group(order.data() + i, live, band, jobs[order[j - 1]].*len);  // longest: sorted by length
    }
    i = j;
  }
}

}  // namespace gms::detail
