// Python bindings for the extend stage: SIMD level queries and batched banded extension.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gmsaccel/bindings.hpp"
#include "gmsaccel/extend_batch.hpp"

namespace py = pybind11;

namespace gms {
namespace {

// Borrowed view of one code sequence; `keep` holds any converted array alive.
struct CodeView {
  const uint8_t* data = nullptr;
  size_t size = 0;
};

CodeView code_view(const py::handle& obj, const char* what, size_t index,
                   std::vector<py::object>& keep) {
  CodeView v;
  if (py::isinstance<py::bytes>(obj)) {
    char* buf = nullptr;
    Py_ssize_t len = 0;
    if (PyBytes_AsStringAndSize(obj.ptr(), &buf, &len) != 0) throw py::error_already_set();
    v.data = reinterpret_cast<const uint8_t*>(buf);
    v.size = static_cast<size_t>(len);
  } else if (py::isinstance<py::array>(obj)) {
    auto arr = py::reinterpret_borrow<py::array>(obj);
    if (!arr.dtype().is(py::dtype::of<uint8_t>()) || arr.ndim() != 1) {
      throw py::value_error(std::string(what) + "[" + std::to_string(index) +
                            "] must be a 1-D uint8 array of base codes");
    }
    // a strided view becomes a contiguous copy
    auto c = py::array_t<uint8_t, py::array::c_style>::ensure(arr);
    if (!c) throw py::error_already_set();
    v.data = c.data();
    v.size = static_cast<size_t>(c.size());
    keep.push_back(std::move(c));
  } else {
    throw py::type_error(std::string(what) + "[" + std::to_string(index) +
                         "] must be bytes or a numpy uint8 array of base codes");
  }
  for (size_t i = 0; i < v.size; ++i) {
    if (v.data[i] > kBaseOff) {
      throw py::value_error(std::string(what) + "[" + std::to_string(index) + "] has base code " +
                            std::to_string(v.data[i]) + " at " + std::to_string(i) +
                            " (codes are 0..5)");
    }
  }
  return v;
}

int32_t checked_score(int64_t value, const char* name) {
  // Penalties are subtracted; a negative one or an absurd magnitude would break the int ranges.
  if (value < 0 || value > (1 << 20)) {
    throw py::value_error(std::string(name) + " must be in 0..1048576, got " +
                          std::to_string(value));
  }
  return static_cast<int32_t>(value);
}

py::tuple extend_batch_py(const py::sequence& queries, const py::sequence& targets,
                          const py::object& bands_obj, const std::optional<std::string>& level,
                          int64_t match, int64_t mismatch, int64_t gap_open, int64_t gap_extend,
                          int64_t clip, int64_t n_penalty) {
  const size_t n = py::len(queries);
  if (py::len(targets) != n) {
    throw py::value_error("queries and targets differ in length (" + std::to_string(n) + " vs " +
                          std::to_string(py::len(targets)) + ")");
  }
  auto bands = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(bands_obj);
  if (!bands) throw py::error_already_set();
  if (bands.ndim() != 1 || static_cast<size_t>(bands.size()) != n) {
    throw py::value_error("bands must be a 1-D sequence with one band per query");
  }
  Scoring sc;
  sc.match = checked_score(match, "match");
  sc.mismatch = checked_score(mismatch, "mismatch");
  sc.gap_open = checked_score(gap_open, "gap_open");
  sc.gap_extend = checked_score(gap_extend, "gap_extend");
  sc.clip = checked_score(clip, "clip");
  sc.n_penalty = checked_score(n_penalty, "n_penalty");
  const SimdLevel lvl = level ? parse_simd_level(*level) : detect_simd_level();

  std::vector<py::object> keep;
  std::vector<ExtendJob> jobs(n);
  const int64_t* b = bands.data();
  for (size_t i = 0; i < n; ++i) {
    const CodeView q = code_view(queries[i], "queries", i, keep);
    const CodeView t = code_view(targets[i], "targets", i, keep);
    if (b[i] < 1 || b[i] > (1 << 20)) {
      throw py::value_error("bands[" + std::to_string(i) + "] must be in 1..1048576, got " +
                            std::to_string(b[i]));
    }
    if (q.size < 1 || q.size > (1u << 24)) {
      throw py::value_error("queries[" + std::to_string(i) + "] must hold 1..16777216 bases");
    }
    if (t.size != q.size + static_cast<size_t>(b[i]) - 1) {
      throw py::value_error("targets[" + std::to_string(i) + "] has " + std::to_string(t.size) +
                            " bases; qlen + band - 1 = " +
                            std::to_string(q.size + static_cast<size_t>(b[i]) - 1) +
                            " are required");
    }
    jobs[i] = ExtendJob{q.data, t.data, static_cast<int32_t>(q.size), static_cast<int32_t>(b[i])};
  }

  ExtendBatchOutput out;
  {
    py::gil_scoped_release release;
    extend_batch(jobs.data(), n, sc, out, lvl);
  }

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

}  // namespace

void bind_extend(py::module_& m) {
  m.def("simd_level", [] { return std::string(simd_level_name(detect_simd_level())); },
        "SIMD level extension uses by default: the CPU's widest, capped by GMSACCEL_SIMD");
  m.def("max_simd_level", [] { return std::string(simd_level_name(max_supported_simd_level())); },
        "Widest SIMD level this CPU supports (ignores GMSACCEL_SIMD)");
  m.def("extend_batch", &extend_batch_py, py::arg("queries"), py::arg("targets"),
        py::arg("bands"), py::arg("level") = py::none(), py::arg("match") = 1,
        py::arg("mismatch") = 4, py::arg("gap_open") = 6, py::arg("gap_extend") = 1,
        py::arg("clip") = 5, py::arg("n_penalty") = 1,
        "Banded affine-gap extension with soft clipping of many jobs.\n\n"
        "queries/targets hold base codes (0-3 ACGT, 4 N, 5 off-contig) as bytes or uint8 arrays;\n"
        "target i must hold len(queries[i]) + bands[i] - 1 codes. level (scalar|avx2|avx512)\n"
        "defaults to simd_level() and is clamped to what the CPU supports. Returns (score,\n"
        "q_begin, q_end, t_begin, t_end) as int32 arrays and a list of CIGAR strings (M/I/D).");
}

}  // namespace gms
