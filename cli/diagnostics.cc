// cli/diagnostics.cc: see diagnostics.h.
#include "cli/diagnostics.h"

#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "analyzer/symbols/symbolizer.h"
#include "cli/terminal_color.h"

namespace heapsight::analyzer {
namespace {

// The payload WithExitStatus() puts on a status.
constexpr char kExitPayload[] = "heapsight.cli/exit-status";

std::string& StdinTracePath() {
  static std::string* path = new std::string();
  return *path;
}

void Print(std::string_view sgr, std::string_view label, std::string_view text) {
  std::string head = Paint(STDERR_FILENO, sgr, label);
  std::fprintf(stderr, "%s %s\n", head.c_str(), NameStdin(text).c_str());
}

}  // namespace

absl::Status WithExitStatus(absl::Status status, int exit_status) {
  if (!status.ok()) status.SetPayload(kExitPayload, absl::Cord(absl::StrCat(exit_status)));
  return status;
}

absl::Status CheckFamilyArguments(const std::vector<std::string>& traces, bool family) {
  if (!family) return absl::OkStatus();
  for (const std::string& t : traces) {
    if (t != "-") continue;
    return WithExitStatus(
        absl::InvalidArgumentError(
            "--family: standard input (-) has no directory in which to find the traces of its "
            "family (fork children, exec'd images); name the trace file instead, e.g. "
            "--family heapsight.prog.123.hst, or drop --family"),
        kExitUsage);
  }
  return absl::OkStatus();
}

absl::Status BadInput(absl::Status status) {
  return WithExitStatus(std::move(status), kExitBadInput);
}

void PrintError(const absl::Status& status) { PrintError(std::string(status.message())); }

void PrintError(std::string_view text) { Print("1;31", "heapsight:", text); }

int Fail(const absl::Status& status) {
  PrintError(status);
  int exit_status = kExitFailure;
  if (auto payload = status.GetPayload(kExitPayload)) {
    if (!absl::SimpleAtoi(std::string(*payload), &exit_status) || exit_status == 0) {
      exit_status = kExitFailure;
    }
  }
  return exit_status;
}

int FailUsage(const absl::Status& status) {
  PrintError(status);
  return kExitUsage;
}

int FailInput(const absl::Status& status) {
  PrintError(status);
  return kExitBadInput;
}

void PrintWarning(std::string_view text) {
  std::string label = Paint(STDERR_FILENO, "1;33", "warning:");
  std::fprintf(stderr, "heapsight: %s %s\n", label.c_str(), NameStdin(text).c_str());
}

void PrintNote(std::string_view text) {
  std::fprintf(stderr, "heapsight: %s\n", NameStdin(text).c_str());
}

void SetStdinTracePath(std::string path) { StdinTracePath() = std::move(path); }

std::string NameStdin(std::string_view text) {
  const std::string& path = StdinTracePath();
  if (path.empty()) return std::string(text);
  return absl::StrReplaceAll(std::string(text), {{path, "<stdin>"}});
}

void PrintSymbolizerWarnings(const ProcessProfile& profile) {
  if (profile.symbolizer == nullptr) return;
  for (const std::string& w : profile.symbolizer->warnings()) PrintWarning(w);
}

void PrintAnalysisWarnings(const ProcessProfile& profile) {
  for (const std::string& w : profile.warnings) {
    PrintWarning(absl::StrCat(profile.trace_path, ": ", w));
  }
  PrintSymbolizerWarnings(profile);
}

namespace {
bool g_cut_short = false;  // a trace read was cut short (NoteCutShortTrace)
}  // namespace

void NoteCutShortTrace(std::string_view path, bool truncated) {
  g_cut_short = true;
  PrintWarning(absl::StrCat(
      NameStdin(path), ": trace cut short (",
      truncated ? "the file ends inside a block"
                : "no end record: the process was killed or is still running",
      "); analyzed up to the cut, exit status 4"));
}

int ExitStatusAfterRun(int status) {
  return status == 0 && g_cut_short ? kExitCutShort : status;
}

}  // namespace heapsight::analyzer
