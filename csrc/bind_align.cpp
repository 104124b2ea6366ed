// Python bindings of the aligner: per-read mapping, batch mapping and the FASTQ-to-BAM pipeline.
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "align_internal.hpp"
#include "gmsaccel/align.hpp"
#include "gmsaccel/extend_batch.hpp"
#include "gmsaccel/bindings.hpp"
#include "gmsaccel/seed_batch.hpp"
#include "gmsaccel/pipeline.hpp"

namespace py = pybind11;

namespace gms {

namespace {

py::dict stats_dict(const AlignStats& s) {
  py::dict d;
  d["reads"] = s.reads;
  d["mapped"] = s.mapped;
  d["properly_paired"] = s.properly_paired;
  d["supplementary"] = s.supplementary;
  d["rescued"] = s.rescued;
  d["extend_jobs"] = s.extend_jobs;
  d["ungapped_accepted"] = s.ungapped_accepted;
  d["gpu_seeded_reads"] = s.gpu_seeded_reads;
  d["gpu_extend_fallbacks"] = s.gpu_extend_fallbacks;
  d["cells"] = s.cells;
  d["mapped_by_contig"] = s.mapped_by_contig;
  d["stage_seconds"] = stage_dict(s.stage);
  return d;
}

py::dict model_dict(const InsertModel& m) {
  py::dict d;
  d["valid"] = m.valid;
  d["mean"] = m.mean;
  d["sd"] = m.sd;
  d["low"] = m.low;
  d["high"] = m.high;
  d["pairs_used"] = m.pairs_used;
  return d;
}

// The inverse of model_dict: a model a run reported, for another run to use.
InsertModel model_of(const py::dict& d) {
  InsertModel m;
  m.valid = d["valid"].cast<bool>();
  m.mean = d["mean"].cast<double>();
  m.sd = d["sd"].cast<double>();
  m.low = d["low"].cast<int64_t>();
  m.high = d["high"].cast<int64_t>();
  m.pairs_used = d["pairs_used"].cast<uint64_t>();
  return m;
}

ReadBatch batch_of(const std::vector<std::string>& seqs) {
  ReadBatch b;
  for (size_t i = 0; i < seqs.size(); ++i) {
    b.names.push_back(std::to_string(i));
    b.comments.emplace_back();
    b.bases += seqs[i];
    b.quals.append(seqs[i].size(), 'I');
    b.offsets.push_back(b.bases.size());
  }
  return b;
}

}  // namespace

void bind_align(py::module_& m) {
  m.def(
      "chain_anchors",
      [](const std::vector<uint32_t>& rev, const std::vector<int32_t>& qpos,
         const std::vector<int64_t>& diag, int k, int max_candidates, int max_diag_gap,
         int max_indel_gap, int band_padding, int max_half_band) {
        if (rev.size() != qpos.size() || rev.size() != diag.size())
          throw std::invalid_argument("rev, qpos and diag must be of one length");
        std::vector<Anchor> anchors(rev.size());
        for (size_t i = 0; i < rev.size(); ++i) anchors[i] = Anchor{rev[i], qpos[i], diag[i]};
        AlignOptions opt;
        opt.max_candidates = max_candidates;
        opt.max_diag_gap = max_diag_gap;
        opt.max_indel_gap = max_indel_gap;
        opt.band_padding = band_padding;
        opt.max_half_band = max_half_band;
        std::vector<Chain> chains;
        const int32_t unexplored = chain_anchors(anchors, k, opt, chains);
        py::list out;
        for (const Chain& c : chains)
          out.append(py::make_tuple(c.rev, c.diag_lo, c.diag_hi, c.cover, c.q_lo, c.q_hi,
                                    c.n_anchors));
        return py::make_tuple(out, unexplored);
      },
      py::arg("rev"), py::arg("qpos"), py::arg("diag"), py::arg("k") = 21,
      py::arg("max_candidates") = AlignOptions{}.max_candidates,
      py::arg("max_diag_gap") = AlignOptions{}.max_diag_gap,
      py::arg("max_indel_gap") = AlignOptions{}.max_indel_gap,
      py::arg("band_padding") = AlignOptions{}.band_padding,
      py::arg("max_half_band") = AlignOptions{}.max_half_band,
      "The aligner's chaining of one read's anchors (testing): ([(rev, diag_lo, diag_hi, cover, "
      "q_lo, q_hi, n_anchors)] best first, the largest cover the candidate cap left out)");
  m.def("set_extend_backend", [](const py::capsule& cap) {
        set_extend_backend(backend_from_capsule<ExtendBackendFn>(cap, "gmsaccel.extend_backend",
                                                                 "extension"));
      }, "Registers the GPU extension backend (a capsule from gmsaccel._cuda.extend_backend())");
  m.def("has_extend_backend", [] { return extend_backend() != nullptr; });
  m.def("set_seed_backend", [](const py::capsule& cap) {
        set_seed_backend(
            backend_from_capsule<SeedBackendFn>(cap, "gmsaccel.seed_backend", "seeding"));
      }, "Registers the GPU seeding backend (a capsule from gmsaccel._cuda.seed_backend())");
  m.def("has_seed_backend", [] { return seed_backend() != nullptr; });

  py::class_<Hit>(m, "Hit", "One alignment of a read (0-based, half-open coordinates)")
      .def_readonly("contig", &Hit::contig)
      .def_readonly("pos", &Hit::pos)
      .def_readonly("end", &Hit::end)
      .def_readonly("rev", &Hit::rev)
      .def_readonly("score", &Hit::score)
      .def_readonly("q_begin", &Hit::q_begin)
      .def_readonly("q_end", &Hit::q_end)
      .def_readonly("mapq", &Hit::mapq)
      .def_readonly("nm", &Hit::nm)
      .def_readonly("sub_score", &Hit::sub_score)
      .def_readonly("md", &Hit::md)
      .def_property_readonly("cigar", [](const Hit& h) { return cigar_string(h.cigar); });

  py::class_<Aligner>(m, "Aligner")
      .def(py::init([](const Index& index, const std::string& simd, int min_score,
                       int max_candidates, int match, int mismatch, int gap_open,
                       int gap_extend, int clip, int device, bool device_emulate,
                       int insert_model_pairs) {
             if (insert_model_pairs < 1) throw py::value_error("insert_model_pairs must be >= 1");
             AlignOptions o;
             o.insert_model_pairs = insert_model_pairs;
             o.device = device;
             o.device_emulate = device_emulate;
             if (device >= 0 && !extend_backend())
               throw std::runtime_error("no GPU backend registered (import gmsaccel._cuda)");
             o.simd = simd.empty() ? detect_simd_level() : parse_simd_level(simd);
             o.min_score = min_score;
             o.max_candidates = max_candidates;
             o.scoring.match = match;
             o.scoring.mismatch = mismatch;
             o.scoring.gap_open = gap_open;
             o.scoring.gap_extend = gap_extend;
             o.scoring.clip = clip;
             return std::make_unique<Aligner>(index, o);
           }),
           py::arg("index"), py::arg("simd") = "", py::arg("min_score") = 30,
           py::arg("max_candidates") = 8, py::arg("match") = 1, py::arg("mismatch") = 4,
           py::arg("gap_open") = 6, py::arg("gap_extend") = 1, py::arg("clip") = 5,
           py::arg("device") = -1, py::arg("device_emulate") = false,
           py::arg("insert_model_pairs") = AlignOptions{}.insert_model_pairs,
           py::keep_alive<1, 2>())
      .def_property_readonly("simd", [](const Aligner& a) {
        return std::string(simd_level_name(a.options().simd));
      })
      .def_property_readonly(
          "insert_model_pairs", [](const Aligner& a) { return a.options().insert_model_pairs; },
          "leading pairs the insert-size model is estimated from")
      .def("map", [](const Aligner& a, const std::string& seq) {
             py::gil_scoped_release nogil;
             return a.map(seq);
           }, py::arg("seq"))
      .def("map_batch", [](const Aligner& a, const std::vector<std::string>& seqs) {
             ReadBatch b = batch_of(seqs);
             py::gil_scoped_release nogil;
             return a.map_batch(b);
           }, py::arg("seqs"))
      .def("align_fastq",
           [](const Aligner& a, const std::vector<std::string>& r1,
              const std::vector<std::string>& r2, const std::string& out,
              const std::string& header_text, int threads, size_t batch_reads,
              const std::vector<std::string>& read_groups, bool sort, const std::string& format,
              size_t memory_bytes, bool write_index,
              const std::string& tmp_dir, int compression_level, bool mark_duplicates,
              const std::function<void(uint64_t)>& progress, const py::object& insert_model,
              bool mate_scores, bool copy_comments, const std::string& r1_name,
              const std::string& r2_name, uint64_t records_before,
              const std::string& cram_reference, bool interleaved, bool from_interleaved,
              uint64_t checkpoint_pairs, const std::function<void(py::dict)>& on_checkpoint,
              uint64_t skip_pairs, const std::vector<std::string>& resume_spills,
              int64_t resume_duplicate_reach, const std::string& spill_compression) {
             PipelineOptions po;
             po.writer.spill_compression = spill_compression;
             po.checkpoint_pairs = checkpoint_pairs;
             po.skip_pairs = skip_pairs;
             po.resume_spills = resume_spills;
             po.resume_duplicate_reach = resume_duplicate_reach;
             if (on_checkpoint) {
               po.on_checkpoint = [on_checkpoint](const PipelineCheckpoint& cp) {
                 py::gil_scoped_acquire gil;
                 py::dict d;
                 d["pairs"] = cp.pairs;
                 d["stats"] = stats_dict(cp.stats);
                 d["insert_model"] = model_dict(cp.model);
                 d["spills"] = cp.spills.spills;
                 d["records"] = cp.spills.records;
                 d["duplicate_reach"] = cp.spills.duplicate_reach;
                 on_checkpoint(d);
               };
             }
             if (!insert_model.is_none()) po.insert_model = model_of(insert_model.cast<py::dict>());
             po.mate_scores = mate_scores;
             po.copy_comments = copy_comments;
             po.r1_name = r1_name;
             po.r2_name = r2_name;
             po.records_before = records_before;
             po.interleaved = interleaved;
             po.from_interleaved = from_interleaved;
             po.threads = threads;
             po.batch_reads = batch_reads;
             po.read_groups = read_groups;
             po.writer.sort = sort;
             po.writer.format = format;
             po.writer.reference = cram_reference;
             po.writer.threads = threads;
             po.writer.memory_bytes = memory_bytes;
             po.writer.write_index = write_index;
             po.writer.tmp_dir = tmp_dir;
             po.writer.compression_level = compression_level;
             po.writer.mark_duplicates = mark_duplicates;
             po.writer.check_interrupt = raise_pending_signals;
             std::function<void(uint64_t)> cb;
             if (progress) {
               cb = [progress](uint64_t n) {
                 py::gil_scoped_acquire gil;
                 progress(n);
               };
             }
             PipelineResult res;
             {
               py::gil_scoped_release nogil;
               res = align_fastq_files(a, r1, r2, out, header_text, po, cb);
             }
             py::dict d = stats_dict(res.stats);
             d["insert_model"] = model_dict(res.model);
             if (mark_duplicates) d["duplicates"] = duplicates_dict(res.duplicates);
             if (sort) d["duplicate_reach"] = res.duplicate_reach;
             d["seconds"] = res.seconds;
             d["close_seconds"] = res.close_seconds;
             if (checkpoint_pairs > 0) d["checkpoint_seconds"] = res.checkpoint_seconds;
             if (sort) {
               d["spilled_bytes"] = res.spilled_bytes;
               d["spill_peak_bytes"] = res.spill_peak_bytes;
             }
             return d;
           },
           py::arg("r1"), py::arg("r2"), py::arg("out"), py::arg("header_text"),
           py::arg("threads") = 1, py::arg("batch_reads") = 10000,
           py::arg("read_groups") = std::vector<std::string>{},
           py::arg("sort") = true, py::arg("format") = "bam",
           py::arg("memory_bytes") = size_t(64) << 20, py::arg("write_index") = true,
           py::arg("tmp_dir") = "", py::arg("compression_level") = -1,
           py::arg("mark_duplicates") = false, py::arg("progress") = nullptr,
           py::arg("insert_model") = py::none(), py::arg("mate_scores") = false,
           py::arg("copy_comments") = false, py::arg("r1_name") = "", py::arg("r2_name") = "",
           py::arg("records_before") = 0, py::arg("cram_reference") = "",
           py::arg("interleaved") = false, py::arg("from_interleaved") = false,
           py::arg("checkpoint_pairs") = 0, py::arg("on_checkpoint") = nullptr,
           py::arg("skip_pairs") = 0, py::arg("resume_spills") = std::vector<std::string>{},
           py::arg("resume_duplicate_reach") = 0, py::arg("spill_compression") = "never",
           "r1, r2: lists of files read one after the other (a sample's lanes; r2 empty for "
           "single reads); read_groups: the RG ID of each file's records, or one for all; "
           "insert_model: a run's reported insert_model, used instead of estimating one (for "
           "shards of one input); mate_scores: ms tags without marking (for parts marked when "
           "merged); copy_comments: each read's FASTQ comment (tab-separated SAM tags) onto its "
           "records; r1_name, r2_name, records_before: how messages name a read (its file, and "
           "the records before this input in it: for shards); cram_reference: the FASTA, for "
           "format 'cram'; interleaved: r1 holds the pairs, each pair's reads one after the "
           "other (r2 empty); from_interleaved: r1 and r2 were cut from one interleaved file "
           "(r1_name), whose record numbers messages keep. checkpoint_pairs: every so many pairs "
           "the sorted records so far are made durable as spills in tmp_dir, and "
           "on_checkpoint(dict: pairs, stats, insert_model, spills, records, duplicate_reach) "
           "records them; "
           "a later run goes on from one with skip_pairs=pairs, resume_spills=spills, "
           "resume_duplicate_reach and the first run's insert_model. spill_compression: 'always' "
           "compresses the sort's spills (ISA-L builds), 'never'");
}

}  // namespace gms
