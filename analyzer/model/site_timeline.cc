// analyzer/model/site_timeline.cc: see site_timeline.h.
#include "analyzer/model/site_timeline.h"

#include <algorithm>
#include <limits>

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
    // Bucket numbers are below 2^31 (the markers of State::current above).
    : max_buckets_(std::clamp<size_t>(max_buckets, 2, size_t{1} << 31)),
      max_entries_(max_entries),
      keep_while_pruning_(keep_while_pruning) {
  uint64_t width = expected_duration_us / (max_buckets_ / 2);
  // A power of two, so that coarsening keeps bucket starts aligned.
  int shift = 0;
  while ((uint64_t{1} << shift) < width) ++shift;
  SetWidth(shift);
  other_delta_.assign(max_buckets_, 0);
  other_allocated_.assign(max_buckets_, 0);
}

void SiteTimelineBuilder::SetWidth(int shift) {
  shift_ = shift;
  width_ = uint64_t{1} << shift;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  // Every time fits once width_ * max_buckets_ exceeds the largest time.
  last_us_ = width_ > kMax / max_buckets_ ? kMax : width_ * max_buckets_ - 1;
}

void SiteTimelineBuilder::Grow(uint32_t site, uint64_t time_us) {
  while (time_us > last_us_) Coarsen();
  if (site >= sites_.size()) sites_.resize(site + size_t{1});
}

void SiteTimelineBuilder::Store(State& s, uint32_t site) {
  log_.push_back({site, s.current, s.live, s.current_allocated});
}

void SiteTimelineBuilder::Coarsen() {
  SetWidth(shift_ + 1);
  // Neighbours of a site merge: the later live bytes, the sum of the
  // allocated bytes. tail[site] is the site's newest entry kept so far.
  std::vector<uint32_t> tail(sites_.size(), kNone);
  size_t out = 0;
  for (size_t i = 0; i < log_.size(); ++i) {
    LogEntry e = log_[i];
    e.bucket >>= 1;
    uint32_t& t = tail[e.site];
    if (t != kNone && log_[t].bucket == e.bucket) {
      log_[t].live = e.live;
      log_[t].allocated += e.allocated;
    } else {
      t = static_cast<uint32_t>(out);
      log_[out++] = e;
    }
  }
  log_.resize(out);
  // A site's newest bucket takes in the stored one it now shares a number
  // with (its live bytes are the later ones).
  bool merged = false;
  for (uint32_t site = 0; site < sites_.size(); ++site) {
    State& s = sites_[site];
    if (s.current >= kFolded) continue;
    s.current >>= 1;
    uint32_t t = tail[site];
    if (t != kNone && log_[t].bucket == s.current) {
      s.current_allocated += log_[t].allocated;
      log_[t].site = kNone;  // dropped below
      merged = true;
    }
  }
  if (merged) {
    std::erase_if(log_, [](const LogEntry& e) { return e.site == kNone; });
  }
  entries_ = log_.size();
  for (const State& s : sites_) entries_ += s.current < kFolded ? 1 : 0;
  for (size_t i = 0; i < max_buckets_; ++i) {
    uint64_t delta = other_delta_[i];
    uint64_t allocated = other_allocated_[i];
    other_delta_[i] = 0;
    other_allocated_[i] = 0;
    other_delta_[i / 2] += delta;
    other_allocated_[i / 2] += allocated;
  }
}

void SiteTimelineBuilder::FoldAll(const std::vector<bool>& fold) {
  // Each folded site's live-byte changes bucket by bucket, from 0.
  std::vector<uint64_t> previous(sites_.size(), 0);
  // Through iterators: a deque's operator[] divides its way to the block
  // of each entry (cc1plus: 387 k entries, two thirds of Finish's
  // instructions).
  auto out = log_.begin();
  for (auto it = log_.begin(); it != log_.end(); ++it) {
    const LogEntry& e = *it;
    if (!fold[e.site]) {
      *out++ = e;
      continue;
    }
    other_delta_[e.bucket] += e.live - previous[e.site];
    other_allocated_[e.bucket] += e.allocated;
    previous[e.site] = e.live;
    --entries_;
  }
  log_.erase(out, log_.end());
  for (uint32_t site = 0; site < sites_.size(); ++site) {
    if (!fold[site]) continue;
    State& s = sites_[site];
    other_delta_[s.current] += s.live - previous[site];
    other_allocated_[s.current] += s.current_allocated;
    s.current = kFolded;
    --entries_;
  }
}

void SiteTimelineBuilder::Keep(size_t top) {
  std::vector<uint32_t> candidates;
  for (uint32_t i = 0; i < sites_.size(); ++i) {
    if (sites_[i].current < kFolded) candidates.push_back(i);
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
  std::vector<bool> fold(sites_.size(), false);
  bool any = false;
  for (uint32_t i : candidates) {
    if (!keep[i]) fold[i] = any = true;
  }
  if (any) FoldAll(fold);
}

SiteTimeline SiteTimelineBuilder::Finish(uint64_t end_us, size_t top_sites) {
  Keep(top_sites);
  SiteTimeline out;
  out.bucket_us = width_;
  out.end_us = end_us;
  // Every site left unfolded is kept: its stored buckets (log_ holds only
  // theirs), then its newest.
  std::vector<uint32_t> index(sites_.size(), kNone);
  for (uint32_t site = 0; site < sites_.size(); ++site) {
    if (sites_[site].current >= kFolded) continue;
    index[site] = static_cast<uint32_t>(out.sites.size());
    out.sites.push_back(SiteSeries{site, {}});
  }
  for (const LogEntry& e : log_) {
    out.sites[index[e.site]].buckets.push_back(
        SiteBucket{uint64_t{e.bucket} << shift_, e.live, e.allocated});
  }
  for (SiteSeries& series : out.sites) {
    const State& s = sites_[series.site];
    series.buckets.push_back(SiteBucket{uint64_t{s.current} << shift_, s.live, s.current_allocated});
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
