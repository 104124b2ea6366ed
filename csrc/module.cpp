// gmsaccel._core: the C++ engine behind the Python package.
#include <htslib/hts.h>
#include <pybind11/pybind11.h>

#include "gmsaccel/bindings.hpp"
#include "gmsaccel/errors.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "gmsaccel C++ core: index, seeding, chaining, extension, pairing, BAM output";
  py::register_exception<gms::InputError>(m, "InputError", PyExc_ValueError);
  m.attr("htslib_compiled_version") = HTS_VERSION;
  m.attr("pysam_compiled_version") = GMSACCEL_PYSAM_VERSION;
  m.def("htslib_runtime_version", [] { return std::string(hts_version()); },
        "Version string of the htslib loaded at run time");
  gms::bind_extend(m);
  gms::bind_index(m);
  gms::bind_io(m);
  gms::bind_align(m);
  gms::bind_pileup(m);
  gms::bind_haplotype(m);
  gms::bind_call(m);
  gms::bind_vcf(m);
}
