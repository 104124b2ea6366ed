// Reads for calling: alignments of one region loaded from an indexed BAM/CRAM through htslib,
// filtered and decoded once; per-position counts; candidate alleles.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <htslib/sam.h>

#include "gmsaccel/chunk_arena.hpp"

namespace gms {

// Reads no caller counts: unmapped, secondary, QC-failed and duplicate ones.
constexpr uint16_t kDefaultSkipFlags = BAM_FUNMAP | BAM_FSECONDARY | BAM_FQCFAIL | BAM_FDUP;

struct ReadFilter {
  int min_mapq = 0;        // reads below are skipped
  int min_baseq = 13;      // bases below count as no evidence (quality set to 0)
  uint16_t skip_flags = kDefaultSkipFlags;
  int max_depth = 1000;    // reads starting where this many already overlap are skipped
  // Non-empty: each read is tagged with its read group's index here (ShardRead::group), so
  // that one load serves a pileup of each group (a sample's lanes).
  std::vector<std::string> groups;
};

// One filtered alignment, decoded. Bases of the second mate that overlap its mate's aligned span
// (same fragment) get quality 0, so each fragment counts once.
// Its arrays live in the ReadStore the load was given.
struct ShardRead {
  int64_t pos = 0, end = 0;        // reference span [pos, end)
  uint8_t mapq = 0;
  bool rev = false;
  // Paired reads: which strand of the fragment the read reports (reverse XOR second of the
  // pair: both mates of a fragment agree); -1 for a read without a mate.
  int8_t pair_orientation = -1;
  int16_t group = -1;  // index in ReadFilter::groups of the read's RG (-1: none or another)
  ArrayRef<const uint32_t> cigar;  // BAM encoding; M/=/X, I, D, N, S, H, P all accepted
  ArrayRef<uint8_t> seq;           // base codes A=0 C=1 G=2 T=3 N=4
  ArrayRef<uint8_t> qual;          // phred; 0 = no evidence (low quality or mate overlap)
};

// Where loaded reads keep their arrays: a few large chunks for a region's reads instead of three
// heap blocks per read. Reads are valid while their store lives.
class ReadStore : public ChunkArena {
 public:
  ReadStore() : ChunkArena(size_t{1} << 20) {}
};

// Thread-seconds of calling by stage, summed over shards: where a call's time goes.
struct CallStageSeconds {
  double load = 0;        // BAM/CRAM decoding, read filters, overlapping mates
  double candidates = 0;  // candidate alleles from the pileup
  double jobs = 0;        // active windows, candidate haplotypes, read segments, cost jobs
  double costs = 0;       // read-versus-haplotype costs (the pair-HMM kernel: CPU or GPU)
  double genotype = 0;    // likelihoods, genotypes, records
  void add(const CallStageSeconds& o) {
    load += o.load; candidates += o.candidates; jobs += o.jobs; costs += o.costs;
    genotype += o.genotype;
  }
  template <class F>
  void each(F&& f) const {  // f(name, seconds) for every stage, in calling order
    f("load", load); f("candidates", candidates); f("jobs", jobs); f("costs", costs);
    f("genotype", genotype);
  }
};

struct LoadStats {
  uint64_t loaded = 0;
  uint64_t filtered = 0;       // skipped by flags or MAPQ
  uint64_t depth_capped = 0;   // skipped by max_depth
  uint64_t gpu_fallbacks = 0;  // cost batches the GPU had no room for (the CPU ran them)
  CallStageSeconds stage;      // filled by call_region
};

struct ContigDesc {
  std::string name;
  int64_t length = 0;
};

// An indexed BAM or CRAM. Thread-compatible: one AlignmentSource per thread.
class AlignmentSource {
 public:
  // Opens path (CRAM needs reference_fasta). Throws InputError naming the file for: missing or
  // unreadable file, not SAM/BAM/CRAM, no index ("... has no index: run 'samtools index FILE'"),
  // unsorted (@HD SO other than coordinate), CRAM without a reference.
  // A BGZF-compressed BAM read with at most two decompression threads is inflated by ISA-L
  // where the build has it (bam_region_reader.hpp), unless fast_inflate is false; everything
  // else, and any more threads, goes through htslib. The reads loaded are the same either way.
  AlignmentSource(const std::string& path, const std::string& reference_fasta,
                  int decompression_threads = 1, bool fast_inflate = true);
  ~AlignmentSource();
  AlignmentSource(const AlignmentSource&) = delete;
  AlignmentSource& operator=(const AlignmentSource&) = delete;

  const std::string& path() const;
  const std::vector<ContigDesc>& contigs() const;  // @SQ order
  int contig_id(const std::string& name) const;    // -1 when absent
  // Sample name from the first @RG SM (else the file name without extension).
  const std::string& sample() const;
  // "isa-l" or "htslib": who inflates this file's records.
  const char* inflater() const;

  // Appends the filtered reads overlapping [start, end) of contig `tid`, in coordinate order.
  // Throws InputError naming the file and read when a record is corrupt or out of order.
  LoadStats load(int tid, int64_t start, int64_t end, const ReadFilter& filter,
                 std::vector<ShardRead>& out, ReadStore& store);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Per-position evidence over [start, start + n): counts of A,C,G,T,N (bases with quality > 0),
// deletions spanning the position, insertions after it, and total depth (reads spanning the
// position, including deletions). Index: i * 5 + base.
struct Pileup {
  int64_t start = 0;
  int64_t n = 0;
  std::vector<uint32_t> base_counts;   // n * 5
  std::vector<uint32_t> base_qual_sums;  // n * 5, sum of base qualities
  std::vector<uint32_t> deletions;     // n
  std::vector<uint32_t> insertions;    // n: reads with an insertion right after position i
  std::vector<uint32_t> depth;         // n
};
void pileup(const std::vector<ShardRead>& reads, int64_t start, int64_t end, Pileup& out);

// A candidate variant allele, VCF style: pos is the 0-based position of ref's first base; indels
// are anchored on the preceding base, left-normalised against the reference, and parsimonious.
struct CandidateAllele {
  int64_t pos = 0;
  std::string ref, alt;   // uppercase ACGT(N) strings
  uint32_t support = 0;   // reads showing it (with base quality > 0 for SNVs)
  uint32_t depth = 0;     // reads spanning pos
  bool given = false;     // a given allele (genotyped and written whatever the reads say)
  std::string id;         // a given allele's ID from its VCF (e.g. an rsID), else empty
  // A given allele the reads did not propose: it rides in the window that covers it (or one of
  // its own) on haplotypes of its own, leaving the other records as they would be without it.
  bool satellite = false;
  bool operator<(const CandidateAllele& o) const {
    if (pos != o.pos) return pos < o.pos;
    if (ref != o.ref) return ref < o.ref;
    return alt < o.alt;
  }
  bool operator==(const CandidateAllele& o) const {
    return pos == o.pos && ref == o.ref && alt == o.alt;
  }
};

// Left-aligns and trims an allele pair against the reference as `bcftools norm` does (indels
// anchored on the base before them). ref_codes covers the reference from ref_start on; the
// alleles are not moved before ref_start.
void normalise(int64_t& pos, std::string& ref, std::string& alt, const uint8_t* ref_codes,
               int64_t ref_start);

// Longer indels are structural variants, not small-variant candidates: their windows would reach
// past what a shard loads around itself (caller.cpp's kCandidatePad budgets for this length).
constexpr int64_t kMaxIndelLength = 300;

struct CandidateOptions {
  uint32_t min_support = 2;        // reads
  double min_fraction = 0.05;      // of depth at the position
  uint32_t min_qual_sum = 40;      // SNVs: summed base quality of the supporting bases
};

// Candidates with pos in [start, end), sorted and unique. ref_codes covers [ref_start, ref_end)
// of the contig (base codes) and must extend at least 200 bases beyond [start, end) on both
// sides where the contig allows (for normalisation); ref_start is its contig coordinate.
// each_window, if given, sees the pileup of every window of [start, end) the candidates come
// from, in order (a gVCF's reference confidence is computed from them).
void find_candidates(const std::vector<ShardRead>& reads, const uint8_t* ref_codes,
                     int64_t ref_start, int64_t ref_end, int64_t start, int64_t end,
                     const CandidateOptions& opt, std::vector<CandidateAllele>& out,
                     const std::function<void(const Pileup&)>& each_window = nullptr);

}  // namespace gms
