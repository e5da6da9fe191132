// cli/record/live_conversion.h: `heapsight record --pairing=address`
// converts each trace to version 4 while the program runs
// (analyzer/model/pairing_converter.h).
//
// In address mode the program keeps no table of its live blocks, and its
// trace names frees by address; every reader of such a trace must pair
// them again (3-4x the CPU and memory of a version-4 trace's analysis on
// python). This task does the pairing once, in the record process, on the
// second core, while the program runs, as heaptrack_interpret does for
// heaptrack: a thread polls each trace of the manifest (TraceTail, whole
// blocks as they reach the file) and feeds its chunks to a PairingConverter
// writing "<trace>.converting" beside it. When the program has exited,
// Finish() reads what is left, and a trace whose conversion read the
// process's end record replaces the version-6 file with its version-4 one
// (rename: the name the manifest lists now holds a version-4 trace).
//
// A trace keeps its version-6 form, and its .converting file is removed,
// when the conversion cannot be exact: a fork child's or a forking
// process's trace (PairingConverter refuses them), a process killed before
// its end record (its spool may still hold chunks that a reader of the
// version-6 trace appends), a damaged block, or any write error. Such a
// trace is analyzed as version 6, as without this task; Finish() says why.
//
// Memory: each converting trace's pairing state (16 bytes per heap address
// the program used: 143 MB for python's 1,000,000-entry dict), in the
// record process, not the program's.
#ifndef HEAPSIGHT_CLI_RECORD_LIVE_CONVERSION_H_
#define HEAPSIGHT_CLI_RECORD_LIVE_CONVERSION_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "analyzer/model/pairing_converter.h"
#include "analyzer/model/trace_tail.h"

namespace heapsight::record {

class LiveConversion {
 public:
  // `list_traces` gives the traces written so far, each once, in the order
  // written (TraceManifest::Read); called on the task's thread.
  // The version-4 traces' blocks are compressed at `zstd_level` (the
  // preload's HEAPSIGHT_ZSTD_LEVEL; 0: raw).
  LiveConversion(std::function<std::vector<std::string>()> list_traces, int zstd_level);
  ~LiveConversion();
  LiveConversion(const LiveConversion&) = delete;
  LiveConversion& operator=(const LiveConversion&) = delete;

  // Starts the polling thread (StartThreadWithoutForwardedSignals).
  void Start();

  struct Outcome {
    std::string trace;
    bool converted = false;  // the file is now version 4
    std::string why_not;     // else: why it stays version 6 ("" if it was not version 6)
    analyzer::PairingConversionStats stats;
  };
  // After the program's exit: stops the thread, reads every trace to its
  // end, and replaces the version-6 files whose conversion is complete.
  std::vector<Outcome> Finish();

 private:
  struct Member {
    std::string path;
    std::string temp;  // path + ".converting"
    std::unique_ptr<analyzer::TraceTail> tail;
    std::unique_ptr<analyzer::PairingConverter> converter;
    int fd = -1;
    bool done = false;  // given up or not version 6
    std::string why_not;
  };

  // Reads the blocks written since the last call; returns how many.
  size_t Poll();
  void GiveUp(Member& m, std::string why);
  void Run();

  std::function<std::vector<std::string>()> list_traces_;
  int zstd_level_;
  std::vector<std::unique_ptr<Member>> members_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

}  // namespace heapsight::record

#endif  // HEAPSIGHT_CLI_RECORD_LIVE_CONVERSION_H_
