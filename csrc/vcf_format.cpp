// VCF lines for reference blocks and variant records (see vcf_output.hpp). Python formatted them
// on the writing thread (blocks one f-string each, variants through a pysam record), most of a
// gVCF run's single-threaded time.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "gmsaccel/caller.hpp"
#include "gmsaccel/vcf_output.hpp"

namespace gms {

namespace {

void put_int(std::string& out, int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

char block_base(char c) {
  switch (c) {
    case 'A': case 'a': return 'A';
    case 'C': case 'c': return 'C';
    case 'G': case 'g': return 'G';
    case 'T': case 't': return 'T';
    default: return 'N';
  }
}

// htslib keeps QUAL and Float INFO values as 32-bit floats and prints them as %g does.
void put_float(std::string& out, double v) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%g", static_cast<double>(static_cast<float>(v)));
  out.append(buf, static_cast<size_t>(n));
}

template <class Ints>
void put_list(std::string& out, const Ints& values, char sep) {
  if (values.empty()) out.push_back('.');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out.push_back(sep);
    put_int(out, values[i]);
  }
}

// Position of an unphased genotype in VCF's Number=G order (j <= k: k(k+1)/2 + j).
size_t genotype_index(int j, int k) {
  if (j > k) std::swap(j, k);
  return static_cast<size_t>(k) * (k + 1) / 2 + static_cast<size_t>(j);
}

// PL over the alleles plus <*>: a genotype with <*> scores as the least likely genotype of
// called alleles it could stand for (vcf.extend_pl_non_ref's rule).
std::vector<int> pl_with_non_ref(const std::vector<int>& pl, int n_alleles, int ploidy) {
  const int star = n_alleles;
  std::vector<int> out;
  if (ploidy == 1) {
    out.assign(pl.begin(), pl.end());
    out.push_back(*std::max_element(pl.begin(), pl.end()));
    return out;
  }
  for (int k = 0; k <= star; ++k) {
    for (int j = 0; j <= k; ++j) {
      int v;
      if (k != star) {
        v = pl[genotype_index(j, k)];
      } else if (j != star) {  // one <*> copy: any called allele beside j
        v = pl[genotype_index(j, 0)];
        for (int a = 1; a < n_alleles; ++a) v = std::max(v, pl[genotype_index(j, a)]);
      } else {  // both copies <*>: any called genotype
        v = *std::max_element(pl.begin(), pl.end());
      }
      out.push_back(v);
    }
  }
  return out;
}

// A GT: allele indices joined by '/', '.' for a missing one.
void put_gt(std::string& out, const std::vector<int>& gt) {
  for (size_t i = 0; i < gt.size(); ++i) {
    if (i) out.push_back('/');
    if (gt[i] < 0) {
      out.push_back('.');
    } else {
      put_int(out, gt[i]);
    }
  }
}

// Floats joined by ',', '.' for NaN (a somatic normal's AF where it has no reads).
void put_floats(std::string& out, const std::vector<double>& values) {
  if (values.empty()) out.push_back('.');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out.push_back(',');
    if (std::isnan(values[i])) {
      out.push_back('.');
    } else {
      put_float(out, values[i]);
    }
  }
}

// A somatic record's INFO after DP and MQ, and its samples: TLOD, NLOD, POPAF, GERMQ,
// CONTQ, GT:AD:DP:AF:SB.
void put_somatic_rest(const VariantRecord& r, std::string& out) {
  out.append(";TLOD=");
  put_floats(out, r.tlod);
  if (!r.nlod.empty()) {
    out.append(";NLOD=");
    put_floats(out, r.nlod);
  }
  if (!r.popaf.empty()) {
    out.append(";POPAF=");
    put_floats(out, r.popaf);
    out.append(";GERMQ=");
    put_floats(out, r.germq);
  }
  if (!r.contq.empty()) {
    out.append(";CONTQ=");
    put_floats(out, r.contq);
  }
  out.append("\tGT:AD:DP:AF:SB");
  for (const SampleCall& s : r.samples) {
    out.push_back('\t');
    put_gt(out, s.gt);
    out.push_back(':');
    put_list(out, s.ad, ',');
    out.push_back(':');
    put_int(out, s.dp);
    out.push_back(':');
    put_floats(out, s.af);
    out.push_back(':');
    put_list(out, s.sb, ',');
  }
}

}  // namespace

std::string filter_column(const VariantRecord& r) {
  if (r.filters.empty()) return "PASS";
  std::string out = r.filters[0];
  for (size_t i = 1; i < r.filters.size(); ++i) out += ";" + r.filters[i];
  return out;
}

void format_variant_record(std::string_view contig, const VariantRecord& r, bool gvcf,
                           std::string& out) {
  const int n_alleles = 1 + static_cast<int>(r.alts.size());
  out.append(contig);
  out.push_back('\t');
  put_int(out, r.pos + 1);
  out.push_back('\t');
  out.append(r.id.empty() ? std::string_view(".") : std::string_view(r.id));
  out.push_back('\t');
  out.append(r.ref);
  out.push_back('\t');
  for (size_t i = 0; i < r.alts.size(); ++i) {
    if (i) out.push_back(',');
    out.append(r.alts[i]);
  }
  if (gvcf) out.append(r.alts.empty() ? "<*>" : ",<*>");
  if (r.alts.empty() && !gvcf) out.push_back('.');
  out.push_back('\t');
  put_float(out, r.qual);
  out.push_back('\t');
  out.append(filter_column(r));
  out.push_back('\t');
  if (gvcf) {
    out.append("END=");
    put_int(out, r.pos + static_cast<int64_t>(r.ref.size()));
    out.push_back(';');
  }
  out.append("DP=");
  put_int(out, r.dp);
  out.append(";MQ=");
  put_float(out, r.mq);
  if (r.somatic) {
    put_somatic_rest(r, out);
    out.push_back('\n');
    return;
  }
  out.append("\tGT:AD:DP:GQ:PL");
  for (const SampleCall& s : r.samples) {
    out.push_back('\t');
    put_gt(out, s.gt);
    out.push_back(':');
    put_list(out, s.ad, ',');
    if (gvcf && !s.ad.empty()) out.append(",0");
    out.push_back(':');
    put_int(out, s.dp);
    out.push_back(':');
    put_int(out, s.gq);
    out.push_back(':');
    if (gvcf && !s.pl.empty()) {
      const size_t n = static_cast<size_t>(n_alleles);
      const int ploidy = s.pl.size() == n ? 1 : 2;
      if (ploidy == 2 && s.pl.size() != n * (n + 1) / 2) {
        throw std::invalid_argument("a record's PL does not fit its alleles at ploidy 1 or 2");
      }
      put_list(out, pl_with_non_ref(s.pl, n_alleles, ploidy), ',');
    } else {
      put_list(out, s.pl, ',');
    }
  }
  out.push_back('\n');
}

namespace {

void check_n_pl(size_t n_pl) {
  if (n_pl != 2 && n_pl != 3) {
    throw std::invalid_argument("a reference block's PL has 2 (haploid) or 3 (diploid) values, not " +
                                std::to_string(n_pl));
  }
}

// Block i of b as one line, starting at `start` (its own start, or later when a record before
// it reaches into it) with reference letter `base`.
void put_block(std::string& out, std::string_view contig, const ReferenceBlockColumns& b,
               size_t i, int64_t start, char base, size_t n_samples) {
  out.append(contig);
  out.push_back('\t');
  put_int(out, start + 1);
  out.append("\t.\t");
  out.push_back(block_base(base));
  out.append("\t<*>\t.\t.\tEND=");
  put_int(out, b.end[i]);
  out.append("\tGT:DP:GQ:MIN_DP:PL");
  const size_t call_at = out.size();
  out.append(b.n_pl == 2 ? "\t0:" : "\t0/0:");
  put_int(out, b.dp[i]);
  out.push_back(':');
  put_int(out, b.gq[i]);
  out.push_back(':');
  put_int(out, b.min_dp[i]);
  for (size_t k = 0; k < b.n_pl; ++k) {
    out.push_back(k ? ',' : ':');
    put_int(out, b.pl[i * b.n_pl + k]);
  }
  if (n_samples == 0) out.resize(call_at);
  if (n_samples > 1) {  // the same call for every sample (copied out: out may grow)
    const std::string call = out.substr(call_at);
    for (size_t s = 1; s < n_samples; ++s) out.append(call);
  }
  out.push_back('\n');
}

}  // namespace

void format_reference_blocks(std::string_view contig, const ReferenceBlockColumns& b,
                             size_t n_samples, std::string& out) {
  check_n_pl(b.n_pl);
  for (size_t i = 0; i < b.n; ++i) put_block(out, contig, b, i, b.start[i], b.bases[i], n_samples);
}

int64_t format_gvcf_shard(std::string_view contig, const GvcfShard& shard, size_t n_samples,
                          int64_t covered, std::string& out, std::vector<int64_t>& beg,
                          std::vector<int64_t>& end) {
  const ReferenceBlockColumns& b = shard.blocks;
  check_n_pl(b.n_pl);
  constexpr char kLetters[] = "ACGTN";
  auto letter = [&](int64_t pos) {
    return pos >= 0 && pos < shard.n_codes ? kLetters[std::min<uint8_t>(shard.codes[pos], 4)]
                                           : 'N';
  };
  // Blocks [i, j), those parts after `covered` (a record may reach into them); the new covered
  // end is the last block's end.
  auto blocks = [&](size_t i, size_t j) {
    size_t k = i;
    while (k < j && b.end[k] <= covered) ++k;  // hidden whole
    if (k == j) return;
    for (size_t m = k; m < j; ++m) {
      const int64_t start = m == k ? std::max(b.start[m], covered) : b.start[m];
      put_block(out, contig, b, m, start, letter(start), n_samples);
      beg.push_back(start);
      end.push_back(b.end[m]);
    }
    covered = b.end[j - 1];
  };
  size_t next_block = 0;
  for (size_t r = 0; r < shard.n_records; ++r) {
    const int64_t pos = shard.record_beg[r];
    // the blocks before this record (those starting before it), a run at a time
    const size_t upto = static_cast<size_t>(
        std::lower_bound(b.start, b.start + b.n, pos) - b.start);
    if (upto > next_block) blocks(next_block, upto);
    next_block = std::max(next_block, upto);
    const char* line = shard.record_lines + shard.line_offsets[r];
    out.append(line, static_cast<size_t>(shard.line_offsets[r + 1] - shard.line_offsets[r]));
    beg.push_back(pos);
    end.push_back(shard.record_end[r]);
    covered = std::max(covered, shard.record_end[r]);
  }
  if (b.n > next_block) blocks(next_block, b.n);
  return covered;
}

}  // namespace gms
