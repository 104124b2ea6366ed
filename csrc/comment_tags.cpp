// FASTQ comments copied into the read's records as SAM tags (what bwa mem -C and minimap2 -y do,
// so that barcodes and UMIs such as BC:Z: and RX:Z: reach the BAM). A comment must be
// tab-separated TAG:TYPE:VALUE fields, each as the SAM specification's grammar allows: htslib's
// own parser accepts more (it reads "XX:i:abc" as 0 and stops at a space after an integer), so
// the syntax is checked here first and htslib then encodes the fields.
#include <htslib/sam.h>

#include <cctype>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "align_internal.hpp"
#include "gmsaccel/errors.hpp"
#include "gmsaccel/record_batch.hpp"

namespace gms {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// [-+]?[0-9]+ from s[i]; i moves past it. False if there is none.
bool scan_integer(std::string_view s, size_t& i) {
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  const size_t digits = i;
  while (i < s.size() && is_digit(s[i])) ++i;
  return i > digits;
}

// [-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)? from s[i]; i moves past it.
bool scan_float(std::string_view s, size_t& i) {
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  size_t digits = 0;
  while (i < s.size() && is_digit(s[i])) ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t after = 0;
    while (i < s.size() && is_digit(s[i])) ++i, ++after;
    if (after == 0) return false;
  } else if (digits == 0) {
    return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (!scan_integer(s, i)) return false;
  }
  return true;
}

// One field's value against its type's grammar in the SAM specification (section 1.5).
bool value_is_valid(char type, std::string_view v) {
  size_t i = 0;
  switch (type) {
    case 'A':
      return v.size() == 1 && v[0] >= '!' && v[0] <= '~';
    case 'i':
      return scan_integer(v, i) && i == v.size();
    case 'f':
      return scan_float(v, i) && i == v.size();
    case 'Z':
      for (char c : v)
        if (c < ' ' || c > '~') return false;
      return true;
    case 'H':
      if (v.size() % 2) return false;
      for (char c : v)
        if (!is_digit(c) && !(c >= 'A' && c <= 'F')) return false;
      return true;
    case 'B':
      if (v.empty() || !std::strchr("cCsSiIf", v[0])) return false;
      for (i = 1; i < v.size();) {
        if (v[i++] != ',') return false;
        if (!(v[0] == 'f' ? scan_float(v, i) : scan_integer(v, i))) return false;
      }
      return true;
    default:
      return false;
  }
}

// Tags the aligner writes itself: a comment may not bring a second copy.
bool written_by_aligner(std::string_view tag) {
  static constexpr const char* kOwn[] = {"NM", "MD", "AS", "XS", "MC", "MQ", "ms", "SA", "RG"};
  for (const char* t : kOwn)
    if (tag == t) return true;
  return false;
}

struct HeaderFree {
  void operator()(sam_hdr_t* h) const { sam_hdr_destroy(h); }
};

}  // namespace

void comment_tags(const std::string& comment, std::string& out) {
  out.clear();
  const std::string_view text(comment);
  auto refuse = [&](std::string_view field, const std::string& why) {
    const std::string shown(field.substr(0, 40));
    throw InputError("comment field \"" + shown + (field.size() > 40 ? "..." : "") +
                     "\" " + why + " (--copy-comment takes tab-separated SAM tags, " +
                     "e.g. RX:Z:ACGT)");
  };
  for (size_t start = 0; start < text.size();) {
    size_t stop = text.find('\t', start);
    if (stop == std::string_view::npos) stop = text.size();
    const std::string_view field = text.substr(start, stop - start);
    start = stop + 1;
    if (field.empty()) continue;  // a trailing tab, or two in a row
    const bool shaped = field.size() >= 5 && std::isalpha(static_cast<unsigned char>(field[0])) &&
                        std::isalnum(static_cast<unsigned char>(field[1])) && field[2] == ':' &&
                        field[4] == ':';
    if (!shaped) refuse(field, "is not TAG:TYPE:VALUE");
    if (!value_is_valid(field[3], field.substr(5))) {
      refuse(field, std::string("is not a valid value of type '") + field[3] + "'");
    }
    if (written_by_aligner(field.substr(0, 2))) {
      refuse(field, field[0] == 'R' && field[1] == 'G'
                        ? "sets RG, which comes from --read-group"
                        : "repeats a tag the aligner writes");
    }
  }
  if (text.find_first_not_of('\t') == std::string_view::npos) return;

  // htslib encodes the checked fields: an unmapped record's line with the comment as its tags.
  thread_local std::unique_ptr<sam_hdr_t, HeaderFree> header(sam_hdr_init());
  thread_local std::unique_ptr<bam1_t, BamFree> record(bam_init1());
  thread_local std::string line;
  line.assign("*\t4\t*\t0\t0\t*\t*\t0\t0\t*\t*\t");
  line += comment;
  kstring_t ks{line.size(), line.size() + 1, line.data()};  // (sam_parse1 cuts it up in place)
  if (!header || !record || sam_parse1(&ks, header.get(), record.get()) < 0) {
    throw InputError("htslib could not encode the comment's tags");
  }
  const uint8_t* aux = bam_get_aux(record.get());
  out.assign(reinterpret_cast<const char*>(aux),
             static_cast<size_t>(record->data + record->l_data - aux));
}

}  // namespace gms
