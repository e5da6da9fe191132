// analyzer/model/live_process.cc: see live_process.h.
#include "analyzer/model/live_process.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "analyzer/model/sample_estimate.h"
#include "analyzer/model/site_classifier.h"
#include "analyzer/symbols/runtime_filter.h"
#include "analyzer/symbols/symbolizer.h"

namespace heapsight::analyzer {
namespace {

using format::Api;
using format::Record;
using format::RecordTag;

}  // namespace

LiveProcess::LiveProcess(std::string trace_path, const format::FileHeader& header,
                         uint64_t merge_window_us)
    : trace_path_(std::move(trace_path)),
      header_(header),
      compact_(format::HasCompactFrees(header)),
      merge_window_us_(merge_window_us) {
  if (format::HasAddressFrees(header)) {
    pairer_ = std::make_unique<AddressPairer>(
        (header.flags & format::kFileFlagForkChild) != 0, /*hold_slack_us=*/0,
        /*max_held=*/size_t{1} << 20);
    merge_ = std::make_unique<ChunkTimeMerge>(trace_path_);
  }
  if ((header.flags & format::kFileFlagSampled) != 0 && header.sample_period_bytes > 1) {
    sample_period_ = static_cast<double>(header.sample_period_bytes);
  }
}

LiveProcess::~LiveProcess() = default;

absl::Status LiveProcess::ApplyChunk(const std::vector<uint8_t>& chunk) {
  if (merge_ != nullptr) {
    // Address frees: into the time merge, and out of it up to the newest
    // base time less the window (chunk_time_merge.h: no chunk read later
    // holds an older event).
    if (absl::Status s = merge_->Add(chunk); !s.ok()) return s;
    return merge_->DrainBehind(merge_->newest_base_time_us(), merge_window_us_, merge_sink_);
  }
  format::ChunkDecoder decoder(chunk.data(), chunk.size(), compact_, false);
  if (!decoder.ok()) return absl::DataLossError(absl::StrCat(trace_path_, ": ", decoder.error()));
  uint32_t thread = decoder.header().thread_index;
  chunk_thread_ = thread;
  chunk_first_ = decoder.header().first_alloc_counter;
  chunk_end_ = 0;
  Record r;
  while (decoder.Next(&r)) Apply(r, thread);
  ++counters_.chunks;
  EndChunk(decoder.header().sequence);
  if (!decoder.ok()) return absl::DataLossError(absl::StrCat(trace_path_, ": ", decoder.error()));
  return absl::OkStatus();
}

absl::Status LiveProcess::AdvanceClock(uint64_t trace_time_us) {
  if (merge_ == nullptr) return absl::OkStatus();
  return merge_->DrainBehind(trace_time_us, merge_window_us_, merge_sink_);
}

absl::Status LiveProcess::DrainMerge() {
  if (merge_ == nullptr) return absl::OkStatus();
  return merge_->DrainAll(merge_sink_);
}

absl::Status LiveProcess::MergeSink::OnChunkBegin(const format::ChunkHeader&) {
  return absl::OkStatus();
}

absl::Status LiveProcess::MergeSink::OnEvents(const Event* begin, const Event* end) {
  return p_.pairer_->AddEach(begin, end, &p_.paired_, [this](const EventArray&) {
    p_.ApplyPaired();
    return absl::OkStatus();
  });
}

absl::Status LiveProcess::MergeSink::OnChunkEnd(const format::ChunkHeader&) {
  ++p_.counters_.chunks;
  return absl::OkStatus();
}

void LiveProcess::EndChunk(uint64_t sequence) {
  ThreadOrder& o = order_[chunk_thread_];
  const uint64_t end = std::max(chunk_end_, chunk_first_);
  chunk_thread_ = UINT32_MAX;
  // Every thread's chunks are numbered from 0 in each trace (a fork
  // child's and a re-attached trace's too: thread_state.cc).
  if (sequence == o.next_sequence) {
    o.next_sequence = sequence + 1;
    o.prefix_end = std::max(o.prefix_end, end);
  } else if (sequence > o.next_sequence) {
    o.ahead[sequence] = end;
    if (o.ahead.size() <= kMaxAheadChunks) return;
    // Give the gap up: the lowest chunk ahead continues the prefix.
    uint64_t lowest = UINT64_MAX;
    for (const auto& [seq, e] : o.ahead) lowest = std::min(lowest, seq);
    o.next_sequence = lowest;
  } else {
    // Below the prefix: a chunk seen twice (corrupt); nothing to learn.
    return;
  }
  for (auto it = o.ahead.find(o.next_sequence); it != o.ahead.end();
       it = o.ahead.find(o.next_sequence)) {
    o.prefix_end = std::max(o.prefix_end, it->second);
    ++o.next_sequence;
    o.ahead.erase(it);
  }
}

void LiveProcess::Apply(const Record& r, uint32_t thread_index) {
  if (r.time_us > counters_.last_time_us && r.tag != RecordTag::kStackNode &&
      r.tag != RecordTag::kBlockClasses) {
    counters_.last_time_us = r.time_us;
  }
  switch (r.tag) {
    case RecordTag::kAlloc:
      Allocate(r.id, r.api, r.size, r.stack, thread_index);
      break;
    case RecordTag::kFree:
      if (compact_) {
        FreeCompact(r.stack, r.size);
      } else {
        Free(r.id);
      }
      break;
    case RecordTag::kRealloc:
      if (compact_) {
        FreeCompact(r.old_stack, r.old_size);
      } else {
        Free(r.old_id);
      }
      Allocate(r.id, r.api, r.size, r.stack, thread_index);
      break;
    case RecordTag::kInherited:
      Inherit(r);
      break;
    case RecordTag::kStackNode:
      stack_nodes_.Define(r.stack_node.node, r.stack_node.parent, r.stack_node.ip);
      break;
    case RecordTag::kModule:
      modules_.push_back(ModuleFromRecord(r.module, r.time_us));
      break;
    case RecordTag::kModuleUnload:
      UnloadModule(modules_, r.module.id, r.time_us);
      break;
    case RecordTag::kRss:
      counters_.rss_bytes = r.rss_bytes;
      break;
    case RecordTag::kProcess:
      exe_ = std::string(r.process.executable);
      argv_.assign(r.process.argv.begin(), r.process.argv.end());
      ppid_ = r.process.parent_pid;
      parent_trace_ = std::string(r.process.parent_trace);
      break;
    case RecordTag::kMarker:
      ++marker_count_;
      last_marker_ = std::string(r.marker_name);
      break;
    case RecordTag::kEnd:
      ended_ = true;
      end_reason_ = r.end.reason;
      exit_status_ = r.end.exit_status;
      break;
    case RecordTag::kExecFailed:
      ended_ = false;
      end_reason_ = format::EndReason::kExit;
      break;
    case RecordTag::kLeakScan: {
      // Which scan counts: leak_scan_tracker.h's rule, AnalyzeTrace's too.
      const Record::LeakScanFields& l = r.leak_scan;
      if (!leak_scan_.OnLeakScan(l, &leak_data_)) break;
      last_scan_.scan = l.scan;
      for (int c = 0; c < format::kLeakClassCount; ++c) {
        last_scan_.blocks[c] = l.class_blocks[c];
        last_scan_.bytes[c] = l.class_bytes[c];
      }
      break;
    }
    case RecordTag::kBlockClasses:
      if (compact_) {
        leak_scan_.OnCompactBlockClasses(r.block_classes, compact_index_);
      } else {
        leak_scan_.OnBlockClasses(r.block_classes);
      }
      break;
    default:  // kThreadStart, kFork, kExec, kLost, kAllocFailed, kFreeError
      break;
  }
}

void LiveProcess::ApplyPaired() {
  for (const Event& e : paired_) {
    if (e.time_us > counters_.last_time_us && e.tag != RecordTag::kStackNode &&
        e.tag != RecordTag::kBlockClasses) {
      counters_.last_time_us = e.time_us;
    }
    switch (e.tag) {
      case RecordTag::kAlloc:
        Allocate(e.id, e.api, e.size, e.stack, format::AllocIdThread(e.id));
        continue;
      case RecordTag::kFree:
        Free(e.id);
        continue;
      case RecordTag::kRealloc:
        Free(e.old_id);
        Allocate(e.id, e.api, e.size, e.stack, format::AllocIdThread(e.id));
        continue;
      default:
        break;
    }
    if (e.full != nullptr) {
      // A held event of another thread may come out with this one's.
      Apply(*e.full, e.stream);
      continue;
    }
    // The other records, back from their Events (chunk_events.h's fields).
    Record r;
    r.tag = e.tag;
    r.api = e.api;
    r.time_us = e.time_us;
    r.id = e.id;
    r.size = e.size;
    r.stack = e.stack;
    switch (e.tag) {
      case RecordTag::kStackNode:
        r.stack_node = {e.value, e.old_id, e.size};
        break;
      case RecordTag::kModuleUnload:
        r.module.id = e.value;
        break;
      case RecordTag::kRss:
        r.rss_bytes = e.value;
        break;
      default:
        break;
    }
    Apply(r, e.stream);
  }
}

uint32_t LiveProcess::SiteFor(uint64_t stack, Api api) {
  if (uint32_t site = site_index_.Find(stack, api); site != SiteIndex::kNone) return site;
  auto site = static_cast<uint32_t>(sites_.size());
  site_index_.Insert(stack, api, site);
  LiveSite s;
  s.site.stack = stack;
  s.site.api = api;
  sites_.push_back(s);
  return site;
}

void LiveProcess::AddLive(uint32_t site, uint64_t size) {
  SiteStats& s = sites_[site].site.stats;
  ++s.live_count;
  s.live_bytes += size;
  ++counters_.live_blocks;
  counters_.live_bytes += size;
  if (sample_period_ > 1) {
    estimated_live_bytes_ += SampleWeight(size, sample_period_) * static_cast<double>(size);
    counters_.peak_bytes = std::max(
        counters_.peak_bytes, static_cast<uint64_t>(TruncateSaturating(estimated_live_bytes_)));
  } else {
    counters_.peak_bytes = std::max(counters_.peak_bytes, counters_.live_bytes);
  }
}

void LiveProcess::RemoveLive(const LiveBlock& block) {
  SiteStats& s = sites_[block.site].site.stats;
  --s.live_count;
  s.live_bytes -= block.size;
  --counters_.live_blocks;
  counters_.live_bytes -= block.size;
  if (sample_period_ > 1) {
    estimated_live_bytes_ -= SampleWeight(block.size, sample_period_) *
                             static_cast<double>(block.size);
    if (estimated_live_bytes_ < 0) estimated_live_bytes_ = 0;
  }
}

void LiveProcess::Allocate(uint64_t id, Api api, uint64_t size, uint64_t stack,
                           uint32_t thread_index) {
  uint32_t site = SiteFor(stack, api);
  SiteStats& s = sites_[site].site.stats;
  ++s.alloc_count;
  s.alloc_bytes += size;
  if (sample_period_ > 1) {
    double w = SampleWeight(size, sample_period_);
    s.alloc_count_estimate += w;
    s.alloc_bytes_estimate += w * static_cast<double>(size);
  }
  ++counters_.allocs;
  counters_.bytes_allocated += size;
  (void)thread_index;
  if (format::AllocIdThread(id) == chunk_thread_) {
    chunk_end_ = std::max(chunk_end_, format::AllocIdCounter(id) + 1);
  }
  // Freed before we read its allocation (another thread's chunk came first).
  if (!pending_frees_.empty() && pending_frees_.erase(id) != 0) {
    ++counters_.frees;
    counters_.pending_frees = pending_frees_.size();
    return;
  }
  if (compact_ && compact_index_.TakePending(stack, size)) {  // likewise, compact
    ++counters_.frees;
    counters_.pending_frees = pending_frees_.size() + compact_index_.pending();
    return;
  }
  if (!live_.Insert(id, LiveBlock{size, site})) return;  // a reused id: corrupt
  if (compact_) compact_index_.Add(stack, size, id);
  AddLive(site, size);
}

void LiveProcess::Inherit(const Record& r) {
  uint32_t site = SiteFor(r.stack, r.api);
  if (!live_.Insert(r.id, LiveBlock{r.size, site})) return;
  if (compact_) compact_index_.Add(r.stack, r.size, r.id);
  SiteStats& s = sites_[site].site.stats;
  ++s.inherited_count;
  s.inherited_bytes += r.size;
  AddLive(site, r.size);
}

void LiveProcess::Free(uint64_t id) {
  LiveBlock block;
  if (live_.Erase(id, &block)) {
    RemoveLive(block);
    ++counters_.frees;
    leak_scan_.Forget(id);
    return;
  }
  // Its allocation may still be in its thread's buffer, or in a chunk
  // written late: a counter in no chunk applied yet is waiting, one in the
  // thread's chunks applied in order (or earlier in this chunk) is
  // unmatched (ThreadOrder).
  const uint32_t thread = format::AllocIdThread(id);
  const uint64_t counter = format::AllocIdCounter(id);
  bool passed = thread == chunk_thread_ && counter >= chunk_first_ && counter < chunk_end_;
  if (!passed) {
    auto o = order_.find(thread);
    passed = o != order_.end() && counter < o->second.prefix_end;
  }
  if (!passed && pending_frees_.size() < kMaxPendingFrees) {
    pending_frees_.insert(id);
    counters_.pending_frees = pending_frees_.size();
  } else {
    ++counters_.unmatched_frees;
  }
}

// A compact free: the oldest live block of its stack and size
// (compact_free_index.h); none yet: the next one to arrive.
void LiveProcess::FreeCompact(uint64_t stack, uint64_t size) {
  uint64_t id;
  if (compact_index_.Take(stack, size, &id)) {
    Free(id);
    return;
  }
  if (compact_index_.AddPending(stack, size, kMaxPendingFrees)) {
    counters_.pending_frees = pending_frees_.size() + compact_index_.pending();
  } else {
    ++counters_.unmatched_frees;
  }
}

void LiveProcess::ClassifySites() {
  if (symbolizer_ == nullptr || symbolizer_modules_ != modules_.size()) {
    // New modules: a new symbolizer that keeps the debug info read so far.
    auto next = std::make_shared<Symbolizer>(modules_);
    if (symbolizer_ != nullptr) next->AdoptSessions(*symbolizer_);
    symbolizer_ = std::move(next);
    symbolizer_modules_ = modules_.size();
  }
  for (LiveSite& s : sites_) {
    if (s.classified) continue;
    // Final once every node of the stack and every frame's module is known.
    bool provisional = false;
    s.site.kind = SiteClassifier::ClassifyWalking(s.site.stack, stack_nodes_, *symbolizer_,
                                                  &provisional);
    s.classified = !provisional;
  }
}

ProcessProfile LiveProcess::Snapshot(bool with_stacks) {
  ClassifySites();
  ProcessProfile p;
  p.trace_path = trace_path_;
  p.header = header_;
  p.pid = header_.pid;
  p.ppid = ppid_ != 0 ? ppid_ : header_.ppid;
  p.exe = exe_;
  p.argv = argv_;
  p.parent_trace = parent_trace_;
  p.complete = ended_;
  p.end_reason = end_reason_;
  p.exit_status = exit_status_;
  p.duration_us = counters_.last_time_us;
  if (with_stacks) {
    p.modules = modules_;
    p.stack_nodes = stack_nodes_;
  }
  p.symbolizer = symbolizer_;
  p.sites.reserve(sites_.size());
  for (const LiveSite& s : sites_) {
    Site site = s.site;
    site.stats.leaked_count = site.stats.live_count;
    site.stats.leaked_bytes = site.stats.live_bytes;
    p.sites.push_back(site);
  }

  // Totals, trace_model.h's definitions (runtime sites apart).
  Totals& t = p.totals;
  const bool sampled = sample_period_ > 1;
  const int64_t period = sampled ? static_cast<int64_t>(sample_period_) : 1;
  t.estimated = sampled;
  t.sample_period = sampled ? static_cast<uint64_t>(period) : 0;
  t.temporary_known = false;
  t.compact_frees = compact_;
  t.unmatched_frees = counters_.unmatched_frees;
  t.peak_bytes = counters_.peak_bytes;
  for (const Site& site : p.sites) {
    const SiteStats& s = site.stats;
    uint64_t allocs = s.alloc_count;
    uint64_t bytes = s.alloc_bytes;
    if (sampled) {
      allocs = static_cast<uint64_t>(TruncateSaturating(std::round(s.alloc_count_estimate)));
      bytes = static_cast<uint64_t>(TruncateSaturating(std::round(s.alloc_bytes_estimate)));
    }
    ScaledBlocks live = ScaleLiveBlocks(static_cast<int64_t>(s.live_count),
                                        static_cast<int64_t>(s.live_bytes), period);
    ScaledBlocks inherited = ScaleLiveBlocks(static_cast<int64_t>(s.inherited_count),
                                             static_cast<int64_t>(s.inherited_bytes), period);
    if (site.kind == SiteKind::kRuntime) {
      p.runtime_totals.allocs += allocs;
      p.runtime_totals.bytes_allocated += bytes;
      p.runtime_totals.leaked_bytes += static_cast<uint64_t>(live.bytes);
      p.runtime_totals.leaked_blocks += static_cast<uint64_t>(live.count);
      continue;
    }
    if (sampled) {
      t.sampled_allocs += s.alloc_count;
      t.sampled_bytes += s.alloc_bytes;
    }
    t.allocs_by_api[static_cast<size_t>(site.api)] += allocs;
    t.allocs += allocs;
    t.bytes_allocated += bytes;
    t.leaked_bytes += static_cast<uint64_t>(live.bytes);
    t.leaked_blocks += static_cast<uint64_t>(live.count);
    t.inherited_bytes += static_cast<uint64_t>(inherited.bytes);
    t.inherited_blocks += static_cast<uint64_t>(inherited.count);
  }
  uint64_t had = t.allocs + t.inherited_blocks;
  t.frees = had > t.leaked_blocks ? had - t.leaked_blocks : 0;
  if (t.peak_bytes < t.leaked_bytes) t.peak_bytes = t.leaked_bytes;

  // The last scan's classes of the blocks still live.
  p.leak_classes.scanned = leak_data_.scanned;
  p.leak_classes.scan = leak_data_.scan;
  p.leak_classes.reason = leak_data_.reason;
  p.leak_classes.duration_us = leak_data_.duration_us;
  p.leak_classes.threads_stopped = leak_data_.threads_stopped;
  p.leak_classes.threads_missed = leak_data_.threads_missed;
  p.leak_classes.root_bytes = leak_data_.root_bytes;
  leak_scan_.AddLiveClasses(&p.leak_classes,
                            [&](uint64_t id, uint64_t* stack, Api* api, uint64_t* size) {
                              LiveBlock b;
                              if (!live_.Find(id, &b)) return false;
                              const Site& site = p.sites[b.site];
                              *stack = site.stack;
                              *api = site.api;
                              *size = b.size;
                              return true;
                            });
  return p;
}

}  // namespace heapsight::analyzer
