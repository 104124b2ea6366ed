// gVCF reference-block lines (see vcf_output.hpp). Python formatted them one f-string per block,
// most of a gVCF run's single-threaded time.
#include <charconv>
#include <stdexcept>
#include <string>

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

}  // namespace

void format_reference_blocks(std::string_view contig, const ReferenceBlockColumns& b,
                             size_t n_samples, std::string& out) {
  if (b.n_pl != 2 && b.n_pl != 3) {
    throw std::invalid_argument("a reference block's PL has 2 (haploid) or 3 (diploid) values, not " +
                                std::to_string(b.n_pl));
  }
  const std::string_view gt = b.n_pl == 2 ? "0" : "0/0";
  std::string call;
  for (size_t i = 0; i < b.n; ++i) {
    out.append(contig);
    out.push_back('\t');
    put_int(out, b.start[i] + 1);
    out.append("\t.\t");
    out.push_back(block_base(b.bases[i]));
    out.append("\t<*>\t.\t.\tEND=");
    put_int(out, b.end[i]);
    out.append("\tGT:DP:GQ:MIN_DP:PL");
    call.assign("\t");
    call.append(gt);
    call.push_back(':');
    put_int(call, b.dp[i]);
    call.push_back(':');
    put_int(call, b.gq[i]);
    call.push_back(':');
    put_int(call, b.min_dp[i]);
    for (size_t k = 0; k < b.n_pl; ++k) {
      call.push_back(k ? ',' : ':');
      put_int(call, b.pl[i * b.n_pl + k]);
    }
    for (size_t s = 0; s < n_samples; ++s) out.append(call);
    out.push_back('\n');
  }
}

}  // namespace gms
