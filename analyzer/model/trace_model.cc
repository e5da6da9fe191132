// analyzer/model/trace_model.cc: the streaming analysis behind AnalyzeTrace. See
// trace_model.h for the definitions of every number.
#include "analyzer/model/trace_model.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "analyzer/model/address_pairing.h"
#include "analyzer/model/compact_free_index.h"
#include "analyzer/model/fork_inheritance.h"
#include "analyzer/model/growth_tracker.h"
#include "analyzer/model/leak_scan_tracker.h"
#include "analyzer/model/site_timeline.h"
#include "analyzer/model/live_set.h"
#include "analyzer/model/paged_live_set.h"
#include "analyzer/model/peak_tracker.h"
#include "analyzer/model/progress.h"
#include "analyzer/model/sample_estimate.h"
#include "analyzer/model/site_classifier.h"
#include "analyzer/model/site_index.h"
#include "analyzer/model/task_gate.h"
#include "analyzer/symbols/runtime_filter.h"
#include "analyzer/model/stream_merger.h"
#include "analyzer/symbols/symbol_names.h"
#include "analyzer/symbols/symbolizer.h"

namespace heapsight::analyzer {

static_assert(kSizeBuckets == kEventSizeBuckets);
int SizeBucket(uint64_t size) { return EventSizeBucket(size); }

namespace {

using format::Api;
using format::Record;
using format::RecordTag;

constexpr size_t kMaxStackDepth = 4096;
constexpr size_t kMaxTimelinePoints = 2000;
constexpr size_t kMaxRssPoints = 4000;
// Every trace reports progress (one call per 64Ki events): size says little
// about time (a regular trace compresses 100:1), and the CLI's bar
// (cli/progress_bar.h) itself waits a second before it draws.
constexpr uint64_t kProgressMinBytes = 0;

struct ThreadState {
  uint64_t last_alloc_id = 0;
  bool last_alloc_valid = false;
  uint64_t allocated_upto = 0;  // counters below this were allocated already
};

// The event loop; one instance per AnalyzeTrace call.
class Analysis {
 public:
  Analysis(StreamMerger& merger, const AnalyzeOptions& options, ProcessProfile& profile)
      : merger_(merger),
        options_(options),
        p_(profile),
        threads_(merger.stream_count()),
        compact_(format::HasCompactFrees(merger.header())) {
    for (size_t s = 0; s < merger.stream_count(); ++s) {
      stream_of_thread_[merger.thread_index(s)] = s;
    }
    uint64_t estimate = merger.max_base_time_us();
    timeline_interval_us_ = std::max<uint64_t>(1, estimate / (kMaxTimelinePoints / 2));
    series_ = HeapTimelineBuilder(estimate);
    site_series_ = SiteTimelineBuilder(estimate);
    if ((merger.header().flags & format::kFileFlagSampled) != 0) {
      sample_period_ = static_cast<double>(merger.header().sample_period_bytes);
    }
    sampled_ = sample_period_ > 1;
    UpdateRare();
    if (options.track_growth) {
      // The window is the last growth_window of the trace, as far as the
      // chunk headers tell its length (the largest chunk base time: a lower
      // bound, close to the end in all but the smallest traces).
      double fraction = std::clamp(options.growth_window, 0.0, 1.0);
      growth_ = std::make_unique<GrowthTracker>(
          static_cast<uint64_t>(static_cast<double>(estimate) * (1.0 - fraction)));
    }
    exact_ = !sampled_ && growth_ == nullptr && !compact_;
    if (format::HasAddressFrees(merger.header())) {
      pairer_ = std::make_unique<AddressPairer>(
          (merger.header().flags & format::kFileFlagForkChild) != 0);
    }
    if (options.progress != nullptr && merger.file_size() >= kProgressMinBytes) {
      progress_ = options.progress;
    }
  }

  // A version-6 fork child: its inherited blocks as the parent's trace has
  // them (fork_inheritance.h). Not owned; outlives the analysis.
  void SetInheritance(const ForkInheritance* inheritance) {
    inheritance_ = inheritance;
    if (pairer_ != nullptr) pairer_->SetInheritance(&inheritance->blocks);
  }

  absl::Status Run() {
    // The merge runs on this thread (StreamMerger::NextRun): the decode
    // workers stamp each event with its stream, and a run (for a one-thread
    // trace, the rest of a chunk) costs a few time comparisons. A merging
    // thread of its own cost more in wake-ups and cache-line transfers
    // than it saved (docs/performance.md, "The feed").
    StreamMerger::Run run;
    uint64_t done = 0;
    while (merger_.NextRun(&run)) {
      const Event* batch = run.begin;
      const size_t count = static_cast<size_t>(run.end - run.begin);
      // The helper starts before the batch that completes the first
      // kWarmAfterEvents is analyzed (that batch's modules and stack nodes
      // read ahead), so that its DWARF work runs beside the classifier's
      // first symbol tables instead of after them.
      if (!warm_started_ && done + count >= kWarmAfterEvents) StartWarmSymbolizer(batch, count);
      // The live set's memory a release (IsRelease: a free or realloc of
      // a block not paired in its chunk) will read is loaded ahead, in
      // three stages, by LookAhead at each release: the page index's entry
      // kSlotAhead releases before it, then (the entry loaded by then) the
      // page's header kIndexAhead releases before it, then (the header
      // loaded) the page's values kValueAhead releases before it. The
      // releases are listed per chunk by the decode workers
      // (DecodedChunk::released); a stream's place in its chunk's list
      // carries over from run to run. Allocations go to their thread's
      // newest page, which is in cache. The events themselves were written
      // by a decode worker on another core: their lines are loaded
      // kStreamAhead events ahead (python, 2026-12-06: without it a fifth
      // of Run's samples sat on the first look at an event; without the
      // first stage a tenth sat on the index entry, which the event stream
      // keeps evicting).
      if (run.starts != nullptr) {
        release_cursor_[run.stream] = run.starts->released.data();
        // Allocate counts only the runtime's allocations, downwards.
        for (int b = 0; b < kSizeBuckets; ++b) {
          p_.size_histogram[b] += run.starts->allocation_sizes[b];
        }
      }
      if (pairer_ != nullptr) [[unlikely]] {
        ProcessAddressRun(batch, count);  // address frees (version 6)
      } else {
        ProcessRun(batch, count, run.stream);
      }
      done += count;
      // Far enough into the pass that the rest of it hides the runtime's
      // DWARF (StartWarmSymbolizer).
      if (!runtime_gate_opened_ && done >= kRuntimeDwarfAfterEvents) {
        runtime_gate_.Open();
        runtime_gate_opened_ = true;
      }
      if (late_runtime_pending_) OpenLateRuntimeGate();
      if (progress_ != nullptr && (done & ~uint64_t{0xffff}) != ((done - count) & ~uint64_t{0xffff})) {
        progress_->Update(merger_.blocks_read(), merger_.block_count());
      }
    }
    if (pairer_ != nullptr) FinishPairing();
    runtime_gate_.Close();  // the pass ended first: the DWARF stays lazy
    if (progress_ != nullptr) progress_->Finish();
    if (!merger_.status().ok()) return merger_.status();
    Finish();
    return absl::OkStatus();
  }

 private:
  // One run of the merge, as Run analyzes it (the version-4 path).
  [[gnu::always_inline]] void ProcessRun(const Event* batch, size_t count, size_t stream) {
    release_next_ = release_cursor_[stream];
    constexpr size_t kStreamAhead = 64;
    // The stream's prefetch address is computed as an integer: near the
    // run's end it points past the events (a prefetch never faults), and
    // a pointer would need clamping (3 instructions an event).
    const uintptr_t stream_ahead =
        reinterpret_cast<uintptr_t>(batch) + kStreamAhead * sizeof(Event);
    if (exact_) {
      for (size_t i = 0; i < count; ++i) {
        __builtin_prefetch(reinterpret_cast<const void*>(stream_ahead + i * sizeof(Event)));
        Process</*kExact=*/true>(batch[i], stream);
      }
    } else {
      for (size_t i = 0; i < count; ++i) {
        __builtin_prefetch(reinterpret_cast<const void*>(stream_ahead + i * sizeof(Event)));
        Process</*kExact=*/false>(batch[i], stream);
      }
    }
    release_cursor_[stream] = release_next_;
  }

  // Address frees: the run through the pairing stage (address_pairing.h),
  // then its events. Out of line: in Run, its loop changed how the
  // compiler inlined the version-4 path's live set (+0.5% instructions).
  [[gnu::noinline]] void ProcessAddressRun(const Event* batch, size_t count) {
    pairer_->BeginRun();
    paired_.clear();
    constexpr size_t kAddressAhead = AddressPairer::kPrefetchAhead;
    for (size_t i = 0; i < count; ++i) {
      if (i + kAddressAhead < count) pairer_->Prefetch(batch[i + kAddressAhead]);
      pairer_->Add(batch[i], &paired_);
    }
    ProcessPaired();
  }

  // Address frees: the events the pairing stage made (paired_), each with
  // its own stream, their releases listed here for LookAhead as the decode
  // workers list a version-4 chunk's.
  [[gnu::noinline]] void ProcessPaired() {
    released_.clear();
    for (const Event& e : paired_) {
      if (IsRelease(e)) released_.push_back(e.tag == RecordTag::kFree ? e.id : e.old_id);
    }
    released_.insert(released_.end(), DecodedChunk::kReleasedPad, 0);
    release_next_ = released_.data();
    if (exact_) {
      for (const Event& e : paired_) Process</*kExact=*/true>(e, e.stream);
    } else {
      for (const Event& e : paired_) Process</*kExact=*/false>(e, e.stream);
    }
  }

  // The end of an address-frees trace: the events still held, and the
  // pairing's anomalies in the totals (a free of no live block is an
  // unmatched free, as in version 4) and the warnings.
  void FinishPairing() {
    pairer_->BeginRun();
    paired_.clear();
    pairer_->Finish(&paired_);
    ProcessPaired();
    const AddressPairingStats& stats = pairer_->stats();
    p_.totals.unmatched_frees += stats.unknown_frees;
    for (std::string& w : AddressPairingWarnings(stats)) p_.warnings.push_back(std::move(w));
    if (stats.inherited_unresolved != 0) {
      // A fork child's blocks the parent's trace did not give (a table
      // trace's child has every one's stack and size): said, not silent.
      const bool missing = inheritance_ == nullptr || !inheritance_->missing.empty();
      p_.warnings.push_back(absl::StrCat(
          stats.inherited_unresolved,
          " blocks inherited at the fork show no allocation stack, and the size the child "
          "recorded (the usable size in traces written before 2026-12-08 and for mmap'ed "
          "blocks): ",
          missing ? (inheritance_ == nullptr ? std::string("the parent's trace was not read")
                                             : inheritance_->missing)
                  : absl::StrCat("they were not live at the fork in the parent's trace ",
                                 inheritance_->parent_path)));
    }
    if (options_.address_pairing != nullptr) *options_.address_pairing = stats;
    paired_.Release();
  }

  // LookAhead's distances, in releases (python: about one event in three
  // is one). DecodedChunk::kReleasedPad covers the farthest.
  static constexpr size_t kSlotAhead = 16;
  static constexpr size_t kIndexAhead = 11;
  static constexpr size_t kValueAhead = 4;
  static_assert(kSlotAhead > kIndexAhead && kIndexAhead > kValueAhead &&
                kSlotAhead < DecodedChunk::kReleasedPad);

  // Called at each release (IsRelease) of the run, in order: the three
  // stages of the look-ahead for the releases ahead of it in its chunk's
  // list, and the cursor moves on. The list ends in zeros (no release).
  [[gnu::always_inline]] void LookAhead() {
    const uint64_t* next = release_next_;
    if (uint64_t id = next[kSlotAhead]; id != 0) live_set_.PrefetchSlot(id);
    if (uint64_t id = next[kIndexAhead]; id != 0) live_set_.Prefetch(id);
    if (uint64_t id = next[kValueAhead]; id != 0) live_set_.PrefetchValue(id);
    release_next_ = next + 1;
  }

  // The per-event functions are inlined into the pass (Run): called for
  // every event, their calls and prologues were a tenth of its instructions.
  template <bool kExact>
  [[gnu::always_inline]] void Process(const Event& r, size_t stream) {
    if (r.time_us > now_) now_ = r.time_us;
    if (now_ >= time_check_us_) [[unlikely]] TimeChecks(r.time_us);
    // The two commonest events first, before the switch's jump table.
    if (r.tag == RecordTag::kAlloc) {
      Allocate<kExact>(r.id, r.api, r.size, r.stack, stream, (r.paired & pair_in_chunk_) != 0);
      return;
    }
    if (r.tag == RecordTag::kFree && r.code == 0) {
      if ((r.paired & pair_in_chunk_) != 0) {
        FreePaired<kExact>(r.id, r.size, r.stack, static_cast<Api>(r.value), r.api, stream,
                           /*from_free=*/true);
      } else {
        if (r.paired == 0) LookAhead();  // IsRelease(r)
        Free<kExact>(r.id, r.api, stream, /*from_free=*/true);
      }
      return;
    }
    switch (r.tag) {
      // kAlloc and an exact kFree: above.
      case RecordTag::kFree:  // compact: names a stack and size (chunk_events.h)
        FreeCompact(r, stream);
        break;
      case RecordTag::kRealloc:
        if ((r.paired & kPairedOldBlock) != 0) {
          // The old block's allocation is earlier in this chunk's events.
          const Event& a = (&r)[-static_cast<ptrdiff_t>(r.old_id)];
          if (pair_in_chunk_) {
            FreePaired<kExact>(a.id, a.size, a.stack, a.api, r.api, stream, /*from_free=*/false);
          } else {
            Free<kExact>(a.id, r.api, stream, /*from_free=*/false);
          }
        } else {
          LookAhead();  // IsRelease(r)
          Free<kExact>(r.old_id, r.api, stream, /*from_free=*/false);
        }
        if (r.value > now_) now_ = r.value;  // the new block's time
        Allocate<kExact>(r.id, r.api, r.size, r.stack, stream, (r.paired & pair_in_chunk_) != 0);
        break;
      case RecordTag::kInherited:
        Inherit(r);
        break;
      case RecordTag::kStackNode:
        if (p_.stack_nodes.Define(r.value, r.old_id, r.size) && classifier_ != nullptr &&
            classifier_modules_ == p_.modules.size()) {
          // Classified as the trie grows (SiteClassifier::Defined), under
          // the classifier ClassifyNow would use now.
          site_classifier_.Defined(r.value, r.old_id, r.size, *classifier_);
        }
        break;
      case RecordTag::kAllocFailed:
        ++p_.totals.failed_allocs;
        break;
      case RecordTag::kFreeError:
        if (r.code != static_cast<uint8_t>(format::FreeError::kMismatchedFree)) {
          ++p_.totals.bad_frees;
        }
        OnFreeError(*r.full);
        break;
      case RecordTag::kLeakScan:
        LeakScan(*r.full);
        break;
      case RecordTag::kBlockClasses:
        BlockClasses(*r.full);
        break;
      case RecordTag::kModule:
        p_.modules.push_back(ModuleFromRecord(r.full->module, r.time_us));
        break;
      case RecordTag::kModuleUnload:
        UnloadModule(p_.modules, r.value, r.time_us);
        break;
      case RecordTag::kRss:
        if (p_.rss_timeline.size() >= kMaxRssPoints) Thin(p_.rss_timeline);
        p_.rss_timeline.push_back({r.time_us, r.value});
        break;
      case RecordTag::kProcess:
        p_.exe = std::string(r.full->process.executable);
        p_.argv.assign(r.full->process.argv.begin(), r.full->process.argv.end());
        p_.ppid = r.full->process.parent_pid;
        p_.parent_trace = std::string(r.full->process.parent_trace);
        break;
      case RecordTag::kMarker:
        p_.markers.push_back(
            {r.time_us, std::string(r.full->marker_name), HeapBytes(), HeapBlocks()});
        if (at_marker_pending_ && r.full->marker_name == options_.at_marker) TakeAtTimeSnapshot();
        break;
      case RecordTag::kEnd:
        p_.complete = true;
        p_.end_reason = static_cast<format::EndReason>(r.code);
        p_.exit_status = r.full->end.exit_status;
        break;
      case RecordTag::kLost:
        p_.totals.lost_events += r.value;
        break;
      case RecordTag::kExec:
        p_.exec_path = std::string(r.full->exec_path);
        break;
      case RecordTag::kExecFailed:
        // The preload wrote kEnd(kExec) before calling exec; the exec failed
        // and the image goes on, so that end record was not its end.
        p_.complete = false;
        p_.end_reason = format::EndReason::kExit;
        break;
      default:  // kThreadStart, kFork: nothing to count
        break;
    }
  }

  uint32_t SiteFor(uint64_t stack, Api api) {
    if (uint32_t site = site_index_.Find(stack, api); site != SiteIndex::kNone) return site;
    return NewSite(stack, api);
  }

  [[gnu::noinline]] uint32_t NewSite(uint64_t stack, Api api) {
    uint32_t index = static_cast<uint32_t>(p_.sites.size());
    site_index_.Insert(stack, api, index);
    Site site;
    site.stack = stack;
    site.api = api;
    bool provisional = false;
    site.kind = ClassifyNow(stack, &provisional);
    if (provisional) provisional_.push_back(index);
    p_.sites.push_back(site);
    live_.push_back({});
    if (sample_period_ > 1) estimated_live_.push_back({});
    return index;
  }

  // Whose a new site's blocks are (runtime_filter.h), decided when the site
  // first appears, so that the heap the reports show (peak, timeline,
  // markers) is the program's, like every other total. The classifier sees
  // the modules and stack nodes read so far; a stack with a node or a
  // module not known yet is *provisional* and classified again after the
  // pass (AnalyzeTrace).
  SiteKind ClassifyNow(uint64_t stack, bool* provisional) {
    if (!options_.classify_runtime) return SiteKind::kProgram;
    if (classifier_ == nullptr || classifier_modules_ != p_.modules.size()) {
      // New modules: a new symbolizer, keeping the symbol tables read so far.
      auto next = std::make_unique<Symbolizer>(p_.modules);
      next->ShareSymbolTableClaims(table_claims_);
      if (classifier_ != nullptr) next->AdoptSessions(*classifier_);
      classifier_ = std::move(next);
      classifier_modules_ = p_.modules.size();
      site_classifier_.Reset();
    }
    return site_classifier_.Classify(stack, p_.stack_nodes, *classifier_, provisional);
  }

  bool IsRuntime(uint32_t site) const { return p_.sites[site].kind == SiteKind::kRuntime; }

  // `runtime`: IsRuntime(site). `allocated`: the block was just allocated
  // (not inherited): the site's series counts its bytes as allocated too
  // (one SiteTimelineBuilder call for both).
  template <bool kExact>
  [[gnu::always_inline]] void AddLive(uint32_t site, uint64_t size, bool runtime,
                                      bool allocated) {
    LiveCounter& live = live_[site];
    if (GrowthTracker* growth = Growth<kExact>(); growth != nullptr) {
      growth->Change(site, now_, live.bytes, live.bytes + size);
    }
    // A program block of an exact trace raises the heap the peak is taken
    // on: at its peak now, it is at a new one after this.
    peak_.Change(site, live_, /*rises=*/!runtime && size != 0 && !Sampled<kExact>());
    live.bytes += size;
    live.count += 1;
    // The runtime's blocks are not the program's heap (trace_model.h).
    if (runtime) return;
    if (allocated) {
      site_series_.AllocatedLive(site, now_, size, live.bytes);
    } else {
      site_series_.Live(site, now_, live.bytes);
    }
    heap_bytes_ += size;
    ++heap_blocks_;
    if (Sampled<kExact>()) {
      Reestimate(site);
      live_variance_ += AllocationVariance(size, sample_period_, /*bytes=*/true);
    }
    series_.Observe(now_, HeapBytesOf<kExact>());
    // The peak is where the heap the reports show is highest: the
    // estimated heap in a sampled trace (adding a block never lowers it,
    // removing one never raises it, so only additions can make a peak).
    if (HeapBytesOf<kExact>() > peak_bytes_) {
      peak_bytes_ = HeapBytesOf<kExact>();
      peak_blocks_ = HeapBlocksOf<kExact>();
      peak_time_us_ = now_;
      peak_variance_ = live_variance_;
      peak_.NewPeak();
    }
  }

  // Sampled traces: the estimated heap is the sum over sites of Go's
  // scaling of each site's live blocks (sample_estimate.h), kept exact in
  // integers by replacing the changed site's term.
  void Reestimate(uint32_t site) {
    ScaledBlocks& old = estimated_live_[site];
    ScaledBlocks now = ScaleLiveBlocks(static_cast<int64_t>(live_[site].count),
                                       static_cast<int64_t>(live_[site].bytes),
                                       static_cast<int64_t>(sample_period_));
    estimated_bytes_ += static_cast<uint64_t>(now.bytes) - static_cast<uint64_t>(old.bytes);
    estimated_blocks_ += static_cast<uint64_t>(now.count) - static_cast<uint64_t>(old.count);
    old = now;
  }

  uint64_t HeapBytes() const { return sampled_ ? estimated_bytes_ : heap_bytes_; }
  uint64_t HeapBlocks() const { return sampled_ ? estimated_blocks_ : heap_blocks_; }

  // The per-event functions come in two builds (kExact): the general one
  // reads the trace's modes (sampled_, growth_, compact_) at each use, the
  // exact one is for an exact trace without growth tracking or compact
  // frees (exact_), where these are constants. The compiler cannot keep a
  // member in a register across the pass's stores, so the general build
  // loads and tests each flag every time: python, about 10 tests an event
  // (a load and a branch each) for modes its trace never has.
  template <bool kExact>
  bool Sampled() const {
    return !kExact && sampled_;
  }
  template <bool kExact>
  GrowthTracker* Growth() const {
    return kExact ? nullptr : growth_.get();
  }
  template <bool kExact>
  bool Compact() const {
    return !kExact && compact_;
  }
  template <bool kExact>
  uint64_t HeapBytesOf() const {
    return kExact ? heap_bytes_ : HeapBytes();
  }
  template <bool kExact>
  uint64_t HeapBlocksOf() const {
    return kExact ? heap_blocks_ : HeapBlocks();
  }

  template <bool kExact>
  [[gnu::always_inline]] void RemoveLive(const LiveBlock& block) {
    LiveCounter& live = live_[block.site];
    if (GrowthTracker* growth = Growth<kExact>(); growth != nullptr) {
      growth->Change(block.site, now_, live.bytes, live.bytes - block.size);
    }
    peak_.Change(block.site, live_, /*rises=*/false);
    live.bytes -= block.size;
    live.count -= 1;
    if (IsRuntime(block.site)) return;
    site_series_.Live(block.site, now_, live.bytes);
    heap_bytes_ -= block.size;
    --heap_blocks_;
    if (Sampled<kExact>()) {
      Reestimate(block.site);
      live_variance_ -= AllocationVariance(block.size, sample_period_, /*bytes=*/true);
    }
    series_.Observe(now_, HeapBytesOf<kExact>());
  }

  // `paired`: the block's free is in its chunk (chunk_pairing.h) and
  // carries its size and site, so the block skips the live set.
  template <bool kExact>
  [[gnu::always_inline]] void Allocate(uint64_t id, Api api, uint64_t size, uint64_t stack,
                                       size_t stream, bool paired) {
    uint32_t site = SiteFor(stack, api);
    Site& site_record = p_.sites[site];
    const bool runtime = site_record.kind == SiteKind::kRuntime;
    SiteStats& s = site_record.stats;
    ++s.alloc_count;
    s.alloc_bytes += size;
    if (Sampled<kExact>()) {
      // The inverse of the sampling probability 1 - exp(-size/period); a
      // zero-byte allocation (sampled only as a thread's first) counts once.
      double w = SampleWeight(size, sample_period_);
      s.alloc_count_estimate += w;
      s.alloc_bytes_estimate += w * static_cast<double>(size);
      allocs_variance_ += AllocationVariance(size, sample_period_, /*bytes=*/false);
      bytes_variance_ += AllocationVariance(size, sample_period_, /*bytes=*/true);
    }
    // The histogram is the program's: the decoder counted every
    // allocation of the chunk (DecodedChunk::allocation_sizes, added up at
    // the chunk's first run), so a runtime block is taken out.
    if (runtime) [[unlikely]] --p_.size_histogram[EventSizeBucket(size)];
    ThreadState& t = threads_[stream];
    t.allocated_upto = format::AllocIdCounter(id) + 1;
    t.last_alloc_id = id;
    t.last_alloc_valid = true;
    // The site's series counts the bytes allocated whether or not the
    // block becomes live here (with its live bytes when it does).
    if (rare_ && AllocateRare(id, api, size, stack)) {  // freed already
      // A corrupt trace freed it twice: its paired free finds no block.
      if (paired) unpaired_.insert(id);
      if (!runtime) site_series_.Allocated(site, now_, size);
      return;
    }
    if (!paired && !live_set_.Insert(id, LiveBlock{size, site})) {
      if (!runtime) site_series_.Allocated(site, now_, size);
      ++duplicate_ids_;
      return;
    }
    if (Compact<kExact>()) compact_index_.Add(stack, size, id);
    AddLive<kExact>(site, size, runtime, /*allocated=*/true);
  }

  // Allocate's checks for what most traces never have (rare_): free errors
  // waiting for this allocation, a free of it read before it (exact or
  // compact). True if the block was freed already.
  [[gnu::noinline]] bool AllocateRare(uint64_t id, Api api, uint64_t size, uint64_t stack) {
    if (!waiting_errors_.empty()) ResolveFreeErrors(id, stack, api, size);
    if (!pending_frees_.empty() && pending_frees_.erase(id) != 0) {
      UpdateRare();
      return true;
    }
    return compact_ && compact_index_.TakePending(stack, size);
  }

  // rare_: whether Allocate must look at AllocateRare's cases. Called
  // whenever pending_frees_ or waiting_errors_ may have become empty or
  // not.
  void UpdateRare() { rare_ = compact_ || !pending_frees_.empty() || !waiting_errors_.empty(); }

  // A compact free (format::kFileFlagCompactFrees): releases the oldest
  // live block of its stack and size (compact_free_index.h), which keeps
  // every per-stack count and byte total exact; a free that finds none
  // waits for the next such block, like an exact free read before its
  // allocation.
  // Address frees (version 6) come here too, with a realloc's old block
  // released alone (kReallocOldFree, address_pairing.h): here rather than
  // in Process, whose body the version-4 pass inlines as it was.
  void FreeCompact(const Event& r, size_t stream) {
    if (r.code == kReallocOldFree) {
      Free</*kExact=*/false>(r.id, r.api, stream, /*from_free=*/false);
      return;
    }
    const bool from_free = r.code == kCompactFree;
    uint64_t id;
    if (compact_index_.Take(r.stack, r.size, &id)) {
      Free</*kExact=*/false>(id, r.api, stream, from_free);
      return;
    }
    if (compact_index_.AddPending(r.stack, r.size, size_t{1} << 24)) {
      ++frees_;
      ++p_.totals.frees_by_api[static_cast<size_t>(r.api)];
    } else {
      ++p_.totals.unmatched_frees;
    }
    if (from_free) threads_[stream].last_alloc_valid = false;
  }

  void Inherit(const Event& r) {
    uint32_t site = SiteFor(r.stack, r.api);
    SiteStats& s = p_.sites[site].stats;
    if (!waiting_errors_.empty()) ResolveFreeErrors(r.id, r.stack, r.api, r.size);
    if (!live_set_.Insert(r.id, LiveBlock{r.size, site})) {
      ++duplicate_ids_;
      return;
    }
    if (compact_) compact_index_.Add(r.stack, r.size, r.id);
    ++s.inherited_count;
    s.inherited_bytes += r.size;
    AddLive</*kExact=*/false>(site, r.size, IsRuntime(site), /*allocated=*/false);
  }

  template <bool kExact>
  [[gnu::always_inline]] void Free(uint64_t id, Api api, size_t stream, bool from_free) {
    LiveBlock block;
    if (!live_set_.Erase(id, &block)) {
      // Not live: either its allocation comes later in merged order (another
      // thread, same microsecond) or the id is unknown.
      uint32_t thread = format::AllocIdThread(id);
      auto owner = stream_of_thread_.find(thread);
      if (owner != stream_of_thread_.end() &&
          format::AllocIdCounter(id) >= threads_[owner->second].allocated_upto &&
          pending_frees_.size() < (1u << 24)) {
        pending_frees_.insert(id);
        UpdateRare();
        ++frees_;
        ++p_.totals.frees_by_api[static_cast<size_t>(api)];
      } else {
        ++p_.totals.unmatched_frees;
      }
      if (from_free) threads_[stream].last_alloc_valid = false;
      return;
    }
    Release<kExact>(block, id, api, stream, from_free);
  }

  // A block released by a free or realloc (`api`) paired with its
  // allocation in the chunk (chunk_pairing.h): it is not in the live set,
  // and its site is that of its stack and allocation api (`alloc_api`),
  // which Allocate found or made for the same block.
  template <bool kExact>
  [[gnu::always_inline]] void FreePaired(uint64_t id, uint64_t size, uint64_t stack,
                                         Api alloc_api, Api api, size_t stream,
                                         bool from_free) {
    if (!unpaired_.empty() && unpaired_.erase(id) != 0) {
      Free<kExact>(id, api, stream, from_free);
      return;
    }
    const uint32_t site = site_index_.Find(stack, alloc_api);
    ++paired_blocks_;
    Release<kExact>(LiveBlock{size, site}, id, api, stream, from_free);
  }

  // A live block `id` released by a free (`from_free`) or a realloc.
  template <bool kExact>
  [[gnu::always_inline]] void Release(const LiveBlock& block, uint64_t id, Api api,
                                      size_t stream, bool from_free) {
    ThreadState& t = threads_[stream];
    RemoveLive<kExact>(block);
    ++frees_;
    ++p_.totals.frees_by_api[static_cast<size_t>(api)];
    if (from_free && t.last_alloc_valid && t.last_alloc_id == id) {
      ++p_.sites[block.site].stats.temporary_count;
      p_.sites[block.site].stats.temporary_bytes += block.size;
    }
    if (from_free) t.last_alloc_valid = false;
  }

  // Big traces: a helper thread loads the debug info of the modules the
  // stacks seen so far run in (reading and decompressing DWARF takes tens of
  // milliseconds for libc) while the events are analyzed; AnalyzeTrace's
  // Symbolizer adopts what it loaded. Called before `batch` is analyzed:
  // its module records and stack nodes are read here, the modules and
  // nodes of earlier batches are in p_ already.
  //
  // A small trace's helper also loads the C/C++ runtime's debug info
  // (libc's: ~90 M instructions to inflate) if its stacks have frames
  // there: its report symbolizes every frame of the stacks it prints, and
  // a stack through libc (its __libc_start_call_main, start_thread, or a
  // libc function that allocates) makes the first such frame inflate it,
  // alone at the end of the report, a fifth of node's wall time and more
  // of sqlite's. Here it runs beside the pass, whose main thread leaves
  // the second core partly idle, once the pass has analyzed
  // kRuntimeDwarfAfterEvents events (a shorter pass, git's 185 k events,
  // would end before the inflation and wait for it, for a report that
  // prints no frame there), or as soon as a large symbol table is read
  // (node's: the pass waits for it, the second core idle meanwhile). Big traces keep it lazy: their pass holds
  // enough memory, and a report that prints no frame there (cc1plus's)
  // would pay for it on a busy second core.
  void StartWarmSymbolizer(const Event* batch, size_t count) {
    warm_started_ = true;
    const bool small = merger_.file_size() <= kEarlyRuntimeDwarfMaxBytes;
    if (merger_.block_count() < kWarmMinBlocks && !small) return;
    std::vector<Module> modules = p_.modules;
    std::vector<uint64_t> ips;
    ips.reserve(p_.stack_nodes.size() + count / 4);
    p_.stack_nodes.ForEach([&](uint64_t, const StackNode& n) { ips.push_back(n.ip); });
    for (size_t i = 0; i < count; ++i) {
      const Event& e = batch[i];
      if (e.tag == RecordTag::kStackNode) ips.push_back(e.size);  // Process: (node, parent, ip)
      if (e.tag == RecordTag::kModule) modules.push_back(ModuleFromRecord(e.full->module, e.time_us));
    }
    if (modules.empty() || ips.empty()) return;
    warm_symbolizer_ = std::make_unique<Symbolizer>(std::move(modules));
    bool runtime_dwarf = false;
    if (small) {
      for (uint64_t ip : ips) {
        const Module* m = warm_symbolizer_->FindModule(ip);
        // heapsight's own frames are every stack's and its debug info is
        // not compressed; the loader's Preload leaves out.
        if (m != nullptr && IsRuntimeLibrary(m->path) && !IsDynamicLoader(m->path) &&
            !absl::StartsWith(BaseName(m->path), "libheapsight")) {
          runtime_dwarf = true;
          break;
        }
      }
      if (!runtime_dwarf && merger_.block_count() < kWarmMinBlocks) {
        warm_symbolizer_.reset();
        return;
      }
    }
    // The symbol tables the classifier has started to read by the time the
    // helper gets to them (after all the DWARF) are not read again there:
    // AnalyzeTrace's Symbolizer pairs them with the helper's DWARF.
    warm_symbolizer_->ShareSymbolTableClaims(table_claims_);
    // A long pass also hides the C/C++ runtime's debug info when the small
    // traces' early read above is not taken (most reports print no frame
    // there, and it is 10 MB for libc): the helper reads it once three
    // quarters of the blocks are read (OpenLateRuntimeGate), instead of the
    // report after the pass when it prints such a frame (python: 25-50 ms
    // after the pass, libc's DWARF inflated while the analysing thread
    // waits). Short passes would wait for it at their end instead, and keep
    // Symbolize's lazy read.
    late_runtime_pending_ = !runtime_dwarf && merger_.block_count() >= kRuntimeDebugInfoMinBlocks;
    warm_thread_ = std::thread([sym = warm_symbolizer_.get(), ips = std::move(ips), runtime_dwarf,
                                gate = &runtime_gate_,
                                late = late_runtime_pending_ ? &late_runtime_gate_ : nullptr] {
      sym->Preload(ips, {}, runtime_dwarf, [gate] { return gate->Wait(); });
      if (late != nullptr && late->Wait()) sym->PreloadRuntimeDebugInfo();
    });
  }

  // Lets the helper read the runtime's debug info once the pass is three
  // quarters through its blocks (StartWarmSymbolizer).
  void OpenLateRuntimeGate() {
    if (merger_.blocks_read() * 4 < merger_.block_count() * 3) return;
    late_runtime_gate_.Open();
    late_runtime_pending_ = false;
  }

  // Stops the helper and waits for it: one still waiting at a gate (the
  // pass ended before opening it, or failed) skips the runtime's debug info.
  void JoinWarmThread() {
    runtime_gate_.Close();
    late_runtime_gate_.Close();
    if (warm_thread_.joinable()) warm_thread_.join();
  }

 public:
  ~Analysis() {
    JoinWarmThread();
    // The claims outlive this (adopted sessions keep them).
    table_claims_->OnLargeTableRead(nullptr);
  }

  // The symbolizer that classified the sites during the pass, or null.
  std::unique_ptr<Symbolizer> TakeClassifier() { return std::move(classifier_); }
  // Sites classified on a stack or modules not complete yet.
  const std::vector<uint32_t>& provisional_sites() const { return provisional_; }

  // The helper's Symbolizer once it is done, or null.
  std::unique_ptr<Symbolizer> TakeWarmSymbolizer() {
    JoinWarmThread();
    return std::move(warm_symbolizer_);
  }

 private:
  // Issue 5: reachability scans and free errors (leak_class_data.h); which
  // scan counts is leak_scan_tracker.h's rule, the live analysis's too.
  void LeakScan(const Record& r) { leak_scan_.OnLeakScan(r.leak_scan, &p_.leak_classes); }

  void BlockClasses(const Record& r) {
    if (!compact_) {
      leak_scan_.OnBlockClasses(r.block_classes);
      return;
    }
    leak_scan_.OnCompactBlockClasses(r.block_classes, compact_index_);
  }

  void OnFreeError(const Record& r) {
    FreeErrorEvent e;
    e.error = r.free_error.error;
    e.action = r.free_error.action;
    e.free_api = r.api;
    e.address = r.address;
    e.free_stack = r.stack;
    e.time_us = r.time_us;
    e.alloc_id = r.id;
    std::vector<FreeErrorEvent>& errors = p_.leak_classes.errors;
    errors.push_back(e);
    if (r.id == 0) return;
    if (LiveBlock b; live_set_.Find(r.id, &b)) {
      const Site& site = p_.sites[b.site];
      ResolveFreeError(errors.back(), site.stack, site.api, b.size);
    } else {
      // Its allocation comes later in time order, or was freed already (a
      // double free): resolved in Allocate, or after the pass.
      waiting_errors_[r.id].push_back(errors.size() - 1);
      UpdateRare();
    }
  }

  static void ResolveFreeError(FreeErrorEvent& e, uint64_t stack, Api api, uint64_t size) {
    e.alloc_known = true;
    e.alloc_api = api;
    e.alloc_size = size;
    e.alloc_stack = stack;
  }

  void ResolveFreeErrors(uint64_t id, uint64_t stack, Api api, uint64_t size) {
    auto it = waiting_errors_.find(id);
    if (it == waiting_errors_.end()) return;
    for (size_t index : it->second) {
      ResolveFreeError(p_.leak_classes.errors[index], stack, api, size);
    }
    waiting_errors_.erase(it);
    UpdateRare();
  }

  // The classes of the last scan, for the blocks still live now (the end).
  void FinishLeakClasses() {
    // At most one entry a site with blocks live now: room for them at once
    // instead of growing the map (112-byte slots, cc1plus: 54 k sites, 7
    // MB; its rehashes were a fifth of the main thread's time after the
    // pass).
    if (leak_scan_.size() != 0) {
      size_t live_sites = 0;
      for (const LiveCounter& c : live_) live_sites += c.count != 0 ? 1 : 0;
      p_.leak_classes.sites.reserve(
          p_.leak_classes.sites.size() + std::min(live_sites, leak_scan_.size()));
    }
    AddLiveClasses();
    leak_scan_.Clear();
  }

  // LeakScanTracker::AddLiveClasses over the live set, each block's
  // memory loaded ahead: the blocks come in hash order, each a wait for its
  // live-set page and value, its site record and its slot in the sites
  // map (cc1plus: 54 k blocks, most of the main thread's time in Finish).
  // First the blocks are looked up (the live set's two stages started
  // kIndexAhead and kValueAhead blocks ahead), then added in the same
  // order as AddLiveClasses (each site record loaded kSiteAhead blocks
  // ahead, the map slot of its key kSlotAhead).
  void AddLiveClasses() {
    struct Pending {
      uint64_t id;
      LeakClass cls;
      bool live = false;
      LiveBlock block;
    };
    std::vector<Pending> blocks;
    blocks.reserve(leak_scan_.size());
    leak_scan_.ForEachClassified(
        [&](uint64_t id, LeakClass cls) { blocks.push_back(Pending{id, cls, false, {}}); });
    constexpr size_t kIndexAhead = 16;
    constexpr size_t kValueAhead = 8;
    const size_t n = blocks.size();
    for (size_t i = 0; i < n; ++i) {
      if (i + kIndexAhead < n) live_set_.Prefetch(blocks[i + kIndexAhead].id);
      if (i + kValueAhead < n) live_set_.PrefetchValue(blocks[i + kValueAhead].id);
      Pending& b = blocks[i];
      b.live = live_set_.Find(b.id, &b.block);
    }
    constexpr size_t kSiteAhead = 16;
    constexpr size_t kSlotAhead = 8;
    auto key = [&](const Pending& b) {
      const Site& site = p_.sites[b.block.site];
      return std::pair<uint64_t, uint8_t>{site.stack, static_cast<uint8_t>(site.api)};
    };
    auto& sites = p_.leak_classes.sites;
    for (size_t i = 0; i < n; ++i) {
      if (i + kSiteAhead < n && blocks[i + kSiteAhead].live) {
        __builtin_prefetch(&p_.sites[blocks[i + kSiteAhead].block.site]);
      }
      if (i + kSlotAhead < n && blocks[i + kSlotAhead].live) sites.prefetch(key(blocks[i + kSlotAhead]));
      const Pending& b = blocks[i];
      if (!b.live) continue;
      sites[key(b)][b.cls] += ClassCounts{b.block.size, 1};
    }
  }

 public:
  // Free errors whose block was freed before the error (double frees): the
  // allocation records to look up after the pass.
  absl::flat_hash_map<uint64_t, std::vector<size_t>>& waiting_errors() { return waiting_errors_; }

 private:
  void TakeAtTimeSnapshot() {
    at_time_pending_ = false;
    at_marker_pending_ = false;
    at_time_live_ = live_;
  }

  // The checks of an event's time, once the clock reached time_check_us_
  // (at most the least time at which one of them can hold: one compare an
  // event instead of two checks).
  [[gnu::noinline]] void TimeChecks(uint64_t time_us) {
    if (at_time_pending_ && time_us > options_.at_time_us) TakeAtTimeSnapshot();
    if (now_ >= next_timeline_us_) SampleTimeline();
    // An event at `time_us` (<= now_) takes the snapshot only if its time
    // is above at_time_us, so not while now_ is below at_time_us + 1.
    time_check_us_ = next_timeline_us_;
    if (at_time_pending_) {
      const uint64_t at = options_.at_time_us;
      time_check_us_ = std::min(time_check_us_, at == UINT64_MAX ? at : at + 1);
    }
  }

  void SampleTimeline() {
    if (p_.heap_timeline.size() >= kMaxTimelinePoints) {
      Thin(p_.heap_timeline);
      timeline_interval_us_ *= 2;
    }
    p_.heap_timeline.push_back({now_, HeapBytes()});
    next_timeline_us_ = now_ + timeline_interval_us_;
  }

  static void Thin(std::vector<TimePoint>& points) {
    size_t out = 0;
    for (size_t i = 0; i < points.size(); i += 2) points[out++] = points[i];
    points.resize(out);
  }

  void Finish() {
    // The sites' series (its ranking and folding sweep every site's state
    // and stored bucket: cc1plus, 93 k sites and 387 k buckets) depend on
    // nothing else here: on a thread of their own beside the rest, once
    // the sites are many (the decode workers are done: a core is free).
    std::thread series_thread;
    auto finish_series = [this] { p_.site_series = site_series_.Finish(now_, kSeriesTopSites); };
    if (p_.sites.size() >= kSeriesThreadMinSites) {
      series_thread = std::thread(finish_series);
    } else {
      finish_series();
    }
    if (at_time_pending_ || at_marker_pending_) TakeAtTimeSnapshot();
    FinishLeakClasses();
    p_.heap_timeline.push_back({now_, HeapBytes()});
    p_.duration_us = now_;
    Totals& t = p_.totals;
    t.peak_bytes = peak_bytes_;
    t.peak_blocks = peak_blocks_;
    t.peak_time_us = peak_time_us_;
    if (sample_period_ > 1) {
      t.estimated = true;
      t.sample_period = static_cast<uint64_t>(sample_period_);
      t.allocs_error = TwoStandardErrors(allocs_variance_);
      t.bytes_allocated_error = TwoStandardErrors(bytes_variance_);
      t.peak_bytes_error = TwoStandardErrors(peak_variance_);
      t.leaked_bytes_error = TwoStandardErrors(live_variance_);
      t.temporary_known = false;
    }
    p_.heap_series = series_.Finish(now_);
    if (growth_ != nullptr) {
      std::vector<uint64_t> live(live_.size());
      for (size_t i = 0; i < live_.size(); ++i) live[i] = live_[i].bytes;
      // The window ends with the last allocation or free, not with the
      // trace: the exit path's own records (the leak scan, the end record)
      // come later, and a live-bytes drop at shutdown followed by that
      // idle stretch would be fitted as part of the trend.
      uint64_t last = growth_->last_change_us();
      uint64_t end = last > growth_->window_begin_us() ? last : now_;
      p_.growth = growth_->Finish(end, live);
      p_.growth_window_begin_us = growth_->window_begin_us();
      p_.growth_window_end_us = end;
    }
    p_.threads = merger_.stream_count();
    // Frees of ids that never got allocated are unmatched after all.
    frees_ -= pending_frees_.size();
    p_.totals.unmatched_frees += pending_frees_.size();
    frees_ -= compact_index_.pending();  // compact frees that never found a block
    p_.totals.unmatched_frees += compact_index_.pending();
    p_.totals.compact_frees = compact_;
    if (options_.paired_blocks != nullptr) *options_.paired_blocks = paired_blocks_;
    if (duplicate_ids_ != 0) {
      p_.warnings.push_back(absl::StrCat(duplicate_ids_, " allocation ids were reused"));
    }
    if (p_.totals.unmatched_frees != 0) {
      p_.warnings.push_back(
          absl::StrCat(p_.totals.unmatched_frees, " frees name blocks this trace never allocated"));
    }
    const std::vector<LiveCounter>& at_peak = peak_.at_peak(live_);
    for (size_t i = 0; i < p_.sites.size(); ++i) {
      SiteStats& s = p_.sites[i].stats;
      s.leaked_bytes = live_[i].bytes;
      s.leaked_count = live_[i].count;
      if (i < at_peak.size()) {
        s.peak_bytes = at_peak[i].bytes;
        s.peak_count = at_peak[i].count;
      }
      switch (options_.at) {
        case AnalyzeOptions::At::kEnd:
          s.live_bytes = s.leaked_bytes;
          s.live_count = s.leaked_count;
          break;
        case AnalyzeOptions::At::kPeak:
          s.live_bytes = s.peak_bytes;
          s.live_count = s.peak_count;
          break;
        case AnalyzeOptions::At::kTime:
        case AnalyzeOptions::At::kMarker:
          if (i < at_time_live_.size()) {
            s.live_bytes = at_time_live_[i].bytes;
            s.live_count = at_time_live_[i].count;
          }
          break;
      }
    }
    if (series_thread.joinable()) series_thread.join();
  }

 public:
  // Blocks released (every kind), after Run().
  uint64_t frees() const { return frees_; }

 private:
  StreamMerger& merger_;
  const AnalyzeOptions& options_;
  ProcessProfile& p_;
  std::vector<ThreadState> threads_;
  // Per stream, its place in its current chunk's DecodedChunk::released
  // (LookAhead); release_next_ is the current run's.
  std::vector<const uint64_t*> release_cursor_ =
      std::vector<const uint64_t*>(merger_.stream_count(), nullptr);
  const uint64_t* release_next_ = nullptr;
  PagedLiveSet live_set_;  // 8 bytes a block where ids run in pages (paged_live_set.h)
  // Address frees (format version 6): the pairing stage, its output of the
  // current run and that output's releases (ProcessPaired); null otherwise.
  std::unique_ptr<AddressPairer> pairer_;
  const ForkInheritance* inheritance_ = nullptr;
  EventArray paired_;
  std::vector<uint64_t> released_;
  SiteIndex site_index_;  // (stack, api) -> index in p_.sites (site_index.h)
  absl::flat_hash_set<uint64_t> pending_frees_;
  // Paired blocks whose allocation met a pending free (a corrupt trace):
  // their paired free goes to the live set, which does not hold them.
  absl::flat_hash_set<uint64_t> unpaired_;
  absl::flat_hash_map<uint32_t, size_t> stream_of_thread_;
  LeakScanTracker leak_scan_;  // the last scan's classes
  absl::flat_hash_map<uint64_t, std::vector<size_t>> waiting_errors_;  // id -> error indices
  // Compact frees (format::kFileFlagCompactFrees): the live blocks by
  // (stack, size), oldest first (the scan's classes go through it,
  // LeakScanTracker::OnCompactBlockClasses).
  const bool compact_;
  CompactFreeIndex compact_index_;
  std::vector<LiveCounter> live_;  // per site, now
  std::unique_ptr<Symbolizer> classifier_;  // ClassifyNow's, over the first classifier_modules_
  size_t classifier_modules_ = 0;
  SiteClassifier site_classifier_;          // ClassifyNow's, remembered per stack node
  std::vector<uint32_t> provisional_;       // sites ClassifyNow could not be sure of
  // Sampled traces: per site, Go's scaling of live_ (estimated_bytes_ and
  // estimated_blocks_ are their sums) and the variances behind the error
  // bounds (Totals::*_error).
  std::vector<ScaledBlocks> estimated_live_;
  uint64_t estimated_bytes_ = 0;
  uint64_t estimated_blocks_ = 0;
  double allocs_variance_ = 0;
  double bytes_variance_ = 0;
  double live_variance_ = 0;
  double peak_variance_ = 0;
  uint64_t peak_bytes_ = 0;
  uint64_t peak_blocks_ = 0;
  uint64_t peak_time_us_ = 0;
  std::vector<LiveCounter> at_time_live_;
  PeakTracker peak_;
  HeapTimelineBuilder series_;  // ProcessProfile::heap_series
  SiteTimelineBuilder site_series_;  // ProcessProfile::site_series
  static constexpr size_t kSeriesTopSites = 64;
  // Finish's series on a thread of their own from this many sites (a
  // thread costs tens of microseconds; the folding, about 100 ns a site).
  static constexpr size_t kSeriesThreadMinSites = 8192;
  std::unique_ptr<GrowthTracker> growth_;  // AnalyzeOptions::track_growth
  double sample_period_ = 0;               // > 1: a sampled trace
  bool sampled_ = false;                   // sample_period_ > 1
  // Process<true> applies: not sampled, no growth tracking, exact frees.
  // Set once the constructor has set the three.
  bool exact_ = false;
  bool rare_ = false;                      // UpdateRare
  uint64_t now_ = 0;
  uint64_t heap_bytes_ = 0;
  uint64_t heap_blocks_ = 0;
  uint64_t frees_ = 0;
  uint64_t duplicate_ids_ = 0;
  uint64_t paired_blocks_ = 0;  // released without the live set (FreePaired)
  uint64_t next_timeline_us_ = 0;
  // TimeChecks is due once now_ reaches this; never above next_timeline_us_
  // nor, while at_time_pending_, above options_.at_time_us + 1.
  uint64_t time_check_us_ = 0;
  uint64_t timeline_interval_us_ = 1;
  bool at_time_pending_ = options_.at == AnalyzeOptions::At::kTime;
  bool at_marker_pending_ = options_.at == AnalyzeOptions::At::kMarker;
  const bool pair_in_chunk_ = options_.pair_in_chunk;
  ProgressListener* progress_ = nullptr;  // AnalyzeOptions::progress, for big traces
  static constexpr uint64_t kWarmAfterEvents = 4096;
  static constexpr uint64_t kWarmMinBlocks = 8;
  // StartWarmSymbolizer: traces up to this size load the runtime's debug
  // info beside the pass (node's is 0.38 MB, perl's 0.69 MB; cc1plus's
  // 6.2 MB, whose report needs none of it, stays out).
  static constexpr uint64_t kEarlyRuntimeDwarfMaxBytes = uint64_t{4} << 20;
  // ... and start it once the pass has analyzed this many events (node
  // has 0.95 M, sqlite 1.64 M, git 0.18 M; libc's inflation takes about
  // as long as 0.4 M events of the pass).
  static constexpr uint64_t kRuntimeDwarfAfterEvents = 200'000;
  // The helper's go-ahead for a small trace's runtime DWARF (Preload's
  // runtime_gate): opened by this thread after kRuntimeDwarfAfterEvents
  // events, or by whichever thread reads a large symbol table; closed when
  // the pass ends first. The first decision stands.
  TaskGate runtime_gate_;
  bool runtime_gate_opened_ = false;  // by this thread, after the events
  bool warm_started_ = false;
  std::unique_ptr<Symbolizer> warm_symbolizer_;
  // Shared by the classifier's Symbolizers and the helper's, so that each
  // symbol table is read by one of them.
  std::shared_ptr<SymbolTableClaims> table_claims_ = [this] {
    auto claims = std::make_shared<SymbolTableClaims>();
    claims->OnLargeTableRead([this] { runtime_gate_.Open(); });
    return claims;
  }();
  std::thread warm_thread_;
  // Big traces (kRuntimeDebugInfoMinBlocks blocks and more) that did not
  // take the early read: the helper's go-ahead for the runtime's debug
  // info, opened by OpenLateRuntimeGate. Pending: the helper waits at it
  // and the pass has not opened it yet (the per-run check, off the mutex).
  static constexpr uint64_t kRuntimeDebugInfoMinBlocks = 1024;
  TaskGate late_runtime_gate_;
  bool late_runtime_pending_ = false;
};

// The program's totals from the per-site numbers (trace_model.h's
// definitions): runtime sites go to runtime_totals. In a sampled trace each
// site's numbers become estimates first, exactly as the pprof writer
// estimates the same site (allocations: the rounded per-allocation
// estimate; blocks live at a moment: Go's scaling), so the sums agree to
// the byte. The peak is the sum of the program sites' blocks at its moment
// (the pass found the moment). `all_frees` counts every block released.
void ComputeTotals(ProcessProfile& p, uint64_t all_frees) {
  Totals& t = p.totals;
  const int64_t period = t.estimated ? static_cast<int64_t>(t.sample_period) : 1;
  auto live = [&](uint64_t count, uint64_t bytes) {
    return ScaleLiveBlocks(static_cast<int64_t>(count), static_cast<int64_t>(bytes), period);
  };
  uint64_t runtime_frees = 0;
  t.peak_bytes = 0;
  t.peak_blocks = 0;
  for (const Site& site : p.sites) {
    const SiteStats& s = site.stats;
    uint64_t allocs = s.alloc_count;
    uint64_t bytes = s.alloc_bytes;
    if (t.estimated) {
      allocs = static_cast<uint64_t>(TruncateSaturating(std::round(s.alloc_count_estimate)));
      bytes = static_cast<uint64_t>(TruncateSaturating(std::round(s.alloc_bytes_estimate)));
    }
    ScaledBlocks leaked = live(s.leaked_count, s.leaked_bytes);
    if (site.kind == SiteKind::kRuntime) {
      p.runtime_totals.allocs += allocs;
      p.runtime_totals.bytes_allocated += bytes;
      p.runtime_totals.leaked_bytes += static_cast<uint64_t>(leaked.bytes);
      p.runtime_totals.leaked_blocks += static_cast<uint64_t>(leaked.count);
      runtime_frees += s.alloc_count + s.inherited_count - s.leaked_count;
      continue;
    }
    if (t.estimated) {
      t.sampled_allocs += s.alloc_count;
      t.sampled_bytes += s.alloc_bytes;
    }
    ScaledBlocks inherited = live(s.inherited_count, s.inherited_bytes);
    ScaledBlocks peak = live(s.peak_count, s.peak_bytes);
    t.allocs_by_api[static_cast<size_t>(site.api)] += allocs;
    t.allocs += allocs;
    t.bytes_allocated += bytes;
    t.leaked_bytes += static_cast<uint64_t>(leaked.bytes);
    t.leaked_blocks += static_cast<uint64_t>(leaked.count);
    t.peak_bytes += static_cast<uint64_t>(peak.bytes);
    t.peak_blocks += static_cast<uint64_t>(peak.count);
    if (!t.estimated) t.temporary += s.temporary_count;
    t.inherited_bytes += static_cast<uint64_t>(inherited.bytes);
    t.inherited_blocks += static_cast<uint64_t>(inherited.count);
  }
  if (t.estimated) {
    // Every block allocated or inherited is freed or still live.
    uint64_t had = t.allocs + t.inherited_blocks;
    t.frees = had > t.leaked_blocks ? had - t.leaked_blocks : 0;
  } else {
    t.frees = all_frees >= runtime_frees ? all_frees - runtime_frees : 0;
  }
}

}  // namespace

std::vector<uint64_t> ProcessProfile::StackIps(uint64_t leaf) const {
  std::vector<uint64_t> ips;
  uint64_t node = leaf;
  StackNode n;
  while (node != 0 && ips.size() < kMaxStackDepth && stack_nodes.Find(node, &n)) {
    ips.push_back(n.ip);
    if (n.parent == node) break;
    node = n.parent;
  }
  if (!ips.empty() && format::IsStackCutMarker(ips.back())) ips.pop_back();
  return ips;
}

StackCut ProcessProfile::StackCutOf(uint64_t leaf) const {
  // The marker is the root node: walk to it (a stack's nodes are few; cut
  // stacks are the long ones, and only displayed stacks ask).
  uint64_t node = leaf;
  uint64_t ip = 0;
  for (size_t depth = 0; node != 0 && depth < kMaxStackDepth; ++depth) {
    StackNode n;
    if (!stack_nodes.Find(node, &n) || n.parent == node) return {};
    ip = n.ip;
    node = n.parent;
  }
  if (node != 0 || !format::IsStackCutMarker(ip)) return {};
  return {true, format::StackCutMissing(ip)};
}

absl::StatusOr<ProcessProfile> AnalyzeTrace(const std::string& path,
                                            const AnalyzeOptions& options) {
  absl::StatusOr<std::unique_ptr<StreamMerger>> merger = StreamMerger::Open(path);
  if (!merger.ok()) return merger.status();
  ProcessProfile profile;
  profile.trace_path = path;
  profile.header = (*merger)->header();
  profile.pid = profile.header.pid;
  profile.ppid = profile.header.ppid;
  profile.truncated = (*merger)->truncated();
  profile.warnings = (*merger)->warnings();
  Analysis analysis(**merger, options, profile);
  // A version-6 fork child's inherited blocks: stacks and sizes from its
  // parent's trace, when it is there (read up to the fork, then freed).
  ForkInheritance inheritance;
  if (format::HasAddressFrees(profile.header) &&
      (profile.header.flags & format::kFileFlagForkChild) != 0) {
    inheritance = options.fork_inheritances != nullptr
                      ? options.fork_inheritances->Take(path, profile.header.pid)
                      : ReadForkInheritance(path, profile.header.pid);
    analysis.SetInheritance(&inheritance);
  }
  if (absl::Status s = analysis.Run(); !s.ok()) return s;
  inheritance = ForkInheritance{};
  if (!analysis.waiting_errors().empty()) {
    // Double frees of blocks freed before the error: read just the chunks
    // that hold their allocations.
    std::vector<uint64_t> ids;
    for (const auto& [id, indices] : analysis.waiting_errors()) ids.push_back(id);
    absl::Status s = (*merger)->FindAllocations(ids, [&](const Record& r) {
      auto it = analysis.waiting_errors().find(r.id);
      if (it == analysis.waiting_errors().end()) return;
      for (size_t index : it->second) {
        FreeErrorEvent& e = profile.leak_classes.errors[index];
        e.alloc_known = true;
        e.alloc_api = r.api;
        e.alloc_size = r.size;
        e.alloc_stack = r.stack;
      }
      analysis.waiting_errors().erase(it);
    });
    if (!s.ok()) return s;
  }
  profile.symbolizer = std::make_shared<Symbolizer>(profile.modules);
  if (std::unique_ptr<Symbolizer> warm = analysis.TakeWarmSymbolizer()) {
    profile.symbolizer->AdoptSessions(*warm);
  }
  if (std::unique_ptr<Symbolizer> classifier = analysis.TakeClassifier()) {
    profile.symbolizer->AdoptSessions(*classifier);
  }
  if (options.classify_runtime) {
    // Sites classified while their stack or modules were incomplete, now
    // with everything the trace says.
    uint64_t changed = 0;
    // ClassifySite on each site's stack, answered by a SiteClassifier: the
    // provisional sites (node: 1,600, every one with a JIT frame) share
    // most of their frames, which it looks at once.
    SiteClassifier reclassifier;
    for (uint32_t index : analysis.provisional_sites()) {
      Site& site = profile.sites[index];
      bool unused = false;
      SiteKind kind =
          reclassifier.Classify(site.stack, profile.stack_nodes, *profile.symbolizer, &unused);
      if (kind != site.kind && (site.stats.alloc_count != 0 || site.stats.inherited_count != 0)) {
        ++changed;
      }
      site.kind = kind;
    }
    if (changed != 0) {
      profile.warnings.push_back(absl::StrCat(
          changed, " call sites were found to be the C/C++ runtime's (or not) only after their "
                   "first allocation; the heap over time and the moment of the peak may count "
                   "their blocks on the wrong side"));
    }
  }
  ComputeTotals(profile, analysis.frees());
  // Data after the cut is lost even if an end record was read.
  if (profile.truncated) profile.complete = false;
  return profile;
}

}  // namespace heapsight::analyzer
