// Region reads of an indexed, BGZF-compressed BAM with ISA-L doing the inflating, for builds that
// found ISA-L. htslib's BGZF layer inflates with zlib, about 2.5 times slower, and inflating was
// about half of the caller's load stage. htslib still parses the header and the index and plans
// each query (the chunks of the file that can hold the region's records); this reader fetches
// those chunks itself and hands back the same records sam_itr_next would.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include <htslib/hts.h>
#include <htslib/sam.h>

namespace gms {

class BamRegionReader {
 public:
  // Whether this build can read BAM this way (it has ISA-L).
  static bool available();

  // Opens path for reading; its header has n_targets reference sequences. Throws InputError
  // naming the file when it cannot. Without available(), every block read is an error.
  BamRegionReader(const std::string& path, int n_targets);
  ~BamRegionReader();
  BamRegionReader(const BamRegionReader&) = delete;
  BamRegionReader& operator=(const BamRegionReader&) = delete;

  // Starts reading the records itr (a sam_itr_queryi of a contig range on this file's index)
  // selects. itr must outlive the reads.
  void start(const hts_itr_t* itr);

  enum class Next { record, end, unsupported, corrupt };
  // The next record overlapping the query, into b. unsupported: a record this reader does not
  // decode (a CIGAR too long for BAM's field, kept in a CG tag) -- read the query through htslib
  // instead; corrupt: problem() says what is wrong.
  Next next(bam1_t* b);
  const std::string& problem() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gms
