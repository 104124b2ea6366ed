// Given alleles (call --alleles SITES.vcf): a VCF/BCF of alleles to genotype whatever the reads
// say, read with htslib and checked against the reference, each ALT normalised as the caller's
// own candidates are. Large known-site files (millions of records) are why this is C++.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace gms {

// One allele to genotype: 0-based position, normalised REF and ALT, and the IDs of every record
// that gave it (';'-joined, first-seen order; empty for none).
// A germline resource's alleles carry their population frequency (af; NaN elsewhere).
struct GivenAllele {
  int64_t pos = 0;
  std::string ref, alt, id;
  double af = std::numeric_limits<double>::quiet_NaN();
};

struct GivenAlleleFile {
  std::vector<std::pair<std::string, std::vector<GivenAllele>>> by_contig;  // sorted, distinct
  std::map<std::string, int64_t> skipped;  // why -> ALTs skipped
  std::string first_skipped;               // "record N (CHROM:POS REF>ALT)" of the first one
};

// A contig's base codes, kept alive by owner while in use.
struct ContigCodes {
  const uint8_t* data = nullptr;
  int64_t size = 0;
  std::shared_ptr<void> owner;
};

// Reads path (VCF, bgzipped VCF or BCF). contig_length(name) is the reference contig's length,
// or -1 for a contig it lacks; ref_codes(name) gives that contig's base codes (A0 C1 G2 T3 N4),
// asked once per contig that has records, in the order contigs are first seen. Each ALT becomes
// one allele, left-aligned and trimmed (normalise); MNPs, complex replacements, symbolic and
// non-ACGT alleles, indels longer than kMaxIndelLength and indels at a contig's start are
// skipped and counted. InputError names the file and record for an unreadable file or record, a
// contig the reference lacks, and a REF running past the contig or differing from the reference
// (an N there stands for any IUPAC code).
GivenAlleleFile read_given_alleles(
    const std::string& path, const std::function<int64_t(const std::string&)>& contig_length,
    const std::function<ContigCodes(const std::string&)>& ref_codes);

// A germline resource (somatic calling): a bgzipped, indexed VCF or a BCF whose INFO/AF gives
// each ALT's population frequency (as gnomAD's do), read by position. check_germline_resource
// fails with an InputError unless the file opens, declares AF (Number=A, Float), has an index
// and shares a contig name with the reference (when both name some). read_germline_resource
// gives its alleles in [start, end) of contig, normalised and checked as given alleles are
// (contig_length and codes: the reference's), each with its frequency (an allele from several
// records: the largest); alleles without a value are left out, and a value outside [0, 1] is
// an InputError naming the record.
void check_germline_resource(const std::string& path,
                             const std::vector<std::string>& reference_contigs);
std::vector<GivenAllele> read_germline_resource(const std::string& path,
                                                const std::string& contig, int64_t start,
                                                int64_t end, int64_t contig_length,
                                                const ContigCodes& codes);

}  // namespace gms
