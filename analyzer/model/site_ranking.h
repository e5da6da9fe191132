// analyzer/model/site_ranking.h: which call sites a report lists, in which
// order. Every "top call sites" list (report, html) ranks with RankSites;
// the growth lists (growth, html) with RankGrowth.
#ifndef HEAPSIGHT_ANALYZER_MODEL_SITE_RANKING_H_
#define HEAPSIGHT_ANALYZER_MODEL_SITE_RANKING_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "analyzer/model/growth_tracker.h"
#include "analyzer/model/trace_model.h"

namespace heapsight::analyzer {

// The program's sites with a non-zero `key`, largest first (ties by stack,
// then API), at most `top`.
std::vector<const Site*> RankSites(const ProcessProfile& profile, size_t top,
                                   const std::function<uint64_t(const SiteStats&)>& key);

// RankSites for each of `keys`, in one pass over the sites: list i is
// RankSites(profile, top, keys[i]). A report's lists at once (cc1plus: 93 k
// sites of 128 bytes, a 12 MB sweep for each list).
std::vector<std::vector<const Site*>> RankSitesByKeys(
    const ProcessProfile& profile, size_t top,
    const std::vector<std::function<uint64_t(const SiteStats&)>>& keys);

// Which growing sites count. A site is listed when the line fitted to its
// live bytes rises by at least `min_bytes` over the window, with a fit (r^2,
// 0 to 1) of at least `min_fit`.
struct GrowthCriteria {
  size_t top = 10;            // sites listed per process
  uint64_t min_bytes = 1024;  // least rise of the fitted line over the window
  double min_fit = 0.25;      // least r^2: below it a rise is noise (churn, a sawtooth)
};

struct GrowingSite {
  size_t site = 0;  // index into ProcessProfile::sites
  SiteGrowth growth;
};

// The growing program sites of `profile` (analyzed with track_growth),
// fastest first (ties by site index), at most criteria.top.
std::vector<GrowingSite> RankGrowth(const ProcessProfile& profile, const GrowthCriteria& criteria);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_SITE_RANKING_H_
