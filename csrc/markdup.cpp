// Streaming duplicate marking (see markdup.hpp for the rule and why the window is bounded).
#include "gmsaccel/markdup.hpp"

#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <queue>
#include <string>
#include <utility>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "gmsaccel/errors.hpp"
#include "gmsaccel/record_batch.hpp"

namespace gms {

namespace {

// One end's unclipped 5' position: where the read's first sequenced base would lie were nothing
// clipped, so that reads clipped differently still meet.
struct End {
  uint32_t tid;
  int64_t five;
  bool rev;
  bool operator==(const End& o) const { return tid == o.tid && five == o.five && rev == o.rev; }
  bool operator<(const End& o) const {
    return std::tie(tid, five, rev) < std::tie(o.tid, o.five, o.rev);
  }
};

// Reference span and the clips at each end of a CIGAR, from its BAM-encoded operations.
struct CigarShape {
  int64_t ref_len = 0, lead_clip = 0, trail_clip = 0;
};

bool is_clip(int op) { return op == BAM_CSOFT_CLIP || op == BAM_CHARD_CLIP; }

template <class OpAt>
CigarShape shape_of(size_t n, OpAt op_at) {
  CigarShape s;
  size_t first = 0, last = n;
  while (first < n && is_clip(bam_cigar_op(op_at(first)))) s.lead_clip += bam_cigar_oplen(op_at(first++));
  while (last > first && is_clip(bam_cigar_op(op_at(last - 1)))) s.trail_clip += bam_cigar_oplen(op_at(--last));
  for (size_t i = first; i < last; ++i) {
    const uint32_t c = op_at(i);
    if (bam_cigar_type(bam_cigar_op(c)) & 2) s.ref_len += bam_cigar_oplen(c);
  }
  return s;
}

int64_t five_prime(int64_t pos, bool rev, const CigarShape& s) {
  return rev ? pos + s.ref_len - 1 + s.trail_clip : pos - s.lead_clip;
}

CigarShape shape_of_record(const bam1_core_t& c, const uint8_t* data) {
  const uint8_t* cigar = data + c.l_qname;  // may be unaligned in the writer's buffers
  return shape_of(c.n_cigar, [cigar](size_t i) {
    uint32_t op;
    std::memcpy(&op, cigar + 4 * i, sizeof op);
    return op;
  });
}

uint32_t tid_key(int32_t tid) { return tid < 0 ? UINT32_MAX : static_cast<uint32_t>(tid); }

// Records whose flag this marker decides: mapped primary alignments that passed QC.
bool considered(const bam1_core_t& c) {
  return !(c.flag & (BAM_FUNMAP | BAM_FSECONDARY | BAM_FSUPPLEMENTARY | BAM_FQCFAIL)) &&
         c.tid >= 0;
}

// The template kept so far in a set, and whether another beats it: the higher score; on equal
// scores pairs keep the smaller read name and fragments the first in the stream, as samtools
// markdup does, so that the choice does not depend on how the aligner's threads ordered pairs.
struct Best {
  bool any = false;
  int64_t score = 0;
  uint64_t seq = 0;
  std::string name;
  void reset() {
    any = false;
    name.clear();  // keeps its capacity for the next set
  }
  void offer(int64_t s, uint64_t at, const char* qname, bool ties_by_name) {
    if (!any || s > score ||
        (s == score && ties_by_name && std::strcmp(qname, name.c_str()) < 0)) {
      any = true;
      score = s;
      seq = at;
      name = qname;
    }
  }
};

bool mate_placed(const bam1_core_t& c) {
  return (c.flag & BAM_FPAIRED) && !(c.flag & BAM_FMUNMAP) && c.mtid >= 0;
}

struct PairKey {
  End lead, follow;
  bool operator==(const PairKey& o) const { return lead == o.lead && follow == o.follow; }
};

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h;
}
uint64_t hash_end(uint64_t h, const End& e) {
  return mix(mix(mix(h, e.tid), static_cast<uint64_t>(e.five)), e.rev);
}
struct EndHash {
  size_t operator()(const End& e) const { return hash_end(0, e); }
};
struct PairKeyHash {
  size_t operator()(const PairKey& k) const { return hash_end(hash_end(0, k.lead), k.follow); }
};

// All the pairs at one pair of ends. Leaders are counted as they come; followers too, since a
// follower may come before its leader (it is reverse, its leader forward). The group is done
// once every leader and follower that came has been released and the stream is past the
// followers' 5' end plus reach, after which no more can come.
struct PairGroup {
  uint32_t leaders = 0, leaders_released = 0, followers = 0, followers_released = 0;
  bool follower_kept = false;  // one follower of the set is kept: the first with best's name
  Best best;
  void reset() {
    leaders = leaders_released = followers = followers_released = 0;
    follower_kept = false;
    best.reset();
  }
  bool all_released() const {
    return leaders_released == leaders && followers_released == followers;
  }
};

// Every considered end with this 5' End: fragments are kept only when no pair ends here.
struct FragmentGroup {
  uint32_t refs = 0;
  bool has_pair_end = false;
  Best best;  // among the fragments
  void reset() {
    refs = 0;
    has_pair_end = false;
    best.reset();
  }
};

// A hash map whose erased nodes are kept and reused: a set lives for a few hundred records, so
// without this every record would allocate and free a node (and a pair's kept name).
template <class Key, class Value, class Hash>
class RecyclingMap {
 public:
  using Map = std::unordered_map<Key, Value, Hash>;
  // The value at key, reset() when new.
  Value& get(const Key& key) {
    auto it = map_.find(key);
    if (it != map_.end()) return it->second;
    if (spare_.empty()) return map_.emplace(key, Value{}).first->second;
    typename Map::node_type node = std::move(spare_.back());
    spare_.pop_back();
    node.key() = key;
    node.mapped().reset();
    return map_.insert(std::move(node)).position->second;
  }
  typename Map::iterator find(const Key& key) { return map_.find(key); }
  typename Map::iterator end() { return map_.end(); }
  size_t size() const { return map_.size(); }
  void erase(typename Map::iterator it) { spare_.push_back(map_.extract(it)); }

 private:
  Map map_;
  std::vector<typename Map::node_type> spare_;
};

enum class Role : uint8_t { pass, fragment, leader, follower };

struct Slot {
  std::unique_ptr<bam1_t, BamFree> rec;
  uint64_t seq = 0;
  Role role = Role::pass;
  uint32_t tid = 0;
  int64_t release_after = 0;  // released once the stream is past (tid, release_after)
  End end{};
  PairKey pair{};
};

}  // namespace

struct DuplicateMarker::Impl {
  int64_t reach;
  Sink sink;
  std::deque<Slot> window;
  std::vector<std::unique_ptr<bam1_t, BamFree>> spare;  // records' buffers, reused
  RecyclingMap<PairKey, PairGroup, PairKeyHash> pairs;
  RecyclingMap<End, FragmentGroup, EndHash> fragments;
  uint64_t next_seq = 0;
  uint32_t cur_tid = 0;
  int64_t cur_pos = INT64_MIN;
  DuplicateStats stats;
  // Pair groups whose leaders were released before their followers could all have come.
  struct Lingering {
    uint32_t tid;
    int64_t until;
    PairKey key;
    bool operator>(const Lingering& o) const { return std::tie(tid, until) > std::tie(o.tid, o.until); }
  };
  std::priority_queue<Lingering, std::vector<Lingering>, std::greater<Lingering>> lingering;
  // The last MC tag's operations, parsed by htslib into this malloc'd buffer.
  std::unique_ptr<uint32_t, decltype(&std::free)> mate_ops{nullptr, &std::free};
  size_t mate_ops_room = 0;

  std::unique_ptr<bam1_t, BamFree> take_record() {
    if (!spare.empty()) {
      auto b = std::move(spare.back());
      spare.pop_back();
      return b;
    }
    std::unique_ptr<bam1_t, BamFree> b(bam_init1());
    if (!b) throw std::bad_alloc();
    return b;
  }

  End mate_end(const bam1_t* b) {
    const uint8_t* mc = bam_aux_get(b, "MC");
    const char* text = mc ? bam_aux2Z(mc) : nullptr;
    ssize_t n = -1;
    char* rest = nullptr;
    if (text) {
      uint32_t* ops = mate_ops.release();
      n = sam_parse_cigar(text, &rest, &ops, &mate_ops_room);
      mate_ops.reset(ops);
    }
    if (n <= 0 || *rest != '\0') {
      throw InputError(std::string("record ") + bam_get_qname(b) +
                       ": its mate is mapped but it has no valid MC tag (mate CIGAR), which "
                       "marking duplicates needs");
    }
    const uint32_t* ops = mate_ops.get();
    const CigarShape s = shape_of(static_cast<size_t>(n), [ops](size_t i) { return ops[i]; });
    const bool mrev = (b->core.flag & BAM_FMREVERSE) != 0;
    return End{tid_key(b->core.mtid), five_prime(b->core.mpos, mrev, s), mrev};
  }

  void push(bam1_t* b) {
    Slot slot;
    slot.rec = take_record();
    // The record changes hands without a copy: b gets the spare's buffers in exchange.
    std::swap(*slot.rec, *b);
    b = slot.rec.get();
    slot.seq = next_seq++;
    const bam1_core_t& c = b->core;
    slot.tid = tid_key(c.tid);
    cur_tid = slot.tid;
    cur_pos = c.pos;
    if (considered(c)) {
      const bool rev = (c.flag & BAM_FREVERSE) != 0;
      slot.end = End{slot.tid, five_prime(c.pos, rev, shape_of_record(c, b->data)), rev};
      slot.release_after = slot.end.five + reach;
      const int64_t score = duplicate_score(bam_get_qual(b), static_cast<size_t>(c.l_qseq), 0);
      FragmentGroup& fg = fragments.get(slot.end);
      ++fg.refs;
      if (mate_placed(c)) {
        fg.has_pair_end = true;
        const End mate = mate_end(b);
        const bool leads = slot.end < mate || (slot.end == mate && (c.flag & BAM_FREAD1));
        slot.role = leads ? Role::leader : Role::follower;
        slot.pair = leads ? PairKey{slot.end, mate} : PairKey{mate, slot.end};
        PairGroup& pg = pairs.get(slot.pair);
        if (leads) {
          ++stats.pairs_examined;
          ++pg.leaders;
          pg.best.offer(score + mate_score(b), slot.seq, bam_get_qname(b), true);
        } else {
          ++pg.followers;
        }
      } else {
        ++stats.unpaired_examined;
        slot.role = Role::fragment;
        fg.best.offer(score, slot.seq, bam_get_qname(b), false);
      }
    }
    const uint64_t held = pairs.size() + fragments.size();
    if (held > stats.peak_sets_held) stats.peak_sets_held = held;
    window.push_back(std::move(slot));
    release(false);
  }

  // Whether the stream has moved past position pos of contig tid.
  bool past(uint32_t tid, int64_t pos) const {
    return cur_tid > tid || (cur_tid == tid && cur_pos > pos);
  }
  bool ready(const Slot& s) const { return s.role == Role::pass || past(s.tid, s.release_after); }

  // The mate's share of a pair's score, which the aligner writes as the ms tag.
  static int64_t mate_score(const bam1_t* b) {
    const uint8_t* ms = bam_aux_get(b, "ms");
    if (!ms || !std::strchr("cCsSiI", static_cast<char>(ms[0]))) {
      throw InputError(std::string("record ") + bam_get_qname(b) +
                       ": its mate is mapped but it has no integer ms tag (the mate's base "
                       "quality score), which marking duplicates needs");
    }
    return bam_aux2i(ms);
  }

  // A pair group whose leaders are all released is dropped as soon as nothing more can join it.
  void retire(std::unordered_map<PairKey, PairGroup, PairKeyHash>::iterator pg) {
    const PairGroup& g = pg->second;
    if (g.leaders_released != g.leaders) return;
    const End& follow = pg->first.follow;
    if (!past(follow.tid, follow.five + reach)) {
      // Its followers may still come (or never will, when they failed QC): look again later.
      if (g.followers_released == g.followers) lingering.push({follow.tid, follow.five + reach, pg->first});
      return;
    }
    if (g.all_released()) pairs.erase(pg);
  }

  void sweep_lingering() {
    while (!lingering.empty() && past(lingering.top().tid, lingering.top().until)) {
      auto pg = pairs.find(lingering.top().key);
      lingering.pop();
      // Followers still held drop the group themselves when released.
      if (pg != pairs.end() && pg->second.all_released()) pairs.erase(pg);
    }
  }

  // Whether the slot's record is a duplicate; retires its share of the groups it belongs to.
  bool decide(const Slot& s) {
    bool dup = false;
    auto fg = fragments.find(s.end);
    if (s.role == Role::fragment) dup = fg->second.has_pair_end || fg->second.best.seq != s.seq;
    if (--fg->second.refs == 0) fragments.erase(fg);
    if (s.role == Role::leader) {
      auto pg = pairs.find(s.pair);
      dup = pg->second.best.seq != s.seq;
      ++pg->second.leaders_released;
      retire(pg);
    } else if (s.role == Role::follower) {
      // The set is complete by now (every leader's 5' end is not after the follower's). The
      // follower kept is the first whose name is the kept leader's, so that one follower is
      // kept even when templates in the set share a name.
      auto pg = pairs.find(s.pair);
      PairGroup& g = pg->second;
      if (g.leaders > 1) {
        const bool kept = !g.follower_kept && g.best.name == bam_get_qname(s.rec.get());
        g.follower_kept |= kept;
        dup = !kept;
      }
      ++g.followers_released;
      retire(pg);
    }
    if (dup) {
      if (s.role == Role::fragment) ++stats.unpaired_duplicates;
      if (s.role == Role::leader) ++stats.pair_duplicates;
    }
    return dup;
  }

  void release(bool all) {
    while (!window.empty() && (all || ready(window.front()))) {
      Slot& s = window.front();
      if (s.role != Role::pass) {
        uint16_t& flag = s.rec->core.flag;
        flag = static_cast<uint16_t>(decide(s) ? (flag | BAM_FDUP) : (flag & ~BAM_FDUP));
      }
      sink(s.rec.get());
      spare.push_back(std::move(s.rec));
      window.pop_front();
    }
    sweep_lingering();
  }
};

DuplicateMarker::DuplicateMarker(int64_t reach, Sink sink) : impl_(std::make_unique<Impl>()) {
  impl_->reach = reach < 0 ? 0 : reach;
  impl_->sink = std::move(sink);
}
DuplicateMarker::~DuplicateMarker() = default;

void DuplicateMarker::push(bam1_t* b) { impl_->push(b); }
void DuplicateMarker::finish() { impl_->release(true); }
const DuplicateStats& DuplicateMarker::stats() const { return impl_->stats; }

int64_t DuplicateMarker::lag(const bam1_core_t& core, const uint8_t* data) {
  if (!considered(core)) return 0;
  const bool rev = (core.flag & BAM_FREVERSE) != 0;
  const int64_t five = five_prime(core.pos, rev, shape_of_record(core, data));
  return core.pos - five > 0 ? core.pos - five : 0;
}

}  // namespace gms
