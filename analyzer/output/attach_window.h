// analyzer/output/attach_window.h: how a report says that a trace is an
// attached window (issue 19: `heapsight attach`/`detach` on a process that
// ran with HEAPSIGHT_START=paused; format::kFileFlagAttached).
//
// Such a trace starts at the attach: blocks allocated before it are not in
// the trace, their frees were not recorded, and the exit leak scan (if the
// process ended inside the window) classified only the window's blocks.
// Every report (report, leaks, html, pprof, text and JSON) says so with the
// words below.
#ifndef HEAPSIGHT_ANALYZER_OUTPUT_ATTACH_WINDOW_H_
#define HEAPSIGHT_ANALYZER_OUTPUT_ATTACH_WINDOW_H_

#include <string>

#include "analyzer/model/trace_model.h"

namespace heapsight::analyzer {

// The window of an attached trace, for JSON: times are UTC, ISO 8601 with
// milliseconds ("2026-12-05T00:41:02.123Z").
struct AttachWindow {
  std::string attach_time;  // the trace's start
  std::string end;          // "detach", "exit", "exec" or "cut short"
  std::string end_time;     // the last record's time
};

// True when `p` is an attached window.
bool IsAttachedWindow(const ProcessProfile& p);

// Where a segment closed by rotation (EndedInRotation) continues: the next
// segment's file name when the trace's name is record's <stem>.<n>.hst,
// else "the next segment".
std::string NextSegmentName(const ProcessProfile& p);

// The window of `p` (only meaningful when IsAttachedWindow).
AttachWindow AttachWindowOf(const ProcessProfile& p);

// "recorded from attach at 2026-12-05T00:41:02.123Z to detach at
// 2026-12-05T00:41:04.456Z; blocks allocated before attach are not seen",
// or "" for a trace of the whole run.
std::string AttachWindowText(const ProcessProfile& p);

// The note of the exit leak scan of a window: "the leak scan classified
// only blocks allocated inside the window ...", or "".
std::string AttachWindowLeakNote(const ProcessProfile& p);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_OUTPUT_ATTACH_WINDOW_H_
