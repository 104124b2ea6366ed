// Python bindings for VCF output: reference-block formatting and the bgzipped, tabix-indexed
// writer behind gmsaccel.vcf.VcfWriter. Both release the GIL while they work, so the calling
// threads keep running beside the writer.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "gmsaccel/bindings.hpp"
#include "gmsaccel/caller.hpp"
#include "gmsaccel/vcf_output.hpp"

namespace py = pybind11;

namespace gms {

namespace {

using Column = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

const int64_t* column(const Column& a, size_t n, const char* what) {
  if (a.ndim() != 1 || static_cast<size_t>(a.shape(0)) != n) {
    throw std::invalid_argument(std::string(what) + ": expected " + std::to_string(n) +
                                " values, one per block");
  }
  return a.data();
}

// Blocks as the formatters take them, each column checked to hold one value (pl a row) a block.
ReferenceBlockColumns block_columns(const Column& start, const Column& end, const Column& min_dp,
                                    const Column& gq, const Column& pl, const Column& dp,
                                    const char* bases) {
  const size_t n = static_cast<size_t>(start.ndim() == 1 ? start.shape(0) : 0);
  if (pl.ndim() != 2 || static_cast<size_t>(pl.shape(0)) != n) {
    throw std::invalid_argument("pl: expected one row per block");
  }
  return ReferenceBlockColumns{column(start, n, "start"),   column(end, n, "end"),
                               column(min_dp, n, "min_dp"), column(gq, n, "gq"),
                               pl.data(),                   column(dp, n, "dp"),
                               bases,                       n,
                               static_cast<size_t>(pl.shape(1))};
}

py::bytes format_blocks(const std::string& contig, const Column& start, const Column& end,
                        const Column& min_dp, const Column& gq, const Column& pl, const Column& dp,
                        const std::string& bases, size_t n_samples) {
  const ReferenceBlockColumns cols =
      block_columns(start, end, min_dp, gq, pl, dp, bases.data());
  const size_t n = cols.n;
  if (bases.size() != n) throw std::invalid_argument("bases: expected one letter per block");
  std::string out;
  {
    py::gil_scoped_release nogil;
    out.reserve(n * (contig.size() + 64 + 24 * n_samples));
    format_reference_blocks(contig, cols, n_samples, out);
  }
  return py::bytes(out);
}

// A record dict in the engine's form (VcfWriter.write's) as the engine's VariantRecord.
VariantRecord variant_from_dict(const py::dict& d) {
  VariantRecord r;
  r.pos = d["pos"].cast<int64_t>();
  r.ref = d["ref"].cast<std::string>();
  r.alts = d["alts"].cast<std::vector<std::string>>();
  r.qual = d["qual"].cast<double>();
  if (d.contains("filter")) {  // ';'-separated; PASS or '.' for none
    const std::string filter = d["filter"].cast<std::string>();
    for (size_t at = 0; at <= filter.size();) {
      const size_t end = std::min(filter.find(';', at), filter.size());
      std::string f = filter.substr(at, end - at);
      if (!f.empty() && f != "PASS" && f != ".") r.filters.push_back(std::move(f));
      at = end + 1;
    }
  }
  r.dp = d["dp"].cast<int>();
  r.mq = d["mq"].cast<int>();
  for (const auto& item : d["samples"]) {
    const py::dict s = item.cast<py::dict>();
    SampleCall c;
    c.gt = s["gt"].cast<std::vector<int>>();
    c.ad = s["ad"].cast<std::vector<int>>();
    c.dp = s["dp"].cast<int>();
    c.gq = s["gq"].cast<int>();
    c.pl = s["pl"].cast<std::vector<int>>();
    r.samples.push_back(std::move(c));
  }
  return r;
}

py::tuple gvcf_shard(const std::string& contig, const Column& start, const Column& end,
                     const Column& min_dp, const Column& gq, const Column& pl, const Column& dp,
                     const py::array_t<uint8_t, py::array::c_style | py::array::forcecast>& codes,
                     const py::bytes& record_lines, const Column& line_offsets,
                     const Column& record_beg, const Column& record_end, size_t n_samples,
                     int64_t covered) {
  const size_t n_rec = static_cast<size_t>(record_beg.ndim() == 1 ? record_beg.shape(0) : 0);
  const std::string_view lines = record_lines;
  const int64_t* offsets = column(line_offsets, n_rec + 1, "line_offsets");
  for (size_t r = 0; r < n_rec; ++r) {
    if (offsets[r] < 0 || offsets[r] > offsets[r + 1] ||
        static_cast<size_t>(offsets[r + 1]) > lines.size()) {
      throw std::invalid_argument("line_offsets do not cut record_lines into records");
    }
  }
  GvcfShard shard{block_columns(start, end, min_dp, gq, pl, dp, nullptr),
                  codes.data(),
                  static_cast<int64_t>(codes.size()),
                  lines.data(),
                  offsets,
                  column(record_beg, n_rec, "record_beg"),
                  column(record_end, n_rec, "record_end"),
                  n_rec};
  std::string text;
  std::vector<int64_t> beg, end_;
  {
    py::gil_scoped_release nogil;
    covered = format_gvcf_shard(contig, shard, n_samples, covered, text, beg, end_);
  }
  return py::make_tuple(py::bytes(text), numpy_copy(beg), numpy_copy(end_), covered);
}

struct PyVcfBgzfOutput {
  std::unique_ptr<VcfBgzfOutput> out;

  VcfBgzfOutput& get() {
    if (!out) throw std::logic_error("VcfBgzfOutput is closed");
    return *out;
  }
};

}  // namespace

void bind_vcf(py::module_& m) {
  m.def("format_reference_blocks", &format_blocks, py::arg("contig"), py::arg("start"),
        py::arg("end"), py::arg("min_dp"), py::arg("gq"), py::arg("pl"), py::arg("dp"),
        py::arg("bases"), py::arg("n_samples"),
        "gVCF reference-block lines (bytes) from columns: 0-based start, exclusive end, "
        "min_dp, gq, pl (n x 2 haploid or n x 3 diploid), dp, one reference letter per block");

  m.def(
      "format_variant_records",
      [](const std::string& contig, const py::list& records, bool gvcf) {
        std::vector<py::bytes> out;
        for (const auto& item : records) {
          std::string line;
          format_variant_record(contig, variant_from_dict(item.cast<py::dict>()), gvcf, line);
          out.emplace_back(line);
        }
        return out;
      },
      py::arg("contig"), py::arg("records"), py::arg("gvcf") = false,
      "The VCF line (bytes) call_region(vcf_lines=1, or 2 for gVCF) gives each record dict "
      "(VcfWriter.write's form; filter 'LowQual' or PASS, integer mq)");

  m.def("format_gvcf_shard", &gvcf_shard, py::arg("contig"), py::arg("start"), py::arg("end"),
        py::arg("min_dp"), py::arg("gq"), py::arg("pl"), py::arg("dp"), py::arg("codes"),
        py::arg("record_lines"), py::arg("line_offsets"), py::arg("record_beg"),
        py::arg("record_end"), py::arg("n_samples"), py::arg("covered"),
        "A gVCF shard's lines: reference blocks (columns; letters from the contig's codes) "
        "interleaved with its records' lines (back to back, cut at line_offsets), the parts "
        "at or before covered left out. Returns (text, each line's beg, end, new covered)");

  py::class_<PyVcfBgzfOutput>(m, "VcfBgzfOutput",
                              "Bgzipped VCF compressed on threads, its tabix index built while "
                              "writing")
      .def(py::init([](const std::string& path, int level, int threads,
                       const std::string& index_path, int csi_min_shift) {
             return PyVcfBgzfOutput{std::make_unique<VcfBgzfOutput>(path, level, threads,
                                                                    index_path, csi_min_shift)};
           }),
           py::arg("path"), py::arg("level") = -1, py::arg("threads") = 1,
           py::arg("index_path") = "", py::arg("csi_min_shift") = 0,
           "index_path: tabix index written beside (.tbi; .csi when csi_min_shift > 0)")
      .def("write_header",
           [](PyVcfBgzfOutput& self, const std::string& text) {
             py::gil_scoped_release nogil;
             self.get().write_header(text);
           })
      .def("write_lines",
           [](PyVcfBgzfOutput& self, const std::string& contig, const py::bytes& text,
              const Column& beg, const Column& end) {
             const size_t n = static_cast<size_t>(beg.ndim() == 1 ? beg.shape(0) : 0);
             const int64_t* b = column(beg, n, "beg");
             const int64_t* e = column(end, n, "end");
             const std::string_view t = text;
             py::gil_scoped_release nogil;
             self.get().write_lines(contig, t, b, e, n);
           },
           py::arg("contig"), py::arg("text"), py::arg("beg"), py::arg("end"),
           "n '\\n'-terminated lines of one contig with their 0-based intervals [beg, end)")
      .def("finish",
           [](PyVcfBgzfOutput& self) {
             {
               py::gil_scoped_release nogil;
               self.get().finish();
             }
             self.out.reset();
           },
           "EOF block, index saved, file closed")
      .def("close", [](PyVcfBgzfOutput& self) { self.out.reset(); },
           "Abandons the output: stops the threads and closes the file");
}

}  // namespace gms
