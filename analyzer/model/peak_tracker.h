// analyzer/model/peak_tracker.h: exact per-site live bytes at the moment of the
// global heap peak, in one pass and bounded memory.
//
// The analysis keeps per-site live counters (`current`). The tracker keeps a
// snapshot of those counters at the last peak and the list of the sites
// whose counters changed since then (each site once: a per-site stamp says
// whether it is listed already). At a new peak it copies just those sites'
// counters into the snapshot. Per event that is one load and compare (the
// site's stamp); per peak, one copy per site changed since the last one, so
// the cost is O(1) amortized per event and the memory O(sites): 4 bytes a
// site for the stamps, at most 4 a site for the list, the snapshot.
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
  // A site's live counters changed.
  [[gnu::always_inline]] void Change(uint32_t site) {
    if (site < stamp_.size() && stamp_[site] == epoch_) return;  // listed already
    List(site);
  }

  // The heap just reached a new maximum; `current` are the live counters
  // now (every site passed to Change is below current.size()).
  void NewPeak(const std::vector<LiveCounter>& current) {
    if (snapshot_.size() < current.size()) snapshot_.resize(current.size());
    for (uint32_t site : changed_) snapshot_[site] = current[site];
    changed_.clear();
    if (++epoch_ == 0) {  // stamps from 2^32 peaks ago would look current
      std::fill(stamp_.begin(), stamp_.end(), 0);
      epoch_ = 1;
    }
  }

  // Live counters per site at the last peak (shorter than the site list if
  // later sites were created after the peak: those had nothing live).
  const std::vector<LiveCounter>& at_peak() const { return snapshot_; }

 private:
  void List(uint32_t site) {
    if (site >= stamp_.size()) stamp_.resize(site + size_t{1}, 0);
    stamp_[site] = epoch_;
    changed_.push_back(site);
  }

  std::vector<uint32_t> stamp_;    // per site: epoch_ if listed in changed_ (0: never)
  std::vector<uint32_t> changed_;  // the sites changed since the last peak
  std::vector<LiveCounter> snapshot_;
  uint32_t epoch_ = 1;             // peaks so far + 1 (mod 2^32, never 0)
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_PEAK_TRACKER_H_
