// Per-thread cache of open alignment files (see source_cache.hpp).
#include "gmsaccel/source_cache.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>

namespace gms {

namespace {

struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  int64_t mtime_ns = -1;  // -1: no such file
  bool operator==(const FileId& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime_ns == o.mtime_ns;
  }
};

FileId file_id(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return FileId{};
  return FileId{st.st_dev, st.st_ino, st.st_size,
                static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

// The identity of an alignment file and of the indexes htslib may load for it: replacing
// either makes it another file.
struct Stamp {
  FileId file;
  std::array<FileId, 4> indexes;
  bool operator==(const Stamp& o) const { return file == o.file && indexes == o.indexes; }
};

// The file's identity now; a file that cannot be stat'ed never matches (it is reopened, and
// opening reports why it cannot be read).
bool stamp_of(const std::string& path, Stamp& out) {
  out.file = file_id(path);
  if (out.file.mtime_ns < 0) return false;
  const size_t dot = path.rfind('.');
  const std::string stem = dot == std::string::npos ? path : path.substr(0, dot);
  const std::string candidates[4] = {path + ".bai", path + ".csi", path + ".crai", stem + ".bai"};
  for (size_t i = 0; i < 4; ++i) out.indexes[i] = file_id(candidates[i]);
  return true;
}

}  // namespace

struct SourceCache::Entry {
  std::string path, reference;
  Stamp stamp;
  std::unique_ptr<AlignmentSource> source;
  uint64_t last_used = 0;
};

SourceCache& SourceCache::this_thread() {
  thread_local SourceCache cache;
  return cache;
}

void SourceCache::clear() {
  in_use_.clear();
  entries_.clear();
}

std::vector<AlignmentSource*> SourceCache::acquire(const std::vector<std::string>& paths,
                                                    const std::string& reference) {
  // A forked child shares its parent's open files, and their read positions: its own, then.
  if (pid_ != ::getpid()) {
    clear();
    pid_ = ::getpid();
  }
  in_use_.clear();
  std::vector<AlignmentSource*> out;
  for (const std::string& path : paths) {
    Stamp now;
    const bool known = stamp_of(path, now);
    Entry* hit = nullptr;
    for (auto& e : entries_) {
      const bool taken = std::find(in_use_.begin(), in_use_.end(), e.get()) != in_use_.end();
      if (!taken && e->path == path && e->reference == reference) {
        if (known && e->stamp == now) {
          hit = e.get();
        } else {
          e->path.clear();  // a changed file: the stale entry goes at release()
        }
        break;
      }
    }
    if (!hit) {
      auto e = std::make_unique<Entry>();
      e->source = std::make_unique<AlignmentSource>(path, reference, 1);
      e->path = path;
      e->reference = reference;
      e->stamp = now;
      if (!known) e->path.clear();  // not to be found again
      entries_.push_back(std::move(e));
      hit = entries_.back().get();
    }
    hit->last_used = ++clock_;
    in_use_.push_back(hit);
    out.push_back(hit->source.get());
  }
  return out;
}

void SourceCache::release(bool ok) {
  if (!ok) {
    for (Entry* e : in_use_) e->path.clear();
  }
  in_use_.clear();
  // Entries not to be found again go (a changed file, a failed call), then the least recently
  // used beyond kKeep.
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [](const auto& e) { return e->path.empty(); }),
                 entries_.end());
  if (entries_.size() > kKeep) {
    std::sort(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
      return a->last_used > b->last_used;
    });
    entries_.resize(kKeep);
  }
}

}  // namespace gms
