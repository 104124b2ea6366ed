// Append-only memory in large chunks mapped from the system: many small pieces (the sorted BAM
// writer's records, the decoded reads of a calling region) for a few mappings, no per-piece
// malloc, and no freed heap space left between other blocks when it is released.
#pragma once
#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace gms {

// n elements owned elsewhere (by a ChunkArena).
template <class T>
struct ArrayRef {
  T* ptr = nullptr;
  size_t n = 0;

  T* data() const { return ptr; }
  size_t size() const { return n; }
  bool empty() const { return n == 0; }
  T& operator[](size_t i) const { return ptr[i]; }
  T* begin() const { return ptr; }
  T* end() const { return ptr + n; }
};

class ChunkArena {
 public:
  explicit ChunkArena(size_t chunk_bytes) : chunk_(chunk_bytes) {}
  ChunkArena(const ChunkArena&) = delete;
  ChunkArena& operator=(const ChunkArena&) = delete;
  ~ChunkArena() { release(); }

  // n bytes, aligned to align (a power of two up to the page size). What is handed out stays
  // put until rewind() or release().
  uint8_t* alloc(size_t n, size_t align = 1) {
    size_t at = (used_ + align - 1) & ~(align - 1);
    if (chunks_.empty() || at + n > chunks_[current_].size) {
      // The state changes only once the chunk is there: a failed mapping (bad_alloc) leaves the
      // arena as it was.
      const size_t next = chunks_.empty() ? 0 : current_ + 1;
      if (next == chunks_.size()) {
        const Chunk fresh = map_chunk(std::max(chunk_, n));
        try {
          chunks_.push_back(fresh);
        } catch (...) {
          unmap_chunk(fresh);
          throw;
        }
      } else if (chunks_[next].size < n) {  // a retained chunk too small for this piece
        const Chunk bigger = map_chunk(n);
        unmap_chunk(chunks_[next]);
        chunks_[next] = bigger;
      }
      current_ = next;
      at = used_ = 0;
    }
    uint8_t* p = chunks_[current_].base + at;
    total_ += at - used_ + n;
    used_ = at + n;
    return p;
  }
  // Room for n values of T, uninitialised.
  template <class T>
  ArrayRef<T> alloc_array(size_t n) {
    return ArrayRef<T>{reinterpret_cast<T*>(alloc(n * sizeof(T), alignof(T))), n};
  }
  // Bytes handed out (alignment padding included) since the last rewind.
  size_t used() const { return total_; }
  // Forgets the contents but keeps the chunks for reuse.
  void rewind() { current_ = used_ = total_ = 0; }
  // Where the next piece would go: rewind_to(mark()) forgets only what came after.
  struct Mark {
    size_t current, used, total;
  };
  Mark mark() const { return Mark{current_, used_, total_}; }
  void rewind_to(const Mark& m) {
    current_ = m.current;
    used_ = m.used;
    total_ = m.total;
  }
  // Returns every chunk to the system.
  void release() {
    for (Chunk& c : chunks_) unmap_chunk(c);
    chunks_.clear();
    rewind();
  }

 private:
  struct Chunk {
    uint8_t* base;
    size_t size;
  };
  static Chunk map_chunk(size_t n) {
    void* p = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    return Chunk{static_cast<uint8_t*>(p), n};
  }
  static void unmap_chunk(const Chunk& c) { ::munmap(c.base, c.size); }

  size_t chunk_;
  std::vector<Chunk> chunks_;
  size_t current_ = 0, used_ = 0, total_ = 0;
};

}  // namespace gms
