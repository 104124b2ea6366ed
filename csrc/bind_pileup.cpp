// Python view of region loading, pileup counts and candidate alleles (tests, notebooks and the
// Python API; the caller drives the C++ directly).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "gmsaccel/bindings.hpp"
#include "gmsaccel/errors.hpp"
#include "gmsaccel/pileup.hpp"

namespace py = pybind11;

namespace gms {

namespace {

std::string fspath(const py::object& p) {
  return py::str(py::module_::import("os").attr("fspath")(p)).cast<std::string>();
}

constexpr uint16_t kDefaultSkip = kDefaultSkipFlags;

struct PySource {
  std::unique_ptr<AlignmentSource> src;
  std::mutex mu;  // the GIL is released while loading: one load at a time per source

  PySource(const py::object& path, const py::object& reference, int threads,
           bool fast_inflate = true) {
    const std::string p = fspath(path), r = reference.is_none() ? "" : fspath(reference);
    py::gil_scoped_release nogil;
    src = std::make_unique<AlignmentSource>(p, r, threads, fast_inflate);
  }

  int tid(const std::string& contig) const {
    const int t = src->contig_id(contig);
    if (t < 0) throw InputError("contig '" + contig + "' is not in " + src->path());
    return t;
  }

  // Region clipped to the contig; empty (start == end) when it lies beyond it.
  std::pair<int64_t, int64_t> clip(int t, int64_t start, int64_t end) const {
    const int64_t len = src->contigs()[t].length;
    start = std::clamp<int64_t>(start, 0, len);
    end = std::clamp<int64_t>(end, start, len);
    return {start, end};
  }

  LoadStats load(int t, int64_t start, int64_t end, const ReadFilter& f,
                 std::vector<ShardRead>& reads, ReadStore& store) {
    std::lock_guard<std::mutex> lock(mu);
    return src->load(t, start, end, f, reads, store);
  }

  // group_at: with f.groups, the positions (0-based, in [start, end)) whose counts each
  // group gets (group_base_counts: groups x positions x 5): a genome's shard times many lanes
  // would not fit in memory, and a caller wants a few sites of it.
  py::dict pileup(const std::string& contig, int64_t start, int64_t end, const ReadFilter& f,
                  const std::vector<int64_t>& group_at = {}) {
    const int t = tid(contig);
    std::tie(start, end) = clip(t, start, end);
    for (int64_t x : group_at)
      if (x < start || x >= end)
        throw std::invalid_argument("group_at: position " + std::to_string(x) +
                                    " outside the region");
    Pileup pile;
    LoadStats st;
    std::vector<uint32_t> group_counts(f.groups.size() * group_at.size() * 5, 0);
    {
      py::gil_scoped_release nogil;
      std::vector<ShardRead> reads;
      ReadStore store;
      st = load(t, start, end, f, reads, store);
      gms::pileup(reads, start, end, pile);
      // each read group's counts from the same load (f.groups: a sample's lanes)
      std::vector<std::vector<ShardRead>> parts(f.groups.size());
      for (const ShardRead& r : reads)
        if (r.group >= 0) parts[static_cast<size_t>(r.group)].push_back(r);
      for (size_t g = 0; g < parts.size(); ++g) {
        Pileup one;
        gms::pileup(parts[g], start, end, one);
        for (size_t i = 0; i < group_at.size(); ++i)
          std::copy_n(one.base_counts.begin() + (group_at[i] - one.start) * 5, 5,
                      group_counts.begin() + (g * group_at.size() + i) * 5);
      }
    }
    const py::ssize_t n = pile.n;
    py::dict d;
    if (!f.groups.empty()) {
      d["group_base_counts"] = numpy_copy(
          group_counts, {static_cast<py::ssize_t>(f.groups.size()),
                         static_cast<py::ssize_t>(group_at.size()), py::ssize_t{5}});
    }
    d["start"] = pile.start;
    d["end"] = pile.start + pile.n;
    d["base_counts"] = numpy_copy(pile.base_counts, {n, 5});
    d["base_qual_sums"] = numpy_copy(pile.base_qual_sums, {n, 5});
    d["deletions"] = numpy_copy(pile.deletions);
    d["insertions"] = numpy_copy(pile.insertions);
    d["depth"] = numpy_copy(pile.depth);
    d["loaded"] = st.loaded;
    d["filtered"] = st.filtered;
    d["depth_capped"] = st.depth_capped;
    return d;
  }

  py::list candidates(const py::object& fasta_codes, const std::string& contig, int64_t start,
                      int64_t end, const ReadFilter& f, const CandidateOptions& opt,
                      bool whole_windows = false) {
    const int t = tid(contig);
    auto codes = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(fasta_codes);
    if (!codes || codes.ndim() != 1)
      throw py::type_error("fasta_codes must be a 1-D numpy uint8 array of base codes");
    const int64_t len = src->contigs()[t].length;
    if (codes.size() != len)
      throw InputError("fasta_codes has " + std::to_string(codes.size()) + " bases but " +
                       contig + " in " + src->path() + " has " + std::to_string(len) +
                       ": is it the same reference?");
    std::tie(start, end) = clip(t, start, end);
    std::vector<CandidateAllele> out;
    {
      py::gil_scoped_release nogil;
      std::vector<ShardRead> reads;
      ReadStore store;
      load(t, start, end, f, reads, store);
      // (a window callback makes find_candidates pile up whole windows, not covered stretches)
      find_candidates(reads, codes.data(), 0, len, start, end, opt, out,
                      whole_windows ? [](const Pileup&) {} : std::function<void(const Pileup&)>());
    }
    py::list result;
    for (const CandidateAllele& c : out)
      result.append(py::make_tuple(c.pos, c.ref, c.alt, c.support, c.depth));
    return result;
  }
};

ReadFilter make_filter(int min_mapq, int min_baseq, int max_depth, uint16_t skip_flags,
                       const std::vector<std::string>& groups = {}) {
  ReadFilter f;
  f.groups = groups;
  f.min_mapq = min_mapq;
  f.min_baseq = min_baseq;
  f.max_depth = max_depth;
  f.skip_flags = skip_flags;
  return f;
}

CandidateOptions make_options(uint32_t min_support, double min_fraction, uint32_t min_qual_sum) {
  CandidateOptions o;
  o.min_support = min_support;
  o.min_fraction = min_fraction;
  o.min_qual_sum = min_qual_sum;
  return o;
}

constexpr const char* kPileupDoc =
    "Per-position counts over [start, end) of contig, clipped to the contig: a dict with start, "
    "end, base_counts and base_qual_sums ((n, 5) uint32, A C G T N, bases with quality > 0), "
    "deletions, insertions, depth ((n,) uint32) and the load statistics loaded, filtered, "
    "depth_capped; read_groups (pileup): also group_base_counts ((groups, len(group_at), 5)), each group's "
    "base_counts at the positions group_at (0-based, in the region), from the same reads";
constexpr const char* kCandidatesDoc =
    "Candidate alleles with pos in [start, end) of contig as (pos, ref, alt, support, depth) "
    "tuples, VCF style (0-based pos; indels anchored and left-normalised). fasta_codes: base "
    "codes (numpy uint8) of the whole contig; whole_windows (testing): pile up whole count "
    "windows rather than the stretches reads cover (the same candidates)";

}  // namespace

void bind_pileup(py::module_& m) {
  m.attr("DEFAULT_SKIP_FLAGS") = kDefaultSkip;

  py::class_<PySource>(m, "AlignmentSource",
                       "An indexed, coordinate-sorted BAM or CRAM (CRAM needs reference)")
      .def(py::init<const py::object&, const py::object&, int, bool>(), py::arg("path"),
           py::arg("reference") = "", py::arg("threads") = 1, py::arg("fast_inflate") = true)
      .def_property_readonly("path", [](const PySource& s) { return s.src->path(); })
      .def_property_readonly("inflater", [](const PySource& s) { return s.src->inflater(); },
                             "who inflates the records: 'isa-l' (BGZF BAM, at most 2 threads, "
                             "fast_inflate) or 'htslib'")
      .def_property_readonly("contigs",
                             [](const PySource& s) {
                               py::list l;
                               for (const ContigDesc& c : s.src->contigs())
                                 l.append(py::make_tuple(c.name, c.length));
                               return l;
                             },
                             "(name, length) of each @SQ, in header order")
      .def_property_readonly("sample", [](const PySource& s) { return s.src->sample(); },
                             "SM of the first @RG, else the file name without extension")
      .def("contig_id", [](const PySource& s, const std::string& n) { return s.src->contig_id(n); },
           py::arg("name"), "Index of a contig in the header, -1 when absent")
      .def(
          "pileup",
          [](PySource& s, const std::string& contig, int64_t start, int64_t end, int min_mapq,
             int min_baseq, int max_depth, uint16_t skip_flags) {
            return s.pileup(contig, start, end, make_filter(min_mapq, min_baseq, max_depth, skip_flags));
          },
          py::arg("contig"), py::arg("start"), py::arg("end"), py::arg("min_mapq") = 0,
          py::arg("min_baseq") = 13, py::arg("max_depth") = 1000,
          py::arg("skip_flags") = kDefaultSkip, kPileupDoc)
      .def(
          "candidates",
          [](PySource& s, const py::object& codes, const std::string& contig, int64_t start,
             int64_t end, uint32_t min_support, double min_fraction, uint32_t min_qual_sum,
             int min_mapq, int min_baseq, int max_depth, uint16_t skip_flags) {
            return s.candidates(codes, contig, start, end,
                                make_filter(min_mapq, min_baseq, max_depth, skip_flags),
                                make_options(min_support, min_fraction, min_qual_sum));
          },
          py::arg("fasta_codes"), py::arg("contig"), py::arg("start"), py::arg("end"),
          py::arg("min_support") = 2, py::arg("min_fraction") = 0.05,
          py::arg("min_qual_sum") = 40, py::arg("min_mapq") = 0, py::arg("min_baseq") = 13,
          py::arg("max_depth") = 1000, py::arg("skip_flags") = kDefaultSkip, kCandidatesDoc);

  m.def(
      "pileup",
      [](const py::object& path, const std::string& contig, int64_t start, int64_t end,
         const py::object& reference, int min_mapq, int min_baseq, int max_depth,
         uint16_t skip_flags, int threads, const std::vector<std::string>& read_groups,
         const std::vector<int64_t>& group_at) {
        PySource s(path, reference, threads);
        return s.pileup(contig, start, end,
                        make_filter(min_mapq, min_baseq, max_depth, skip_flags, read_groups),
                        group_at);
      },
      py::arg("path"), py::arg("contig"), py::arg("start"), py::arg("end"),
      py::arg("reference") = "", py::arg("min_mapq") = 0, py::arg("min_baseq") = 13,
      py::arg("max_depth") = 1000, py::arg("skip_flags") = kDefaultSkip, py::arg("threads") = 1,
      py::arg("read_groups") = std::vector<std::string>{},
      py::arg("group_at") = std::vector<int64_t>{}, kPileupDoc);

  m.def(
      "candidates",
      [](const py::object& path, const py::object& codes, const std::string& contig,
         int64_t start, int64_t end, uint32_t min_support, double min_fraction,
         uint32_t min_qual_sum, const py::object& reference, int min_mapq, int min_baseq,
         int max_depth, uint16_t skip_flags, bool whole_windows) {
        PySource s(path, reference, 1);
        return s.candidates(codes, contig, start, end,
                            make_filter(min_mapq, min_baseq, max_depth, skip_flags),
                            make_options(min_support, min_fraction, min_qual_sum), whole_windows);
      },
      py::arg("path"), py::arg("fasta_codes"), py::arg("contig"), py::arg("start"),
      py::arg("end"), py::arg("min_support") = 2, py::arg("min_fraction") = 0.05,
      py::arg("min_qual_sum") = 40, py::arg("reference") = "", py::arg("min_mapq") = 0,
      py::arg("min_baseq") = 13, py::arg("max_depth") = 1000,
      py::arg("skip_flags") = kDefaultSkip, py::arg("whole_windows") = false, kCandidatesDoc);
}

}  // namespace gms
