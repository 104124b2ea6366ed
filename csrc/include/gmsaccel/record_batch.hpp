// The BAM records of one batch, serialised back to back in one buffer that is reused from batch to
// batch: tens of thousands of records per batch then cost no allocation each, and the memory they
// need is held once per batch in flight instead of being freed and re-allocated in small pieces.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include <htslib/sam.h>

namespace gms {

// Frees a bam1_t owned by a unique_ptr.
struct BamFree {
  void operator()(bam1_t* b) const { bam_destroy1(b); }
};

class RecordBatch {
 public:
  // Each record is bam1_core_t, then uint32 l_data, then its l_data bytes of data: the layout
  // the sorted BAM writer keeps in memory, so it takes a record with one copy.
  static constexpr size_t kHeaderBytes = sizeof(bam1_core_t) + sizeof(uint32_t);

  RecordBatch() : scratch_(bam_init1()) {
    if (!scratch_) throw std::bad_alloc();
  }

  // Forgets the records but keeps the buffers.
  void clear() {
    bytes_.clear();
    starts_.clear();
  }
  size_t size() const { return starts_.size(); }

  // Where to build the next record (with htslib's bam_set1) before append(): reused, so it
  // allocates only when a record outgrows every earlier one.
  bam1_t* scratch() { return scratch_.get(); }

  void append(const bam1_t* b) {
    const size_t at = bytes_.size();
    bytes_.resize(at + serialised_size(b));
    serialise(b, bytes_.data() + at);
    starts_.push_back(at);
  }

  // This layout for any record: its size, and the record written at p (serialised_size bytes).
  static size_t serialised_size(const bam1_t* b) {
    return kHeaderBytes + static_cast<uint32_t>(b->l_data);
  }
  static void serialise(const bam1_t* b, uint8_t* p) {
    const uint32_t l_data = static_cast<uint32_t>(b->l_data);
    std::memcpy(p, &b->core, sizeof(bam1_core_t));
    std::memcpy(p + sizeof(bam1_core_t), &l_data, sizeof l_data);
    std::memcpy(p + kHeaderBytes, b->data, l_data);
  }

  // Room for this many bytes of records and this many records.
  void reserve(size_t bytes, size_t records) {
    bytes_.reserve(bytes);
    starts_.reserve(records);
  }
  // Bytes of records held.
  size_t record_bytes() const { return bytes_.size(); }
  // Bytes the batch's buffers hold (capacity, not size).
  size_t memory() const { return bytes_.capacity() + starts_.capacity() * sizeof(size_t); }
  // Moves the records out (into bytes and starts, whose old contents come in, cleared): the
  // sorted writer keeps a batch's records without copying them, and hands spare buffers back.
  void swap_buffers(std::vector<uint8_t>& bytes, std::vector<size_t>& starts) {
    bytes_.swap(bytes);
    starts_.swap(starts);
    clear();
  }

  // Record i's serialised bytes (not aligned for bam1_core_t: copy the core out).
  const uint8_t* bytes(size_t i) const { return bytes_.data() + starts_[i]; }
  bam1_core_t core(size_t i) const {
    bam1_core_t c;
    std::memcpy(&c, bytes(i), sizeof c);
    return c;
  }
  static uint32_t data_length(const uint8_t* record) {
    uint32_t l_data;
    std::memcpy(&l_data, record + sizeof(bam1_core_t), sizeof l_data);
    return l_data;
  }

  // Record i as a bam1_t, into b.
  void load(size_t i, bam1_t* b) const { load_record(bytes(i), b); }
  // A record in this layout, wherever it is held, into b (its data buffer grown when too small).
  static void load_record(const uint8_t* record, bam1_t* b) {
    const uint32_t l_data = data_length(record);
    reserve_data(b, l_data);
    std::memcpy(&b->core, record, sizeof(bam1_core_t));
    std::memcpy(b->data, record + kHeaderBytes, l_data);
    b->l_data = static_cast<int>(l_data);
  }
  // Room for n bytes of data in b.
  static void reserve_data(bam1_t* b, uint32_t n) {
    if (b->m_data >= n) return;
    void* grown = std::realloc(b->data, n);
    if (!grown) throw std::bad_alloc();
    b->data = static_cast<uint8_t*>(grown);
    b->m_data = n;
  }

 private:
  std::vector<uint8_t> bytes_;
  std::vector<size_t> starts_;
  std::unique_ptr<bam1_t, BamFree> scratch_;
};

}  // namespace gms
