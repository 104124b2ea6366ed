// SAM/BAM records of one read: FLAG, placement, CIGAR, mate fields and the NM/MD/AS/XS/MC/MQ/SA/RG
// tags (then any copied from the FASTQ comment), built straight into htslib's bam1_t.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "align_internal.hpp"

namespace gms {

std::string cigar_string(const std::vector<uint32_t>& cigar) {
  std::string s;
  for (uint32_t c : cigar) {
    s += std::to_string(c >> 4);
    s += BAM_CIGAR_STR[c & 0xf];
  }
  return s;
}

namespace {

char complement(char c) {
  switch (c) {
    case 'A': return 'T'; case 'C': return 'G'; case 'G': return 'C'; case 'T': return 'A';
    case 'a': return 't'; case 'c': return 'g'; case 'g': return 'c'; case 't': return 'a';
    default: return 'N';
  }
}

// SEQ as written: A, C, G, T (U read as T, as the aligner does), every other byte as N; and the
// complement of what that leaves.
struct SeqTables {
  char normal[256];
  char complement[256];
  SeqTables() {
    for (int c = 0; c < 256; ++c) {
      normal[c] = "ACGTN"[base_code(static_cast<char>(c))];
      complement[c] = gms::complement(static_cast<char>(c));
    }
  }
};

const SeqTables& seq_tables() {
  static const SeqTables tables;
  return tables;
}

std::string sa_entry(const Index& index, const Hit& h) {
  return index.contig(h.contig).name + "," + std::to_string(h.pos + 1) + "," +
         (h.rev ? "-" : "+") + "," + cigar_string(h.cigar) + "," + std::to_string(h.mapq) +
         "," + std::to_string(h.nm) + ";";
}

struct Placed {
  int32_t tid = -1;
  int64_t pos = -1;
};

// A record's optional fields, serialised as BAM stores them: each tag, its type and its value.
// Integers take the smallest type that holds them, as htslib's bam_aux_update_int chooses.
class AuxFields {
 public:
  // Starts empty, reusing bytes' capacity (one buffer per thread, not one per record).
  explicit AuxFields(std::string& bytes) : bytes_(bytes) { bytes_.clear(); }

  void add_int(const char* tag, int64_t v) {
    char type;
    int size;
    if (v < 0) {
      type = v >= INT8_MIN ? 'c' : v >= INT16_MIN ? 's' : 'i';
    } else {
      type = v <= UINT8_MAX ? 'C' : v <= UINT16_MAX ? 'S' : 'I';
    }
    size = (type == 'c' || type == 'C') ? 1 : (type == 's' || type == 'S') ? 2 : 4;
    bytes_.append(tag, 2);
    bytes_ += type;
    const uint32_t u = static_cast<uint32_t>(v);  // two's complement, little-endian
    for (int i = 0; i < size; ++i) bytes_ += static_cast<char>((u >> (8 * i)) & 0xff);
  }
  void add_str(const char* tag, const std::string& v) {
    bytes_.append(tag, 2);
    bytes_ += 'Z';
    bytes_.append(v.c_str(), v.size() + 1);
  }
  void add_encoded(const std::string& tags) { bytes_ += tags; }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string& bytes_;
};

// The tags go into `bytes` (overwritten).
AuxFields record_tags(const RecordContext& ctx, const Hit* h, const Hit* mate,
                      int64_t mate_score, const std::string& sa, const std::string& extra,
                      std::string& bytes) {
  AuxFields aux(bytes);
  if (h) {
    aux.add_int("NM", h->nm);
    aux.add_str("MD", h->md);
    aux.add_int("AS", h->score);
    if (h->sub_score > 0) aux.add_int("XS", h->sub_score);
  }
  if (mate) {
    aux.add_str("MC", cigar_string(mate->cigar));
    aux.add_int("MQ", mate->mapq);
    if (mate_score >= 0) aux.add_int("ms", mate_score);
  }
  if (!sa.empty()) aux.add_str("SA", sa);
  if (!ctx.read_group->empty()) aux.add_str("RG", *ctx.read_group);
  aux.add_encoded(extra);
  return aux;
}

// Builds the record in out's scratch (htslib encodes it) and appends it to out.
void add_record(RecordBatch& out, const std::string& name, uint16_t flag, const Hit* h,
                Placed self, const std::string& seq, const std::string& qual, Placed mate,
                int64_t tlen, int32_t mapq, const AuxFields& aux) {
  bam1_t* b = out.scratch();
  const size_t n_cigar = h ? h->cigar.size() : 0;
  const std::string& tags = aux.bytes();
  // bam_set1 reserves room for the tags, which are then copied in whole.
  const int rc = bam_set1(b, name.size(), name.c_str(), flag, self.tid, self.pos,
                          static_cast<uint8_t>(mapq), n_cigar, h ? h->cigar.data() : nullptr,
                          mate.tid, mate.pos, tlen, seq.size(), seq.c_str(),
                          qual.empty() ? nullptr : qual.data(), tags.size());
  if (rc < 0) throw std::runtime_error("cannot encode a BAM record for read " + name);
  std::memcpy(b->data + b->l_data, tags.data(), tags.size());
  b->l_data += static_cast<int>(tags.size());
  out.append(b);
}

}  // namespace

void append_read_records(const RecordContext& ctx, const std::string& name, const char* seq,
                         const char* qual, int32_t len, const std::vector<Hit>& hits,
                         int32_t chosen, const Hit* supplementary, const Hit* mate,
                         bool paired, uint16_t pair_flags, int64_t tlen,
                         int64_t mate_score, const std::string& extra_tags, RecordBatch& out) {
  const Hit* h = chosen >= 0 ? &hits[chosen] : nullptr;
  // Both orientations in one pass through plain pointers (per-character string access reloads
  // the string's pointer after every store).
  const SeqTables& tab = seq_tables();
  const size_t n = static_cast<size_t>(len);
  // Scratch reused by this thread's reads (four heap blocks per read otherwise).
  thread_local std::string fwd_seq, fwd_qual, rev_seq, rev_qual, tag_bytes;
  for (std::string* str : {&fwd_seq, &fwd_qual, &rev_seq, &rev_qual}) str->resize(n);
  char* fs = fwd_seq.data();
  char* fq = fwd_qual.data();
  char* rs = rev_seq.data();
  char* rq = rev_qual.data();
  for (size_t i = 0; i < n; ++i) {
    const char c = tab.normal[static_cast<uint8_t>(seq[i])];
    const char q = static_cast<char>(std::max(0, qual[i] - 33));
    fs[i] = c;
    fq[i] = q;
    rs[n - 1 - i] = tab.complement[static_cast<uint8_t>(c)];
    rq[n - 1 - i] = q;
  }
  if (n > 0 && qual[0] == kNoQualities) {  // a FASTA read: SAM's '*'
    fwd_qual.clear();
    rev_qual.clear();
  }
  auto seq_for = [&](const Hit* x) -> const std::string& { return x && x->rev ? rev_seq : fwd_seq; };
  auto qual_for = [&](const Hit* x) -> const std::string& { return x && x->rev ? rev_qual : fwd_qual; };

  uint16_t flag = pair_flags;
  Placed self, mate_pl;
  if (h) {
    self = {h->contig, h->pos};
    if (h->rev) flag |= BAM_FREVERSE;
  } else {
    flag |= BAM_FUNMAP;
    flag &= static_cast<uint16_t>(~BAM_FPROPER_PAIR);
  }
  if (paired) {
    if (mate) {
      mate_pl = {mate->contig, mate->pos};
      if (mate->rev) flag |= BAM_FMREVERSE;
      if (!h) self = mate_pl;  // an unmapped read is placed beside its mapped mate
    } else {
      flag |= BAM_FMUNMAP;
      flag &= static_cast<uint16_t>(~BAM_FPROPER_PAIR);
      mate_pl = self;
    }
  }
  if (!h || !mate) tlen = 0;
  const int32_t mapq = h ? h->mapq : 0;
  std::string sa_primary, sa_supp;
  if (h && supplementary) {
    sa_primary = sa_entry(*ctx.index, *supplementary);
    sa_supp = sa_entry(*ctx.index, *h);
  }
  add_record(out, name, flag, h, self, seq_for(h), qual_for(h), mate_pl, tlen, mapq,
             record_tags(ctx, h, paired ? mate : nullptr, mate_score, sa_primary, extra_tags,
                         tag_bytes));
  if (h && supplementary) {
    uint16_t sflag = static_cast<uint16_t>((flag | BAM_FSUPPLEMENTARY) & ~BAM_FREVERSE);
    if (supplementary->rev) sflag |= BAM_FREVERSE;
    add_record(out, name, sflag, supplementary, {supplementary->contig, supplementary->pos},
               seq_for(supplementary), qual_for(supplementary), mate_pl, tlen,
               supplementary->mapq,
               record_tags(ctx, supplementary, paired ? mate : nullptr, mate_score, sa_supp,
                           extra_tags, tag_bytes));
  }
}

}  // namespace gms
