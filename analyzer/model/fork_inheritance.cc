// analyzer/model/fork_inheritance.cc: see fork_inheritance.h.
#include "analyzer/model/fork_inheritance.h"


#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "analyzer/model/address_pairing.h"
#include "analyzer/model/live_set.h"
#include "analyzer/model/paged_live_set.h"
#include "analyzer/model/stream_merger.h"
#include "analyzer/model/trace_family.h"

namespace heapsight::analyzer {
namespace {

using format::RecordTag;

// The parent's pass: pairs `parent`'s events until its fork of `child_pid`
// (and the events of that microsecond), keeping the live blocks' fields
// by id and those freed in the last kFreedWindowUs.
class ParentPass {
 public:
  explicit ParentPass(uint64_t child_pid) : child_pid_(child_pid) {}

  absl::Status Run(const std::string& parent, int depth,
                   absl::flat_hash_map<uint64_t, ParentBlock>* blocks) {
    absl::StatusOr<std::unique_ptr<StreamMerger>> merger = StreamMerger::Open(parent);
    if (!merger.ok()) return merger.status();
    const format::FileHeader& h = (*merger)->header();
    const bool fork_child = (h.flags & format::kFileFlagForkChild) != 0;
    AddressPairer pairer(fork_child);
    // The parent's own inherited blocks, from its parent.
    ForkInheritance own;
    if (fork_child && depth + 1 < kMaxForkDepth) {
      own = ReadForkInheritance(parent, h.pid, depth + 1);
      pairer.SetInheritance(&own.blocks);
    }
    StreamMerger::Run run;
    EventArray out;
    bool done = false;
    while (!done && (*merger)->NextRun(&run)) {
      pairer.BeginRun();
      const size_t count = static_cast<size_t>(run.end - run.begin);
      // One event at a time, each one's output taken before the next is
      // paired: the pass stops between two events, and the pairing's
      // states must be those of the events taken. The addresses' states
      // are loaded ahead, as the analysis loads them (trace_model.cc).
      constexpr size_t kAhead = 12;
      for (size_t i = 0; i < count && !done; ++i) {
        if (i + kAhead < count) pairer.Prefetch(run.begin[i + kAhead]);
        out.clear();
        pairer.Add(run.begin[i], &out);
        for (const Event& o : out) {
          if (Take(o)) {
            done = true;
            break;
          }
        }
      }
    }
    if (!done) {
      if (!(*merger)->status().ok()) return (*merger)->status();
      out.clear();
      pairer.Finish(&out);
      for (const Event& o : out) {
        if (Take(o)) break;
      }
    }
    if (!forked_) {
      return absl::NotFoundError(
          absl::StrCat(parent, ": no fork of pid ", child_pid_, " in this trace"));
    }
    // Each address's block at the fork: the live one by the pairing, or the
    // one last freed there if that free came after the fork (this pass
    // stopped before it) or within the window before it. (An id of 0 is a
    // real block's in a trace whose threads count from 0.)
    blocks->reserve(live_.size() + freed_.size());
    pairer.ForEachAddress([&](uint64_t address, uint64_t id, bool) {
      LiveBlock b;
      if (live_.Find(id, &b)) {
        const auto& [stack, api] = sites_[b.site];
        blocks->emplace(address, ParentBlock{stack, b.size, api});
      } else if (auto f = freed_.find(id); f != freed_.end()) {
        blocks->emplace(address, f->second);
      }
    });
    return absl::OkStatus();
  }

 private:
  // Applies one paired event; true once the pass is past the fork.
  bool Take(const Event& o) {
    if (forked_ && o.time_us > fork_time_us_) return true;
    switch (o.tag) {
      case RecordTag::kAlloc:
      case RecordTag::kInherited:
        live_.Insert(o.id, LiveBlock{o.size, Site(o.stack, o.api)});
        break;
      case RecordTag::kRealloc:
        Release(o.old_id, o.time_us);
        live_.Insert(o.id, LiveBlock{o.size, Site(o.stack, o.api)});
        break;
      case RecordTag::kFree:
        Release(o.id, o.time_us);
        break;
      case RecordTag::kFork:
        if (!forked_ && o.value == child_pid_) {
          forked_ = true;
          fork_time_us_ = o.time_us;
        }
        break;
      default:
        break;
    }
    return false;
  }

  // The index of (stack, api) in sites_ (a program has few).
  uint32_t Site(uint64_t stack, format::Api api) {
    auto [it, inserted] = site_index_.try_emplace({stack, api}, static_cast<uint32_t>(sites_.size()));
    if (inserted) sites_.emplace_back(stack, api);
    return it->second;
  }

  void Release(uint64_t id, uint64_t time_us) {
    LiveBlock b;
    if (!live_.Erase(id, &b)) return;
    const auto& [stack, api] = sites_[b.site];
    freed_[id] = ParentBlock{stack, b.size, api};
    freed_order_.emplace_back(time_us, id);
    while (freed_order_.front().first + kFreedWindowUs < time_us) {
      freed_.erase(freed_order_.front().second);
      freed_order_.pop_front();
    }
  }

  const uint64_t child_pid_;
  bool forked_ = false;
  uint64_t fork_time_us_ = 0;
  // The live blocks by id, as the analysis keeps its own (8 bytes a block
  // where ids run in pages), their (stack, api) by index.
  PagedLiveSet live_;
  std::vector<std::pair<uint64_t, format::Api>> sites_;
  absl::flat_hash_map<std::pair<uint64_t, format::Api>, uint32_t> site_index_;
  absl::flat_hash_map<uint64_t, ParentBlock> freed_;  // id -> block freed in the window
  std::deque<std::pair<uint64_t, uint64_t>> freed_order_;  // (free time, id), oldest first
};

}  // namespace

std::string FindForkParentTrace(const std::string& child_path, std::string* why) {
  absl::StatusOr<TraceIdentity> child = ReadTraceIdentity(child_path);
  if (!child.ok()) {
    *why = std::string(child.status().message());
    return "";
  }
  if (child->parent_trace.empty()) {
    *why = "the trace names no parent trace";
    return "";
  }
  std::vector<std::string> candidates = {child->parent_trace};
  std::string moved = TraceDirectory(child_path) + "/" + TraceFileName(child->parent_trace);
  if (moved != child->parent_trace) candidates.push_back(std::move(moved));
  for (const std::string& path : candidates) {
    if (!IsRegularFile(path)) continue;
    absl::StatusOr<TraceIdentity> parent = ReadTraceIdentity(path);
    if (!parent.ok() || parent->pid != child->ppid ||
        (parent->flags & format::kFileFlagAddressFrees) == 0) {
      continue;
    }
    return path;
  }
  *why = absl::StrCat("the parent's trace ", child->parent_trace, " was not found");
  return "";
}

ForkInheritance ReadForkInheritance(const std::string& child_path, uint64_t child_pid, int depth) {
  ForkInheritance result;
  result.parent_path = FindForkParentTrace(child_path, &result.missing);
  if (result.parent_path.empty()) return result;
  ParentPass pass(child_pid);
  if (absl::Status st = pass.Run(result.parent_path, depth, &result.blocks); !st.ok()) {
    result.blocks.clear();
    result.missing = std::string(st.message());
  }
  return result;
}

}  // namespace heapsight::analyzer
