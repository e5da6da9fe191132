// analyzer/model/site_ranking.cc: see site_ranking.h.
#include "analyzer/model/site_ranking.h"

#include <algorithm>
#include <utility>

namespace heapsight::analyzer {

std::vector<const Site*> RankSites(const ProcessProfile& profile, size_t top,
                                   const std::function<uint64_t(const SiteStats&)>& key) {
  return std::move(RankSitesByKeys(profile, top, {key})[0]);
}

std::vector<std::vector<const Site*>> RankSitesByKeys(
    const ProcessProfile& profile, size_t top,
    const std::vector<std::function<uint64_t(const SiteStats&)>>& keys) {
  // Each site's key once (a std::function, an estimate on sampled traces),
  // and only the best `top` kept, in a heap whose front is the worst of
  // them: the order (key, stack, api) is total, so the list is the full
  // sort's first `top` (node: 170 M instructions for 10 k sites and six
  // lists before; cc1plus: a 2 MB array of its 130 k sites for each list).
  struct Ranked {
    uint64_t key;
    const Site* site;
  };
  auto before = [](const Ranked& a, const Ranked& b) {
    if (a.key != b.key) return a.key > b.key;
    if (a.site->stack != b.site->stack) return a.site->stack < b.site->stack;
    return a.site->api < b.site->api;
  };
  std::vector<std::vector<Ranked>> best(keys.size());
  for (std::vector<Ranked>& b : best) b.reserve(std::min(top, profile.sites.size()));
  if (top != 0) {
    for (const Site& s : profile.sites) {
      if (s.kind != SiteKind::kProgram) continue;
      for (size_t i = 0; i < keys.size(); ++i) {
        uint64_t k = keys[i](s.stats);
        if (k == 0) continue;
        Ranked r{k, &s};
        std::vector<Ranked>& b = best[i];
        if (b.size() < top) {
          b.push_back(r);
          std::push_heap(b.begin(), b.end(), before);
        } else if (before(r, b.front())) {
          std::pop_heap(b.begin(), b.end(), before);
          b.back() = r;
          std::push_heap(b.begin(), b.end(), before);
        }
      }
    }
  }
  std::vector<std::vector<const Site*>> lists(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    std::sort_heap(best[i].begin(), best[i].end(), before);
    lists[i].reserve(best[i].size());
    for (const Ranked& r : best[i]) lists[i].push_back(r.site);
  }
  return lists;
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
