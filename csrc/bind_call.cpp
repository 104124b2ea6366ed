// Python binding of region calling: returns plain records (dicts) for the Python VCF writer,
// with their VCF lines when asked.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "gmsaccel/bindings.hpp"
#include "gmsaccel/caller.hpp"
#include "gmsaccel/errors.hpp"
#include "gmsaccel/given_alleles.hpp"
#include "gmsaccel/simd.hpp"
#include "gmsaccel/source_cache.hpp"
#include "gmsaccel/vcf_output.hpp"

namespace py = pybind11;

namespace gms {

namespace {

using U32 = py::array_t<uint32_t, py::array::c_style | py::array::forcecast>;
using I32 = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;
using I64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

py::dict confidence_dict(const ReferenceConfidence& c) {
  const auto n = static_cast<py::ssize_t>(c.size());
  py::dict d;
  d["start"] = c.start;
  d["gq"] = numpy_copy(c.gq);
  d["pl"] = numpy_copy(c.pl, {n, static_cast<py::ssize_t>(c.n_pl)});
  d["depth"] = numpy_copy(c.depth);
  return d;
}

// VariantSummary.add over the records, as a dict of its fields: counts over PASS records of
// alleles by type, Ti/Tv of SNVs, called genotypes het or hom, and filtered records by each
// filter they fail (call.py's definition).
py::dict summary_of(const std::vector<VariantRecord>& recs) {
  std::map<std::string, int64_t> filtered;
  int64_t passed = 0, low = 0, ref_only = 0, snv = 0, ins = 0, del = 0, mnp = 0, ti = 0, tv = 0,
          het = 0, hom = 0;
  auto upper = [](char c) { return static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c); };
  for (const VariantRecord& r : recs) {
    if (!r.filters.empty()) {  // LowQual, or a somatic record's filters
      low += r.filters.size() == 1 && r.filters[0] == "LowQual";
      for (const std::string& f : r.filters) ++filtered[f];
      continue;
    }
    ++passed;
    bool carried = false;
    for (const SampleCall& sc : r.samples)
      for (int a : sc.gt) carried = carried || a > 0;
    if (!carried && !r.samples.empty()) {
      ++ref_only;
      continue;
    }
    for (const std::string& alt : r.alts) {
      if (alt.empty() || alt[0] == '<' || alt == "*" || alt == ".") continue;
      if (alt.size() == r.ref.size()) {
        if (alt.size() > 1) {
          ++mnp;
          continue;
        }
        ++snv;
        const char a = upper(r.ref[0]), b = upper(alt[0]);
        const bool transition = (a == 'A' && b == 'G') || (a == 'G' && b == 'A') ||
                                (a == 'C' && b == 'T') || (a == 'T' && b == 'C');
        ++(transition ? ti : tv);
      } else {
        ++(alt.size() > r.ref.size() ? ins : del);
      }
    }
    for (const SampleCall& sc : r.samples) {
      int lo = -1, hi = -1;
      for (int a : sc.gt) {
        if (a < 0) continue;
        lo = lo < 0 ? a : std::min(lo, a);
        hi = std::max(hi, a);
      }
      if (hi <= 0) continue;  // nothing called, or reference only
      ++(lo != hi ? het : hom);
    }
  }
  py::dict types;
  types["SNV"] = snv;
  types["insertion"] = ins;
  types["deletion"] = del;
  types["MNP"] = mnp;
  py::dict d;
  d["records"] = static_cast<int64_t>(recs.size());
  d["passed"] = passed;
  d["low_qual"] = low;
  d["ref_only"] = ref_only;
  d["types"] = types;
  d["transitions"] = ti;
  d["transversions"] = tv;
  d["het"] = het;
  d["hom"] = hom;
  py::dict filters;
  for (const auto& [name, n] : filtered) filters[py::str(name)] = n;
  d["filters"] = filters;
  return d;
}

}  // namespace

void bind_call(py::module_& m) {
  m.attr("CANDIDATE_PAD") = kCandidatePad;
  m.attr("MAX_INDEL_LENGTH") = kMaxIndelLength;
  {
    const SomaticThresholds t;
    py::dict d;
    d["min_tlod"] = t.min_tlod;
    d["pass_tlod"] = t.pass_tlod;
    d["min_nlod"] = t.min_nlod;
    d["max_normal_alod"] = t.max_normal_alod;
    d["min_strand_p"] = t.min_strand_p;
    d["max_germline_posterior"] = t.max_germline_posterior;
    d["af_not_in_resource"] = t.af_not_in_resource;
    d["log10_somatic_prior"] = t.log10_somatic_prior;
    d["contamination"] = t.contamination;
    d["max_contamination_posterior"] = t.max_contamination_posterior;
    d["tumour_in_normal"] = t.tumour_in_normal;
    m.attr("SOMATIC_THRESHOLDS") = d;
  }
  m.def(
      "call_region",
      [](const std::vector<std::string>& bams, const std::string& reference,
         py::array_t<uint8_t, py::array::c_style | py::array::forcecast> ref_codes,
         const std::string& contig, int64_t start, int64_t end, int ploidy, int min_mapq,
         int min_baseq, int max_depth, uint32_t min_support, double min_fraction,
         double low_qual, double min_qual, const std::string& simd, int device,
         bool device_emulate, int vcf_lines, bool reference_confidence, bool as_lines,
         const std::vector<std::tuple<int64_t, std::string, std::string, std::string>>& given,
         bool given_only, const std::vector<int>& sample_ploidy, int somatic_tumour,
         int somatic_normal, double min_tlod, double pass_tlod, double min_nlod,
         double max_normal_alod, double min_strand_p,
         const std::vector<std::tuple<int64_t, std::string, std::string>>& panel,
         const std::optional<std::string>& resource,
         double max_germline_posterior, double af_not_in_resource, double log10_somatic_prior,
         double contamination, double max_contamination_posterior, double tumour_in_normal) {
        if (as_lines && !vcf_lines) throw std::invalid_argument("as_lines needs vcf_lines");
        if (ploidy != 1 && ploidy != 2) throw std::invalid_argument("ploidy must be 1 or 2");
        if (ref_codes.ndim() != 1) throw std::invalid_argument("ref_codes must be 1-D");
        CallerOptions opt;
        opt.ploidy = ploidy;
        opt.filter.min_mapq = min_mapq;
        opt.filter.min_baseq = min_baseq;
        opt.filter.max_depth = max_depth;
        opt.candidates.min_support = min_support;
        opt.candidates.min_fraction = min_fraction;
        opt.low_qual = low_qual;
        opt.min_qual = min_qual;
        opt.simd_level = static_cast<int>(simd.empty() ? detect_simd_level()
                                                       : parse_simd_level(simd));
        opt.device = device < 0 ? -1 : device;
        opt.device_emulate = device_emulate;
        for (const auto& [pos, r, a, id] : given) {
          CandidateAllele& c = opt.given.emplace_back();
          c.pos = pos;
          c.ref = r;
          c.alt = a;
          c.id = id;
        }
        opt.given_only = given_only;
        opt.sample_ploidy = sample_ploidy;
        opt.somatic_tumour = somatic_tumour < 0 ? -1 : somatic_tumour;
        opt.somatic_normal = somatic_normal < 0 ? -1 : somatic_normal;
        opt.somatic.min_tlod = min_tlod;
        opt.somatic.pass_tlod = pass_tlod;
        opt.somatic.min_nlod = min_nlod;
        opt.somatic.max_normal_alod = max_normal_alod;
        opt.somatic.min_strand_p = min_strand_p;
        for (const auto& [pos, r, a] : panel) {
          CandidateAllele& c = opt.panel.emplace_back();
          c.pos = pos;
          c.ref = r;
          c.alt = a;
        }
        std::sort(opt.panel.begin(), opt.panel.end());
        opt.somatic.max_germline_posterior = max_germline_posterior;
        opt.somatic.af_not_in_resource = af_not_in_resource;
        opt.somatic.log10_somatic_prior = log10_somatic_prior;
        if (!(contamination >= 0 && contamination < 0.5))
          throw std::invalid_argument("contamination must be in [0, 0.5)");
        if (contamination > 0 && !resource)
          throw std::invalid_argument("contamination needs a germline resource");
        opt.somatic.contamination = contamination;
        opt.somatic.max_contamination_posterior = max_contamination_posterior;
        if (!(tumour_in_normal >= 0 && tumour_in_normal < 1))
          throw std::invalid_argument("tumour_in_normal must be in [0, 1)");
        if (tumour_in_normal > 0 && opt.somatic_normal < 0)
          throw std::invalid_argument("tumour_in_normal needs a normal (somatic_normal)");
        opt.somatic.tumour_in_normal = tumour_in_normal;
        opt.has_resource = resource.has_value();
        if (opt.device >= 0 && !haplotype_backend())
          throw std::runtime_error("no GPU haplotype backend registered (import gmsaccel._cuda "
                                   "and call set_haplotype_backend)");
        const uint8_t* ref = ref_codes.data();
        const int64_t len = ref_codes.shape(0);
        std::vector<VariantRecord> recs;
        // each record's VCF line and gVCF line, when asked for (with as_lines: back to back,
        // the records' intervals and gVCF line offsets beside them)
        std::vector<std::string> lines, gvcf_lines;
        std::string vcf, gvcf;
        std::vector<int64_t> beg, stop, offsets;
        ReferenceConfidence confidence;
        LoadStats stats;
        {
          py::gil_scoped_release nogil;
          if (resource) {  // the germline resource's alleles here, read without the GIL
            const ContigCodes codes{ref, len, nullptr};
            for (GivenAllele& a : read_germline_resource(*resource, contig, start, end, len,
                                                         codes)) {
              CandidateAllele c;
              c.pos = a.pos;
              c.ref = std::move(a.ref);
              c.alt = std::move(a.alt);
              opt.resource.emplace_back(std::move(c), a.af);
            }
          }
          // the files stay open on this thread for its next shards
          CachedSources sources(bams, reference);
          recs = call_region(sources.get(), contig, start, end, ref, len, opt, &stats,
                             reference_confidence ? &confidence : nullptr);
          sources.done();
          // formatted here, on the calling thread, not the writer's
          const size_t n = recs.size();
          if (as_lines) {
            beg.resize(n);
            stop.resize(n);
            offsets.assign(n + 1, 0);
          } else {
            if (vcf_lines & 1) lines.resize(n);
            if (vcf_lines & 2) gvcf_lines.resize(n);
          }
          for (size_t i = 0; i < n; ++i) {
            if (vcf_lines & 1)
              format_variant_record(contig, recs[i], false, as_lines ? vcf : lines[i]);
            if (vcf_lines & 2)
              format_variant_record(contig, recs[i], true, as_lines ? gvcf : gvcf_lines[i]);
            if (as_lines) {
              beg[i] = recs[i].pos;
              stop[i] = recs[i].pos + static_cast<int64_t>(recs[i].ref.size());
              offsets[i + 1] = static_cast<int64_t>(gvcf.size());
            }
          }
        }
        py::list out;
        py::dict packed;
        if (as_lines) {  // no record objects: what writing a VCF needs, as arrays and text
          packed["beg"] = numpy_copy(beg);
          packed["end"] = numpy_copy(stop);
          packed["vcf"] = py::bytes(vcf);
          packed["gvcf"] = py::bytes(gvcf);
          packed["gvcf_offsets"] = numpy_copy(offsets);
          packed["summary"] = summary_of(recs);
          recs.clear();
        }
        for (size_t i = 0; i < recs.size(); ++i) {
          const VariantRecord& r = recs[i];
          py::dict d;
          if (vcf_lines & 1) d["line"] = py::bytes(lines[i]);
          if (vcf_lines & 2) d["gvcf_line"] = py::bytes(gvcf_lines[i]);
          d["pos"] = r.pos;
          d["id"] = r.id;
          d["ref"] = r.ref;
          d["alts"] = r.alts;
          d["qual"] = r.qual;
          d["filter"] = filter_column(r);
          if (r.somatic) {
            d["tlod"] = r.tlod;
            d["nlod"] = r.nlod;
            if (!r.popaf.empty()) {
              d["popaf"] = r.popaf;
              d["germq"] = r.germq;
            }
            if (!r.contq.empty()) d["contq"] = r.contq;
          }
          d["dp"] = r.dp;
          d["mq"] = r.mq;
          py::list samples;
          for (const auto& s : r.samples) {
            py::dict sd;
            sd["gt"] = s.gt;
            sd["ad"] = s.ad;
            sd["dp"] = s.dp;
            sd["gq"] = s.gq;
            sd["pl"] = s.pl;
            if (r.somatic) {
              sd["af"] = s.af;
              sd["sb"] = s.sb;
            }
            samples.append(sd);
          }
          d["samples"] = samples;
          out.append(d);
        }
        py::dict st;
        st["loaded"] = stats.loaded;
        st["filtered"] = stats.filtered;
        st["depth_capped"] = stats.depth_capped;
        st["stage_seconds"] = stage_dict(stats.stage);
        st["gpu_fallbacks"] = stats.gpu_fallbacks;
        if (as_lines) st["lines"] = packed;
        if (!reference_confidence) return py::tuple(py::make_tuple(out, st));
        return py::tuple(py::make_tuple(out, st, confidence_dict(confidence)));
      },
      py::arg("bams"), py::arg("reference"), py::arg("ref_codes"), py::arg("contig"),
      py::arg("start"), py::arg("end"), py::kw_only(), py::arg("ploidy") = 2,
      py::arg("min_mapq") = 0, py::arg("min_baseq") = 13, py::arg("max_depth") = 1000,
      py::arg("min_support") = 2, py::arg("min_fraction") = 0.05, py::arg("low_qual") = 20.0,
      py::arg("min_qual") = 0.0, py::arg("simd") = "", py::arg("device") = -1,
      py::arg("device_emulate") = false, py::arg("vcf_lines") = 0,
      py::arg("reference_confidence") = false, py::arg("as_lines") = false,
      py::arg("given") =
          std::vector<std::tuple<int64_t, std::string, std::string, std::string>>{},
      py::arg("given_only") = false, py::arg("sample_ploidy") = std::vector<int>{},
      py::arg("somatic_tumour") = -1, py::arg("somatic_normal") = -1,
      py::arg("min_tlod") = SomaticThresholds{}.min_tlod,
      py::arg("pass_tlod") = SomaticThresholds{}.pass_tlod,
      py::arg("min_nlod") = SomaticThresholds{}.min_nlod,
      py::arg("max_normal_alod") = SomaticThresholds{}.max_normal_alod,
      py::arg("min_strand_p") = SomaticThresholds{}.min_strand_p,
      py::arg("panel") = std::vector<std::tuple<int64_t, std::string, std::string>>{},
      py::arg("resource") = py::none(),
      py::arg("max_germline_posterior") = SomaticThresholds{}.max_germline_posterior,
      py::arg("af_not_in_resource") = SomaticThresholds{}.af_not_in_resource,
      py::arg("log10_somatic_prior") = SomaticThresholds{}.log10_somatic_prior,
      py::arg("contamination") = SomaticThresholds{}.contamination,
      py::arg("max_contamination_posterior") = SomaticThresholds{}.max_contamination_posterior,
      py::arg("tumour_in_normal") = SomaticThresholds{}.tumour_in_normal,
      "Calls variants in [start, end) of contig from indexed BAM/CRAM files (one sample each);\n"
      "device >= 0 computes the read/haplotype costs on that GPU (set_haplotype_backend first);\n"
      "vcf_lines: 1 adds each record's VCF line as 'line' (bytes), 2 its gVCF line as\n"
      "'gvcf_line', 3 both;\n"
      "as_lines: no record dicts; stats['lines'] holds the records as beg/end arrays, their VCF\n"
      "and gVCF text, gVCF line offsets and their summary;\n"
      "reference_confidence (one BAM) returns a third item, the gVCF reference confidence of\n"
      "[start, end): {start, gq, pl (n x 3, or n x 2 haploid), depth};\n"
      "given: (pos, ref, alt, id) alleles, normalised (normalise_allele), each written (with\n"
      "its id, '' for none, in the ID column) whatever the\n"
      "reads say (GT 0/0 without it, ./. unseen); given_only: only records holding one;\n"
      "sample_ploidy: each sample's ploidy (0, 1, 2) in [start, end), else all `ploidy`;\n"
      "somatic_tumour >= 0: somatic records (TLOD, NLOD, filters; each sample's AF) for that\n"
      "sample's alleles, somatic_normal its matched normal (-1: none); min_tlod, pass_tlod,\n"
      "min_nlod, max_normal_alod and min_strand_p are somatic.hpp's thresholds; panel: "
      "(pos, ref, alt) alleles of a panel of normals, normalised (FILTER panel_of_normals);\n"
      "resource (somatic; None: none): the path of a germline resource (read_germline_resource;\n"
      "its alleles in [start, end)), for POPAF, GERMQ and FILTER germline (max_germline_posterior,\n"
      "af_not_in_resource, log10_somatic_prior: somatic.hpp); contamination (with a\n"
      "resource): the tumour's reads from another person, for CONTQ and FILTER contamination\n"
      "(max_contamination_posterior); tumour_in_normal (with a normal): the tumour's cells in the\n"
      "normal, as the share of a somatic allele's tumour fraction the normal shows (NLOD and\n"
      "normal_artifact weigh the normal against that, not against 0)");

  m.def("check_germline_resource", &check_germline_resource, py::arg("path"),
        py::arg("reference_contigs"),
        "given_alleles.hpp's check of a germline resource: an InputError unless it opens, "
        "declares INFO/AF, is indexed and shares a contig name with the reference");
  m.def(
      "read_germline_resource",
      [](const std::string& path, const std::string& contig, int64_t start, int64_t end,
         py::array_t<uint8_t, py::array::c_style | py::array::forcecast> codes) {
        if (codes.ndim() != 1) throw std::invalid_argument("codes must be 1-D");
        const ContigCodes c{codes.data(), static_cast<int64_t>(codes.shape(0)), nullptr};
        std::vector<GivenAllele> alleles;
        {
          py::gil_scoped_release nogil;
          alleles = read_germline_resource(path, contig, start, end, c.size, c);
        }
        py::list out(alleles.size());
        for (size_t i = 0; i < alleles.size(); ++i) {
          const GivenAllele& a = alleles[i];
          out[i] = py::make_tuple(a.pos, a.ref, a.alt, a.af);
        }
        return out;
      },
      py::arg("path"), py::arg("contig"), py::arg("start"), py::arg("end"), py::arg("codes"),
      "A germline resource's alleles in [start, end) of contig (codes: the contig's base codes), "
      "normalised: [(pos, ref, alt, population AF)] sorted");

  m.def(
      "read_given_alleles",
      [](const std::string& path, const std::map<std::string, int64_t>& contigs,
         const py::function& ref_codes) {
        using Codes = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;
        GivenAlleleFile file = read_given_alleles(
            path,
            [&](const std::string& name) {
              auto it = contigs.find(name);
              return it == contigs.end() ? int64_t{-1} : it->second;
            },
            [&](const std::string& name) {
              auto held = std::make_shared<Codes>(ref_codes(name).cast<Codes>());
              if (held->ndim() != 1) throw std::invalid_argument("ref_codes must be 1-D");
              return ContigCodes{held->data(), static_cast<int64_t>(held->shape(0)), held};
            });
        py::dict by_contig;
        for (const auto& [contig, alleles] : file.by_contig) {
          py::list rows(alleles.size());
          for (size_t i = 0; i < alleles.size(); ++i) {
            const GivenAllele& a = alleles[i];
            rows[i] = py::make_tuple(a.pos, a.ref, a.alt, a.id);
          }
          by_contig[py::str(contig)] = rows;
        }
        return py::make_tuple(by_contig, file.skipped, file.first_skipped);
      },
      py::arg("path"), py::arg("contigs"), py::arg("ref_codes"),
      "Given alleles of a VCF/BCF (see given_alleles.hpp): ({contig: [(pos, ref, alt, id)] "
      "sorted}, {why: ALTs skipped}, the first skipped record); contigs: name -> length, "
      "ref_codes(name): the contig's base codes");

  m.def(
      "normalise_allele",
      [](int64_t pos, std::string ref, std::string alt,
         py::array_t<uint8_t, py::array::c_style | py::array::forcecast> ref_codes) {
        if (ref_codes.ndim() != 1) throw std::invalid_argument("ref_codes must be 1-D");
        if (pos < 0 || pos + static_cast<int64_t>(ref.size()) > ref_codes.shape(0))
          throw std::invalid_argument("allele outside the reference");
        normalise(pos, ref, alt, ref_codes.data(), 0);
        return py::make_tuple(pos, ref, alt);
      },
      py::arg("pos"), py::arg("ref"), py::arg("alt"), py::arg("ref_codes"),
      "An allele (0-based pos, REF, ALT; uppercase) left-aligned and trimmed as the caller's "
      "candidates are (bcftools norm's rule): (pos, ref, alt)");

  m.def(
      "reference_block_runs",
      [](int64_t start, const I32& gq, const I32& pl, const I32& depth, const I64& excluded_beg,
         const I64& excluded_end, const std::vector<int>& band_floors, int64_t max_block) {
        const size_t n = static_cast<size_t>(gq.size());
        if (pl.ndim() != 2 || static_cast<size_t>(pl.shape(0)) != n ||
            static_cast<size_t>(depth.size()) != n || excluded_beg.size() != excluded_end.size()) {
          throw std::invalid_argument("gq, pl (one row each), depth must cover the same "
                                      "positions, and excluded spans need both ends");
        }
        if (band_floors.empty() || !std::is_sorted(band_floors.begin(), band_floors.end())) {
          throw std::invalid_argument("band_floors: ascending GQ band lower bounds");
        }
        const size_t n_pl = static_cast<size_t>(pl.shape(1));
        ReferenceBlockRuns runs;
        {
          py::gil_scoped_release nogil;
          reference_block_runs(start, gq.data(), pl.data(), n_pl, depth.data(), n,
                               excluded_beg.data(), excluded_end.data(),
                               static_cast<size_t>(excluded_beg.size()), band_floors,
                               max_block, runs);
        }
        py::dict d;
        d["start"] = numpy_copy(runs.start);
        d["end"] = numpy_copy(runs.end);
        d["gq"] = numpy_copy(runs.gq);
        d["min_dp"] = numpy_copy(runs.min_dp);
        d["dp_sum"] = numpy_copy(runs.dp_sum);
        d["pl_min"] = numpy_copy(runs.pl_min, {static_cast<py::ssize_t>(runs.start.size()),
                                               static_cast<py::ssize_t>(n_pl)});
        return d;
      },
      py::arg("start"), py::arg("gq"), py::arg("pl"), py::arg("depth"), py::arg("excluded_beg"),
      py::arg("excluded_end"), py::arg("band_floors"), py::arg("max_block") = 0,
      "gVCF reference blocks as columns (gvcf.reference_block_arrays' definition)");

  m.def(
      "somatic_score",
      [](const std::vector<double>& tumour_alt, const std::vector<double>& tumour_ref,
         const std::optional<std::vector<double>>& normal_alt,
         const std::optional<std::vector<double>>& normal_ref, double tumour_in_normal) {
        if (!(tumour_in_normal >= 0 && tumour_in_normal < 1))
          throw std::invalid_argument("tumour_in_normal must be in [0, 1)");
        // reads x 2: the reference's likelihood, then the allele's
        auto rows = [](const std::vector<double>& alt, const std::vector<double>& ref) {
          if (alt.size() != ref.size())
            throw std::invalid_argument("alt and ref likelihoods: one of each per read");
          std::vector<double> lik(2 * alt.size());
          for (size_t i = 0; i < alt.size(); ++i) {
            if (!(alt[i] > 0) || !(ref[i] > 0))
              throw std::invalid_argument("read likelihoods must be above 0");
            lik[2 * i] = ref[i];
            lik[2 * i + 1] = alt[i];
          }
          return lik;
        };
        if (normal_alt.has_value() != normal_ref.has_value())
          throw std::invalid_argument("the normal needs both alt and ref likelihoods");
        const auto t = rows(tumour_alt, tumour_ref);
        std::vector<double> n;
        if (normal_alt) n = rows(*normal_alt, *normal_ref);
        const SomaticScore sc = score_allele(t.data(), tumour_alt.size(),
                                             normal_alt ? n.data() : nullptr, n.size() / 2, 2, 1,
                                             tumour_in_normal);
        py::dict d;
        d["tumour_fraction"] = sc.tumour_fraction;
        d["tlod"] = sc.tlod;
        d["normal_fraction"] = sc.normal_fraction;
        d["nlod"] = sc.nlod;
        d["normal_alod"] = sc.normal_alod;
        return d;
      },
      py::arg("tumour_alt"), py::arg("tumour_ref"), py::arg("normal_alt") = py::none(),
      py::arg("normal_ref") = py::none(), py::arg("tumour_in_normal") = 0.0,
      "somatic.hpp's score of one allele from each read's likelihood under the allele and under "
      "the reference: {tumour_fraction, tlod, normal_fraction (NaN: a normal without reads), "
      "nlod, normal_alod}; tumour_in_normal: the share of the tumour's fraction a somatic "
      "allele shows in the normal");

  using Lik = py::array_t<double, py::array::c_style | py::array::forcecast>;
  // reads x components likelihoods, checked (k: the components every matrix must have)
  auto checked = [](const Lik& lik, const char* what, size_t k) {
    if (lik.ndim() != 2 || (k && static_cast<size_t>(lik.shape(1)) != k))
      throw std::invalid_argument(std::string(what) + ": reads x components");
    for (py::ssize_t i = 0; i < lik.size(); ++i)
      if (!(lik.data()[i] > 0)) throw std::invalid_argument("likelihoods must be above 0");
    return static_cast<size_t>(lik.shape(0));
  };
  m.def(
      "fit_fractions",
      [checked](const Lik& lik, const std::vector<double>& fixed) {
        const size_t n = checked(lik, "lik", 0), k = static_cast<size_t>(lik.shape(1));
        if (k == 0 || (!fixed.empty() && fixed.size() != k))
          throw std::invalid_argument("fixed: one value per component (< 0: free), or none");
        std::vector<double> f(k);
        const double ll = fit_fractions(lik.data(), n, k, fixed.empty() ? nullptr : fixed.data(),
                                        f.data());
        return py::make_tuple(f, ll);
      },
      py::arg("lik"), py::arg("fixed") = std::vector<double>{},
      "somatic.hpp's fit: (fractions, log10 likelihood) of reads x components likelihoods, "
      "components with fixed[j] >= 0 held there");

  m.def(
      "log10_integrated_likelihood",
      [checked](const Lik& lik, size_t allele, const std::optional<Lik>& also,
                double also_scale) {
        const size_t n = checked(lik, "lik", 0), k = static_cast<size_t>(lik.shape(1));
        if (allele >= k) throw std::invalid_argument("allele: a component");
        if (!(also_scale >= 0 && also_scale <= 1))
          throw std::invalid_argument("also_scale must be in [0, 1]");
        if (!also) return log10_integrated_likelihood(lik.data(), n, k, allele);
        const size_t n_also = checked(*also, "also", k);
        return log10_integrated_likelihood(lik.data(), n, k, allele, also->data(), n_also,
                                           also_scale);
      },
      py::arg("lik"), py::arg("allele"), py::arg("also") = py::none(),
      py::arg("also_scale") = 0.0,
      "somatic.hpp's log10 of the likelihood integrated over the allele's fraction f in [0, 1]; "
      "also: a second sample's reads, its allele held at also_scale * f");
  m.def(
      "allele_origins",
      [checked](const Lik& tumour, const std::optional<Lik>& normal, size_t allele,
                double population_af, double log10_somatic_prior, double contamination,
                double tumour_in_normal) {
        const size_t n_t = checked(tumour, "tumour", 0), k = static_cast<size_t>(tumour.shape(1));
        if (allele == 0 || allele >= k) throw std::invalid_argument("allele: a component > 0");
        const size_t n_n = normal ? checked(*normal, "normal", k) : 0;
        if (!(population_af >= 0 && population_af <= 1) || !(log10_somatic_prior < 0) ||
            !std::isfinite(log10_somatic_prior) || !(contamination >= 0 && contamination < 0.5) ||
            !(tumour_in_normal >= 0 && tumour_in_normal < 1))
          throw std::invalid_argument("population_af in [0, 1], log10_somatic_prior finite < 0, "
                                      "contamination in [0, 0.5), tumour_in_normal in [0, 1)");
        const AlleleOrigins o =
            allele_origins(tumour.data(), n_t, normal ? normal->data() : nullptr, n_n, k, allele,
                           population_af, log10_somatic_prior, contamination,
                           tumour_in_normal);
        py::dict d;
        d["germline"] = o.germline;
        d["contamination"] = o.contamination;
        return d;
      },
      py::arg("tumour"), py::arg("normal"), py::arg("allele"), py::arg("population_af"),
      py::arg("log10_somatic_prior") = SomaticThresholds{}.log10_somatic_prior,
      py::arg("contamination") = 0.0, py::arg("tumour_in_normal") = 0.0,
      "somatic.hpp's posterior probabilities of where the allele (component `allele` of reads x "
      "components likelihoods; component 0 the reference) comes from: {germline, "
      "contamination} (somatic the rest of the germline one's three origins)");

  m.def("strand_bias_p", &strand_bias_p, py::arg("alt_fwd"), py::arg("alt_rev"),
        py::arg("depth_fwd"), py::arg("depth_rev"),
        "somatic.hpp's strand bias: the two-sided binomial chance of an allele's reads falling "
        "on the strands as unevenly as alt_fwd : alt_rev, given the depth on each");

  m.def(
      "close_kept_files", [] { SourceCache::this_thread().clear(); },
      "Closes the alignment files the calling thread keeps open between call_region calls");

  m.def(
      "reference_confidence",
      [](const U32& base_counts, const U32& base_qual_sums, const U32& deletions,
         const U32& insertions, const U32& depth,
         const py::array_t<uint8_t, py::array::c_style | py::array::forcecast>& ref_codes,
         int ploidy) {
        const size_t n = static_cast<size_t>(depth.size());
        if (base_counts.size() != static_cast<py::ssize_t>(n * 5) ||
            base_qual_sums.size() != static_cast<py::ssize_t>(n * 5) ||
            deletions.size() != static_cast<py::ssize_t>(n) ||
            insertions.size() != static_cast<py::ssize_t>(n) ||
            ref_codes.size() != static_cast<py::ssize_t>(n)) {
          throw std::invalid_argument("pileup arrays and ref_codes must cover the same positions");
        }
        Pileup pile;
        pile.n = static_cast<int64_t>(n);
        pile.base_counts.assign(base_counts.data(), base_counts.data() + n * 5);
        pile.base_qual_sums.assign(base_qual_sums.data(), base_qual_sums.data() + n * 5);
        pile.deletions.assign(deletions.data(), deletions.data() + n);
        pile.insertions.assign(insertions.data(), insertions.data() + n);
        pile.depth.assign(depth.data(), depth.data() + n);
        ReferenceConfidence out;
        add_reference_confidence(pile, ref_codes.data(), ploidy, out);
        return confidence_dict(out);
      },
      py::arg("base_counts"), py::arg("base_qual_sums"), py::arg("deletions"),
      py::arg("insertions"), py::arg("depth"), py::arg("ref_codes"), py::arg("ploidy") = 2,
      "gVCF reference confidence of pileup counts (Caller.pileup's arrays) over reference "
      "codes: {start, gq, pl, depth}, as call_region(reference_confidence=True) computes it");
}

}  // namespace gms
