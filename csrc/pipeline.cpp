// Streaming alignment of FASTQ files: reader threads (one per file) decompress and parse ahead,
// workers take batches in turn and hand their records back in batch order to one sorted BAM
// writer.
#include "gmsaccel/pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "gmsaccel/errors.hpp"
#include "gmsaccel/gzip_inflate.hpp"

namespace gms {

namespace {

struct Batch {
  uint64_t id = 0;
  ReadBatch r1, r2;
};

// Helper threads for each input file. An inflating thread pays where cores outnumber what the
// readers and workers need. BGZF inputs can inflate block-parallel on htslib's threads (zlib);
// ISA-L on one thread is about 2.5x zlib, so htslib's threads take over only from 8 threads on.
struct ReadThreads {
  bool inflate_ahead = false;
  int bgzf_threads = 0;
};
ReadThreads read_threads(int threads) {
  ReadThreads t;
  t.inflate_ahead = threads >= kInflateAheadThreads;
  t.bgzf_threads =
      fast_inflate_available() ? (threads >= 8 ? threads / 4 : 0) : std::max(1, threads / 4);
  return t;
}

// Reads FASTQ files, one after the other (a sample's lanes), ahead of the aligner on a thread of
// its own: batches of `first` reads, then of `rest`, into a queue of at most kAhead. A batch
// never spans two files, so that it names its file and records in messages; a file's last batch
// may be short. Errors (a bad record, a truncated file) travel through the queue to the
// consumer. R1 and R2 each get one, so the two decompress side by side and neither holds up the
// workers, which only pop. With inflate_ahead a second thread per file inflates while this one
// parses (the file's serial floor becomes the slower of the two).
class FileReader {
 public:
  static constexpr size_t kAhead = 2;

  // The first `skip` records (across files) are read and passed over.
  FileReader(const std::vector<std::string>& paths, size_t first, size_t rest,
             const ReadThreads& t, uint64_t skip = 0)
      : paths_(paths),
        threads_(t),
        reader_(open(0)),
        first_(first),
        rest_(rest),
        skip_(skip),
        thread_([this] { run(); }) {}
  ~FileReader() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  // The next batch, in file order; the last one is empty (its first_record one past the file's
  // records). Rethrows the reader's error. While it waits, check_interrupt (where given) is
  // called every 100 ms: the wait for a batch after a long skip can be minutes.
  ReadBatch pop(const std::function<void()>& check_interrupt = nullptr) {
    std::unique_lock<std::mutex> lk(mu_);
    const auto ready = [this] { return !queue_.empty() || error_; };
    while (!cv_.wait_for(lk, std::chrono::milliseconds(100), ready)) {
      if (!check_interrupt) continue;
      lk.unlock();
      check_interrupt();
      lk.lock();
    }
    if (queue_.empty()) std::rethrow_exception(error_);
    if (queue_.front().size() == 0) return queue_.front();  // the end stays for every caller
    ReadBatch b = std::move(queue_.front());
    queue_.pop_front();
    cv_.notify_all();
    return b;
  }
  // Takes back a batch the consumer is done with, so that the next one fills its buffers
  // instead of allocating new ones.
  void recycle(ReadBatch&& b) {
    std::lock_guard<std::mutex> lk(mu_);
    spares_.push_back(std::move(b));
  }
  const std::string& path(size_t file) const { return paths_.at(file); }
  double read_seconds() const {  // after the reader is done: parsing plus inflating, not waits
    std::lock_guard<std::mutex> lk(mu_);
    return seconds_ + ahead_seconds_ - reader_->read_ahead_waited_seconds() +
           reader_->read_ahead_seconds();
  }

 private:
  std::unique_ptr<FastqReader> open(size_t i) const {
    return std::make_unique<FastqReader>(paths_.at(i), threads_.bgzf_threads,
                                         FastqReader::Inflater::Auto, threads_.inflate_ahead);
  }
  // Reads the next batch into b, going on to the next file at the end of one (empty b: the end
  // of the last).
  void read(ReadBatch& b, size_t n) {
    for (;;) {
      reader_->read(b, n);
      b.file = file_;
      if (b.size() > 0 || file_ + 1 >= paths_.size()) return;
      std::unique_ptr<FastqReader> next = open(file_ + 1);
      std::lock_guard<std::mutex> lk(mu_);
      ahead_seconds_ += reader_->read_ahead_seconds() - reader_->read_ahead_waited_seconds();
      reader_ = std::move(next);
      ++file_;
    }
  }

  // Reads and drops the first skip_ records; an input with fewer is an error. Returns early
  // when the reader is stopped.
  void skip_records() {
    ReadBatch b;
    for (uint64_t left = skip_; left > 0;) {
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (stop_) return;
      }
      read(b, static_cast<size_t>(std::min<uint64_t>(left, 1u << 16)));
      if (b.size() == 0) {
        throw InputError(paths_.back() + ": the input holds fewer than the " +
                         std::to_string(skip_) +
                         " records a checkpoint says were aligned: not the reads it was made of");
      }
      left -= b.size();
    }
  }

  // Runs f (reading), its seconds counted; an exception goes to the consumer (false).
  template <class F>
  bool timed(F&& f) {
    StageClock clock;
    try {
      f();
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      error_ = std::current_exception();
      cv_.notify_all();
      return false;
    }
    std::lock_guard<std::mutex> lk(mu_);
    seconds_ += clock.lap();
    return true;
  }

  void run() {
    size_t n = first_;
    if (skip_ > 0 && !timed([this] { skip_records(); })) return;
    for (;;) {
      ReadBatch b;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [this] { return stop_ || queue_.size() < kAhead; });
        if (stop_) return;
        if (!spares_.empty()) {
          b = std::move(spares_.back());
          spares_.pop_back();
        }
      }
      if (!timed([&] { read(b, n); })) return;
      std::lock_guard<std::mutex> lk(mu_);
      const bool end = b.size() == 0;
      queue_.push_back(std::move(b));
      cv_.notify_all();
      if (end) return;
      n = rest_;
    }
  }

  const std::vector<std::string> paths_;
  const ReadThreads threads_;
  std::unique_ptr<FastqReader> reader_;  // paths_[file_]'s (replaced under mu_)
  size_t file_ = 0;
  double ahead_seconds_ = 0;  // earlier files' read-ahead thread seconds, less waits
  const size_t first_, rest_;
  const uint64_t skip_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<ReadBatch> queue_;
  std::vector<ReadBatch> spares_;
  std::exception_ptr error_;
  bool stop_ = false;
  double seconds_ = 0;
  std::thread thread_;  // last: starts once the members above exist
};

// Batches of reads or pairs, in file order. Pairing checks (equal counts, equal names) happen
// here, as batches are taken.
class PairedSource {
 public:
  // interleaved: p1 holds the pairs (p2 empty), read two records a pair.
  // p1[i] and p2[i] (where p2 is not empty) are one lane's mates.
  // The first `skip` pairs (reads, unpaired) are passed over.
  PairedSource(const std::vector<std::string>& p1, const std::vector<std::string>& p2,
               size_t first, size_t rest, const ReadThreads& t, bool interleaved = false,
               uint64_t skip = 0)
      : f1_(p1, interleaved ? 2 * first : first, interleaved ? 2 * rest : rest, t,
            interleaved ? 2 * skip : skip),
        interleaved_(interleaved) {
    if (!p2.empty()) f2_ = std::make_unique<FileReader>(p2, first, rest, t, skip);
  }
  bool paired() const { return f2_ != nullptr || interleaved_; }

  // Messages about reads name them as in name1/name2 (where not empty), records_before records
  // on; from_interleaved: the two files were cut from one interleaved file, whose numbering
  // they keep.
  void name_reads(const std::string& name1, const std::string& name2, uint64_t records_before,
                  bool from_interleaved) {
    name1_ = name1;
    name2_ = name2;
    records_before_ = records_before;
    from_interleaved_ = from_interleaved;
  }

  // Fills b with the next batch; false at the end of input. check_interrupt: as FileReader::pop.
  bool next(Batch& b, const std::function<void()>& check_interrupt = nullptr) {
    if (interleaved_) {  // (split_interleaved checks the mates)
      ReadBatch both = f1_.pop(check_interrupt);
      rename(both, name1_, 0);
      split_interleaved(both, b.r1, b.r2, both.source);
      f1_.recycle(std::move(both));
    } else {
      b.r1 = f1_.pop(check_interrupt);
      rename(b.r1, name1_, 0);
      if (f2_) {
        b.r2 = f2_->pop(check_interrupt);
        rename(b.r2, name2_, 1);
        if (b.r1.file != b.r2.file) {  // one lane's file ended where its mate's went on
          const bool r1_on = b.r1.file < b.r2.file;
          const size_t lane = std::min(b.r1.file, b.r2.file);
          const std::string& on = (r1_on ? f1_ : *f2_).path(lane);
          const std::string& ended = (r1_on ? *f2_ : f1_).path(lane);
          throw InputError(on + ": has more records than its mate file " + ended +
                           ": R1 and R2 must hold the same reads in the same order");
        }
        check_mates(b.r1, b.r2, b.r1.source, b.r2.source);
      }
    }
    for (auto& nm : b.r1.names) nm = mate_base_name(nm);
    if (paired())
      for (auto& nm : b.r2.names) nm = mate_base_name(nm);
    b.id = next_id_++;
    return b.r1.size() > 0;
  }
  // Hands a batch's buffers back to the readers.
  void recycle(Batch&& b) {
    if (interleaved_) return;  // (the halves were copied out of the file's own batch)
    f1_.recycle(std::move(b.r1));
    if (f2_) f2_->recycle(std::move(b.r2));
  }
  // Thread-seconds the readers spent decompressing and parsing.
  double read_seconds() const { return f1_.read_seconds() + (f2_ ? f2_->read_seconds() : 0); }

 private:
  // mate: 0 for r1's file, 1 for r2's.
  void rename(ReadBatch& b, const std::string& name, int mate) const {
    if (!name.empty()) b.source = name;
    if (from_interleaved_) {
      b.first_record = records_before_ + 2 * (b.first_record - 1) + 1 + mate;
      b.record_stride = 2;
    } else {
      b.first_record += records_before_;
    }
  }

  FileReader f1_;
  std::unique_ptr<FileReader> f2_;
  uint64_t next_id_ = 0;
  std::string name1_, name2_;
  uint64_t records_before_ = 0;
  bool from_interleaved_ = false;
  bool interleaved_ = false;
};

}  // namespace

PipelineResult align_fastq_files(const Aligner& aligner, const std::vector<std::string>& r1_paths,
                                 const std::vector<std::string>& r2_paths,
                                 const std::string& out_path, const std::string& header_text,
                                 const PipelineOptions& options,
                                 const std::function<void(uint64_t)>& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  if (options.batch_reads == 0) throw std::invalid_argument("batch size must be at least 1");
  PipelineResult result;
  // (before any file is opened)
  if (r1_paths.empty()) throw std::invalid_argument("no reads file given");
  if (options.interleaved && !r2_paths.empty()) {
    throw std::invalid_argument("interleaved reads come in one file, not two");
  }
  if (!r2_paths.empty() && r2_paths.size() != r1_paths.size()) {
    throw std::invalid_argument(std::to_string(r1_paths.size()) + " files of first mates but " +
                                std::to_string(r2_paths.size()) + " of second mates");
  }
  const std::vector<std::string>& groups = options.read_groups;
  if (groups.size() > 1 && groups.size() != r1_paths.size()) {
    throw std::invalid_argument(std::to_string(groups.size()) + " read groups for " +
                                std::to_string(r1_paths.size()) +
                                " files: give one, or one per file");
  }
  // The insert-size model comes from a fixed number of leading pairs, whatever the batch size:
  // the first batch has that many.
  PairedSource source(r1_paths, r2_paths,
                      static_cast<size_t>(std::max(1, aligner.options().insert_model_pairs)),
                      options.batch_reads, read_threads(options.threads), options.interleaved,
                      options.skip_pairs);
  source.name_reads(options.r1_name, options.r2_name, options.records_before,
                    options.from_interleaved);
  BamWriterOptions writer_options = options.writer;
  // (a checkpoint's spills, taken or adopted, outlive this writer)
  writer_options.keep_checkpoints |= options.checkpoint_pairs > 0 || !options.resume_spills.empty();
  BamWriter writer(out_path, header_text, writer_options);
  if (!options.resume_spills.empty()) {
    writer.adopt_spills(options.resume_spills, options.resume_duplicate_reach);
  }
  // Each input file's (lane's) records carry its read group.
  std::vector<RecordOptions> record_options;
  for (size_t i = 0; i < r1_paths.size(); ++i) {
    record_options.push_back(RecordOptions{
        groups.empty() ? std::string() : groups[groups.size() == 1 ? 0 : i],
        options.writer.mark_duplicates || options.mate_scores, options.copy_comments});
  }

  Batch first;
  // (after a skip of many pairs, the first batch can be minutes away: signals are seen)
  bool have_first = source.next(first, options.writer.check_interrupt);
  // Those pairs' single-end hits serve the model and then their own alignment.
  Aligner::PairHits first_hits;
  bool first_mapped = false;
  if (options.insert_model) {
    result.model = *options.insert_model;
  } else if (have_first && source.paired()) {
    first_hits = aligner.map_pairs(first.r1, first.r2, result.stats, options.threads);
    result.model = Aligner::estimate_insert_model(first_hits);
    first_mapped = true;
  }

  std::mutex in_mu, out_mu;
  // Batches' records, keyed and sorted by their workers, wait here to be added in batch order,
  // with their pairs and statistics (counted in that order too, for checkpoints).
  struct Ready {
    BamWriter::RunPtr run;
    size_t pairs = 0;
    AlignStats stats;
  };
  std::map<uint64_t, Ready> ready;
  uint64_t next_to_write = 0;
  uint64_t pairs_written = 0, pairs_at_checkpoint = 0;
  std::exception_ptr failure;
  bool first_taken = false;

  auto worker = [&]() {
    RecordBatch records;
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
          } else if (!source.next(b)) {
            return;
          }
        } catch (...) {
          failure = std::current_exception();
          return;
        }
      }
      records.clear();
      BamWriter::RunPtr run;
      try {
        aligner.align_batch(b.r1, source.paired() ? &b.r2 : nullptr, result.model,
                            record_options.at(b.r1.file), records, local, pre);
        // Sorting the batch here, beside the other workers, leaves the writer only the hand-over.
        StageClock clock;
        run = writer.prepare(records);
        local.stage.write += clock.lap();
      } catch (...) {
        std::lock_guard<std::mutex> lk(in_mu);
        if (!failure) failure = std::current_exception();
        return;
      }
      const uint64_t id = b.id;
      const size_t pairs = b.r1.size();
      source.recycle(std::move(b));
      std::lock_guard<std::mutex> lk(out_mu);
      ready.emplace(id, Ready{std::move(run), pairs, std::move(local)});
      local = AlignStats{};
      while (!ready.empty() && ready.begin()->first == next_to_write) {
        {
          std::lock_guard<std::mutex> lk2(in_mu);
          if (failure) break;  // (nothing more is written, nor checkpointed)
        }
        try {
          Ready& r = ready.begin()->second;
          result.stats.add(r.stats);
          StageClock clock;
          writer.add(std::move(r.run));
          result.stats.stage.write += clock.lap();
          pairs_written += r.pairs;
          if (options.checkpoint_pairs > 0 &&
              pairs_written - pairs_at_checkpoint >= options.checkpoint_pairs) {
            pairs_at_checkpoint = pairs_written;
            StageClock checkpoint_clock;
            const PipelineCheckpoint cp{options.skip_pairs + pairs_written, result.stats,
                                        result.model, writer.checkpoint()};
            if (options.on_checkpoint) options.on_checkpoint(cp);
            writer.release_checkpoint();
            result.checkpoint_seconds += checkpoint_clock.lap();
            result.stats.stage.write += clock.lap();
          }
        } catch (...) {
          std::lock_guard<std::mutex> lk2(in_mu);
          if (!failure) failure = std::current_exception();
        }
        ready.erase(ready.begin());
        ++next_to_write;
      }
      writer.recycle(records);  // buffers of spilled batches, when there are some
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
  result.stats.stage.read += source.read_seconds();
  if (failure) {
    writer.abort();
    std::rethrow_exception(failure);
  }
  StageClock close_clock;
  writer.close();
  result.close_seconds = close_clock.lap();
  result.stats.stage.write += result.close_seconds + writer.spill_seconds();
  result.spilled_bytes = writer.spilled_bytes();
  result.spill_peak_bytes = writer.spill_peak_bytes();
  result.duplicates = writer.duplicate_stats();
  result.duplicate_reach = writer.duplicate_reach();
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace gms
