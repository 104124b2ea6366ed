// Streaming alignment of FASTQ files: workers take batches in turn from the readers and hand their
// records back in batch order to one sorted BAM writer.
#include "gmsaccel/pipeline.hpp"

#include <chrono>
#include <condition_variable>
#include <exception>
#include <map>
#include <stdexcept>
#include <mutex>
#include <thread>
#include <vector>

#include "gmsaccel/errors.hpp"

namespace gms {

namespace {

// Read name without a trailing /1 or /2.
std::string base_name(const std::string& n) {
  if (n.size() > 2 && n[n.size() - 2] == '/' && (n.back() == '1' || n.back() == '2'))
    return n.substr(0, n.size() - 2);
  return n;
}

struct Batch {
  uint64_t id = 0;
  ReadBatch r1, r2;
};

class PairedSource {
 public:
  PairedSource(const std::string& p1, const std::string& p2, size_t batch)
      : f1_(p1, 1), batch_(batch) {
    if (!p2.empty()) f2_ = std::make_unique<FastqReader>(p2, 1);
  }
  bool paired() const { return f2_ != nullptr; }

  // Fills b with up to n reads (pairs); false at the end of input.
  bool next(Batch& b, size_t n) {
    const size_t got = f1_.read(b.r1, n);
    if (f2_) {
      const size_t got2 = f2_->read(b.r2, n);
      if (got2 != got) {
        const bool r1_short = got < got2;
        const FastqReader& s = r1_short ? f1_ : *f2_;
        throw InputError(s.path() + ": ends after " + std::to_string(s.records_read()) +
                         " records but its mate file " + (r1_short ? f2_->path() : f1_.path()) +
                         " has more: R1 and R2 must hold the same reads in the same order");
      }
      for (size_t i = 0; i < got; ++i) {
        b.r1.names[i] = base_name(b.r1.names[i]);
        b.r2.names[i] = base_name(b.r2.names[i]);
        if (b.r1.names[i] != b.r2.names[i])
          throw InputError(f2_->path() + ": record " + std::to_string(b.r2.first_record + i) +
                           " (" + b.r2.names[i] + ") does not match record " +
                           std::to_string(b.r1.first_record + i) + " (" + b.r1.names[i] +
                           ") of " + f1_.path() + ": R1 and R2 must be in the same order");
      }
    } else {
      for (auto& nm : b.r1.names) nm = base_name(nm);
    }
    b.id = next_id_++;
    return got > 0;
  }
  size_t batch_size() const { return batch_; }

 private:
  FastqReader f1_;
  std::unique_ptr<FastqReader> f2_;
  size_t batch_;
  uint64_t next_id_ = 0;
};

}  // namespace

PipelineResult align_fastq_files(const Aligner& aligner, const std::string& r1_path,
                                 const std::string& r2_path, const std::string& out_path,
                                 const std::string& header_text, const PipelineOptions& options,
                                 const std::function<void(uint64_t)>& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  if (options.batch_reads == 0) throw std::invalid_argument("batch size must be at least 1");
  PipelineResult result;
  PairedSource source(r1_path, r2_path, options.batch_reads);
  BamWriter writer(out_path, header_text, options.writer);

  // The insert-size model comes from a fixed number of leading pairs, whatever the batch size.
  Batch first;
  StageClock read_clock;
  bool have_first = source.next(first, static_cast<size_t>(aligner.options().insert_model_pairs));
  result.stats.stage.read += read_clock.lap();
  // Those pairs' single-end hits serve the model and then their own alignment.
  Aligner::PairHits first_hits;
  bool first_mapped = false;
  if (have_first && source.paired()) {
    first_hits = aligner.map_pairs(first.r1, first.r2, result.stats);
    result.model = Aligner::estimate_insert_model(first_hits);
    first_mapped = true;
  }

  std::mutex in_mu, out_mu;
  std::map<uint64_t, std::vector<bam1_t*>> ready;
  uint64_t next_to_write = 0;
  std::exception_ptr failure;
  bool first_taken = false;

  auto worker = [&]() {
    std::vector<bam1_t*> records;
    AlignStats local;
    for (;;) {
      Batch b;
      Aligner::PairHits* pre = nullptr;  // hits already computed for this batch
      {
        std::lock_guard<std::mutex> lk(in_mu);
        if (failure) return;
        try {
          if (!first_taken) {
            first_taken = true;
            if (!have_first) return;
            b = std::move(first);
            if (first_mapped) pre = &first_hits;
          } else {
            StageClock clock;
            const bool more = source.next(b, options.batch_reads);
            local.stage.read += clock.lap();
            if (!more) return;
          }
        } catch (...) {
          failure = std::current_exception();
          return;
        }
      }
      records.clear();
      try {
        aligner.align_batch(b.r1, source.paired() ? &b.r2 : nullptr, result.model,
                            options.read_group, records, local, pre);
      } catch (...) {
        for (bam1_t* r : records) bam_destroy1(r);
        std::lock_guard<std::mutex> lk(in_mu);
        if (!failure) failure = std::current_exception();
        return;
      }
      std::lock_guard<std::mutex> lk(out_mu);
      result.stats.add(local);
      local = AlignStats{};
      ready[b.id] = std::move(records);
      records = {};
      while (!ready.empty() && ready.begin()->first == next_to_write) {
        auto& recs = ready.begin()->second;
        try {
          StageClock clock;
          for (bam1_t* r : recs) writer.add(r);
          result.stats.stage.write += clock.lap();
        } catch (...) {
          std::lock_guard<std::mutex> lk2(in_mu);
          if (!failure) failure = std::current_exception();
        }
        for (bam1_t* r : recs) bam_destroy1(r);
        ready.erase(ready.begin());
        ++next_to_write;
      }
      if (progress) {
        try {
          progress(result.stats.reads);
        } catch (...) {  // e.g. KeyboardInterrupt raised in the Python callback
          std::lock_guard<std::mutex> lk2(in_mu);
          if (!failure) failure = std::current_exception();
          return;
        }
      }
    }
  };
  const int n = std::max(1, options.threads);
  std::vector<std::thread> pool;
  for (int i = 1; i < n; ++i) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  for (auto& kv : ready)
    for (bam1_t* r : kv.second) bam_destroy1(r);
  if (failure) {
    writer.abort();
    std::rethrow_exception(failure);
  }
  StageClock close_clock;
  writer.close();
  result.stats.stage.write += close_clock.lap();
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace gms
