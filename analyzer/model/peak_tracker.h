// analyzer/model/peak_tracker.h: exact per-site live bytes at the moment of the
// global heap peak, in one pass and bounded memory.
//
// The analysis keeps per-site live counters (`current`). The tracker keeps a
// snapshot of those counters at the last peak plus a journal of the site
// changes since then. At a new peak it replays the journal onto the snapshot,
// or, when the journal has grown longer than the number of sites, copies the
// current counters instead (and stops journaling until the next peak). Each
// event is journaled or copied at most once per peak, so the cost is O(1)
// amortized per event and the memory O(sites).
#ifndef HEAPSIGHT_ANALYZER_PEAK_TRACKER_H_
#define HEAPSIGHT_ANALYZER_PEAK_TRACKER_H_

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
  // A site's live counters changed by (+/-bytes, +/-1).
  void Change(uint32_t site, uint64_t bytes, bool added) {
    if (overflow_) return;
    journal_.push_back({site, bytes, added});
    if (journal_.size() > limit_) overflow_ = true;
  }

  // The heap just reached a new maximum; `current` are the live counters now.
  void NewPeak(const std::vector<LiveCounter>& current) {
    if (snapshot_.size() < current.size()) snapshot_.resize(current.size());
    if (overflow_) {
      snapshot_ = current;
    } else {
      for (const Entry& e : journal_) {
        LiveCounter& c = snapshot_[e.site];
        if (e.added) {
          c.bytes += e.bytes;
          c.count += 1;
        } else {
          c.bytes -= e.bytes;
          c.count -= 1;
        }
      }
    }
    journal_.clear();
    overflow_ = false;
    limit_ = current.size() * 2 + 4096;
  }

  // Live counters per site at the last peak (shorter than the site list if
  // later sites were created after the peak: those had nothing live).
  const std::vector<LiveCounter>& at_peak() const { return snapshot_; }

 private:
  struct Entry {
    uint32_t site;
    uint64_t bytes;
    bool added;
  };
  std::vector<Entry> journal_;
  std::vector<LiveCounter> snapshot_;
  bool overflow_ = false;
  size_t limit_ = 4096;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_PEAK_TRACKER_H_
