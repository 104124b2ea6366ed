// FASTQ comments copied into the read's records as SAM tags (what bwa mem -C and minimap2 -y do,
// so that barcodes and UMIs such as BC:Z: and RX:Z: reach the BAM). A comment must be
// tab-separated TAG:TYPE:VALUE fields, each as the SAM specification's grammar allows: htslib's
// own parser accepts more (it reads "XX:i:abc" as 0 and stops at a space after an integer), so
// the syntax is checked here first and htslib then encodes the fields.
#include <htslib/sam.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "align_internal.hpp"
#include "gmsaccel/errors.hpp"
#include "gmsaccel/record_batch.hpp"

namespace gms {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_letter(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

// [-+]?[0-9]+ at the start of s, its value in [lo, hi]; `used` is its length.
bool scan_integer(std::string_view s, int64_t lo, int64_t hi, size_t& used) {
  size_t i = 0;
  const bool negative = i < s.size() && s[i] == '-';
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  const size_t digits = i;
  int64_t v = 0;
  for (; i < s.size() && is_digit(s[i]); ++i) {
    if (v > (int64_t{1} << 40)) return false;  // far out of every range below
    v = 10 * v + (s[i] - '0');
  }
  used = i;
  if (negative) v = -v;
  return i > digits && v >= lo && v <= hi;
}

// [-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)? at the start of s, finite as a 32-bit float.
bool scan_float(std::string_view s, size_t& used) {
  size_t i = 0;
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
    size_t exp = 0;
    if (!scan_integer(s.substr(i), -100000, 100000, exp)) return false;
    i += exp;
  }
  used = i;
  const float v = std::strtof(std::string(s.substr(0, i)).c_str(), nullptr);
  return std::isfinite(v);
}

// The range of a B array's integer subtype.
void subtype_range(char t, int64_t& lo, int64_t& hi) {
  switch (t) {
    case 'c': lo = INT8_MIN; hi = INT8_MAX; break;
    case 'C': lo = 0; hi = UINT8_MAX; break;
    case 's': lo = INT16_MIN; hi = INT16_MAX; break;
    case 'S': lo = 0; hi = UINT16_MAX; break;
    case 'i': lo = INT32_MIN; hi = INT32_MAX; break;
    default: lo = 0; hi = UINT32_MAX; break;  // 'I'
  }
}

// One field's value against its type's grammar in the SAM specification (section 1.5), with
// numbers in the range their type holds (htslib would otherwise refuse them or, in a B array,
// quietly change the subtype).
bool value_is_valid(char type, std::string_view v) {
  size_t used = 0;
  switch (type) {
    case 'A':
      return v.size() == 1 && v[0] >= '!' && v[0] <= '~';
    case 'i':
      return scan_integer(v, INT32_MIN, UINT32_MAX, used) && used == v.size();
    case 'f':
      return scan_float(v, used) && used == v.size();
    case 'Z':
      for (char c : v)
        if (c < ' ' || c > '~') return false;
      return true;
    case 'H':
      if (v.size() % 2) return false;
      for (char c : v)
        if (!is_digit(c) && !(c >= 'A' && c <= 'F')) return false;
      return true;
    case 'B': {
      if (v.empty() || !std::strchr("cCsSiIf", v[0])) return false;
      int64_t lo = 0, hi = 0;
      subtype_range(v[0], lo, hi);
      for (size_t i = 1; i < v.size(); i += used) {
        if (v[i++] != ',') return false;
        const std::string_view rest = v.substr(i);
        if (!(v[0] == 'f' ? scan_float(rest, used) : scan_integer(rest, lo, hi, used))) {
          return false;
        }
      }
      return true;
    }
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
  // The checked fields, one tab between them, after an unmapped record's columns: htslib
  // encodes them.
  thread_local std::string line;
  line.assign("*\t4\t*\t0\t0\t*\t*\t0\t0\t*\t*");
  std::vector<std::string_view> tags;
  for (size_t start = 0; start < text.size();) {
    size_t stop = text.find('\t', start);
    if (stop == std::string_view::npos) stop = text.size();
    const std::string_view field = text.substr(start, stop - start);
    start = stop + 1;
    if (field.empty()) continue;  // a trailing tab, or two in a row
    const bool shaped = field.size() >= 5 && is_letter(field[0]) &&
                        (is_letter(field[1]) || is_digit(field[1])) && field[2] == ':' &&
                        field[4] == ':';
    if (!shaped) refuse(field, "is not TAG:TYPE:VALUE");
    if (!value_is_valid(field[3], field.substr(5))) {
      refuse(field, std::string("is not a valid value of type '") + field[3] + "'");
    }
    const std::string_view tag = field.substr(0, 2);
    if (written_by_aligner(tag)) {
      refuse(field, tag == "RG" ? "sets RG, which comes from --read-group"
                                : "repeats a tag the aligner writes");
    }
    for (std::string_view t : tags)
      if (t == tag) refuse(field, "repeats a tag of the same comment");
    tags.push_back(tag);
    line += '\t';
    line += field;
  }
  if (tags.empty()) return;

  thread_local std::unique_ptr<sam_hdr_t, HeaderFree> header(sam_hdr_init());
  thread_local std::unique_ptr<bam1_t, BamFree> record(bam_init1());
  kstring_t ks{line.size(), line.size() + 1, line.data()};  // (sam_parse1 cuts it up in place)
  if (!header || !record || sam_parse1(&ks, header.get(), record.get()) < 0) {
    throw InputError("htslib could not encode the comment's tags");
  }
  const uint8_t* aux = bam_get_aux(record.get());
  out.assign(reinterpret_cast<const char*>(aux),
             static_cast<size_t>(record->data + record->l_data - aux));
}

}  // namespace gms
