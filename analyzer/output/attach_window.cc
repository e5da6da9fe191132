// analyzer/output/attach_window.cc: see attach_window.h.
#include "analyzer/output/attach_window.h"

#include <time.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "format/trace_format.h"

namespace heapsight::analyzer {
namespace {

std::string UtcTime(uint64_t realtime_ns) {
  auto secs = static_cast<time_t>(realtime_ns / 1000000000);
  struct tm tm {};
  if (gmtime_r(&secs, &tm) == nullptr) return "?";
  return absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                         static_cast<int>(realtime_ns / 1000000 % 1000));
}

}  // namespace

std::string NextSegmentName(const ProcessProfile& p) {
  std::string name = p.trace_path.substr(p.trace_path.rfind('/') + 1);
  const std::string suffix = ".hst";
  if (name.size() > suffix.size() &&
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
    std::string stem = name.substr(0, name.size() - suffix.size());
    size_t dot = stem.rfind('.');
    if (dot != std::string::npos && dot + 1 < stem.size() && stem.size() - dot - 1 <= 18 &&
        stem.find_first_not_of("0123456789", dot + 1) == std::string::npos) {
      uint64_t n = std::stoull(stem.substr(dot + 1));
      return absl::StrCat(stem.substr(0, dot), ".", n + 1, suffix);
    }
  }
  return "the next segment";
}

bool IsAttachedWindow(const ProcessProfile& p) {
  return (p.header.flags & format::kFileFlagAttached) != 0;
}

AttachWindow AttachWindowOf(const ProcessProfile& p) {
  AttachWindow w;
  w.attach_time = UtcTime(p.header.start_realtime_ns);
  w.end_time = UtcTime(p.header.start_realtime_ns + p.duration_us * 1000);
  if (!p.complete) {
    w.end = "cut short";
  } else if (p.end_reason == format::EndReason::kDetach) {
    w.end = "detach";
  } else if (p.end_reason == format::EndReason::kExec) {
    w.end = "exec";
  } else {
    w.end = "exit";
  }
  return w;
}

std::string AttachWindowText(const ProcessProfile& p) {
  if (!IsAttachedWindow(p)) return "";
  AttachWindow w = AttachWindowOf(p);
  std::string end = w.end == "detach" ? "detach"
                    : w.end == "exit" ? "the process's exit"
                    : w.end == "exec" ? "exec"
                                      : "the trace's last record (cut short)";
  return absl::StrCat("recorded from attach at ", w.attach_time, " to ", end, " at ", w.end_time,
                      "; blocks allocated before attach are not seen");
}

std::string AttachWindowLeakNote(const ProcessProfile& p) {
  if (!IsAttachedWindow(p)) return "";
  return "only blocks allocated inside the window are classified; a block referenced only "
         "from a block allocated before attach is counted as lost";
}

}  // namespace heapsight::analyzer
