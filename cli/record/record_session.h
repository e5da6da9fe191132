// cli/record/record_session.h: what `heapsight record` does once its
// command line is parsed: find the preload, check PROGRAM and the output,
// run PROGRAM traced, list the traces and summarize leaks.
#ifndef HEAPSIGHT_ANALYZER_RECORD_RECORD_SESSION_H_
#define HEAPSIGHT_ANALYZER_RECORD_RECORD_SESSION_H_

#include <optional>
#include <string>
#include <vector>

namespace heapsight::record {

// Exit status when heapsight itself fails before PROGRAM runs (preload not
// found, output not writable), like env(1) and timeout(1).
inline constexpr int kExitRecordFailed = 125;
// Exit status of a usage error (bad --option), as for every subcommand.
inline constexpr int kExitUsage = 2;

struct RecordRequest {
  std::vector<std::string> command;  // PROGRAM and its arguments
  std::string output;                // -o pattern; empty: kDefaultOutputPattern
  bool quiet = false;                // -q
  std::vector<std::string> options;  // --option NAME=VALUE, in order
  std::optional<int> leak_exitcode;  // --leak-exitcode N
  std::string suppressions;          // --suppressions FILE
  bool leak_summary = true;          // false: --no-leak-summary
  std::string heap_limit;            // --heap-limit SIZE (HEAPSIGHT_HEAP_LIMIT); empty: none
  // --serve ADDR: analyze the traces while they are written and serve
  // profiles and metrics over HTTP (live_server.h); empty: no server.
  std::string serve;
  // --no-trace (with --serve): the traces go to a private directory, the
  // disk space of what was analyzed is given back while the program runs,
  // and they are deleted at the end.
  bool no_trace = false;
  // --rotate-size SIZE / --rotate-time DURATION / --rotate-keep N: the
  // traces are kept as segments of at most that size or age
  // (trace_rotator.h); empty / 0: no rotation.
  std::string rotate_size;
  std::string rotate_time;
  uint64_t rotate_keep = 0;
  // --convert-traces: with --pairing=address (and neither --serve nor
  // --rotate-*, which read the traces themselves), the record process
  // converts the version-6 traces to version 4 while the program runs
  // (live_conversion.h).
  bool convert_address_traces = false;
  // --pairing: "table" (the default), "address", or "auto": address frees
  // converted to version 4 here (as --pairing=address --convert-traces)
  // where that can work (AutoPairing in record_session.cc), table mode
  // elsewhere. Empty: not given (HEAPSIGHT_PAIRING in the environment or
  // --option PAIRING= decides, else the preload's default, table).
  std::string pairing;
  // --convert-wait: how long the conversion may go on after the program's
  // exit: "auto" (a tenth of the run, at least 0.1 s), "all" (until done)
  // or seconds (live_conversion.h).
  std::string convert_wait = "auto";
};

// --convert-wait's value and the program's run -> the wait in us
// (LiveConversion::kNoLimit for "all"); nullopt if the value is bad.
std::optional<uint64_t> ConvertWaitUs(const std::string& value, uint64_t run_us);

// "64M" -> 67108864 (suffixes K, M, G, T: powers of 1024); nullopt if bad.
std::optional<uint64_t> ParseSize(const std::string& text);
// "90", "90s", "15m", "2h", "1d" -> seconds; nullopt if bad or 0.
std::optional<uint64_t> ParseDuration(const std::string& text);

// Runs the whole session and returns heapsight's exit status: PROGRAM's own
// status (128+N if killed by signal N); 127 / 126 if PROGRAM cannot be found
// / run (126 also for a statically linked, 32-bit or foreign PROGRAM);
// kExitUsage for a bad --option; kExitRecordFailed for heapsight's own
// errors; leak_exitcode when set, PROGRAM exited with status 0 and
// unsuppressed leaks remain (a failing PROGRAM keeps its own status, as
// with LeakSanitizer's exitcode). A closed stderr does not stop heapsight.
int RunRecordSession(const RecordRequest& request);

}  // namespace heapsight::record

#endif  // HEAPSIGHT_ANALYZER_RECORD_RECORD_SESSION_H_
