// Python-argument conversion shared by the batch bindings of _core (bind_extend.cpp,
// bind_haplotype.cpp) and _cuda (kernels/bind_cuda.cpp): lists of bytes / uint8 arrays become
// borrowed byte spans, checked with one set of rules and messages, so the CPU and GPU entry points
// accept and reject exactly the same arguments. Header-only (inline) because the two modules are
// separate shared objects.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "gmsaccel/extend_batch.hpp"
#include "gmsaccel/haplotype.hpp"
#include "gmsaccel/scoring.hpp"
#include "gmsaccel/seed_batch.hpp"

namespace gms::pybatch {

namespace py = pybind11;

// Borrowed view of one bytes object or 1-D uint8 array; a converted copy lives in `keep`.
struct ByteSpan {
  const uint8_t* data = nullptr;
  size_t size = 0;
};

// Wording of the type errors: _core.haplotype_costs has always said "uint8 array" where the
// other entry points say "... of base codes"; both are kept so no message changes.
enum class SpanWording { BaseCodes, Bytes };

inline std::string item(const char* what, size_t index) {
  return std::string(what) + "[" + std::to_string(index) + "]";
}

// what[index] as a contiguous span; check_codes also rejects values above kBaseOff (base codes
// are 0..5; qualities are any byte).
inline ByteSpan byte_span(const py::handle& obj, const char* what, size_t index,
                          std::vector<py::object>& keep, bool check_codes = true,
                          SpanWording wording = SpanWording::BaseCodes) {
  const bool codes = wording == SpanWording::BaseCodes;
  ByteSpan v;
  if (py::isinstance<py::bytes>(obj)) {
    char* buf = nullptr;
    Py_ssize_t len = 0;
    if (PyBytes_AsStringAndSize(obj.ptr(), &buf, &len) != 0) throw py::error_already_set();
    v.data = reinterpret_cast<const uint8_t*>(buf);
    v.size = static_cast<size_t>(len);
  } else if (py::isinstance<py::array>(obj)) {
    auto arr = py::reinterpret_borrow<py::array>(obj);
    if (!arr.dtype().is(py::dtype::of<uint8_t>()) || arr.ndim() != 1) {
      throw py::value_error(item(what, index) +
                            (codes ? " must be a 1-D uint8 array of base codes"
                                   : " must be a 1-D uint8 array"));
    }
    auto c = py::array_t<uint8_t, py::array::c_style>::ensure(arr);  // strided -> contiguous copy
    if (!c) throw py::error_already_set();
    v.data = c.data();
    v.size = static_cast<size_t>(c.size());
    keep.push_back(std::move(c));
  } else {
    throw py::type_error(item(what, index) +
                         (codes ? " must be bytes or a numpy uint8 array of base codes"
                                : " must be bytes or a 1-D numpy uint8 array"));
  }
  for (size_t i = 0; check_codes && i < v.size; ++i) {
    if (v.data[i] > kBaseOff) {
      throw py::value_error(item(what, index) + " has base code " + std::to_string(v.data[i]) +
                            " at " + std::to_string(i) + " (codes are 0..5)");
    }
  }
  return v;
}

// A scoring parameter in 0..max: penalties are subtracted, so a negative one or an absurd
// magnitude would break the kernels' int32 ranges.
inline int32_t checked_param(int64_t value, const char* name, int64_t max) {
  if (value < 0 || value > max) {
    throw py::value_error(std::string(name) + " must be in 0.." + std::to_string(max) +
                          ", got " + std::to_string(value));
  }
  return static_cast<int32_t>(value);
}

inline Scoring extend_scoring(int64_t match, int64_t mismatch, int64_t gap_open,
                              int64_t gap_extend, int64_t clip, int64_t n_penalty) {
  constexpr int64_t kMax = 1 << 20;
  Scoring sc;
  sc.match = checked_param(match, "match", kMax);
  sc.mismatch = checked_param(mismatch, "mismatch", kMax);
  sc.gap_open = checked_param(gap_open, "gap_open", kMax);
  sc.gap_extend = checked_param(gap_extend, "gap_extend", kMax);
  sc.clip = checked_param(clip, "clip", kMax);
  sc.n_penalty = checked_param(n_penalty, "n_penalty", kMax);
  return sc;
}

inline HaplotypeScoring haplotype_scoring(int64_t gap_open, int64_t gap_extend,
                                          int64_t max_qual) {
  HaplotypeScoring sc;
  sc.gap_open = checked_param(gap_open, "gap_open", kMaxHaplotypeParam);
  sc.gap_extend = checked_param(gap_extend, "gap_extend", kMaxHaplotypeParam);
  sc.max_qual = checked_param(max_qual, "max_qual", kMaxHaplotypeParam);
  return sc;
}

using BandArray = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

// bands as a 1-D int64 array of n entries; `per` names what each band belongs to.
inline BandArray band_array(const py::object& bands_obj, size_t n, const char* per) {
  auto bands = BandArray::ensure(bands_obj);
  if (!bands) throw py::error_already_set();
  if (bands.ndim() != 1 || static_cast<size_t>(bands.size()) != n) {
    throw py::value_error(std::string("bands must be a 1-D sequence with one band per ") + per);
  }
  return bands;
}

// Per-job limits common to both kinds of jobs: band 1..2^20, sequence 1..2^24 bases.
inline void check_band_and_length(int64_t band, size_t len, const char* what, size_t i) {
  if (band < 1 || band > (1 << 20)) {
    throw py::value_error(item("bands", i) + " must be in 1..1048576, got " +
                          std::to_string(band));
  }
  if (len < 1 || len > (1u << 24)) {
    throw py::value_error(item(what, i) + " must hold 1..16777216 bases");
  }
}

// ---- extension jobs ---------------------------------------------------------------------------

// Split from extend_jobs so callers can check scoring between the two, as they always have.
inline BandArray extend_bands(const py::sequence& queries, const py::sequence& targets,
                              const py::object& bands_obj) {
  const size_t n = py::len(queries);
  if (py::len(targets) != n) {
    throw py::value_error("queries and targets differ in length (" + std::to_string(n) + " vs " +
                          std::to_string(py::len(targets)) + ")");
  }
  return band_array(bands_obj, n, "query");
}

// Jobs borrowing the Python buffers (kept alive by `keep` and the caller's arguments).
inline std::vector<ExtendJob> extend_jobs(const py::sequence& queries,
                                          const py::sequence& targets, const BandArray& bands,
                                          std::vector<py::object>& keep) {
  const size_t n = static_cast<size_t>(bands.size());
  std::vector<ExtendJob> jobs(n);
  const int64_t* b = bands.data();
  for (size_t i = 0; i < n; ++i) {
    const ByteSpan q = byte_span(queries[i], "queries", i, keep);
    const ByteSpan t = byte_span(targets[i], "targets", i, keep);
    check_band_and_length(b[i], q.size, "queries", i);
    const size_t need = q.size + static_cast<size_t>(b[i]) - 1;
    if (t.size != need) {
      throw py::value_error(item("targets", i) + " has " + std::to_string(t.size) +
                            " bases; qlen + band - 1 = " + std::to_string(need) +
                            " are required");
    }
    jobs[i] = ExtendJob{q.data, t.data, static_cast<int32_t>(q.size), static_cast<int32_t>(b[i])};
  }
  return jobs;
}

// _core.extend_batch's return shape: five int32 arrays and a list of CIGAR strings (M/I/D).
inline py::tuple extend_results(const ExtendBatchOutput& out, size_t n) {
  py::array_t<int32_t> score(n), q_begin(n), q_end(n), t_begin(n), t_end(n);
  auto s = score.mutable_unchecked<1>();
  auto qb = q_begin.mutable_unchecked<1>();
  auto qe = q_end.mutable_unchecked<1>();
  auto tb = t_begin.mutable_unchecked<1>();
  auto te = t_end.mutable_unchecked<1>();
  py::list cigars(n);
  std::string text;
  for (size_t i = 0; i < n; ++i) {
    const ExtendResult& r = out.results[i];
    const auto k = static_cast<py::ssize_t>(i);
    s(k) = r.score;
    qb(k) = r.q_begin;
    qe(k) = r.q_end;
    tb(k) = r.t_begin;
    te(k) = r.t_end;
    text.clear();
    for (uint32_t c = out.cigar_offset[i]; c < out.cigar_offset[i + 1]; ++c) {
      text += std::to_string(out.cigar[c] >> 4);
      text += "MID"[out.cigar[c] & 0xf];
    }
    cigars[i] = py::str(text);
  }
  return py::make_tuple(score, q_begin, q_end, t_begin, t_end, cigars);
}

// ---- haplotype-cost jobs ----------------------------------------------------------------------

inline BandArray haplotype_bands(const py::sequence& reads, const py::sequence& quals,
                                 const py::sequence& haps, const py::object& bands_obj) {
  const size_t n = py::len(reads);
  if (py::len(quals) != n || py::len(haps) != n) {
    throw py::value_error("reads, quals and haps differ in length (" + std::to_string(n) + ", " +
                          std::to_string(py::len(quals)) + ", " + std::to_string(py::len(haps)) +
                          ")");
  }
  return band_array(bands_obj, n, "read");
}

// Jobs borrowing the Python buffers; qualities are any byte, reads and haps base codes.
inline std::vector<HaplotypeJob> haplotype_jobs(const py::sequence& reads,
                                                const py::sequence& quals,
                                                const py::sequence& haps, const BandArray& bands,
                                                std::vector<py::object>& keep,
                                                SpanWording wording) {
  const size_t n = static_cast<size_t>(bands.size());
  std::vector<HaplotypeJob> jobs(n);
  const int64_t* b = bands.data();
  for (size_t i = 0; i < n; ++i) {
    const ByteSpan r = byte_span(reads[i], "reads", i, keep, true, wording);
    const ByteSpan q = byte_span(quals[i], "quals", i, keep, false, wording);
    const ByteSpan h = byte_span(haps[i], "haps", i, keep, true, wording);
    check_band_and_length(b[i], r.size, "reads", i);
    if (q.size != r.size) {
      throw py::value_error(item("quals", i) + " has " + std::to_string(q.size) +
                            " qualities for " + std::to_string(r.size) + " bases");
    }
    const size_t want = r.size + static_cast<size_t>(b[i]) - 1;
    if (h.size != want) {
      throw py::value_error(item("haps", i) + " has " + std::to_string(h.size) +
                            " bases; len + band - 1 = " + std::to_string(want) +
                            " are required");
    }
    jobs[i] = HaplotypeJob{r.data, q.data, h.data, static_cast<int32_t>(r.size),
                           static_cast<int32_t>(b[i])};
  }
  return jobs;
}

// Seeding entry points (_core.batch_anchors, _cuda.seed_anchors): reads as base-code spans.
struct SeedReads {
  std::vector<const uint8_t*> data;
  std::vector<uint32_t> lens;
};

inline SeedReads seed_reads(const py::sequence& reads, std::vector<py::object>& keep) {
  SeedReads r;
  const size_t n = py::len(reads);
  r.data.reserve(n);
  r.lens.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const ByteSpan s = byte_span(reads[i], "reads", i, keep);
    if (s.size > UINT32_MAX) throw py::value_error(item("reads", i) + " is longer than 2^32-1");
    r.data.push_back(s.data);
    r.lens.push_back(static_cast<uint32_t>(s.size));
  }
  return r;
}

// (offsets, rev, qpos, diag): read i's anchors are entries offsets[i] .. offsets[i + 1].
inline py::tuple anchor_arrays(const SeedBatchOutput& out) {
  const size_t n = out.anchors.size();
  py::array_t<uint64_t> offsets(static_cast<py::ssize_t>(out.offsets.size()));
  py::array_t<uint32_t> rev(static_cast<py::ssize_t>(n));
  py::array_t<int32_t> qpos(static_cast<py::ssize_t>(n));
  py::array_t<int64_t> diag(static_cast<py::ssize_t>(n));
  std::copy(out.offsets.begin(), out.offsets.end(), offsets.mutable_data());
  for (size_t i = 0; i < n; ++i) {
    rev.mutable_data()[i] = out.anchors[i].rev;
    qpos.mutable_data()[i] = out.anchors[i].qpos;
    diag.mutable_data()[i] = out.anchors[i].diag;
  }
  return py::make_tuple(offsets, rev, qpos, diag);
}

}  // namespace gms::pybatch
