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
#include "gmsaccel/py_batches.hpp"

namespace py = pybind11;

namespace gms {
namespace {

py::tuple extend_batch_py(const py::sequence& queries, const py::sequence& targets,
                          const py::object& bands_obj, const std::optional<std::string>& level,
                          int64_t match, int64_t mismatch, int64_t gap_open, int64_t gap_extend,
                          int64_t clip, int64_t n_penalty) {
  const pybatch::BandArray bands = pybatch::extend_bands(queries, targets, bands_obj);
  const Scoring sc = pybatch::extend_scoring(match, mismatch, gap_open, gap_extend, clip,
                                             n_penalty);
  const SimdLevel lvl = level ? parse_simd_level(*level) : detect_simd_level();
  std::vector<py::object> keep;
  const std::vector<ExtendJob> jobs = pybatch::extend_jobs(queries, targets, bands, keep);
  const size_t n = jobs.size();

  ExtendBatchOutput out;
  {
    py::gil_scoped_release release;
    extend_batch(jobs.data(), n, sc, out, lvl);
  }
  return pybatch::extend_results(out, n);
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
