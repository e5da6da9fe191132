// analyzer/model/fork_inheritance.h: what a fork child of an address-frees
// trace (format version 6) inherited, read from its parent's trace.
//
// A version-6 child names each block it inherited by its address, with its
// family's api and its usable size, and no stack (trace_format.h, "Address
// frees"): its preload keeps no table of live blocks, only cells. The
// parent's trace has each block's allocation: stack, api and the size asked
// for. ReadForkInheritance pairs the parent's trace (AddressPairer) up to
// its kFork record of the child and keeps, per address, the block live
// there at the fork; the child's pairing gives its kInherited records those
// fields (AddressPairer::SetInheritance), as a table-mode child's records
// have them. The stack ids are the parent's: the child's trace starts with
// the parent's whole stack table (preload/lifecycle.cc, ForkChildTrace).
//
// The moment of the fork. The parent writes kFork after fork() returned
// (its time is taken then), so every cell change the child saw has an
// earlier time. Other threads of the parent run on around the fork:
//  - a free may take its time before the fork and clear its cell after it
//    (the child has the block, the parent's trace frees it before kFork),
//    and the forking thread may read its clock for kFork well after the
//    fork: the blocks freed within kFreedWindowUs of the fork are kept too,
//    and an address whose block was freed so is given that block;
//  - events with the fork's own time may be merged after it: the parent is
//    read until the first event past that time, or the forking thread's
//    first event after its kFork (which came after the fork: with the
//    coarse clock of a one-thread process, a whole tick of events shares
//    the fork's time).
// An allocation of another thread after the fork that took its time before
// the kFork's, at an address freed in that same window, would be taken
// for the inherited block: both need a preemption at the fork; not
// guarded against.
//
// A parent that is itself a version-6 fork child gets its own inherited
// blocks from its parent, up to kMaxForkDepth generations.
//
// Memory: the parent's pairing up to the fork (one state per address it
// used), one entry per block live then, and the blocks freed in the
// window; all freed on return but the result (one 32-byte entry per block
// live at the fork). Time: the parent's trace up to the fork is read once
// per child analyzed (the analysis cache keeps the child's result), or once
// for all the children given to ReadForkInheritances.
#ifndef HEAPSIGHT_ANALYZER_MODEL_FORK_INHERITANCE_H_
#define HEAPSIGHT_ANALYZER_MODEL_FORK_INHERITANCE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "analyzer/model/trace_family.h"
#include "format/trace_format.h"

namespace heapsight::analyzer {

// A parent's block live at the fork, as its allocation record has it.
struct ParentBlock {
  uint64_t stack = 0;
  uint64_t size = 0;  // the size asked for
  format::Api api = format::Api::kUnknown;
};

struct ForkInheritance {
  std::string parent_path;  // the parent's trace read ("" if none)
  // Why there is no map ("" when there is one): no parent trace found,
  // unreadable, or no kFork of this child in it.
  std::string missing;
  // Address -> the parent's block live there at the fork.
  absl::flat_hash_map<uint64_t, ParentBlock> blocks;
};

// Blocks freed this long before the fork are still looked at (above).
// 2 ms left one block of 1,537 unresolved in 3 of 30 children of a
// program whose 3 threads churn malloc/free while it forks, on 2 cores
// under a load of 16-25 (a thread preempted between its clock read and
// its cell); 100 ms resolved them all. Memory: one entry per block freed
// in the window (python's 5 million events a second: about 20 MB).
inline constexpr uint64_t kFreedWindowUs = 100000;
inline constexpr int kMaxForkDepth = 8;

// FindForkParentTrace()
//
// The trace of `child_path`'s parent: the parent_trace its kProcess record
// names, else the file of that name in child_path's directory (a moved
// recording). Each must be a trace of pid `child_ppid` written with
// address frees. "" if none is, and *why says why.
std::string FindForkParentTrace(const std::string& child_path, std::string* why);
// The same for a child whose identity was read already (its `path` as read).
std::string FindForkParentTrace(const TraceIdentity& child, std::string* why);

// ReadForkInheritance()
//
// For a version-6 fork child at `child_path` (header pid `child_pid`):
// the parent's blocks live at its fork (above). Never fails: a missing or
// unreadable parent leaves `blocks` empty and says why in `missing`.
ForkInheritance ReadForkInheritance(const std::string& child_path, uint64_t child_pid,
                                    int depth = 0);

// ReadForkInheritances()
//
// The same for several children of the parent whose trace is
// `parent_path`, in one pass over it (a shell loop's hundreds of children:
// the parent's trace is read once, not once a child). Calls give(pid,
// inheritance) once for every pid of `child_pids` (a pid listed twice, for
// two children that had it in turn, twice, in fork order): in the order of their
// forks while the pass goes on (one child's map at a time: a caller that
// converts each child there holds one), then, by pid, those whose fork was
// not read (`missing` says why). The pass stops after the last fork asked
// for.
void ReadForkInheritances(const std::string& parent_path, const std::vector<uint64_t>& child_pids,
                          const std::function<void(uint64_t, ForkInheritance)>& give,
                          int depth = 0);

// ForkInheritanceSource
//
// The inheritances of the version-6 fork children among one command's
// traces (`heapsight report` of a family, record's leak summary), each
// parent's trace read once for all of them. Without it, each child's
// analysis read its parent's trace up to its fork (ReadForkInheritance):
// a 500-iteration shell loop recorded in address mode read the shell's
// trace 500 times (`report` 3.35 s; the parent's length times the
// children, without bound).
//
// At the first child's Take it looks at every trace given (header and
// kProcess record: ReadTraceIdentity) for the version-6 fork children and
// their parents' traces; at the first Take of a parent's child it makes
// one pass over that parent (ReadForkInheritances) and keeps each child's
// map until the child takes it. What is kept is bounded: once
// kMaxHeldBlocks blocks are held, the children whose maps do not fit read
// their parent again when they ask, as without this class. So does a
// child whose pid another child of the same parent also had (which map is
// whose would depend on the order the traces are analyzed in), and any
// child Take is asked for that was not among the traces given.
// Not thread-safe: one analysis at a time.
class ForkInheritanceSource {
 public:
  // Blocks (entries of ForkInheritance::blocks) held at most over all the
  // maps waiting for their child: about 40 MB.
  static constexpr size_t kMaxHeldBlocks = size_t{1} << 20;

  explicit ForkInheritanceSource(std::vector<std::string> paths);
  ForkInheritanceSource(const ForkInheritanceSource&) = delete;
  ForkInheritanceSource& operator=(const ForkInheritanceSource&) = delete;

  // What ReadForkInheritance(child_path, child_pid) gives, for a child
  // among the traces given read from the one pass over its parent.
  ForkInheritance Take(const std::string& child_path, uint64_t child_pid);

  // Passes made over parents' traces, and children given a map kept from
  // one (for tests and statistics).
  size_t parent_passes() const { return parent_passes_; }
  size_t shared_takes() const { return shared_takes_; }

 private:
  struct Family {
    std::vector<uint64_t> pids;  // its version-6 children's, each pid once
    bool read = false;
    absl::flat_hash_map<uint64_t, ForkInheritance> kept;
  };
  void Index();

  std::vector<std::string> paths_;
  bool indexed_ = false;
  absl::flat_hash_map<std::string, std::string> parent_of_;  // child path -> parent's trace
  absl::flat_hash_map<std::string, Family> families_;        // by parent's trace
  size_t held_blocks_ = 0;
  size_t parent_passes_ = 0;
  size_t shared_takes_ = 0;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_FORK_INHERITANCE_H_
