// analyzer/model/growth_tracker.cc: see growth_tracker.h.
#include "analyzer/model/growth_tracker.h"

namespace heapsight::analyzer {

std::vector<SiteGrowth> GrowthTracker::Finish(uint64_t end_us, const std::vector<uint64_t>& live) {
  if (sites_.size() < live.size()) sites_.resize(live.size());
  std::vector<SiteGrowth> out(sites_.size());
  for (size_t i = 0; i < sites_.size(); ++i) {
    State& s = sites_[i];
    uint64_t l = i < live.size() ? live[i] : 0;
    SiteGrowth& g = out[i];
    g.live_at_end = l;
    if (end_us <= begin_) {
      g.live_at_begin = g.live_max = l;
      g.fit_end_us = end_us;
      continue;
    }
    Advance(s, end_us, l);
    g.live_at_begin = s.live_at_begin;
    g.live_max = s.live_max > l ? s.live_max : l;
    // Up to the high point, unless the site is still at its high at the end
    // or the high came in the window's first half: then the whole window.
    bool whole = l >= s.live_max || s.max_us - begin_ < (end_us - begin_) / 2;
    const Sums& sums = whole ? s.sums : s.at_max;
    uint64_t fit_end = whole ? end_us : s.max_us;
    g.fit_end_us = fit_end;
    if (fit_end <= begin_) continue;
    double d = static_cast<double>(fit_end - begin_);
    double var_t = d * d / 12;
    double mean_l = sums.a / d;
    double cov = sums.b / d - (d / 2) * mean_l;
    double var_l = sums.c / d - mean_l * mean_l;
    g.bytes_per_second = cov / var_t * 1e6;
    g.rise = cov / var_t * d;
    // A site whose live bytes never changed in the span has no fit; a
    // rounding-level variance is no variance.
    g.fit = var_l > 1e-9 * (mean_l * mean_l + 1) ? cov * cov / (var_t * var_l) : 0;
    if (g.fit > 1) g.fit = 1;
  }
  return out;
}

}  // namespace heapsight::analyzer
