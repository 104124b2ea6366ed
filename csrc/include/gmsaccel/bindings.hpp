// One binding function per stage, all called from module.cpp.
#pragma once
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

namespace gms {
void bind_extend(pybind11::module_& m);  // bind_extend.cpp: SIMD level, batched extension
void bind_index(pybind11::module_& m);   // bind_index.cpp: Index build/load/save/fetch/lookup
void bind_io(pybind11::module_& m);      // bind_io.cpp: FASTQ reader, BAM writer
void bind_align(pybind11::module_& m);   // bind_align.cpp: Aligner, streaming pipeline
void bind_pileup(pybind11::module_& m);  // bind_pileup.cpp: BAM/CRAM regions, pileup, candidates
void bind_haplotype(pybind11::module_& m);  // bind_haplotype.cpp: read-vs-haplotype costs
void bind_call(pybind11::module_& m);    // bind_call.cpp: region calling

// The function pointer inside a gmsaccel._cuda backend capsule named name; what says which
// backend in the error for any other object.
template <class Fn>
Fn backend_from_capsule(const pybind11::capsule& cap, const char* name, const char* what) {
  if (std::string(cap.name() ? cap.name() : "") != name) {
    throw std::invalid_argument(std::string("not a gmsaccel ") + what + " backend");
  }
  return reinterpret_cast<Fn>(cap.get_pointer());
}

// {stage: thread-seconds} of any stage-seconds struct with each(f) (StageSeconds,
// CallStageSeconds): the metrics' stage_seconds.
template <class Stages>
pybind11::dict stage_dict(const Stages& stages) {
  pybind11::dict d;
  stages.each([&](const char* name, double seconds) { d[name] = seconds; });
  return d;
}
}  // namespace gms
