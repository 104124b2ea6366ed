// Python bindings for read-versus-haplotype costs (the Viterbi pair-HMM of haplotype.hpp).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gmsaccel/bindings.hpp"
#include "gmsaccel/haplotype.hpp"
#include "gmsaccel/py_batches.hpp"
#include "gmsaccel/simd.hpp"

namespace py = pybind11;

namespace gms {
namespace {

py::array_t<int32_t> haplotype_costs_py(const py::sequence& reads, const py::sequence& quals,
                                        const py::sequence& haps, const py::object& bands_obj,
                                        const std::optional<std::string>& level, int64_t gap_open,
                                        int64_t gap_extend, int64_t max_qual) {
  const pybatch::BandArray bands = pybatch::haplotype_bands(reads, quals, haps, bands_obj);
  const HaplotypeScoring sc = pybatch::haplotype_scoring(gap_open, gap_extend, max_qual);
  const SimdLevel lvl = level ? parse_simd_level(*level) : detect_simd_level();
  std::vector<py::object> keep;
  const std::vector<HaplotypeJob> jobs = pybatch::haplotype_jobs(
      reads, quals, haps, bands, keep, pybatch::SpanWording::Bytes);
  const size_t n = jobs.size();
  py::array_t<int32_t> costs(n);
  int32_t* out = costs.mutable_data();
  {
    py::gil_scoped_release release;
    haplotype_costs(jobs.data(), n, sc, out, static_cast<int>(lvl));
  }
  return costs;
}

}  // namespace

void bind_haplotype(py::module_& m) {
  m.def("set_haplotype_backend", [](const py::capsule& cap) {
        set_haplotype_backend(backend_from_capsule<HaplotypeBackendFn>(
            cap, "gmsaccel.haplotype_backend", "haplotype"));
      }, "Registers the GPU haplotype-cost backend (a capsule from "
         "gmsaccel._cuda.haplotype_backend()), which call_region(device=N) uses");
  m.def("has_haplotype_backend", [] { return haplotype_backend() != nullptr; });
  m.def("haplotype_costs", &haplotype_costs_py, py::arg("reads"), py::arg("quals"),
        py::arg("haps"), py::arg("bands"), py::arg("level") = py::none(),
        py::arg("gap_open") = 45, py::arg("gap_extend") = 10, py::arg("max_qual") = 40,
        "Viterbi read-versus-haplotype costs (phred) of many jobs.\n\n"
        "reads/haps hold base codes (0-3 ACGT, 4 N, 5 off-haplotype) and quals phred qualities,\n"
        "as bytes or 1-D uint8 arrays; haps[i] must hold len(reads[i]) + bands[i] - 1 codes.\n"
        "The whole read aligns; the haplotype window's ends are free. level (scalar|avx2|avx512)\n"
        "defaults to simd_level() and is clamped to what the CPU supports; every level returns\n"
        "the same numbers. Returns an int32 array of minimum costs.");
}

}  // namespace gms
