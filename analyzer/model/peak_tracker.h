// analyzer/model/peak_tracker.h: exact per-site live bytes at the moment of the
// global heap peak, in one pass and bounded memory.
//
// The analysis keeps per-site live counters (`current`). The tracker keeps a
// snapshot of those counters at the last peak and the list of the sites
// whose counters changed since the snapshot was taken (each site once: a
// per-site stamp says whether it is listed already). Taking the snapshot
// (Settle) copies just those sites' counters. It is taken lazily: a new
// peak only marks the counters as the peak's (pending), and the copy is
// made before the first change that may leave the peak behind. A change
// that adds bytes to the program's heap while it is at its peak makes a
// higher peak, so it needs no copy (`rises`): a heap that grows for a
// while (python building a dict: nearly every allocation a new peak) costs
// one copy when it stops growing instead of one a peak. Per event that is
// one load and compare (the site's stamp) and a flag; per settle, one copy
// per site changed since the last one, so the cost is O(1) amortized per
// event and the memory O(sites): 4 bytes a site for the stamps, 4 a site
// for the list (sized for every site: no capacity check when listing), the
// snapshot.
#ifndef HEAPSIGHT_ANALYZER_PEAK_TRACKER_H_
#define HEAPSIGHT_ANALYZER_PEAK_TRACKER_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace heapsight::analyzer {

struct LiveCounter {
  uint64_t bytes = 0;
  uint64_t count = 0;
};

class PeakTracker {
 public:
  // Called before a site's counters change (`current` are the counters
  // before the change). `rises`: the change adds bytes to the heap the peak
  // is measured on, so if the heap is at its peak now it will be at a new,
  // higher one after it (the caller then calls NewPeak).
  [[gnu::always_inline]] void Change(uint32_t site, const std::vector<LiveCounter>& current,
                                     bool rises) {
    if (pending_ && !rises) Settle(current);
    if (site >= stamp_.size()) [[unlikely]] Grow(site);
    if (stamp_[site] == epoch_) return;  // listed already
    // Listed inline, without a capacity check: changed_ has a place for
    // every site (each is listed once between two settles). The call and
    // the push_back were 220 M instructions on python (6.9 M lists).
    stamp_[site] = epoch_;
    changed_[listed_++] = site;
  }

  // The heap just reached a new maximum: the counters now are the peak's.
  void NewPeak() { pending_ = true; }

  // Live counters per site at the last peak (shorter than `current` if
  // later sites were created after the peak: those had nothing live);
  // `current` are the counters now.
  const std::vector<LiveCounter>& at_peak(const std::vector<LiveCounter>& current) {
    Settle(current);
    return snapshot_;
  }

 private:
  // Takes the pending peak's snapshot (the counters now are the peak's).
  [[gnu::noinline]] void Settle(const std::vector<LiveCounter>& current) {
    if (!pending_) return;
    pending_ = false;
    if (snapshot_.size() < current.size()) snapshot_.resize(current.size());
    for (uint32_t i = 0; i < listed_; ++i) snapshot_[changed_[i]] = current[changed_[i]];
    listed_ = 0;
    if (++epoch_ == 0) {  // stamps from 2^32 settles ago would look current
      std::fill(stamp_.begin(), stamp_.end(), 0);
      epoch_ = 1;
    }
  }

 private:
  // Room for sites up to `site` in stamp_ and changed_ (doubling).
  [[gnu::noinline]] void Grow(uint32_t site) {
    size_t size = std::max(site + size_t{1}, stamp_.size() * 2);
    stamp_.resize(size, 0);
    changed_.resize(size);
  }

  std::vector<uint32_t> stamp_;    // per site: epoch_ if listed in changed_ (0: never)
  std::vector<uint32_t> changed_;  // [0, listed_): the sites changed since the last settle
  uint32_t listed_ = 0;
  std::vector<LiveCounter> snapshot_;
  uint32_t epoch_ = 1;             // settles so far + 1 (mod 2^32, never 0)
  bool pending_ = false;           // the counters now are the last peak's, not copied yet
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_PEAK_TRACKER_H_
