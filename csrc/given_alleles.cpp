// Given alleles: a sites VCF/BCF read with htslib, checked against the reference and normalised.
// Records are gathered by contig first, then checked a contig at a time, so that each contig's
// codes are fetched once whatever the file's order.
#include "gmsaccel/given_alleles.hpp"

#include <htslib/bgzf.h>
#include <htslib/hts.h>
#include <htslib/tbx.h>
#include <htslib/vcf.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <unordered_map>

#include <sys/stat.h>

#include "gmsaccel/errors.hpp"
#include "gmsaccel/pileup.hpp"
#include "gmsaccel/scoring.hpp"

namespace gms {
namespace {

struct SiteRecord {
  int64_t number;  // 1-based record number in the file
  int64_t start;   // 0-based
  std::string ref;
  std::vector<std::string> alts;
  std::string id;  // "" for none
  std::vector<double> afs;  // a germline resource's INFO/AF, one per ALT (else empty)
};

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// 1234567 -> "1,234,567"
std::string grouped(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return v < 0 ? "-" + out : out;
}

bool only_acgt(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c == 'A' || c == 'C' || c == 'G' || c == 'T'; });
}

// Why a normalised allele cannot be given, or nullptr for an SNV or an anchored indel.
const char* why_not_given(const std::string& ref, const std::string& alt) {
  if (ref == alt) return "not a change";
  if (ref.empty() || alt.empty()) return "indel at the contig's start";  // nothing to anchor on
  if (ref.size() == 1 && alt.size() == 1) return nullptr;
  if ((ref.size() == 1 || alt.size() == 1) && ref[0] == alt[0]) {
    const int64_t change = std::abs(static_cast<int64_t>(ref.size()) -
                                    static_cast<int64_t>(alt.size()));
    return change <= kMaxIndelLength ? nullptr : "long indel";
  }
  return ref.size() == alt.size() ? "MNP" : "complex";
}

struct Skips {
  GivenAlleleFile& out;
  int64_t first_number = -1;
  void add(const char* why, int64_t number, const std::string& where) {
    ++out.skipped[why];
    if (first_number < 0 || number < first_number) {
      first_number = number;
      out.first_skipped = where;
    }
  }
};

// File text in a message: anything but printable ASCII shown as '?', so that a message never
// holds half a UTF-8 character (a REF cut at 20 bytes) or control bytes.
std::string shown(const std::string& text, size_t at_most = std::string::npos) {
  std::string out = text.substr(0, at_most);
  for (char& c : out)
    if (c < 0x20 || c > 0x7e) c = '?';
  return out;
}

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80           ? 1
                     : (c >> 5) == 0x6  ? 2
                     : (c >> 4) == 0xe  ? 3
                     : (c >> 3) == 0x1e ? 4
                                        : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t j = 1; j < n; ++j)
      if ((static_cast<unsigned char>(s[i + j]) >> 6) != 0x2) return false;
    i += n;
  }
  return true;
}

// "record N (CHROM:POS", or "record (CHROM:POS" for one read by position (number 0)
std::string site(int64_t number, const std::string& contig, int64_t start) {
  return "record " + (number > 0 ? std::to_string(number) + " " : std::string()) + "(" +
         shown(contig) + ":" + std::to_string(start + 1);
}

std::vector<GivenAllele> check_contig(const std::string& path, const std::string& contig,
                                      int64_t length, const ContigCodes& codes,
                                      const std::vector<SiteRecord>& records, Skips& skips) {
  std::vector<GivenAllele> given;  // one per ALT, in record order, each with its record's ID
  for (const SiteRecord& r : records) {
    auto where = [&] { return site(r.number, contig, r.start) + ")"; };  // (for errors only)
    // An ALT skipped, and why ("." for a record without one).
    auto skip = [&](const char* why, const std::string& alt) {
      skips.add(why, r.number,
                site(r.number, contig, r.start) + " " + shown(r.ref) + ">" + shown(alt) + ")");
    };
    if (r.start < 0) {  // POS 0: a telomere, before the contig's first base
      if (r.alts.empty()) skips.add("at POS 0", r.number, where());
      for (const std::string& alt : r.alts) skip("at POS 0", alt);
      continue;
    }
    const int64_t span = static_cast<int64_t>(r.ref.size());
    if (r.start + span > length || r.start + span > codes.size) {
      throw InputError(path + ": " + where() + ": REF runs past the contig's end (" +
                       grouped(length) + " bases)");
    }
    auto base_at = [&](int64_t i) { return base_letter(codes.data[r.start + i]); };
    bool differs = false;
    for (int64_t i = 0; i < span; ++i) {
      const char a = base_at(i), c = r.ref[static_cast<size_t>(i)];
      // (a reference N stands for any IUPAC code the VCF writes there)
      if (c != a && !(a == 'N' && c != 'A' && c != 'C' && c != 'G' && c != 'T')) differs = true;
    }
    if (differs) {
      std::string actual;
      for (int64_t i = 0; i < std::min<int64_t>(span, 20); ++i) actual.push_back(base_at(i));
      throw InputError(path + ": " + where() + ": REF " + shown(r.ref, 20) +
                       " differs from the reference (" + actual +
                       "); is it the same build?");
    }
    if (r.alts.empty()) skip("no ALT", ".");
    for (size_t i = 0; i < r.alts.size(); ++i) {
      const std::string& alt = r.alts[i];
      const double af = i < r.afs.size() ? r.afs[i] : std::numeric_limits<double>::quiet_NaN();
      const char* why = nullptr;
      int64_t pos = r.start;
      std::string ref = r.ref, a = alt;
      if (alt.empty() || alt[0] == '<' || alt.find_first_of("[]") != std::string::npos ||
          alt == "*" || alt == ".") {
        why = "symbolic";
      } else if (!only_acgt(alt) || !only_acgt(ref)) {
        why = "non-ACGT";
      } else {
        normalise(pos, ref, a, codes.data, 0);
        why = why_not_given(ref, a);
      }
      if (why) {
        skip(why, alt);
        continue;
      }
      given.push_back(GivenAllele{pos, std::move(ref), std::move(a), r.id, af});
    }
  }
  // One allele each, with the IDs of every record giving it (in record order: the sort is
  // stable), each ID once.
  auto same = [](const GivenAllele& x, const GivenAllele& y) {
    return x.pos == y.pos && x.ref == y.ref && x.alt == y.alt;
  };
  std::stable_sort(given.begin(), given.end(), [](const GivenAllele& x, const GivenAllele& y) {
    if (x.pos != y.pos) return x.pos < y.pos;
    if (x.ref != y.ref) return x.ref < y.ref;
    return x.alt < y.alt;
  });
  std::vector<GivenAllele> out;
  out.reserve(given.size());
  std::vector<std::string> ids;
  for (size_t i = 0; i < given.size();) {
    size_t j = i;
    ids.clear();
    double af = given[i].af;  // (a resource's allele given twice: its larger frequency)
    for (; j < given.size() && same(given[i], given[j]); ++j) {
      if (std::isnan(af) || given[j].af > af) af = given[j].af;
      const std::string& id = given[j].id;
      for (size_t at = 0; !id.empty() && at <= id.size();) {  // each of the ';'-joined IDs
        const size_t end = std::min(id.find(';', at), id.size());
        std::string one = id.substr(at, end - at);
        if (std::find(ids.begin(), ids.end(), one) == ids.end()) ids.push_back(std::move(one));
        at = end + 1;
      }
    }
    GivenAllele& a = out.emplace_back(std::move(given[i]));
    a.af = af;
    a.id.clear();
    for (size_t k = 0; k < ids.size(); ++k) a.id += (k ? ";" : "") + ids[k];
    i = j;
  }
  return out;
}

struct SitesFile {
  std::unique_ptr<htsFile, int (*)(htsFile*)> fp{nullptr, hts_close};
  std::unique_ptr<bcf_hdr_t, void (*)(bcf_hdr_t*)> hdr{nullptr, bcf_hdr_destroy};
  bool bcf = false;
};

// A VCF/BCF opened and its header read, or an InputError saying why not.
SitesFile open_sites(const std::string& path) {
  SitesFile out;
  errno = 0;
  out.fp.reset(hts_open(path.c_str(), "r"));
  if (!out.fp) {
    throw InputError(path + ": cannot read as VCF/BCF (cannot open it" +
                     (errno ? std::string(": ") + std::strerror(errno) : std::string()) + ")");
  }
  const htsFormat* format = hts_get_format(out.fp.get());
  if (format->format != vcf && format->format != bcf) {
    char* what = hts_format_description(format);  // (malloc'ed)
    const std::string looks = what ? what : "something else";
    free(what);
    throw InputError(path + ": cannot read as VCF/BCF (it looks like " + looks + ")");
  }
  out.bcf = format->format == bcf;
  // A bgzipped file cut at a block boundary still parses: its missing end is the only sign.
  if (format->compression == bgzf && out.fp->is_bgzf && bgzf_check_EOF(out.fp->fp.bgzf) == 0) {
    throw InputError(path + ": cannot read as VCF/BCF (no BGZF EOF marker; file may be "
                     "truncated)");
  }
  out.hdr.reset(bcf_hdr_read(out.fp.get()));
  if (!out.hdr) throw InputError(path + ": cannot read as VCF/BCF (no valid header)");
  return out;
}

}  // namespace

GivenAlleleFile read_given_alleles(
    const std::string& path, const std::function<int64_t(const std::string&)>& contig_length,
    const std::function<ContigCodes(const std::string&)>& ref_codes) {
  SitesFile file = open_sites(path);
  htsFile* const fp = file.fp.get();
  bcf_hdr_t* const hdr = file.hdr.get();
  std::unique_ptr<bcf1_t, void (*)(bcf1_t*)> rec(bcf_init(), bcf_destroy);

  // contig -> its records, in the order contigs are first seen
  std::vector<std::pair<std::string, std::vector<SiteRecord>>> rows;
  std::unordered_map<std::string, size_t> row_of;
  std::unordered_map<int, int64_t> length_of_rid;  // the reference's length, by header id
  int64_t n = 0;
  for (;;) {
    const int got = bcf_read(fp, hdr, rec.get());
    if (got == -1) break;
    // (a contig or tag the header lacks is declared by htslib as it reads: not an error here)
    const int broken = rec->errcode & ~(BCF_ERR_CTG_UNDEF | BCF_ERR_TAG_UNDEF);
    if (got < -1 || broken || bcf_unpack(rec.get(), BCF_UN_STR) < 0) {
      throw InputError(path + ": record " + std::to_string(n + 1) + ": unreadable (" +
                       (got < -1 ? std::string("htslib could not parse it")
                                 : "htslib error code " + std::to_string(broken)) + ")");
    }
    ++n;
    if (rec->rid < 0 || rec->rid >= hdr->n[BCF_DT_CTG])
      throw InputError(path + ": record " + std::to_string(n) + ": unreadable (no contig)");
    const char* name = bcf_hdr_id2name(hdr, rec->rid);
    auto known = length_of_rid.find(rec->rid);
    if (known == length_of_rid.end())
      known = length_of_rid.emplace(rec->rid, contig_length(name)).first;
    if (known->second < 0) {
      throw InputError(path + ": " + site(n, name, rec->pos) + "): contig " + shown(name) +
                       " is not in the reference");
    }
    auto [it, fresh] = row_of.emplace(name, rows.size());
    if (fresh) rows.emplace_back(name, std::vector<SiteRecord>{});
    SiteRecord& r = rows[it->second].second.emplace_back();
    r.number = n;
    r.start = rec->pos;
    r.ref = upper(rec->d.allele[0]);
    for (int i = 1; i < rec->n_allele; ++i) r.alts.push_back(upper(rec->d.allele[i]));
    if (rec->d.id && std::string(rec->d.id) != ".") r.id = rec->d.id;
    if (!valid_utf8(r.id)) {
      throw InputError(path + ": " + site(n, name, rec->pos) + "): ID " + shown(r.id, 40) +
                       " is not UTF-8 text");
    }
  }

  GivenAlleleFile out;
  Skips skips{out};
  for (auto& [contig, records] : rows) {
    const ContigCodes codes = ref_codes(contig);
    std::vector<GivenAllele> alleles =
        check_contig(path, contig, contig_length(contig), codes, records, skips);
    std::vector<SiteRecord>().swap(records);  // (the file's records go as their alleles come)
    if (!alleles.empty()) out.by_contig.emplace_back(contig, std::move(alleles));
  }
  return out;
}

namespace {

// The resource's index, or an InputError asking for one.
struct SitesIndex {
  std::unique_ptr<hts_idx_t, void (*)(hts_idx_t*)> bcf_idx{nullptr, hts_idx_destroy};
  std::unique_ptr<tbx_t, void (*)(tbx_t*)> tbx{nullptr, tbx_destroy};
};

SitesIndex load_index(const std::string& path, const SitesFile& file) {
  SitesIndex idx;
  if (file.bcf) {
    idx.bcf_idx.reset(bcf_index_load(path.c_str()));
  } else if (file.fp->format.compression == bgzf) {
    idx.tbx.reset(tbx_index_load(path.c_str()));
  }
  if (!idx.bcf_idx && !idx.tbx) {
    throw InputError(path + ": a germline resource is read by position: bgzip it and index it "
                     "(bcftools index -t " + path + ")");
  }
  return idx;
}

void check_af_header(const std::string& path, const bcf_hdr_t* hdr) {
  const int id = bcf_hdr_id2int(hdr, BCF_DT_ID, "AF");
  if (id < 0 || !bcf_hdr_idinfo_exists(hdr, BCF_HL_INFO, id) ||
      bcf_hdr_id2type(hdr, BCF_HL_INFO, id) != BCF_HT_REAL ||
      bcf_hdr_id2length(hdr, BCF_HL_INFO, id) != BCF_VL_A) {
    throw InputError(path + ": a germline resource needs each ALT's population frequency as "
                     "INFO/AF (Number=A, Type=Float) in its header");
  }
}

}  // namespace

void check_germline_resource(const std::string& path,
                             const std::vector<std::string>& reference_contigs) {
  SitesFile file = open_sites(path);
  check_af_header(path, file.hdr.get());
  SitesIndex idx = load_index(path, file);
  // A resource named for another build's contigs ('1' against 'chr1') would match nothing.
  int n = 0;
  const char** names = idx.bcf_idx ? bcf_index_seqnames(idx.bcf_idx.get(), file.hdr.get(), &n)
                                   : tbx_seqnames(idx.tbx.get(), &n);
  std::vector<std::string> indexed(names, names + (names ? n : 0));
  free(names);
  if (indexed.empty() || reference_contigs.empty()) return;
  for (const std::string& c : indexed)
    if (std::find(reference_contigs.begin(), reference_contigs.end(), c) !=
        reference_contigs.end())
      return;
  throw InputError(path + ": none of its contigs (e.g. " + shown(indexed[0], 40) +
                   ") is in the reference (e.g. " + shown(reference_contigs[0], 40) +
                   "); is it the same build?");
}

namespace {

// A resource opened, its header checked and its index loaded, kept by the thread for its next
// shards (a genome's thousands of shards would each load the index again) while the file's
// size and time stay the same.
struct OpenResource {
  std::string path;
  off_t size = 0;
  struct timespec mtime {};
  SitesFile file;
  SitesIndex idx;
};

// One text line of a germline resource, read for what the caller takes from it: POS, REF, ALT
// and INFO/AF. gnomAD's full VCFs carry hundreds of INFO values per record, which htslib's
// vcf_parse would decode (and look up in the header) only for all but AF to be dropped: here
// INFO is scanned for its AF entry alone. AF is parsed to a float as htslib stores it, so the
// frequencies equal a BCF's of the same records (tested). Returns false for a line without
// the eight fixed columns, an empty REF or a POS that is not a number; an AF value that is not
// a number or '.' (an empty one, NaN, a bare AF flag) comes back in bad_af.
enum class AfField { kFound, kAbsent };

bool parse_resource_line(const char* line, size_t length, SiteRecord& r, AfField& af,
                         std::optional<std::string>& bad_af) {
  const char* const stop = line + length;
  const char* field[8];
  const char* field_end[8];
  const char* p = line;
  for (int i = 0; i < 8; ++i) {
    if (p > stop) return false;
    const char* tab = static_cast<const char*>(std::memchr(p, '\t', stop - p));
    const char* e = tab ? tab : stop;
    if (!tab && i < 7) return false;
    field[i] = p;
    field_end[i] = e;
    p = e + 1;
  }
  char* pos_end = nullptr;
  const long long pos = std::strtoll(field[1], &pos_end, 10);
  if (pos_end != field_end[1] || pos < 0 || field_end[3] == field[3]) return false;
  r.start = pos - 1;  // (POS 0, a telomere's record, is -1: left out as htslib's is)
  r.ref = upper(std::string(field[3], field_end[3]));
  r.alts.clear();
  if (!(field_end[4] - field[4] == 1 && *field[4] == '.')) {  // '.': no ALT
    for (const char* a = field[4]; a <= field_end[4];) {
      const char* comma = static_cast<const char*>(std::memchr(a, ',', field_end[4] - a));
      const char* e = comma ? comma : field_end[4];
      r.alts.push_back(upper(std::string(a, e)));
      a = e + 1;
    }
  }
  r.afs.clear();
  af = AfField::kAbsent;
  for (const char* k = field[7]; k < field_end[7];) {
    const char* semi = static_cast<const char*>(std::memchr(k, ';', field_end[7] - k));
    const char* e = semi ? semi : field_end[7];
    if (e - k == 2 && k[0] == 'A' && k[1] == 'F') {  // AF as a flag: no value at all
      af = AfField::kFound;
      bad_af = "(no value)";
      return true;
    }
    if (e - k >= 3 && k[0] == 'A' && k[1] == 'F' && k[2] == '=') {
      af = AfField::kFound;
      for (const char* v = k + 3; v <= e;) {
        const char* comma = static_cast<const char*>(std::memchr(v, ',', e - v));
        const char* ve = comma ? comma : e;
        if (ve - v == 1 && *v == '.') {
          r.afs.push_back(std::numeric_limits<double>::quiet_NaN());
        } else {
          const std::string text(v, ve);
          char* end = nullptr;
          const double d = std::strtod(text.c_str(), &end);
          if (text.empty() || end != text.c_str() + text.size() || std::isnan(d)) {
            bad_af = text.empty() ? "(empty)" : text;
            return true;
          }
          r.afs.push_back(static_cast<double>(static_cast<float>(d)));  // (htslib's float)
        }
        v = ve + 1;
      }
      break;
    }
    k = e + 1;
  }
  return true;
}

OpenResource& open_resource(const std::string& path) {
  thread_local std::unique_ptr<OpenResource> kept;
  struct stat st {};
  const bool seen = stat(path.c_str(), &st) == 0;
  if (!(kept && seen && kept->path == path && kept->size == st.st_size &&
        kept->mtime.tv_sec == st.st_mtim.tv_sec && kept->mtime.tv_nsec == st.st_mtim.tv_nsec)) {
    kept.reset();  // (a file that fails to open is not kept)
    auto fresh = std::make_unique<OpenResource>();
    fresh->file = open_sites(path);
    check_af_header(path, fresh->file.hdr.get());
    fresh->idx = load_index(path, fresh->file);
    fresh->path = path;
    fresh->size = st.st_size;
    fresh->mtime = st.st_mtim;
    kept = std::move(fresh);
  }
  return *kept;
}

}  // namespace

std::vector<GivenAllele> read_germline_resource(const std::string& path,
                                                const std::string& contig, int64_t start,
                                                int64_t end, int64_t contig_length,
                                                const ContigCodes& codes) {
  OpenResource& open = open_resource(path);
  SitesFile& file = open.file;
  SitesIndex& idx = open.idx;
  bcf_hdr_t* const hdr = file.hdr.get();
  // Normalising moves indels left (and trims a shared first base right): records from a little
  // either side may land in [start, end), and from anywhere in a tandem repeat reaching past
  // end (of a period up to the longest indel): the query runs to that repeat's end.
  constexpr int64_t kBefore = 2 * kMaxIndelLength, kAfter = 1000;
  int64_t repeat_end = end;
  for (int64_t period = 1; period <= kMaxIndelLength && period <= end; ++period) {
    int64_t j = end;
    while (j < std::min(contig_length, codes.size) && codes.data[j] == codes.data[j - period])
      ++j;
    repeat_end = std::max(repeat_end, j);
  }
  const int64_t from = std::max<int64_t>(0, start - kBefore), to = repeat_end + kAfter;
  std::unique_ptr<bcf1_t, void (*)(bcf1_t*)> rec(bcf_init(), bcf_destroy);
  std::unique_ptr<hts_itr_t, void (*)(hts_itr_t*)> itr(nullptr, hts_itr_destroy);
  if (idx.bcf_idx) {
    const int rid = bcf_hdr_name2id(hdr, contig.c_str());
    if (rid >= 0) itr.reset(bcf_itr_queryi(idx.bcf_idx.get(), rid, from, to));
  } else {
    const int tid = tbx_name2id(idx.tbx.get(), contig.c_str());
    if (tid >= 0) itr.reset(tbx_itr_queryi(idx.tbx.get(), tid, from, to));
  }
  std::vector<SiteRecord> records;
  if (itr) {
    // htslib's growing buffers, freed however the loop ends
    struct Buffers {
      kstring_t line = {0, 0, nullptr};
      float* af = nullptr;
      int n_af = 0;
      ~Buffers() {
        free(line.s);
        free(af);
      }
    } buf;
    auto unreadable = [&](const std::string& why) {
      return InputError(path + ": a record near " + shown(contig) + ":" +
                        std::to_string(from + 1) + "-" + std::to_string(to) + ": " + why);
    };
    for (;;) {
      // A record's alleles and, where it has INFO/AF, one frequency per ALT (NaN: '.'), from
      // htslib's BCF decoding or the text line read for them alone.
      SiteRecord r;
      r.number = 0;
      AfField af = AfField::kAbsent;
      std::optional<std::string> bad_af;  // an AF value that is no frequency's number
      if (idx.bcf_idx) {
        const int got = bcf_itr_next(file.fp.get(), itr.get(), rec.get());
        if (got == -1) break;
        const int broken = rec->errcode & ~(BCF_ERR_CTG_UNDEF | BCF_ERR_TAG_UNDEF);
        if (got < -1 || broken || bcf_unpack(rec.get(), BCF_UN_STR) < 0)
          throw unreadable("unreadable (htslib could not parse it)");
        r.start = rec->pos;
        r.ref = upper(rec->d.allele[0]);
        for (int i = 1; i < rec->n_allele; ++i) r.alts.push_back(upper(rec->d.allele[i]));
        if (!r.alts.empty()) {
          const int got_af = bcf_get_info_float(hdr, rec.get(), "AF", &buf.af, &buf.n_af);
          if (got_af < 0 && got_af != -3)  // (-3: absent from this record)
            throw InputError(path + ": " + site(0, contig, r.start) + "): no INFO/AF");
          if (got_af >= 0) af = AfField::kFound;
          for (int i = 0; i < got_af; ++i)
            r.afs.push_back(bcf_float_is_missing(buf.af[i])
                                ? std::numeric_limits<double>::quiet_NaN()
                                : static_cast<double>(buf.af[i]));
        }
      } else {
        const int got = tbx_itr_next(file.fp.get(), idx.tbx.get(), itr.get(), &buf.line);
        if (got == -1) break;
        if (got < -1) throw unreadable("unreadable (htslib could not read it)");
        if (!parse_resource_line(buf.line.s, buf.line.l, r, af, bad_af))
          throw unreadable("not a VCF record (" + shown(std::string(buf.line.s), 60) + ")");
      }
      if (r.alts.empty()) {  // (nothing to give, but its REF is checked against the build)
        records.push_back(std::move(r));
        continue;
      }
      if (af == AfField::kAbsent) continue;  // (its alleles are left out)
      if (bad_af) {
        throw InputError(path + ": " + site(0, contig, r.start) + "): INFO/AF " +
                         shown(*bad_af, 40) + " is not a frequency in [0, 1]");
      }
      if (r.afs.size() != r.alts.size()) {
        throw InputError(path + ": " + site(0, contig, r.start) + "): INFO/AF has " +
                         std::to_string(r.afs.size()) + " values for " +
                         std::to_string(r.alts.size()) + " ALTs");
      }
      // (a missing value, e.g. a '*' ALT's: the allele is left out, as if not in the file)
      for (double v : r.afs) {
        if (!std::isnan(v) && !(v >= 0 && v <= 1)) {
          throw InputError(path + ": " + site(0, contig, r.start) + "): INFO/AF " +
                           shown(std::to_string(v)) + " is not a frequency in [0, 1]");
        }
      }
      records.push_back(std::move(r));
    }
  }
  GivenAlleleFile unused;
  Skips skips{unused};
  std::vector<GivenAllele> alleles =
      check_contig(path, contig, contig_length, codes, records, skips);
  std::vector<GivenAllele> out;
  for (GivenAllele& a : alleles)
    if (a.pos >= start && a.pos < end && !std::isnan(a.af)) out.push_back(std::move(a));
  return out;
}

}  // namespace gms
