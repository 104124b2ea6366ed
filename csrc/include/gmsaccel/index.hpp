// The reference index: contigs, their 2-bit packed sequence (with N runs), and a minimizer table.
// One file, written under a temporary name then renamed, loaded by mmap.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gmsaccel/seed.hpp"

namespace gms {

struct ContigInfo {
  std::string name;
  uint64_t length = 0;
  uint64_t offset = 0;  // start in the concatenated (global) coordinate
  std::string md5;      // SAM @SQ M5: MD5 of the uppercased sequence, IUPAC letters kept
};

struct IndexParams {
  int k = 21;
  int w = 11;
  uint32_t max_occ = 500;  // minimizers seen more often than this are not indexed for lookup
};

// The table stores 32-bit positions and offsets: the reference must have fewer than 2^32 bases in
// all, and fewer than 2^32 minimizer positions (which follows, each k-mer start being one position
// at most). A build may be given lower limits, so that its checks can be tested on a small FASTA;
// higher ones are capped at these.
constexpr uint64_t kMaxIndexBases = UINT32_MAX;
constexpr uint64_t kMaxIndexPositions = UINT32_MAX;
struct IndexLimits {
  uint64_t max_bases = kMaxIndexBases;
  uint64_t max_positions = kMaxIndexPositions;
};

// How a build runs: threads for ordering the minimizers, and a check called now and then on the
// calling thread (between blocks of FASTA lines and between parts of the ordering) that may
// throw to abandon the build, as Python's pending SIGINT or SIGTERM does.
struct BuildOptions {
  int threads = 1;
  std::function<void()> check_interrupt;
  size_t small_part = 4096;  // parts of the ordering this small are sorted whole (tests: 1)
};

struct IndexStats {
  uint64_t n_minimizers = 0;       // distinct indexed minimizer hashes
  uint64_t n_positions = 0;        // positions stored
  uint64_t n_filtered = 0;         // distinct hashes dropped for occurring > max_occ times
  double build_seconds = 0;
  uint64_t file_bytes = 0;
};

class Index {
 public:
  virtual ~Index() = default;

  // Reads FASTA (plain or gzip). Errors name the file and record: missing or unreadable file,
  // not FASTA, duplicate contig names, empty contigs, no contigs, a reference over the limits.
  static std::unique_ptr<Index> build(const std::string& fasta_path, const IndexParams& params,
                                      const IndexLimits& limits = {},
                                      const BuildOptions& options = {});
  // mmap; errors for a missing, truncated or foreign file, or an incompatible version.
  static std::unique_ptr<Index> load(const std::string& index_path);
  // Writes path + ".tmp-<pid>", then renames over path.
  virtual void save(const std::string& path) const = 0;

  virtual const IndexParams& params() const = 0;
  virtual const IndexStats& stats() const = 0;
  virtual size_t n_contigs() const = 0;
  virtual const ContigInfo& contig(size_t i) const = 0;
  virtual uint64_t total_length() const = 0;
  // Contig holding a global coordinate, or -1 if none.
  virtual int contig_of(uint64_t global_pos) const = 0;

  // Base codes (0-3, N=4) of contig [start, end); positions outside [0, length) give kBaseOff.
  virtual void fetch(size_t contig, int64_t start, int64_t end, uint8_t* out) const = 0;

  // Positions of an indexed minimizer hash, ascending: each value is (global_pos << 1) | rev, where
  // global_pos is the k-mer's start in global coordinates and rev is the Minimizer::rev seen in
  // the reference. Empty when the hash is absent or was filtered as too frequent.
  virtual std::vector<uint64_t> lookup(uint64_t hash) const = 0;
  // Occurrence count of a hash, including filtered ones (0 when absent).
  virtual uint32_t occurrences(uint64_t hash) const = 0;
  // The lookup table as plain arrays (valid while this Index lives): what seeding reads, on the
  // CPU and, copied once to a device, on the GPU.
  virtual const MinimizerTable& minimizer_table() const = 0;
};

}  // namespace gms
