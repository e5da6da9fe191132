// analyzer/model/site_ranking.cc: see site_ranking.h.
#include "analyzer/model/site_ranking.h"

#include <algorithm>

namespace heapsight::analyzer {

std::vector<const Site*> RankSites(const ProcessProfile& profile, size_t top,
                                   const std::function<uint64_t(const SiteStats&)>& key) {
  std::vector<const Site*> sites;
  for (const Site& s : profile.sites) {
    if (s.kind == SiteKind::kProgram && key(s.stats) != 0) sites.push_back(&s);
  }
  std::sort(sites.begin(), sites.end(), [&](const Site* a, const Site* b) {
    uint64_t ka = key(a->stats), kb = key(b->stats);
    if (ka != kb) return ka > kb;
    if (a->stack != b->stack) return a->stack < b->stack;
    return a->api < b->api;
  });
  if (sites.size() > top) sites.resize(top);
  return sites;
}

std::vector<GrowingSite> RankGrowth(const ProcessProfile& profile, const GrowthCriteria& criteria) {
  std::vector<GrowingSite> out;
  for (size_t i = 0; i < profile.growth.size() && i < profile.sites.size(); ++i) {
    const SiteGrowth& g = profile.growth[i];
    if (profile.sites[i].kind != SiteKind::kProgram) continue;
    if (!(g.rise >= static_cast<double>(criteria.min_bytes)) || !(g.bytes_per_second > 0) ||
        g.fit < criteria.min_fit) {
      continue;
    }
    out.push_back({i, g});
  }
  std::sort(out.begin(), out.end(), [](const GrowingSite& a, const GrowingSite& b) {
    if (a.growth.bytes_per_second != b.growth.bytes_per_second) {
      return a.growth.bytes_per_second > b.growth.bytes_per_second;
    }
    return a.site < b.site;
  });
  if (out.size() > criteria.top) out.resize(criteria.top);
  return out;
}

}  // namespace heapsight::analyzer
