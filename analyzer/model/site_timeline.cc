// analyzer/model/site_timeline.cc: see site_timeline.h.
#include "analyzer/model/site_timeline.h"

#include <algorithm>

namespace heapsight::analyzer {

uint64_t LiveAtBucketOf(const std::vector<SiteBucket>& buckets, uint64_t bucket_us,
                        uint64_t time_us) {
  uint64_t begin = time_us - time_us % std::max<uint64_t>(bucket_us, 1);
  auto it = std::upper_bound(buckets.begin(), buckets.end(), begin,
                             [](uint64_t t, const SiteBucket& b) { return t < b.begin_us; });
  return it == buckets.begin() ? 0 : std::prev(it)->live;
}

SiteTimelineBuilder::SiteTimelineBuilder(uint64_t expected_duration_us, size_t max_buckets,
                                         size_t max_entries, size_t keep_while_pruning)
    : max_buckets_(std::max<size_t>(max_buckets, 2)),
      max_entries_(max_entries),
      keep_while_pruning_(keep_while_pruning) {
  uint64_t width = expected_duration_us / (max_buckets_ / 2);
  // A power of two, so that coarsening keeps bucket starts aligned.
  while (width_ < width) width_ <<= 1;
  other_delta_.assign(max_buckets_, 0);
  other_allocated_.assign(max_buckets_, 0);
}

SiteTimelineBuilder::State& SiteTimelineBuilder::At(uint32_t site, uint64_t time_us) {
  while (time_us / width_ >= max_buckets_) Coarsen();
  if (site >= sites_.size()) sites_.resize(site + size_t{1});
  return sites_[site];
}

SiteBucket& SiteTimelineBuilder::Entry(State& s, uint64_t time_us) {
  uint64_t begin = time_us - time_us % width_;
  if (s.buckets.empty() || s.buckets.back().begin_us != begin) {
    s.buckets.push_back(SiteBucket{begin, s.live, 0});
    ++entries_;
  }
  return s.buckets.back();
}

void SiteTimelineBuilder::Live(uint32_t site, uint64_t time_us, uint64_t live_bytes) {
  State& s = At(site, time_us);
  if (s.folded) {
    other_delta_[time_us / width_] += live_bytes - s.live;
  } else {
    Entry(s, time_us).live = live_bytes;
    s.max_live = std::max(s.max_live, live_bytes);
  }
  s.live = live_bytes;
  MaybePrune();
}

void SiteTimelineBuilder::Allocated(uint32_t site, uint64_t time_us, uint64_t bytes) {
  State& s = At(site, time_us);
  s.allocated += bytes;
  if (s.folded) {
    other_allocated_[time_us / width_] += bytes;
    return;
  }
  Entry(s, time_us).allocated += bytes;
  MaybePrune();
}

void SiteTimelineBuilder::Coarsen() {
  width_ *= 2;
  entries_ = 0;
  for (State& s : sites_) {
    size_t out = 0;
    for (size_t i = 0; i < s.buckets.size(); ++i) {
      SiteBucket b = s.buckets[i];
      b.begin_us -= b.begin_us % width_;
      if (out != 0 && s.buckets[out - 1].begin_us == b.begin_us) {
        s.buckets[out - 1].live = b.live;  // the later one's
        s.buckets[out - 1].allocated += b.allocated;
      } else {
        s.buckets[out++] = b;
      }
    }
    s.buckets.resize(out);
    entries_ += out;
  }
  for (size_t i = 0; i < max_buckets_; ++i) {
    uint64_t delta = other_delta_[i];
    uint64_t allocated = other_allocated_[i];
    other_delta_[i] = 0;
    other_allocated_[i] = 0;
    other_delta_[i / 2] += delta;
    other_allocated_[i / 2] += allocated;
  }
}

void SiteTimelineBuilder::Fold(State& s) {
  uint64_t previous = 0;
  for (const SiteBucket& b : s.buckets) {
    size_t i = b.begin_us / width_;
    other_delta_[i] += b.live - previous;
    other_allocated_[i] += b.allocated;
    previous = b.live;
  }
  entries_ -= s.buckets.size();
  s.buckets.clear();
  s.buckets.shrink_to_fit();
  s.folded = true;
}

void SiteTimelineBuilder::Keep(size_t top) {
  std::vector<uint32_t> candidates;
  for (uint32_t i = 0; i < sites_.size(); ++i) {
    if (!sites_[i].folded && !sites_[i].buckets.empty()) candidates.push_back(i);
  }
  std::vector<bool> keep(sites_.size(), false);
  // Largest first, the lower site index first among equals (the same
  // choice for the same trace).
  auto mark = [&](auto key) {
    size_t n = std::min(top, candidates.size());
    std::partial_sort(candidates.begin(), candidates.begin() + static_cast<ptrdiff_t>(n),
                      candidates.end(), [&](uint32_t a, uint32_t b) {
                        uint64_t ka = key(sites_[a]);
                        uint64_t kb = key(sites_[b]);
                        return ka != kb ? ka > kb : a < b;
                      });
    for (size_t i = 0; i < n; ++i) keep[candidates[i]] = true;
  };
  mark([](const State& s) { return s.max_live; });
  mark([](const State& s) { return s.allocated; });
  for (uint32_t i : candidates) {
    if (!keep[i]) Fold(sites_[i]);
  }
}

SiteTimeline SiteTimelineBuilder::Finish(uint64_t end_us, size_t top_sites) {
  Keep(top_sites);
  SiteTimeline out;
  out.bucket_us = width_;
  out.end_us = end_us;
  for (uint32_t i = 0; i < sites_.size(); ++i) {
    State& s = sites_[i];
    if (s.folded || s.buckets.empty()) continue;
    out.sites.push_back(SiteSeries{i, std::move(s.buckets)});
  }
  uint64_t live = 0;
  for (size_t i = 0; i < max_buckets_; ++i) {
    if (other_delta_[i] == 0 && other_allocated_[i] == 0) continue;
    live += other_delta_[i];
    out.other.push_back(SiteBucket{i * width_, live, other_allocated_[i]});
  }
  *this = SiteTimelineBuilder(0, max_buckets_, max_entries_, keep_while_pruning_);
  return out;
}

}  // namespace heapsight::analyzer
