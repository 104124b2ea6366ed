// Python view of the reference index, minimizer seeding and base encoding. The C++ Index in
// index.cpp stays free of pybind11 so the aligner can use it directly.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <htslib/faidx.h>

#include "gmsaccel/bindings.hpp"
#include "gmsaccel/errors.hpp"
#include "gmsaccel/index.hpp"
#include "gmsaccel/minimizer.hpp"
#include "gmsaccel/py_batches.hpp"
#include "gmsaccel/seed_batch.hpp"
#include "gmsaccel/scoring.hpp"

namespace py = pybind11;

namespace gms {

namespace {

// Accepts str and os.PathLike, as Python callers expect of a path argument.
std::string fspath(const py::object& p) {
  return py::str(py::module_::import("os").attr("fspath")(p)).cast<std::string>();
}

size_t resolve_contig(const Index& idx, const py::object& which) {
  if (py::isinstance<py::str>(which)) {
    const std::string name = which.cast<std::string>();
    for (size_t i = 0; i < idx.n_contigs(); ++i) {
      if (idx.contig(i).name == name) return i;
    }
    throw py::key_error("no contig named '" + name + "'");
  }
  const int64_t i = which.cast<int64_t>();
  const int64_t n = static_cast<int64_t>(idx.n_contigs());
  if (i < -n || i >= n) throw py::index_error("contig index out of range");
  return static_cast<size_t>(i < 0 ? i + n : i);
}

// Borrowed bytes of a bytes object or a C-contiguous uint8 array (no copy).
struct ByteView {
  const uint8_t* data = nullptr;
  size_t size = 0;
  py::object keep;  // holds the buffer alive
};

ByteView byte_view(const py::object& obj) {
  ByteView v;
  if (py::isinstance<py::bytes>(obj)) {
    char* p = nullptr;
    ssize_t n = 0;
    PyBytes_AsStringAndSize(obj.ptr(), &p, &n);
    v.data = reinterpret_cast<const uint8_t*>(p);
    v.size = static_cast<size_t>(n);
    v.keep = obj;
    return v;
  }
  auto arr = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (!arr) throw py::type_error("expected bytes or a numpy uint8 array");
  if (arr.ndim() != 1) throw py::value_error("expected a 1-dimensional array");
  v.data = arr.data();
  v.size = static_cast<size_t>(arr.size());
  v.keep = std::move(arr);
  return v;
}

}  // namespace

void bind_index(py::module_& m) {
  m.def(
      "index_limits",
      [] {
        py::dict d;
        d["max_bases"] = kMaxIndexBases;
        d["max_positions"] = kMaxIndexPositions;
        return d;
      },
      "The most reference bases and minimizer positions an index holds (32-bit positions and "
      "offsets)");
  m.def(
      "fasta_codes",
      [](const std::string& path, const std::string& contig) {
        std::unique_ptr<faidx_t, decltype(&fai_destroy)> fai(nullptr, fai_destroy);
        hts_pos_t length = 0;
        {
          py::gil_scoped_release nogil;
          fai.reset(fai_load(path.c_str()));  // builds the .fai when missing, as samtools
          if (fai) length = faidx_seq_len64(fai.get(), contig.c_str());
        }
        if (!fai) throw InputError(path + ": cannot open as an indexed FASTA");
        if (length < 0) throw InputError("contig '" + contig + "' is not in " + path);
        py::array_t<uint8_t> out(length);
        uint8_t* dst = out.mutable_data();
        {
          py::gil_scoped_release nogil;  // a whole chromosome: the calling threads go on
          hts_pos_t got = 0;
          char* seq = faidx_fetch_seq64(fai.get(), contig.c_str(), 0, length - 1, &got);
          if (!seq || got != length) {
            std::free(seq);
            throw InputError(path + ": cannot read contig '" + contig + "'");
          }
          static const auto codes = [] {
            std::array<uint8_t, 256> t{};
            t.fill(4);
            t['A'] = t['a'] = 0;
            t['C'] = t['c'] = 1;
            t['G'] = t['g'] = 2;
            t['T'] = t['t'] = 3;
            return t;
          }();
          for (hts_pos_t i = 0; i < length; ++i) dst[i] = codes[static_cast<uint8_t>(seq[i])];
          std::free(seq);
        }
        return out;
      },
      py::arg("path"), py::arg("contig"),
      "Base codes (A0 C1 G2 T3, anything else N4; lower case too) of a whole contig of an "
      "indexed FASTA, read by htslib's faidx with the GIL released");

  py::class_<Index, std::unique_ptr<Index>>(m, "Index",
                                            "Reference index: contigs, packed sequence, minimizers")
      .def_static(
          "build",
          [](const py::object& fasta, int k, int w, uint32_t max_occ, int threads) {
            const std::string path = fspath(fasta);
            BuildOptions options;
            options.threads = std::max(1, threads);
            options.check_interrupt = raise_pending_signals;
            py::gil_scoped_release nogil;
            return Index::build(path, IndexParams{k, w, max_occ}, IndexLimits{}, options);
          },
          py::arg("fasta"), py::arg("k") = 21, py::arg("w") = 11, py::arg("max_occ") = 500,
          py::arg("threads") = 1,
          "Build from a FASTA file (plain or gzip); threads order the minimizers. Python's "
          "pending signals (Ctrl-C, SIGTERM) stop it.")
      .def_static(
          "_build_with_limits",
          [](const py::object& fasta, int k, int w, uint32_t max_occ, uint64_t max_bases,
             uint64_t max_positions, int threads, size_t small_part) {
            const std::string path = fspath(fasta);
            BuildOptions options;
            options.threads = std::max(1, threads);
            options.small_part = small_part;
            py::gil_scoped_release nogil;
            return Index::build(path, IndexParams{k, w, max_occ},
                                IndexLimits{max_bases, max_positions}, options);
          },
          py::arg("fasta"), py::arg("k"), py::arg("w"), py::arg("max_occ"), py::arg("max_bases"),
          py::arg("max_positions"), py::arg("threads") = 1,
          py::arg("small_part") = BuildOptions{}.small_part,
          "For tests: build with lower limits on the reference's bases and the indexed positions\n"
          "(higher ones are capped at the index's own, index_limits()), to reach their errors\n"
          "without a 4 Gbp FASTA; small_part: parts of the minimizers' ordering sorted whole\n"
          "(1: the in-place partition all the way down)")
      .def_static(
          "load",
          [](const py::object& path) {
            const std::string p = fspath(path);
            py::gil_scoped_release nogil;
            return Index::load(p);
          },
          py::arg("path"), "Map a saved .gxi index")
      .def(
          "save", [](const Index& idx, const py::object& path) {
            const std::string p = fspath(path);
            py::gil_scoped_release nogil;
            idx.save(p);
          },
          py::arg("path"), "Write the index (to a temporary name, then renamed)")
      .def_property_readonly("k", [](const Index& idx) { return idx.params().k; })
      .def_property_readonly("w", [](const Index& idx) { return idx.params().w; })
      .def_property_readonly("max_occ", [](const Index& idx) { return idx.params().max_occ; })
      .def_property_readonly("total_length", &Index::total_length)
      .def_property_readonly(
          "contigs",
          [](const Index& idx) {
            py::list out;
            for (size_t i = 0; i < idx.n_contigs(); ++i) {
              const ContigInfo& c = idx.contig(i);
              out.append(py::make_tuple(c.name, c.length, c.md5));
            }
            return out;
          },
          "List of (name, length, md5)")
      .def_property_readonly(
          "offsets",
          [](const Index& idx) {
            std::vector<uint64_t> out;
            for (size_t i = 0; i < idx.n_contigs(); ++i) out.push_back(idx.contig(i).offset);
            return out;
          },
          "Global start coordinate of each contig")
      .def_property_readonly("stats",
                             [](const Index& idx) {
                               const IndexStats& s = idx.stats();
                               py::dict d;
                               d["n_minimizers"] = s.n_minimizers;
                               d["n_positions"] = s.n_positions;
                               d["n_filtered"] = s.n_filtered;
                               d["build_seconds"] = s.build_seconds;
                               d["file_bytes"] = s.file_bytes;
                               return d;
                             })
      .def(
          "fetch",
          [](const Index& idx, const py::object& contig, int64_t start, int64_t end) {
            const size_t ci = resolve_contig(idx, contig);
            const int64_t n = end > start ? end - start : 0;
            py::array_t<uint8_t> out(n);
            uint8_t* dst = out.mutable_data();
            if (n > 0) {
              py::gil_scoped_release nogil;  // a whole chromosome: the calling threads go on
              idx.fetch(ci, start, end, dst);
            }
            return out;
          },
          py::arg("contig"), py::arg("start"), py::arg("end"),
          "Base codes of contig (index or name) [start, end): 0-3, N=4, 5 beyond the ends")
      .def(
          "lookup",
          [](const Index& idx, uint64_t hash) {
            const std::vector<uint64_t> values = idx.lookup(hash);
            py::array_t<uint64_t> out(static_cast<py::ssize_t>(values.size()));
            if (!values.empty()) {
              std::memcpy(out.mutable_data(), values.data(), values.size() * sizeof(uint64_t));
            }
            return out;
          },
          py::arg("hash"), "Positions (global_pos << 1 | rev) of an indexed minimizer hash")
      .def(
          "table_arrays",
          [](const py::object& self) {
            const MinimizerTable& t = self.cast<const Index&>().minimizer_table();
            auto view = [&self](const auto* ptr, uint64_t n) {
              using T = std::remove_cv_t<std::remove_pointer_t<decltype(ptr)>>;
              py::array_t<T> a({static_cast<py::ssize_t>(n)}, {sizeof(T)}, ptr, self);
              a.attr("setflags")(py::arg("write") = false);  // the index may be a read-only map
              return a;
            };
            py::dict d;
            d["buckets"] = view(t.buckets, t.n_buckets + 1);
            d["keys"] = view(t.keys, t.n_keys);
            d["offs"] = view(t.offs, t.n_keys + 1);
            d["positions"] = view(t.positions, t.n_positions);
            d["rev_bits"] = view(t.rev_bits, MinimizerTable::rev_bit_words(t.n_positions));
            d["bucket_shift"] = t.bucket_shift;
            d["hash_limit"] = t.hash_limit;
            d["id"] = t.id;
            d["k"] = self.cast<const Index&>().params().k;
            d["w"] = self.cast<const Index&>().params().w;
            return d;
          },
          "The minimizer lookup table as read-only array views and its parameters: what the GPU\n"
          "seed kernel copies to a device. buckets, keys (a hash's bits below its bucket's, the\n"
          "bucket being hash >> bucket_shift), offs and positions (global k-mer starts) are\n"
          "uint32; rev_bits (uint64 words) holds each position's strand, bit j % 64 of word\n"
          "j // 64. Only indexed minimizers are in it, not those filtered as too frequent.")
      .def("occurrences", &Index::occurrences, py::arg("hash"),
           "Reference occurrences of a hash, including filtered ones")
      .def("contig_of", &Index::contig_of, py::arg("global_pos"),
           "Index of the contig holding a global coordinate, or -1")
      .def("__len__", &Index::n_contigs)
      .def("__repr__", [](const Index& idx) {
        return "<gmsaccel Index: " + std::to_string(idx.n_contigs()) + " contigs, " +
               std::to_string(idx.total_length()) + " bp, k=" + std::to_string(idx.params().k) +
               " w=" + std::to_string(idx.params().w) + ">";
      });

  m.def(
      "batch_anchors",
      [](const Index& idx, const py::sequence& reads, int device, bool emulate) {
        std::vector<py::object> keep;
        const pybatch::SeedReads r = pybatch::seed_reads(reads, keep);
        SeedBatchOutput out;
        const int k = idx.params().k, w = idx.params().w;
        if (device >= 0) {
          const SeedBackendFn gpu = seed_backend();
          if (!gpu) throw py::value_error("no GPU seeding backend is registered");
          py::gil_scoped_release nogil;
          if (!gpu(idx.minimizer_table(), k, w, r.data.data(), r.lens.data(), r.data.size(), out,
                   device, emulate)) {
            throw std::runtime_error(kGpuSeedDoesNotFit);
          }
        } else {
          py::gil_scoped_release nogil;
          std::vector<Anchor> one;
          out.offsets.assign(1, 0);
          for (size_t i = 0; i < r.data.size(); ++i) {
            collect_anchors(idx, r.data[i], static_cast<int32_t>(r.lens[i]), one);
            out.anchors.insert(out.anchors.end(), one.begin(), one.end());
            out.offsets.push_back(out.anchors.size());
          }
        }
        return pybatch::anchor_arrays(out);
      },
      py::arg("index"), py::arg("reads"), py::arg("device") = -1, py::arg("emulate") = false,
      "Anchors of each read (base codes) as (offsets, rev, qpos, diag): the CPU seeding\n"
      "(device -1) or the registered GPU backend (device >= 0; emulate runs its threads on\n"
      "the host).");
  m.def(
      "minimizers",
      [](const py::object& codes, int k, int w) {
        const ByteView v = byte_view(codes);
        if (v.size > UINT32_MAX) throw py::value_error("sequence longer than 2^32-1");
        std::vector<Minimizer> mins;
        {
          py::gil_scoped_release nogil;
          compute_minimizers(v.data, static_cast<uint32_t>(v.size), k, w, mins);
        }
        // Registered on first use, not at import: registering imports numpy, which the
        // command line's align path otherwise never needs (its import and OpenBLAS's thread
        // start-up cost about 0.1 s of CPU per run).
        static const bool registered = [] {
          PYBIND11_NUMPY_DTYPE(Minimizer, hash, pos, rev);  // fields hash, pos, rev
          return true;
        }();
        (void)registered;
        py::array_t<Minimizer> out(static_cast<py::ssize_t>(mins.size()));
        if (!mins.empty()) std::memcpy(out.mutable_data(), mins.data(), mins.size() * sizeof(Minimizer));
        return out;
      },
      py::arg("codes"), py::arg("k"), py::arg("w"),
      "(w,k)-minimizers of base codes as a structured array with fields hash, pos, rev");

  m.def(
      "encode",
      [](const py::object& seq) {
        std::string s;
        if (py::isinstance<py::str>(seq)) {
          s = seq.cast<std::string>();
        } else if (py::isinstance<py::bytes>(seq)) {
          s = seq.cast<std::string>();
        } else {
          throw py::type_error("encode expects str or bytes");
        }
        py::array_t<uint8_t> out(static_cast<py::ssize_t>(s.size()));
        uint8_t* d = out.mutable_data();
        for (size_t i = 0; i < s.size(); ++i) d[i] = base_code(s[i]);
        return out;
      },
      py::arg("seq"), "Base codes of a sequence: A=0 C=1 G=2 T/U=3, anything else N=4");
}

}  // namespace gms
