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
#include "gmsaccel/simd.hpp"

namespace py = pybind11;

namespace gms {
namespace {

struct ByteView {
  const uint8_t* data = nullptr;
  size_t size = 0;
};

std::string item(const char* what, size_t index) {
  return std::string(what) + "[" + std::to_string(index) + "]";
}

// Borrowed view of a bytes object or 1-D uint8 array; `keep` holds any contiguous copy alive.
// max_code < 255 also checks every value (base codes are 0..5; qualities are any byte).
ByteView byte_view(const py::handle& obj, const char* what, size_t index, unsigned max_code,
                   std::vector<py::object>& keep) {
  ByteView v;
  if (py::isinstance<py::bytes>(obj)) {
    char* buf = nullptr;
    Py_ssize_t len = 0;
    if (PyBytes_AsStringAndSize(obj.ptr(), &buf, &len) != 0) throw py::error_already_set();
    v.data = reinterpret_cast<const uint8_t*>(buf);
    v.size = static_cast<size_t>(len);
  } else if (py::isinstance<py::array>(obj)) {
    auto arr = py::reinterpret_borrow<py::array>(obj);
    if (!arr.dtype().is(py::dtype::of<uint8_t>()) || arr.ndim() != 1) {
      throw py::value_error(item(what, index) + " must be a 1-D uint8 array");
    }
    auto c = py::array_t<uint8_t, py::array::c_style>::ensure(arr);  // strided -> contiguous copy
    if (!c) throw py::error_already_set();
    v.data = c.data();
    v.size = static_cast<size_t>(c.size());
    keep.push_back(std::move(c));
  } else {
    throw py::type_error(item(what, index) + " must be bytes or a 1-D numpy uint8 array");
  }
  if (max_code < 255) {
    for (size_t i = 0; i < v.size; ++i) {
      if (v.data[i] > max_code) {
        throw py::value_error(item(what, index) + " has base code " + std::to_string(v.data[i]) +
                              " at " + std::to_string(i) + " (codes are 0..5)");
      }
    }
  }
  return v;
}

int32_t checked_param(int64_t value, const char* name) {
  if (value < 0 || value > kMaxHaplotypeParam) {
    throw py::value_error(std::string(name) + " must be in 0.." +
                          std::to_string(kMaxHaplotypeParam) + ", got " + std::to_string(value));
  }
  return static_cast<int32_t>(value);
}

py::array_t<int32_t> haplotype_costs_py(const py::sequence& reads, const py::sequence& quals,
                                        const py::sequence& haps, const py::object& bands_obj,
                                        const std::optional<std::string>& level, int64_t gap_open,
                                        int64_t gap_extend, int64_t max_qual) {
  const size_t n = py::len(reads);
  if (py::len(quals) != n || py::len(haps) != n) {
    throw py::value_error("reads, quals and haps differ in length (" + std::to_string(n) + ", " +
                          std::to_string(py::len(quals)) + ", " + std::to_string(py::len(haps)) +
                          ")");
  }
  auto bands = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(bands_obj);
  if (!bands) throw py::error_already_set();
  if (bands.ndim() != 1 || static_cast<size_t>(bands.size()) != n) {
    throw py::value_error("bands must be a 1-D sequence with one band per read");
  }
  HaplotypeScoring sc;
  sc.gap_open = checked_param(gap_open, "gap_open");
  sc.gap_extend = checked_param(gap_extend, "gap_extend");
  sc.max_qual = checked_param(max_qual, "max_qual");
  const SimdLevel lvl = level ? parse_simd_level(*level) : detect_simd_level();

  std::vector<py::object> keep;
  std::vector<HaplotypeJob> jobs(n);
  const int64_t* b = bands.data();
  for (size_t i = 0; i < n; ++i) {
    const ByteView r = byte_view(reads[i], "reads", i, kBaseOff, keep);
    const ByteView q = byte_view(quals[i], "quals", i, 255, keep);
    const ByteView h = byte_view(haps[i], "haps", i, kBaseOff, keep);
    if (b[i] < 1 || b[i] > (1 << 20)) {
      throw py::value_error(item("bands", i) + " must be in 1..1048576, got " +
                            std::to_string(b[i]));
    }
    if (r.size < 1 || r.size > (1u << 24)) {
      throw py::value_error(item("reads", i) + " must hold 1..16777216 bases");
    }
    if (q.size != r.size) {
      throw py::value_error(item("quals", i) + " has " + std::to_string(q.size) +
                            " qualities for " + std::to_string(r.size) + " bases");
    }
    const size_t want = r.size + static_cast<size_t>(b[i]) - 1;
    if (h.size != want) {
      throw py::value_error(item("haps", i) + " has " + std::to_string(h.size) +
                            " bases; len + band - 1 = " + std::to_string(want) +
                            " are required");
    }
    jobs[i] = HaplotypeJob{r.data, q.data, h.data, static_cast<int32_t>(r.size),
                           static_cast<int32_t>(b[i])};
  }

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
  m.def("set_haplotype_backend", [](py::capsule cap) {
        if (std::string(cap.name() ? cap.name() : "") != "gmsaccel.haplotype_backend")
          throw std::invalid_argument("not a gmsaccel haplotype backend");
        set_haplotype_backend(reinterpret_cast<HaplotypeBackendFn>(cap.get_pointer()));
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
