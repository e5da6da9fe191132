// cli/record/live_family.h: the live analysis of everything one `heapsight
// record` is writing: one TraceTail and one LiveProcess
// (analyzer/model/live_process.h) per trace the manifest lists (the
// program, its fork children and exec'd images), advanced by Poll().
#ifndef HEAPSIGHT_CLI_RECORD_LIVE_FAMILY_H_
#define HEAPSIGHT_CLI_RECORD_LIVE_FAMILY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "analyzer/model/live_process.h"
#include "analyzer/model/trace_tail.h"
#include "cli/record/trace_rotator.h"

namespace heapsight::record {

class LiveFamily {
 public:
  // `list_traces` gives the family's trace paths so far (the manifest);
  // `release_consumed`: give the disk space of what was read back
  // (`--no-trace`, trace_tail.h).
  LiveFamily(std::function<std::vector<std::string>()> list_traces, bool release_consumed);

  // The time merge's window of address-frees traces
  // (LiveProcess::LiveProcess; ChunkTimeMerge::WindowForFlushMs of the
  // preload's flush interval); before the first Poll.
  void set_merge_window_us(uint64_t window_us) { merge_window_us_ = window_us; }

  // Copies every trace into rotated segments in `directory`
  // (trace_rotator.h), named after the trace's file; before the first Poll.
  void RotateInto(std::string directory, RotateLimits limits) {
    rotate_dir_ = std::move(directory);
    limits_ = limits;
  }

  // Reads what every trace gained since the last call (at most
  // `max_blocks` blocks a trace, so one busy process cannot starve the
  // others or the server). Returns the number of chunks applied. A trace
  // read to its end has its time merge advanced to the clock of when the
  // read began (LiveProcess::AdvanceClock), so a quiet process's last
  // events are applied within the window.
  size_t Poll(size_t max_blocks = 256);

  // Every trace has been read to its end for good (the program exited):
  // applies what the time merges hold (LiveProcess::DrainMerge).
  void Finish();

  struct Member {
    std::string path;
    std::unique_ptr<analyzer::TraceTail> tail;
    std::unique_ptr<analyzer::LiveProcess> process;  // null until the header is read
    std::unique_ptr<TraceRotator> rotator;  // RotateInto only
    std::string error;  // the tail stopped here (corrupt block); "" while fine
  };
  // In the order the manifest lists them (parents first).
  const std::vector<std::unique_ptr<Member>>& members() const { return members_; }
  // The processes with a header read, in order.
  std::vector<analyzer::LiveProcess*> processes() const;
  // The newest process of `pid` (an exec'd image keeps its pid), or null.
  analyzer::LiveProcess* Find(uint64_t pid) const;
  // Bytes of trace read, summed over the members.
  uint64_t bytes_read() const;
  // The rotated segments written (RotateInto), member by member.
  std::vector<std::string> segments() const;

 private:
  std::function<std::vector<std::string>()> list_traces_;
  bool release_consumed_;
  std::string rotate_dir_;  // "" unless RotateInto
  RotateLimits limits_;
  uint64_t merge_window_us_ = analyzer::ChunkTimeMerge::WindowForFlushMs(0);
  std::vector<std::unique_ptr<Member>> members_;
  analyzer::LiveProcess& ProcessOf(Member& m);
};

}  // namespace heapsight::record

#endif  // HEAPSIGHT_CLI_RECORD_LIVE_FAMILY_H_
