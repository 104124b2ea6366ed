// VCF output's hot paths: reference-block lines formatted in C++ (a gVCF has a block every few
// bases), and a BGZF writer that compresses on a pool of threads and builds the tabix index as
// blocks reach the file, instead of re-reading the finished file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gms {

// gVCF reference blocks, one line each: CHROM POS . REF <*> . . END=end GT:DP:GQ:MIN_DP:PL and
// the same call for each of n_samples samples. pl holds n_pl values per block (2: haploid GT
// "0", 3: diploid "0/0"); bases one reference letter per block. Appends to out.
struct ReferenceBlockColumns {
  const int64_t* start;  // 0-based
  const int64_t* end;    // exclusive (written as END, 1-based inclusive)
  const int64_t* min_dp;
  const int64_t* gq;
  const int64_t* pl;     // n x n_pl, row-major
  const int64_t* dp;
  const char* bases;     // n letters
  size_t n, n_pl;
};
void format_reference_blocks(std::string_view contig, const ReferenceBlockColumns& blocks,
                             size_t n_samples, std::string& out);

// A shard of a gVCF: its reference blocks (bases unused: letters come from codes, the contig's
// base codes) and its variant records' lines, back to back (record r is
// record_lines[line_offsets[r], line_offsets[r + 1]) over [record_beg[r], record_end[r])).
struct GvcfShard {
  ReferenceBlockColumns blocks;
  const uint8_t* codes;
  int64_t n_codes;
  const char* record_lines;
  const int64_t* line_offsets;  // n_records + 1
  const int64_t* record_beg;
  const int64_t* record_end;
  size_t n_records;
};

// The shard's lines in order, each block before the record it precedes; blocks, or their
// parts, at or before `covered` (the end of what was written before: a deletion reaching into
// the shard) are left out. Appends the text to out and each line's interval to beg/end;
// returns the new covered end.
int64_t format_gvcf_shard(std::string_view contig, const GvcfShard& shard, size_t n_samples,
                          int64_t covered, std::string& out, std::vector<int64_t>& beg,
                          std::vector<int64_t>& end);

struct VariantRecord;  // caller.hpp

// A record's FILTER column: its filters joined by ';', or PASS.
std::string filter_column(const VariantRecord& r);

// A variant record's line, as pysam writes the record VcfWriter.write builds: QUAL and MQ as
// 32-bit floats in %g form, FORMAT GT:AD:DP:GQ:PL (a somatic record: INFO TLOD and NLOD, FORMAT
// GT:AD:DP:AF:SB). gvcf: the <*> allele appended, with INFO END, an AD of 0 and PLs for its
// genotypes (each the least likely called genotype it could stand for). Appends to out.
void format_variant_record(std::string_view contig, const VariantRecord& r, bool gvcf,
                           std::string& out);

}  // namespace gms

namespace gms {

// A bgzipped VCF written to path: BGZF blocks compressed on `threads` threads (ISA-L where the
// build has it), and, when index_path is set, its tabix index built from each line's interval
// as the blocks land: the index tabix would build from the finished file. csi_min_shift 0: a
// .tbi (positions below 2^29); else a .csi with that minimum shift (tabix --csi's default: 14).
class VcfBgzfOutput {
 public:
  VcfBgzfOutput(const std::string& path, int level, int threads, const std::string& index_path,
                int csi_min_shift = 0);
  ~VcfBgzfOutput();  // without finish(): closes the file, writes nothing more
  VcfBgzfOutput(const VcfBgzfOutput&) = delete;
  VcfBgzfOutput& operator=(const VcfBgzfOutput&) = delete;

  // The header ('#' lines), ended by a block boundary; the index starts after it.
  void write_header(std::string_view text);
  // n lines ('\n'-terminated) of one contig, each with its 0-based interval [beg, end) as
  // tabix reads it (POS-1, and END or POS-1+len(REF)). Contigs are numbered in the order they
  // first come, as tabix numbers them.
  void write_lines(std::string_view contig, std::string_view text, const int64_t* beg,
                   const int64_t* end, size_t n);
  // Flushes, appends the BGZF end-of-file block, saves the index and closes the file.
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gms
