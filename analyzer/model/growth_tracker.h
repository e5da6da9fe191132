// analyzer/model/growth_tracker.h: which call sites' memory keeps growing, in one
// pass and O(sites) memory.
//
// A leak in a long-running service rarely shows at exit: the service is
// killed, or frees everything on shutdown, and the memory it lost is what
// grew while it ran. For every site the tracker fits a straight line, by
// least squares over time, to the site's live bytes during a window (the
// later half of the trace by default, so that start-up allocations that then
// stay put do not count as growth). Live bytes are a step function of time;
// the fit needs only three integrals over the window, kept per site and
// advanced whenever the site's live bytes change:
//
//   A = integral of L dt,  B = integral of tau * L dt,  C = integral of L^2 dt
//
// (tau = time since the window began). With D the length fitted: mean live
// bytes A/D; slope = (B/D - (D/2)(A/D)) / (D^2/12); and r^2 of the fit =
// cov^2 / (var(tau) var(L)), 1 for a steady climb, near 0 for churn. The
// sums are also kept as of each site's highest point, so that a shutdown
// that frees everything (after the growth the tool is meant to find) can be
// left out of the fit.
#ifndef HEAPSIGHT_ANALYZER_GROWTH_TRACKER_H_
#define HEAPSIGHT_ANALYZER_GROWTH_TRACKER_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace heapsight::analyzer {

struct SiteGrowth {
  double bytes_per_second = 0;   // least-squares slope of live bytes in the window
  double fit = 0;                // r^2 of that line: 1 = steady growth
  double rise = 0;               // the fitted line's rise over the span fitted
  uint64_t fit_end_us = 0;       // the span fitted ends here: the site's high
                                 // point, or the window's end
  uint64_t live_at_begin = 0;    // live bytes when the window began
  uint64_t live_max = 0;         // the most live in the window
  uint64_t live_at_end = 0;      // and at the end of the trace (a program that
                                 // frees everything on exit ends at 0)
};

class GrowthTracker {
 public:
  // Integrates from `window_begin_us` on.
  explicit GrowthTracker(uint64_t window_begin_us = 0) : begin_(window_begin_us) {}

  uint64_t window_begin_us() const { return begin_; }
  // Time of the last Change (0 before any).
  uint64_t last_change_us() const { return last_change_us_; }

  // Site `site`'s live bytes change from `before` to `after` at `now_us`.
  // Call for every change, in time order.
  void Change(uint32_t site, uint64_t now_us, uint64_t before, uint64_t after) {
    if (site >= sites_.size()) sites_.resize(site + 1);
    State& s = sites_[site];
    last_change_us_ = now_us;
    Advance(s, now_us, before);
    if (now_us > begin_ && after >= s.live_max) {
      // A high (the latest of equal highs: a sawtooth's last tooth, not its
      // first): the fit may end here (see Finish).
      s.live_max = after;
      s.at_max = s.sums;
      s.max_us = now_us;
    }
  }

  // Closes every site's last segment at `end_us` (`live[i]` = site i's live
  // bytes at the end) and computes the fits. A site's fit covers the window
  // up to the last moment its live bytes were highest, so that a program
  // that frees everything as it shuts down does not hide what grew until
  // then; but the whole window if they still were at the end, or if that
  // moment came in the window's first half (a site that rose and fell
  // early did not keep growing). An empty window gives zero slopes.
  std::vector<SiteGrowth> Finish(uint64_t end_us, const std::vector<uint64_t>& live);

 private:
  struct Sums {
    double a = 0, b = 0, c = 0;
  };
  struct State {
    uint64_t last_us = 0;  // end of the part already integrated
    bool began = false;    // live_at_begin is set
    uint64_t live_at_begin = 0;
    uint64_t live_max = 0;  // the most live in the window so far
    uint64_t max_us = 0;    // when it was reached (0: at the window's start)
    Sums sums;              // over [begin, last_us]
    Sums at_max;            // over [begin, max_us]
  };

  void Advance(State& s, uint64_t now_us, uint64_t live_bytes) {
    if (now_us <= begin_) {
      s.last_us = now_us;
      return;
    }
    uint64_t from = s.last_us > begin_ ? s.last_us : begin_;
    if (!s.began) {
      s.began = true;
      s.live_at_begin = live_bytes;  // in effect when the window began
      if (live_bytes > s.live_max) {
        s.live_max = live_bytes;
        s.max_us = begin_;
        s.at_max = Sums{};
      }
    }
    if (now_us > from) {
      double t0 = static_cast<double>(from - begin_), t1 = static_cast<double>(now_us - begin_);
      double l = static_cast<double>(live_bytes);
      s.sums.a += l * (t1 - t0);
      s.sums.b += l * (t1 * t1 - t0 * t0) / 2;
      s.sums.c += l * l * (t1 - t0);
    }
    s.last_us = now_us;
  }

  uint64_t begin_;
  uint64_t last_change_us_ = 0;
  std::vector<State> sites_;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_GROWTH_TRACKER_H_
