// Open alignment files kept per calling thread between shards (the file and its index checked
// at each use; reopened in a forked child). Opening a BAM means loading its
// index: 20 ms for a 5 MB .bai, so a whole human genome (some 6,000 shards, one per small
// contig or per Mbp) spent minutes of thread time reopening the same files.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gmsaccel/pileup.hpp"

namespace gms {

class SourceCache {
 public:
  // Files kept open per thread between calls (each holds two descriptors: htslib's and the
  // region reader's); a joint call over more opens the rest each time.
  static constexpr size_t kKeep = 16;

  // The calling thread's cache.
  static SourceCache& this_thread();

  // Sources for these files (opened now, or kept from an earlier call when the file is the
  // same: same inode, size and modification time). They stay valid until release().
  std::vector<AlignmentSource*> acquire(const std::vector<std::string>& paths,
                                        const std::string& reference);
  // Ends the use of the last acquire()'s sources: ok false (the call failed part way) drops
  // them, as their state is unknown; then the least recently used beyond kKeep are closed.
  void release(bool ok);
  // Closes every file kept (the run is over: nothing to hold open, deleted files included).
  void clear();

 private:
  struct Entry;
  std::vector<std::unique_ptr<Entry>> entries_;
  std::vector<Entry*> in_use_;
  uint64_t clock_ = 0;
  int pid_ = 0;  // the process the files were opened in
};

// Acquires on construction, releases on destruction (not ok unless done() was called).
class CachedSources {
 public:
  CachedSources(const std::vector<std::string>& paths, const std::string& reference)
      : cache_(SourceCache::this_thread()), sources_(cache_.acquire(paths, reference)) {}
  ~CachedSources() { cache_.release(ok_); }
  CachedSources(const CachedSources&) = delete;
  CachedSources& operator=(const CachedSources&) = delete;
  std::vector<AlignmentSource*>& get() { return sources_; }
  void done() { ok_ = true; }

 private:
  SourceCache& cache_;
  std::vector<AlignmentSource*> sources_;
  bool ok_ = false;
};

}  // namespace gms
