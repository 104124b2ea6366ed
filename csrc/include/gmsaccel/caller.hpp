// Variant calling over a region shard: reads -> candidates -> active windows -> haplotypes ->
// read/haplotype likelihoods -> genotypes, jointly over samples.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gmsaccel/haplotype.hpp"
#include "gmsaccel/pileup.hpp"
#include "gmsaccel/reference_confidence.hpp"
#include "gmsaccel/somatic.hpp"

namespace gms {

struct CallerOptions {
  int ploidy = 2;                  // 1 or 2
  ReadFilter filter;
  CandidateOptions candidates;
  HaplotypeScoring scoring;
  double heterozygosity = 1e-3;    // prior of a heterozygous SNV per site
  double indel_heterozygosity = 1.25e-4;
  int max_window_candidates = 6;   // more candidates in a window: split the window
  int window_padding = 12;         // reference bases added either side of a window's candidates
  double min_qual = 0;             // records with lower QUAL are not emitted at all
  double low_qual = 20;            // records below are emitted with FILTER LowQual
  int simd_level = 0;
  // >= 0: read/haplotype costs on this GPU through the registered haplotype_backend() (same
  // results); device_emulate runs that path with host-executed kernel threads.
  int device = -1;
  bool device_emulate = false;
  // Given alleles (normalised, sorted; pos 0-based on the called contig): each gets a record
  // whatever the reads say, with GT 0/0 where the sample lacks it and ./. where no read spans
  // it; never dropped by min_qual, and LowQual only where some sample carries an ALT.
  // given_only: only records holding a given allele are written.
  std::vector<CandidateAllele> given;
  bool given_only = false;
  // Each sample's ploidy in the region called (0, 1 or 2; e.g. a male's chrX outside the
  // pseudo-autosomal regions is 1); empty: every sample has `ploidy`.
  std::vector<int> sample_ploidy;
  // Somatic calling when somatic_tumour >= 0: that sample is a tumour's reads and
  // somatic_normal (-1: none) its matched normal's. Records are then the alleles the tumour
  // carries at a fitted fraction (somatic.hpp), with TLOD/NLOD and filters, not genotypes.
  int somatic_tumour = -1;
  int somatic_normal = -1;
  SomaticThresholds somatic;
  // Somatic: alleles of a panel of normals (normalised, sorted); a record of one fails
  // panel_of_normals.
  std::vector<CandidateAllele> panel;
  // Somatic, with a germline resource: the population frequency of its alleles here
  // (normalised, sorted by allele); others get somatic.af_not_in_resource. Each record then
  // carries POPAF and GERMQ, and fails `germline` by allele_origins (somatic.hpp).
  bool has_resource = false;
  std::vector<std::pair<CandidateAllele, double>> resource;
};

// Candidates are also found this far either side of a region, so that the windows reaching
// over its edges are the ones a run over the whole contig makes (records outside the region
// are left to the regions beside it). Given alleles this far out shape a region's windows too.
constexpr int32_t kCandidatePad = 1500;

// Per sample genotype of one record.
struct SampleCall {
  std::vector<int> gt;             // allele indices (ploidy entries), -1 = missing
  std::vector<int> ad;             // reads supporting each allele (REF first)
  int dp = 0;                      // reads spanning the site
  int gq = 0;
  std::vector<int> pl;             // VCF order over the record's alleles
  std::vector<double> af;          // somatic records: the fitted fraction of each ALT
  std::vector<int> sb;             // somatic records: REF forward, REF reverse, ALT fwd, rev
};

struct VariantRecord {
  int64_t pos = 0;                 // 0-based
  std::string id;                  // the given alleles' IDs (';'-separated), else empty
  std::string ref;
  std::vector<std::string> alts;
  double qual = 0;
  int dp = 0;                      // total over samples
  int mq = 0;                      // RMS mapping quality of spanning reads
  std::vector<SampleCall> samples;
  // The filters failed (none: PASS): LowQual, or a somatic record's.
  std::vector<std::string> filters;
  // Somatic records: per ALT the tumour's TLOD and the normal's NLOD (empty without a normal).
  bool somatic = false;
  std::vector<double> tlod, nlod;
  // With a germline resource: per ALT its population frequency (-log10) and the phred-scaled
  // probability that it is germline (-10 log10 P(germline)); with a contamination fraction
  // too, that it comes from the contaminating reads.
  std::vector<double> popaf, germq, contq;
};

// Calls [start, end) of a contig from one AlignmentSource per sample (a sample without the
// contig contributes no reads); ref_codes covers the contig in full (base codes). Records come
// out with pos in [start, end), sorted by (pos, ref, alts).
// confidence (one sample only): also the gVCF reference confidence of [start, end), from the
// candidates' pileup.
std::vector<VariantRecord> call_region(std::vector<AlignmentSource*>& sources,
                                       const std::string& contig, int64_t start, int64_t end, const uint8_t* ref_codes,
                                       int64_t contig_length, const CallerOptions& opt,
                                       LoadStats* stats,
                                       ReferenceConfidence* confidence = nullptr);

}  // namespace gms
