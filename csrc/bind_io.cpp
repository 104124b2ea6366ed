// Python bindings for FASTQ input and BAM output. They exist for tests and the Python API; the
// pipeline itself drives the C++ classes directly.
#include <htslib/kstring.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "gmsaccel/bam_deflate.hpp"
#include "gmsaccel/bam_region_reader.hpp"
#include "gmsaccel/bam_writer.hpp"
#include "gmsaccel/spill_codec.hpp"
#include "gmsaccel/stream_checksum.hpp"
#include "gmsaccel/bindings.hpp"
#include "gmsaccel/errors.hpp"
#include "gmsaccel/fastq.hpp"
#include "gmsaccel/gzip_inflate.hpp"

namespace py = pybind11;

namespace gms {

namespace {

constexpr size_t kIterBatch = 65536;  // reads per batch when iterating

struct PyFastqReader {
  std::unique_ptr<FastqReader> reader;
  std::string path;
  std::mutex mu;  // the GIL is released while reading: keep Python threads from racing

  FastqReader& get() {
    if (!reader) throw std::logic_error("FastqReader is closed: " + path);
    return *reader;
  }

  py::dict read(size_t max_reads, size_t max_bases) {
    ReadBatch batch;
    {
      py::gil_scoped_release nogil;
      std::lock_guard<std::mutex> lock(mu);
      get().read(batch, max_reads, max_bases);
    }
    py::list names, comments, seqs, quals;
    for (size_t i = 0; i < batch.size(); ++i) {
      const size_t a = batch.offsets[i], n = batch.offsets[i + 1] - a;
      names.append(py::str(batch.names[i]));
      comments.append(py::str(batch.comments[i]));
      seqs.append(py::str(batch.bases.data() + a, n));
      if (batch.fasta) {
        quals.append(py::none());
      } else {
        quals.append(py::str(batch.quals.data() + a, n));
      }
    }
    py::dict d;
    d["names"] = names;
    d["comments"] = comments;
    d["seqs"] = seqs;
    d["quals"] = quals;
    d["first_record"] = batch.first_record;
    return d;
  }

  // The next batch, with the GIL released (or already released, for the _nogil form).
  void read_batch(ReadBatch& batch, size_t max_reads) {
    py::gil_scoped_release nogil;
    read_batch_nogil(batch, max_reads);
  }
  void read_batch_nogil(ReadBatch& batch, size_t max_reads) {
    std::lock_guard<std::mutex> lock(mu);
    get().read(batch, max_reads, SIZE_MAX);
  }
};

// A batch as FASTQ text, four lines a record, names and comments as read (FASTA records for a
// batch read from FASTA).
std::string fastq_text(const ReadBatch& batch) {
  std::string text;
  size_t room = 2 * batch.bases.size() + 6 * batch.size();
  for (size_t i = 0; i < batch.size(); ++i) room += batch.names[i].size() + batch.comments[i].size();
  text.reserve(room);
  for (size_t i = 0; i < batch.size(); ++i) {
    const size_t a = batch.offsets[i], n = batch.offsets[i + 1] - a;
    const bool fasta = batch.fasta;
    text += fasta ? '>' : '@';
    text += batch.names[i];
    if (!batch.comments[i].empty()) {
      text += ' ';
      text += batch.comments[i];
    }
    text += '\n';
    text.append(batch.bases, a, n);
    if (fasta) {
      text += '\n';
      continue;
    }
    text += "\n+\n";
    text.append(batch.quals, a, n);
    text += '\n';
  }
  return text;
}

struct PyBamWriter {
  std::unique_ptr<BamWriter> writer;
  bam1_t* rec = bam_init1();  // parse buffer for SAM text lines
  kstring_t line = KS_INITIALIZE;
  std::mutex mu;  // the GIL is released while adding and closing: serialise Python threads

  PyBamWriter() {
    if (!rec) throw std::bad_alloc();
  }
  ~PyBamWriter() {
    // Destruction without close() discards the output (BamWriter's own contract).
    writer.reset();
    bam_destroy1(rec);
    ks_free(&line);
  }
  PyBamWriter(const PyBamWriter&) = delete;
  PyBamWriter& operator=(const PyBamWriter&) = delete;

  // Caller holds no GIL; parses one SAM line against the output header and adds it.
  void add_line(const std::string& text) {
    size_t n = text.size();
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r')) --n;
    line.l = 0;
    if (kputsn(text.data(), n, &line) < 0) throw std::bad_alloc();
    // sam_parse1 takes a non-const header only for lazily built lookup tables.
    if (sam_parse1(&line, const_cast<sam_hdr_t*>(writer->header()), rec) < 0) {
      throw InputError("cannot parse SAM line: " + text.substr(0, 80));
    }
    writer->add(rec);
  }
};

// A property read from the writer under its lock (another Python thread may be adding or
// closing, without the GIL).
template <class Get>
auto locked_getter(Get get) {
  return [get](PyBamWriter& w) {
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(w.mu);
    return get(*w.writer);
  };
}

// The "auto" (ISA-L where built with it) or "htslib" choice of the inflater / deflater arguments.
bool use_fast_codec(const std::string& value, const char* arg) {
  if (value != "auto" && value != "htslib") {
    throw py::value_error(std::string(arg) + " must be 'auto' or 'htslib', not '" + value + "'");
  }
  return value == "auto";
}

}  // namespace

void bind_io(py::module_& m) {
  py::class_<PyFastqReader>(m, "FastqReader",
                            "FASTQ reader (plain, gzip or BGZF; \"-\" is standard input). "
                            "Iterating yields batches as read() returns them.")
      .def(py::init([](const std::string& path, int threads, const std::string& inflater,
                       bool read_ahead) {
             const bool fast = use_fast_codec(inflater, "inflater");
             auto r = std::make_unique<PyFastqReader>();
             r->path = path;
             r->reader = std::make_unique<FastqReader>(
                 path, threads, fast ? FastqReader::Inflater::Auto : FastqReader::Inflater::Htslib,
                 read_ahead);
             return r;
           }),
           py::arg("path"), py::arg("threads") = 0, py::arg("inflater") = "auto",
           py::arg("read_ahead") = false,
           "threads: BGZF decompression threads; inflater: 'auto' (ISA-L where built with it) "
           "or 'htslib' (zlib); read_ahead: inflate on a thread of its own, ahead of parsing.")
      .def("read", &PyFastqReader::read, py::arg("max_reads"), py::arg("max_bases") = SIZE_MAX,
           "Next batch: dict of names, comments, seqs, quals (lists of str; quals None "
           "for FASTA) and first_record "
           "(1-based number of the batch's first read); empty lists at end of file.")
      .def_property_readonly("path", [](const PyFastqReader& r) { return r.path; })
      .def_property_readonly("inflater",
                             [](PyFastqReader& r) { return std::string(r.get().inflater()); },
                             "'isa-l' or 'htslib': who inflates this file")
      .def_property_readonly("reads_ahead",
                             [](PyFastqReader& r) { return r.get().reads_ahead(); },
                             "whether a read-ahead thread inflates this file")
      .def_property_readonly("records_read",
                             [](PyFastqReader& r) { return r.get().records_read(); })
      .def("close",
           [](PyFastqReader& r) {
             std::lock_guard<std::mutex> lock(r.mu);
             r.reader.reset();
           })
      .def("__iter__", [](PyFastqReader& r) -> PyFastqReader& { return r; },
           py::return_value_policy::reference_internal)
      .def("__next__",
           [](PyFastqReader& r) {
             py::dict d = r.read(kIterBatch, SIZE_MAX);
             if (py::len(d["names"]) == 0) throw py::stop_iteration();
             return d;
           })
      .def("__enter__", [](PyFastqReader& r) -> PyFastqReader& { return r; },
           py::return_value_policy::reference_internal)
      .def("__exit__", [](PyFastqReader& r, const py::args&) {
        std::lock_guard<std::mutex> lock(r.mu);
        r.reader.reset();
        return false;
      });

  m.def("read_fastq_shard",
        [](PyFastqReader& r1, PyFastqReader* r2, size_t max_reads, bool interleaved) {
          if (interleaved && r2) throw py::value_error("interleaved reads come in one file");
          ReadBatch b1, b2;
          r1.read_batch(b1, interleaved ? 2 * max_reads : max_reads);
          std::string t1, t2;
          {
            py::gil_scoped_release nogil;
            if (interleaved) {
              ReadBatch both = std::move(b1);
              split_interleaved(both, b1, b2, r1.path);
              t2 = fastq_text(b2);
            } else if (r2) {
              r2->read_batch_nogil(b2, max_reads);
              check_mates(b1, b2, r1.path, r2->path);
              t2 = fastq_text(b2);
            }
            t1 = fastq_text(b1);
          }
          return py::make_tuple(py::bytes(t1),
                                r2 || interleaved ? py::object(py::bytes(t2)) : py::none(),
                                b1.size(), b1.first_record);
        },
        py::arg("r1"), py::arg("r2"), py::arg("max_reads"), py::arg("interleaved") = false,
        "The next max_reads records (pairs, with r2) as FASTQ text, the mates checked as the "
        "aligner checks them: (r1 bytes, r2 bytes or None, reads, first record number); no "
        "reads at the end. interleaved: r1 holds the pairs (max_reads pairs are read and "
        "split; the record number is r1's, counting both mates).");

  m.def("checked_spill_records",
        [](const std::string& spill) {
          py::gil_scoped_release nogil;
          return BamWriter::checked_spill_records(spill, raise_pending_signals);
        },
        py::arg("spill"),
        "The records a checkpoint's spill file holds, checked against its index file "
        "(InputError where either is missing or damaged). Ctrl-C and SIGTERM stop it.");
  m.def("file_checksum",
        [](const std::string& path, bool sync) {
          py::gil_scoped_release nogil;
          return checksum_file(path, sync, raise_pending_signals).value;
        },
        py::arg("path"), py::arg("sync") = false,
        "A 64-bit checksum of the file's bytes (StreamChecksum); sync: fsync it first. "
        "InputError where it cannot be read; Ctrl-C and SIGTERM stop it.");

  py::class_<PyBamWriter>(m, "BamWriter",
                          "Coordinate-sorted (or unsorted) BAM/CRAM/SAM writer with bounded memory. "
                          "Nothing appears at path until close() succeeds.")
      .def(py::init([](const std::string& path, const std::string& header_text, bool sort,
                       const std::string& format, int threads, size_t memory_bytes,
                       bool write_index, const std::string& tmp_dir, int compression_level,
                       const std::string& deflater, bool mark_duplicates,
                       size_t merge_range_bytes, const std::string& reference,
                       const std::string& spill_compression) {
             BamWriterOptions o;
             o.spill_compression = spill_compression;
             o.reference = reference;
             o.merge_range_bytes = merge_range_bytes;
             o.fast_deflate = use_fast_codec(deflater, "deflater");
             o.sort = sort;
             o.format = format;
             o.threads = threads;
             o.memory_bytes = memory_bytes;
             o.write_index = write_index;
             o.tmp_dir = tmp_dir;
             o.compression_level = compression_level;
             o.mark_duplicates = mark_duplicates;
             o.check_interrupt = raise_pending_signals;
             auto w = std::make_unique<PyBamWriter>();
             w->writer = std::make_unique<BamWriter>(path, header_text, o);
             return w;
           }),
           py::arg("path"), py::arg("header_text"), py::arg("sort") = true,
           py::arg("format") = "bam", py::arg("threads") = 1,
           py::arg("memory_bytes") = BamWriterOptions{}.memory_bytes,
           py::arg("write_index") = true, py::arg("tmp_dir") = "",
           py::arg("compression_level") = -1, py::arg("deflater") = "auto",
           py::arg("mark_duplicates") = false, py::arg("merge_range_bytes") = 0,
           py::arg("reference") = "", py::arg("spill_compression") = "never",
           "format: 'bam', 'cram' (needs reference, the FASTA; indexed as .crai) or 'sam'; "
           "deflater: 'auto' (ISA-L where the build has it, for compressed BAM) or 'htslib'; "
           "mark_duplicates: flag duplicates (0x400) as the sorted records are written, from "
           "unclipped 5' ends, MC tags and (for a pair's score) ms tags; merge_range_bytes: "
           "the size of the key ranges the final merge is cut into on threads (0: from the "
           "sort memory and the threads); spill_compression: 'never' or 'always' (spills "
           "compressed in blocks, ISA-L builds; the output is the same)")
      .def("add_sam_line",
           [](PyBamWriter& w, const std::string& line) {
             py::gil_scoped_release nogil;
             std::lock_guard<std::mutex> lock(w.mu);
             w.add_line(line);
           },
           py::arg("line"), "Parses one SAM text line against the header and adds it.")
      .def("add_many_sam",
           [](PyBamWriter& w, const std::vector<std::string>& lines) {
             py::gil_scoped_release nogil;
             std::lock_guard<std::mutex> lock(w.mu);
             for (const auto& l : lines) w.add_line(l);
           },
           py::arg("lines"))
      .def("add_sorted_part",
           [](PyBamWriter& w, const std::string& path, int64_t duplicate_reach) {
             std::lock_guard<std::mutex> lock(w.mu);
             w.writer->add_sorted_part(path, duplicate_reach);
           },
           py::arg("path"), py::arg("duplicate_reach") = 0,
           "Merges a coordinate-sorted BAM with the same @SQ lines into the output at close(), "
           "after the parts added before it (a writer takes parts or records, not both); "
           "duplicate_reach: that part's writer's duplicate_reach, for marking duplicates.")
      .def_property_readonly(
          "duplicate_reach",
          locked_getter([](const BamWriter& b) { return b.duplicate_reach(); }),
          "the most any record added lies past its unclipped 5' end")
      .def("close",
           [](PyBamWriter& w) {
             py::gil_scoped_release nogil;
             std::lock_guard<std::mutex> lock(w.mu);
             w.writer->close();
           })
      .def("abort",
           [](PyBamWriter& w) {
             py::gil_scoped_release nogil;
             std::lock_guard<std::mutex> lock(w.mu);
             w.writer->abort();
           })
      // Read under the writer's lock, which another thread adding or closing holds.
      .def_property_readonly("duplicate_stats",
                             [](PyBamWriter& w) {
                               DuplicateStats s;
                               {
                                 py::gil_scoped_release nogil;
                                 std::lock_guard<std::mutex> lock(w.mu);
                                 s = w.writer->duplicate_stats();
                               }
                               return duplicates_dict(s);
                             },
                             "what marking duplicates found, as align's metrics report it")
      .def_property_readonly(
          "records_written",
          locked_getter([](const BamWriter& b) { return b.records_written(); }))
      .def_property_readonly(
          "spilled_bytes", locked_getter([](const BamWriter& b) { return b.spilled_bytes(); }),
          "bytes written into spill files, folds included (after close())")
      .def_property_readonly(
          "spill_peak_bytes",
          locked_getter([](const BamWriter& b) { return b.spill_peak_bytes(); }),
          "the most bytes of spill files on disk at once")
      .def_property_readonly(
          "deflater", [](const PyBamWriter& w) { return std::string(w.writer->deflater()); },
          "'isa-l' or 'htslib': who compresses the output")
      .def("__enter__", [](PyBamWriter& w) -> PyBamWriter& { return w; },
           py::return_value_policy::reference_internal)
      .def("__exit__",
           [](PyBamWriter& w, const py::object& exc_type, const py::object&, const py::object&) {
             const bool ok = exc_type.is_none();
             py::gil_scoped_release nogil;
             std::lock_guard<std::mutex> lock(w.mu);
             if (ok) {
               w.writer->close();
             } else {
               w.writer->abort();
             }
             return false;
           });

  m.def("spill_compression_available", &spill_compression_available,
        "Whether the sort's spills can be compressed (--spill-compression always): ISA-L.");
  m.def("fast_bam_deflate_available", &fast_bam_deflate_available,
        "Whether compressed BAM output is deflated by ISA-L in this build.");
  m.def("fast_bam_inflate_available", &BamRegionReader::available,
        "Whether region loads of BGZF BAM for calling are inflated by ISA-L in this build.");
  m.def("fast_inflate_library", &fast_inflate_library,
        "'isa-l X.Y.Z' when this build inflates gzip input with ISA-L, else ''.");
  m.def(
      "_inflate_gzip_file",
      [](const std::string& path, size_t input_chunk, size_t output_chunk) {
        std::string out;
        {
          py::gil_scoped_release nogil;
          GzipFileInflater z(path, input_chunk);
          std::string buf(std::max<size_t>(output_chunk, 1), '\0');
          for (;;) {
            const std::ptrdiff_t n = z.read(buf.data(), buf.size());
            if (n < 0) throw InputError(path + ": " + z.problem());
            if (n == 0) break;
            out.append(buf.data(), static_cast<size_t>(n));
          }
        }
        return py::bytes(out);
      },
      py::arg("path"), py::arg("input_chunk") = size_t{1} << 18,
      py::arg("output_chunk") = size_t{1} << 18,
      "Test hook: the whole file inflated by the ISA-L reader, read in the given chunk sizes.");
}

}  // namespace gms
