// One binding function per stage, all called from module.cpp.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <vector>

#include <stdexcept>
#include <string>

#include "gmsaccel/markdup.hpp"

namespace gms {
void bind_extend(pybind11::module_& m);  // bind_extend.cpp: SIMD level, batched extension
void bind_index(pybind11::module_& m);   // bind_index.cpp: Index build/load/save/fetch/lookup
void bind_io(pybind11::module_& m);      // bind_io.cpp: FASTQ reader, BAM writer
void bind_align(pybind11::module_& m);   // bind_align.cpp: Aligner, streaming pipeline
void bind_pileup(pybind11::module_& m);  // bind_pileup.cpp: BAM/CRAM regions, pileup, candidates
void bind_haplotype(pybind11::module_& m);  // bind_haplotype.cpp: read-vs-haplotype costs
void bind_call(pybind11::module_& m);    // bind_call.cpp: region calling
void bind_vcf(pybind11::module_& m);     // bind_vcf.cpp: VCF formatting and bgzipped output

// The function pointer inside a gmsaccel._cuda backend capsule named name; what says which
// backend in the error for any other object.
template <class Fn>
Fn backend_from_capsule(const pybind11::capsule& cap, const char* name, const char* what) {
  if (std::string(cap.name() ? cap.name() : "") != name) {
    throw std::invalid_argument(std::string("not a gmsaccel ") + what + " backend");
  }
  return reinterpret_cast<Fn>(cap.get_pointer());
}

// A numpy array of the given shape (one dimension: v's length) holding a copy of v.
template <class T>
pybind11::array_t<T> numpy_copy(const std::vector<T>& v,
                                std::vector<pybind11::ssize_t> shape = {}) {
  if (shape.empty()) shape.push_back(static_cast<pybind11::ssize_t>(v.size()));
  pybind11::array_t<T> a(shape);
  if (!v.empty()) std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(T));
  return a;
}

// For C++ work that runs with the GIL released: runs Python's pending signal handlers (they only
// run on the main thread; elsewhere this does nothing) and throws the exception one raised, e.g.
// KeyboardInterrupt for SIGINT, so that the work stops and cleans up.
inline void raise_pending_signals() {
  pybind11::gil_scoped_acquire gil;
  if (PyErr_CheckSignals() != 0) throw pybind11::error_already_set();
}

// {stage: thread-seconds} of any stage-seconds struct with each(f) (StageSeconds,
// CallStageSeconds): the metrics' stage_seconds.
template <class Stages>
pybind11::dict stage_dict(const Stages& stages) {
  pybind11::dict d;
  stages.each([&](const char* name, double seconds) { d[name] = seconds; });
  return d;
}

// Duplicate marking's findings, as align's metrics and BamWriter.duplicate_stats report them.
inline pybind11::dict duplicates_dict(const DuplicateStats& s) {
  pybind11::dict d;
  d["unpaired_examined"] = s.unpaired_examined;
  d["pairs_examined"] = s.pairs_examined;
  d["unpaired_duplicates"] = s.unpaired_duplicates;
  d["pair_duplicates"] = s.pair_duplicates;
  d["reads_marked"] = s.unpaired_duplicates + 2 * s.pair_duplicates;
  d["fraction"] = s.fraction();
  d["peak_sets_held"] = s.peak_sets_held;
  return d;
}
}  // namespace gms
