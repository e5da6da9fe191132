// analyzer/model/site_timeline.h: each call site's live bytes and bytes
// allocated over time, per time bucket, for the charts stacked by call site
// and the views of a chosen moment or time range (the HTML page).
//
// SiteTimelineBuilder is told, during the analysis pass, a site's live bytes
// after every change (Live) and every allocation's bytes (Allocated). Per
// site it keeps only the buckets in which that site changed (sparse): the
// site's live bytes after its last change in the bucket and the bytes it
// allocated in the bucket. Bounds, whatever the trace's length:
//  - at most `max_buckets` buckets: buckets start at ~1/(max_buckets/2) of
//    the expected trace length, a power of two in microseconds, and double
//    (neighbours merged: the later live bytes, the sum of the allocated
//    bytes) when the trace runs past the last one, as heap_timeline.h does;
//  - at most `max_entries` (site, bucket) entries: past that, every site
//    outside the largest `keep_while_pruning` by live bytes so far and by
//    bytes allocated so far is folded into one "other" series (its past
//    and its future changes), so memory stays O(max_entries + sites).
// Finish keeps the `top_sites` largest by their highest live bytes and the
// `top_sites` largest by bytes allocated (the union) and folds the rest into
// "other". For every bucket, the sites' live bytes plus other's are the
// heap the analysis saw after that bucket (all sites fed, nothing dropped),
// and the allocated bytes add up to the bytes allocated in it.
//
// Each call costs O(1) amortized (coarsening and pruning touch every entry
// but halve or bound them). A site's newest bucket (the only one that can
// still change) is held in the site's own state, so a call touches only that
// state; a bucket is stored, in one log of every site's buckets, when the
// site moves on to a later bucket. A site that changed in one bucket only
// (most of a compiler's hundred thousand sites) stores nothing. Memory: 40
// bytes a site and 24 a stored bucket.
#ifndef HEAPSIGHT_ANALYZER_MODEL_SITE_TIMELINE_H_
#define HEAPSIGHT_ANALYZER_MODEL_SITE_TIMELINE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "analyzer/model/mapped_vector.h"

namespace heapsight::analyzer {

struct SiteBucket {
  uint64_t begin_us = 0;   // start of the bucket (a multiple of the width)
  uint64_t live = 0;       // live bytes after the bucket's last change
  uint64_t allocated = 0;  // bytes allocated in the bucket
};

// One site's buckets that saw a change, in time order. Between two of them
// its live bytes stay at the first one's `live`; before the first, 0.
struct SiteSeries {
  uint32_t site = 0;  // index into ProcessProfile::sites
  std::vector<SiteBucket> buckets;
};

struct SiteTimeline {
  uint64_t bucket_us = 1;          // width of every bucket
  uint64_t end_us = 0;             // end of the trace
  std::vector<SiteSeries> sites;   // the kept sites, by site index
  std::vector<SiteBucket> other;   // every other site's sum, sparse likewise
};

// The live bytes of `buckets` after every change at or before the bucket
// that holds `time_us` (the step function's value at the end of that
// bucket).
uint64_t LiveAtBucketOf(const std::vector<SiteBucket>& buckets, uint64_t bucket_us,
                        uint64_t time_us);

class SiteTimelineBuilder {
 public:
  explicit SiteTimelineBuilder(uint64_t expected_duration_us = 0, size_t max_buckets = 512,
                               size_t max_entries = size_t{1} << 20,
                               size_t keep_while_pruning = 256);

  // `site` holds `live_bytes` after a change at `time_us`. Times must not
  // decrease (across both calls). Inline, as Allocated: the pass calls one
  // or both for every event (python: 24 M events; the calls and their
  // prologues were a third of their 1.1 G instructions); the rare paths
  // (coarsening, a new site, a stored bucket, pruning) are out of line.
  [[gnu::always_inline]] void Live(uint32_t site, uint64_t time_us, uint64_t live_bytes) {
    uint32_t bucket = Bucket(site, time_us);
    State& s = sites_[site];
    if (s.current == kFolded) {
      other_delta_[bucket] += live_bytes - s.live;
    } else {
      Enter(s, site, bucket);
      s.max_live = std::max(s.max_live, live_bytes);
    }
    s.live = live_bytes;
    MaybePrune();
  }
  // `site` allocated `bytes` at `time_us`.
  [[gnu::always_inline]] void Allocated(uint32_t site, uint64_t time_us, uint64_t bytes) {
    uint32_t bucket = Bucket(site, time_us);
    State& s = sites_[site];
    s.allocated += bytes;
    if (s.current == kFolded) {
      other_allocated_[bucket] += bytes;
      return;
    }
    Enter(s, site, bucket);
    s.current_allocated += bytes;
    MaybePrune();
  }

  // Allocated(site, time_us, bytes) then Live(site, time_us, live_bytes),
  // with one bucket lookup and one Enter (an allocation that makes a block
  // live: the pass's commonest event). The same result as the two calls:
  // when the first could prune (which may fold the site before the
  // second), it makes the two calls.
  [[gnu::always_inline]] void AllocatedLive(uint32_t site, uint64_t time_us, uint64_t bytes,
                                            uint64_t live_bytes) {
    uint32_t bucket = Bucket(site, time_us);
    State& s = sites_[site];
    // Enter adds at most one entry: no prune if there is room for it.
    if (s.current == kFolded || entries_ >= max_entries_) [[unlikely]] {
      Allocated(site, time_us, bytes);
      Live(site, time_us, live_bytes);
      return;
    }
    s.allocated += bytes;
    Enter(s, site, bucket);
    s.current_allocated += bytes;
    s.max_live = std::max(s.max_live, live_bytes);
    s.live = live_bytes;
  }

  // The series, the `top_sites` largest sites (by highest live bytes, and
  // by bytes allocated) kept; the trace ended at `end_us`.
  SiteTimeline Finish(uint64_t end_us, size_t top_sites);

 private:
  // Bucket numbers (time >> shift_) are below max_buckets_ <= 2^31; these
  // mark a site's `current` otherwise.
  static constexpr uint32_t kNoBucket = UINT32_MAX;    // the site had no call yet
  static constexpr uint32_t kFolded = UINT32_MAX - 1;  // the site is in "other"
  static constexpr uint32_t kNone = UINT32_MAX;        // no log entry

  // A site: its live bytes now, the highest and the bytes allocated so far
  // (for the ranking), and its newest bucket: number `current`, allocated
  // bytes `current_allocated`, live bytes `live`. Its older buckets are in
  // log_, in time order.
  struct State {
    uint64_t live = 0;
    uint64_t max_live = 0;
    uint64_t allocated = 0;
    uint64_t current_allocated = 0;
    uint32_t current = kNoBucket;
  };
  // A stored bucket of site `site`.
  struct LogEntry {
    uint32_t site;
    uint32_t bucket;
    uint64_t live;
    uint64_t allocated;
  };

  // Coarsens until `time_us` fits and makes room for `site`; the bucket
  // number of `time_us`.
  [[gnu::always_inline]] uint32_t Bucket(uint32_t site, uint64_t time_us) {
    if (time_us > last_us_ || site >= sites_.size()) [[unlikely]] Grow(site, time_us);
    return static_cast<uint32_t>(time_us >> shift_);
  }
  void Grow(uint32_t site, uint64_t time_us);  // Bucket's coarsening and resize
  // Makes `bucket` the newest bucket of the (not folded) site, storing the
  // one before.
  [[gnu::always_inline]] void Enter(State& s, uint32_t site, uint32_t bucket) {
    if (s.current == bucket) return;
    if (s.current != kNoBucket) Store(s, site);
    s.current = bucket;
    s.current_allocated = 0;
    ++entries_;
  }
  void Store(State& s, uint32_t site);  // appends the site's newest bucket to log_
  void SetWidth(int shift);
  void Coarsen();                                // doubles the width
  void FoldAll(const std::vector<bool>& fold);   // moves these sites into `other`
  void Keep(size_t top);                         // folds every site outside the top
  [[gnu::always_inline]] void MaybePrune() {
    if (entries_ > max_entries_) Keep(keep_while_pruning_);
  }

  MappedVector<State> sites_;  // mapped_vector.h: grows without copying
  // The stored buckets of the sites not folded, in blocks (a deque: no
  // doubling copy, at most one block spare; a compiler's trace stores
  // hundreds of thousands).
  std::deque<LogEntry> log_;
  // "other", dense by bucket number: the sum of its live-byte changes
  // (modulo 2^64) and its allocated bytes.
  std::vector<uint64_t> other_delta_;
  std::vector<uint64_t> other_allocated_;
  // Buckets are width_ = 2^shift_ microseconds wide; times after last_us_
  // (width_ * max_buckets_ - 1, or the largest time if that overflows) need
  // a coarser width.
  uint64_t width_ = 1;
  int shift_ = 0;
  uint64_t last_us_ = 0;
  size_t max_buckets_;
  size_t max_entries_;
  size_t keep_while_pruning_;
  size_t entries_ = 0;  // buckets of the sites not folded (stored and newest)
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_SITE_TIMELINE_H_
