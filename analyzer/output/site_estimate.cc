// analyzer/output/site_estimate.cc: see site_estimate.h.
#include "analyzer/output/site_estimate.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "analyzer/model/sample_estimate.h"

namespace heapsight::analyzer {
namespace {

int64_t Signed(uint64_t v) {
  return static_cast<int64_t>(std::min<uint64_t>(v, std::numeric_limits<int64_t>::max()));
}

void Scale(uint64_t& count, uint64_t& bytes, int64_t period) {
  ScaledBlocks b = ScaleLiveBlocks(Signed(count), Signed(bytes), period);
  count = static_cast<uint64_t>(b.count);
  bytes = static_cast<uint64_t>(b.bytes);
}

}  // namespace

SiteStats EstimatedSiteStats(const SiteStats& s, const Totals& t) {
  if (!t.estimated) return s;
  SiteStats e = s;
  e.alloc_count = static_cast<uint64_t>(TruncateSaturating(std::round(s.alloc_count_estimate)));
  e.alloc_bytes = static_cast<uint64_t>(TruncateSaturating(std::round(s.alloc_bytes_estimate)));
  const int64_t period = Signed(t.sample_period);
  Scale(e.live_count, e.live_bytes, period);
  Scale(e.leaked_count, e.leaked_bytes, period);
  Scale(e.peak_count, e.peak_bytes, period);
  Scale(e.inherited_count, e.inherited_bytes, period);
  return e;
}

}  // namespace heapsight::analyzer
