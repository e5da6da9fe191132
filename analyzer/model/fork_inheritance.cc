// analyzer/model/fork_inheritance.cc: see fork_inheritance.h.
#include "analyzer/model/fork_inheritance.h"


#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "analyzer/model/address_pairing.h"
#include "analyzer/model/live_set.h"
#include "analyzer/model/paged_live_set.h"
#include "analyzer/model/stream_merger.h"
#include "analyzer/model/trace_family.h"

namespace heapsight::analyzer {
namespace {

using format::RecordTag;

// The parent's pass: pairs `parent`'s events until past its forks of the
// children asked for (each up to the events of its fork's microsecond),
// keeping the live blocks' fields by id and those freed in the last
// kFreedWindowUs; at each fork it gives the child the blocks live then.
class ParentPass {
 public:
  using Give = std::function<void(uint64_t child_pid, ForkInheritance inheritance)>;

  ParentPass(const std::vector<uint64_t>& child_pids, std::string parent, Give give)
      : parent_(std::move(parent)), give_(std::move(give)) {
    for (uint64_t pid : child_pids) ++wanted_[pid];
  }

  absl::Status Run(int depth) {
    absl::StatusOr<std::unique_ptr<StreamMerger>> merger = StreamMerger::Open(parent_);
    if (!merger.ok()) return merger.status();
    const format::FileHeader& h = (*merger)->header();
    const bool fork_child = (h.flags & format::kFileFlagForkChild) != 0;
    AddressPairer pairer(fork_child);
    pairer_ = &pairer;
    // The parent's own inherited blocks, from its parent.
    ForkInheritance own;
    if (fork_child && depth + 1 < kMaxForkDepth) {
      own = ReadForkInheritance(parent_, h.pid, depth + 1);
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
      constexpr size_t kAhead = AddressPairer::kPrefetchAhead;
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
      if (!(*merger)->status().ok()) {
        // The forks read but not passed are not given (as not found).
        for (const Fork& f : forks_) ++wanted_[f.child_pid];
        forks_.clear();
        pairer_ = nullptr;
        return (*merger)->status();
      }
      out.clear();
      pairer.Finish(&out);
      for (const Event& o : out) {
        if (Take(o)) break;
      }
      // Forks with nothing after them: the trace ends there.
      while (!forks_.empty()) GiveFront();
    }
    pairer_ = nullptr;
    return absl::OkStatus();
  }

  // The children asked for whose kFork was not read: pid -> how many.
  const absl::flat_hash_map<uint64_t, size_t>& not_found() const { return wanted_; }

 private:
  // Applies one paired event; true once the pass is past every fork asked
  // for.
  bool Take(const Event& o) {
    // Past a fork: an event later than its time, or any later event of the
    // forking thread (its events after its kFork came after the fork:
    // the preload writes kFork as fork() returns in the parent). With the
    // coarse clock of a one-thread process, a whole tick of the parent's
    // events shares the fork's time; before, they were all taken as before
    // the fork, and a block the shell freed and allocated again there was
    // given to the child in place of the one it inherited (a bash loop:
    // 5 of 70 children had one block without a stack).
    while (!forks_.empty() &&
           (o.time_us > forks_.front().time_us || o.stream == forks_.front().stream)) {
      GiveFront();
    }
    if (wanted_.empty() && forks_.empty()) return true;
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
        // A pid asked for twice (a long shell loop's pids come round
        // again): its forks in order.
        if (auto it = wanted_.find(o.value); it != wanted_.end()) {
          if (--it->second == 0) wanted_.erase(it);
          forks_.push_back(Fork{o.time_us, o.value, o.stream});
        }
        break;
      default:
        break;
    }
    return false;
  }

  // Gives the oldest fork's child the blocks live now. Each address's
  // block at the fork: the live one by the pairing, or the one last freed
  // there if that free came after the fork (this pass stopped before it)
  // or within the window before it. (An id of 0 is a real block's in a
  // trace whose threads count from 0.)
  void GiveFront() {
    const uint64_t pid = forks_.front().child_pid;
    forks_.pop_front();
    ForkInheritance result;
    result.parent_path = parent_;
    result.blocks.reserve(live_.size() + freed_.size());
    pairer_->ForEachAddress([&](uint64_t address, uint64_t id, bool) {
      LiveBlock b;
      if (live_.Find(id, &b)) {
        const auto& [stack, api] = sites_[b.site];
        result.blocks.emplace(address, ParentBlock{stack, b.size, api});
      } else if (auto f = freed_.find(id); f != freed_.end()) {
        result.blocks.emplace(address, f->second);
      }
    });
    give_(pid, std::move(result));
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

  absl::flat_hash_map<uint64_t, size_t> wanted_;  // children's forks still to come, by pid
  const std::string parent_;
  const Give give_;
  AddressPairer* pairer_ = nullptr;  // Run's
  struct Fork {
    uint64_t time_us;
    uint64_t child_pid;
    uint32_t stream;  // the forking thread's
  };
  std::deque<Fork> forks_;  // read, not given yet, oldest first
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
  return FindForkParentTrace(*child, why);
}

std::string FindForkParentTrace(const TraceIdentity& child, std::string* why) {
  const std::string& child_path = child.path;
  if (child.parent_trace.empty()) {
    *why = "the trace names no parent trace";
    return "";
  }
  std::vector<std::string> candidates = {child.parent_trace};
  std::string moved = TraceDirectory(child_path) + "/" + TraceFileName(child.parent_trace);
  if (moved != child.parent_trace) candidates.push_back(std::move(moved));
  for (const std::string& path : candidates) {
    if (!IsRegularFile(path)) continue;
    absl::StatusOr<TraceIdentity> parent = ReadTraceIdentity(path);
    if (!parent.ok() || parent->pid != child.ppid ||
        (parent->flags & format::kFileFlagAddressFrees) == 0) {
      continue;
    }
    return path;
  }
  *why = absl::StrCat("the parent's trace ", child.parent_trace, " was not found");
  return "";
}

void ReadForkInheritances(const std::string& parent_path, const std::vector<uint64_t>& child_pids,
                          const std::function<void(uint64_t, ForkInheritance)>& give,
                          int depth) {
  ParentPass pass(child_pids, parent_path, give);
  const absl::Status st = pass.Run(depth);
  // The children not given yet: no fork of theirs read, or a read error.
  std::vector<uint64_t> rest;
  for (const auto& [pid, count] : pass.not_found()) rest.insert(rest.end(), count, pid);
  std::sort(rest.begin(), rest.end());
  for (uint64_t pid : rest) {
    ForkInheritance result;
    result.parent_path = parent_path;
    result.missing = st.ok() ? absl::StrCat(parent_path, ": no fork of pid ", pid, " in this trace")
                             : std::string(st.message());
    give(pid, std::move(result));
  }
}

ForkInheritance ReadForkInheritance(const std::string& child_path, uint64_t child_pid, int depth) {
  ForkInheritance result;
  result.parent_path = FindForkParentTrace(child_path, &result.missing);
  if (result.parent_path.empty()) return result;
  ReadForkInheritances(
      result.parent_path, {child_pid},
      [&](uint64_t, ForkInheritance given) { result = std::move(given); }, depth);
  return result;
}

ForkInheritanceSource::ForkInheritanceSource(std::vector<std::string> paths)
    : paths_(std::move(paths)) {}

void ForkInheritanceSource::Index() {
  indexed_ = true;
  // Children by parent, and the pids seen twice under one parent (left to
  // read their parent themselves).
  absl::flat_hash_map<std::string, absl::flat_hash_map<uint64_t, std::vector<std::string>>> by_pid;
  for (const std::string& path : paths_) {
    absl::StatusOr<TraceIdentity> id = ReadTraceIdentity(path);
    if (!id.ok() || (id->flags & format::kFileFlagForkChild) == 0 ||
        (id->flags & format::kFileFlagAddressFrees) == 0) {
      continue;
    }
    std::string why;
    std::string parent = FindForkParentTrace(*id, &why);
    if (parent.empty()) continue;  // Take's fallback says why
    by_pid[parent][id->pid].push_back(path);
  }
  for (auto& [parent, pids] : by_pid) {
    Family& f = families_[parent];
    for (auto& [pid, children] : pids) {
      if (children.size() != 1) continue;
      f.pids.push_back(pid);
      parent_of_[children[0]] = parent;
    }
    std::sort(f.pids.begin(), f.pids.end());
  }
}

ForkInheritance ForkInheritanceSource::Take(const std::string& child_path, uint64_t child_pid) {
  if (!indexed_) Index();
  auto parent = parent_of_.find(child_path);
  if (parent == parent_of_.end()) return ReadForkInheritance(child_path, child_pid);
  Family& f = families_[parent->second];
  if (!f.read) {
    f.read = true;
    ++parent_passes_;
    ReadForkInheritances(parent->second, f.pids, [&](uint64_t pid, ForkInheritance inheritance) {
      // A map that does not fit is dropped: its child reads it itself.
      if (held_blocks_ + inheritance.blocks.size() > kMaxHeldBlocks) return;
      held_blocks_ += inheritance.blocks.size();
      f.kept.emplace(pid, std::move(inheritance));
    });
  }
  auto kept = f.kept.find(child_pid);
  if (kept == f.kept.end()) return ReadForkInheritance(child_path, child_pid);
  ForkInheritance result = std::move(kept->second);
  f.kept.erase(kept);
  held_blocks_ -= result.blocks.size();
  ++shared_takes_;
  return result;
}

}  // namespace heapsight::analyzer
