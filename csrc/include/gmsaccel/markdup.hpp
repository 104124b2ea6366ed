// Duplicate marking on the coordinate-sorted record stream, as the sorted BAM is written.
//
// Templates are duplicates when their ends start at the same unclipped 5' positions on the same
// strands: for pairs both ends, for fragments (single reads, or pairs whose mate is unmapped)
// the one end. In each set of duplicates the template with the highest sum of base qualities
// of at least 15 (both ends for a pair, the mate's sum from its ms tag) is kept and the others
// get FLAG 0x400; on equal scores the pair with the smallest read name, or the fragment first in
// the stream, is kept. A fragment that shares its 5' end with an end of a pair is a duplicate of
// that pair. Secondary, supplementary, QC-failed and unmapped records pass unchanged. This is the
// rule of samtools markdup -m s (and, but for ties, of Picard MarkDuplicates).
//
// Records are held back only while a later record could still join their sets: a record's 5'
// end lies at most `reach` bases before its position (reach is measured over all records as
// they are added to the sorted writer), so once the stream is past 5' + reach its sets are
// complete. The window is therefore a read length or so of coverage, whatever the input size.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>

#include <htslib/sam.h>

namespace gms {

// Phred qualities (offset subtracted) that count towards a duplicate's score.
constexpr int kDuplicateMinQuality = 15;

// Sum of the qualities of at least kDuplicateMinQuality; qual[i] - offset is the Phred value.
// A read without qualities (first byte 0xff, BAM's marker and the FASTQ reader's) scores 0.
inline int64_t duplicate_score(const uint8_t* qual, size_t n, int offset) {
  if (n > 0 && qual[0] == 0xff) return 0;
  int64_t s = 0;
  for (size_t i = 0; i < n; ++i) {
    const int q = qual[i] - offset;
    if (q >= kDuplicateMinQuality) s += q;
  }
  return s;
}

struct DuplicateStats {
  uint64_t unpaired_examined = 0;  // fragments considered
  uint64_t pairs_examined = 0;     // templates with both ends mapped (counted once)
  uint64_t unpaired_duplicates = 0;
  uint64_t pair_duplicates = 0;    // templates (each marks two records)
  uint64_t peak_sets_held = 0;     // most duplicate sets open at once: the marker's memory
  // Picard's PERCENT_DUPLICATION, as a fraction.
  double fraction() const {
    const double reads = static_cast<double>(unpaired_examined + 2 * pairs_examined);
    return reads > 0 ? (unpaired_duplicates + 2.0 * pair_duplicates) / reads : 0.0;
  }
};

class DuplicateMarker {
 public:
  using Sink = std::function<void(const bam1_t*)>;
  // Records are passed to sink in the order pushed, each with its duplicate flag set or cleared.
  DuplicateMarker(int64_t reach, Sink sink);
  ~DuplicateMarker();
  DuplicateMarker(const DuplicateMarker&) = delete;
  DuplicateMarker& operator=(const DuplicateMarker&) = delete;

  // Takes the next record in coordinate order: its contents move into the marker, and b is
  // left holding other buffers (allocated, contents unspecified) for its owner to reuse.
  // Throws InputError for a record whose mate is mapped but which has no MC tag to place the
  // mate's 5' end, or (for the pair's leading end) no integer ms tag with the mate's score.
  void push(bam1_t* b);
  // Passes on every record still held.
  void finish();
  const DuplicateStats& stats() const;

  // How far a record's position lies past its unclipped 5' end (0 for records not considered).
  // core and the record's data (qname, then CIGAR) as the sorted writer holds them.
  static int64_t lag(const bam1_core_t& core, const uint8_t* data);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gms
