// cli/record/record_session.cc: see record_session.h.
#include "cli/record/record_session.h"

#include <algorithm>
#include <chrono>
#include <limits.h>
#include <sched.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analyzer/model/chunk_time_merge.h"
#include "analyzer/report/leak_summary.h"
#include "format/options.h"
#include "cli/diagnostics.h"
#include "cli/record/child_process.h"
#include "cli/record/live_conversion.h"
#include "cli/record/live_endpoints.h"
#include "cli/record/live_server.h"
#include "cli/record/option_table.h"
#include "cli/record/output_target.h"
#include "cli/record/preload_locator.h"
#include "cli/record/program_resolver.h"
#include "cli/record/trace_manifest.h"

extern char** environ;

namespace heapsight::record {
namespace {

constexpr char kOutputVar[] = "HEAPSIGHT_OUTPUT";
constexpr char kManifestVar[] = "HEAPSIGHT_MANIFEST";
constexpr char kQuietVar[] = "HEAPSIGHT_QUIET";
constexpr char kHeapLimitVar[] = "HEAPSIGHT_HEAP_LIMIT";
constexpr char kAnalyzerVar[] = "HEAPSIGHT_ANALYZER";
constexpr char kFlushVar[] = "HEAPSIGHT_FLUSH_MS";
constexpr char kPairingVar[] = "HEAPSIGHT_PAIRING";
constexpr char kLeakSignalVar[] = "HEAPSIGHT_LEAK_SIGNAL";
// --serve: every event reaches the trace within about a second (an option
// of the preload's writer; older preloads ignore it).
constexpr char kServeFlushMs[] = "1000";
// --convert-traces: every event reaches the trace within about 250 ms, so
// that the conversion's merge window (live_conversion.h) is short.
constexpr char kConvertFlushMs[] = "250";
// --serve: the signal /debug/heapsight/leaks sends for a scan on demand.
constexpr char kServeLeakSignal[] = "RTMIN+4";

// A HEAPSIGHT_* variable the user chose (--option or the environment).
std::string UserValue(const std::map<std::string, std::string>& set, const char* name) {
  auto it = set.find(name);
  if (it != set.end()) return it->second;
  const char* env = getenv(name);
  return env != nullptr ? env : "";
}

// The options the preload of the child will parse: `set` over this
// process's environment, as ChildEnvironment passes them, read by the
// preload's own parser (format/options.h: its defaults and range checks).
// The string options point into `set` or the environment.
format::Options PreloadOptions(const std::map<std::string, std::string>& set) {
  format::Options options;
  char error[256];
  format::ParseOptions(
      [](const char* name, void* ctx) -> const char* {
        const auto& values = *static_cast<const std::map<std::string, std::string>*>(ctx);
        auto it = values.find(name);
        return it != values.end() ? it->second.c_str() : getenv(name);
      },
      const_cast<std::map<std::string, std::string>*>(&set), &options, error, sizeof error);
  return options;
}

// Errors print through the command's one printer (cli/diagnostics.h).
void Error(const std::string& message) { analyzer::PrintError(message); }

// CPUs this process may run on (its affinity mask; cgroup quotas aside).
int UsableCpus() {
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof cpus, &cpus) != 0) return 1;
  return CPU_COUNT(&cpus);
}

// --pairing=auto with no HEAPSIGHT_PAIRING chosen: address
// frees converted to version 4 in this process (live_conversion.h), the
// program keeping 2 bytes per 16 bytes of heap instead of a table of its
// live blocks (python's 1,000,000-entry dict: peak RSS 1.12x plain against
// 1.34x), while the traces it leaves read as table traces. Table mode
// where the conversion cannot run or the preload would fall back anyway:
// - sampling, compact frees or a paused start (the preload writes table
//   mode there, with a line on stderr);
// - --serve and --rotate-*, which read the traces themselves (served
//   numbers of address frees lag by the merge window);
// - fewer than 2 CPUs: the pairing would take the program's.
// Not the default yet (stop 40): the conversion needs HEAPSIGHT_FLUSH_MS,
// which starts each process's writer thread at once and makes its exit
// wait for that thread to wake; with the conversions, a shell loop of 503
// short processes takes 1.3 s against 0.83 s in table mode
// (docs/performance.md, stop 40).
bool AutoPairing(const std::map<std::string, std::string>& set, bool serving) {
  if (serving || UsableCpus() < 2) return false;
  const format::Options o = PreloadOptions(set);
  return o.SAMPLE_BYTES == 0 && !o.COMPACT_FREES && std::strcmp(o.START, "paused") != 0;
}

// The child's environment: ours, with the preload in front of LD_PRELOAD and
// the HEAPSIGHT_* variables of this run set, without the preload's private
// _HEAPSIGHT_EXEC_PARENT.
std::vector<std::string> ChildEnvironment(const std::string& preload,
                                          const std::map<std::string, std::string>& set) {
  std::vector<std::string> env;
  std::string old_preload;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    std::string_view name = entry.substr(0, entry.find('='));
    if (name == "LD_PRELOAD") {
      old_preload = std::string(entry.substr(std::min(entry.size(), name.size() + 1)));
      continue;
    }
    if (set.count(std::string(name)) != 0) continue;
    // The preload's private exec hand-over; only its own exec hooks set it.
    if (name == "_HEAPSIGHT_EXEC_PARENT") continue;
    env.emplace_back(entry);
  }
  // ld.so splits LD_PRELOAD at spaces and colons; ours goes first.
  size_t keep = old_preload.find_first_not_of(" :");
  env.push_back(keep == std::string::npos
                    ? absl::StrCat("LD_PRELOAD=", preload)
                    : absl::StrCat("LD_PRELOAD=", preload, ":", old_preload.substr(keep)));
  for (const auto& [name, value] : set) env.push_back(absl::StrCat(name, "=", value));
  return env;
}

std::string CurrentDirectory() {
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) return "/";
  return cwd;
}

// `text` with control characters (a newline in -o or in %e) escaped, so one
// message stays one line.
std::string Printable(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) {
      absl::StrAppend(&out, c == '\n' ? "\\n" : c == '\t' ? "\\t" : absl::StrFormat("\\x%02x", c));
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// Bytes free for unprivileged users on the file system holding `path`, or
// -1 if unknown.
int64_t FreeBytes(const std::string& path) {
  std::string dir = path.substr(0, path.rfind('/') + 1);
  struct statvfs fs;
  if (statvfs(dir.empty() ? "." : dir.c_str(), &fs) != 0) return -1;
  return static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
}

// A trace without its end record: say what the run tells about why, instead
// of leaving "cut short" to be read as "killed". A trace of a process that
// exited while its file system is full was cut short by the full disk.
void ExplainIncomplete(const std::vector<std::string>& traces, const RecordRequest& request,
                       const ChildStatus& child) {
  for (const std::string& trace : traces) {
    absl::StatusOr<analyzer::LeakSummary> one =
        analyzer::SummarizeTraces({trace}, request.suppressions);
    if (!one.ok() || one->complete) continue;
    int64_t free_bytes = FreeBytes(trace);
    std::string why;
    if (free_bytes >= 0 && free_bytes < (int64_t{1} << 20)) {
      why = absl::StrCat("writing it failed: the file system holding it is full (",
                         free_bytes, " bytes free)");
    } else if (child.signaled && traces.size() == 1) {
      why = absl::StrCat(request.command[0], " was killed by signal ", child.signal);
    } else {
      why = "its process was killed, is still running, or could not write it (see the "
            "preload's messages above)";
    }
    Error(absl::StrCat(Printable(trace), " is incomplete: ", why));
  }
}

}  // namespace

std::optional<uint64_t> ParseSize(const std::string& text) {
  size_t digits = text.find_first_not_of("0123456789");
  if (digits == 0 || text.empty()) return std::nullopt;
  uint64_t value = 0;
  if (!absl::SimpleAtoi(text.substr(0, digits), &value)) return std::nullopt;
  std::string suffix = digits == std::string::npos ? "" : text.substr(digits);
  int shift = -1;
  for (auto [s, sh] : std::initializer_list<std::pair<const char*, int>>{
           {"", 0}, {"B", 0}, {"K", 10}, {"KiB", 10}, {"k", 10}, {"M", 20}, {"MiB", 20},
           {"m", 20}, {"G", 30}, {"GiB", 30}, {"g", 30}, {"T", 40}, {"TiB", 40}}) {
    if (suffix == s) shift = sh;
  }
  if (shift < 0 || value == 0 || value > (UINT64_MAX >> shift)) return std::nullopt;
  return value << shift;
}

std::optional<uint64_t> ParseDuration(const std::string& text) {
  size_t digits = text.find_first_not_of("0123456789");
  if (digits == 0 || text.empty()) return std::nullopt;
  uint64_t value = 0;
  if (!absl::SimpleAtoi(text.substr(0, digits), &value) || value == 0) return std::nullopt;
  std::string suffix = digits == std::string::npos ? "" : text.substr(digits);
  uint64_t unit = suffix == "" || suffix == "s" ? 1
                  : suffix == "m"               ? 60
                  : suffix == "h"               ? 3600
                  : suffix == "d"               ? 86400
                                                : 0;
  if (unit == 0 || value > UINT64_MAX / unit) return std::nullopt;
  return value * unit;
}

std::optional<uint64_t> ConvertWaitUs(const std::string& value, uint64_t run_us) {
  if (value == "auto") return LiveConversion::AutoWaitUs(run_us);
  if (value == "all") return LiveConversion::kNoLimit;
  std::string number = value;
  if (!number.empty() && number.back() == 's') number.pop_back();
  double seconds = 0;
  // At most a day: longer is "all".
  if (number.empty() || !absl::SimpleAtod(number, &seconds) || !(seconds >= 0) ||
      seconds > 86400) {
    return std::nullopt;
  }
  return static_cast<uint64_t>(seconds * 1e6);
}

int RunRecordSession(const RecordRequest& request) {
  // Our messages go to stderr, which may be a pipe whose reader is gone
  // (`2>&1 | head -1`): that must not cost PROGRAM's exit status.
  IgnoreSigpipe();
  if (request.command.empty()) {
    Error("record: no program given; usage: heapsight record [OPTIONS] -- PROGRAM [ARGS...]");
    return kExitUsage;
  }

  // Options first: a typo should not cost a whole run.
  std::map<std::string, std::string> set;
  for (const std::string& assignment : request.options) {
    auto parsed = ParseOptionAssignment(assignment);
    if (!parsed.ok()) {
      Error(std::string(parsed.status().message()));
      return kExitUsage;
    }
    if (parsed->first == kOutputVar || parsed->first == kManifestVar) {
      Error(absl::StrCat(parsed->first, " is set by heapsight record itself",
                         parsed->first == kOutputVar ? "; use -o PATH" : ""));
      return kExitUsage;
    }
    set[parsed->first] = parsed->second;
  }
  if (request.pairing == "table" || request.pairing == "address") {
    set[kPairingVar] = request.pairing;
  }
  if (request.quiet) set.try_emplace(kQuietVar, std::string(1, '1'));
  if (!request.heap_limit.empty()) set[kHeapLimitVar] = request.heap_limit;
  // heapsight_write_profile() in PROGRAM runs this very binary on the trace.
  if (getenv(kAnalyzerVar) == nullptr && set.count(kAnalyzerVar) == 0) {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) set[kAnalyzerVar] = std::string(self, static_cast<size_t>(n));
  }

  absl::StatusOr<std::string> preload = FindPreload();
  if (!preload.ok()) {
    Error(std::string(preload.status().message()));
    return kExitRecordFailed;
  }
  if (preload->find_first_of(" :") != std::string::npos) {
    Error(absl::StrCat("the preload's path contains a space or ':', which LD_PRELOAD cannot "
                       "express: ",
                       *preload));
    return kExitRecordFailed;
  }

  std::optional<ListenAddress> listen;
  if (!request.serve.empty()) {
    absl::StatusOr<ListenAddress> parsed = ParseListenAddress(request.serve);
    if (!parsed.ok()) {
      Error(std::string(parsed.status().message()));
      return kExitUsage;
    }
    listen = *parsed;
  } else if (request.no_trace) {
    Error("record: --no-trace needs --serve (nothing would read the trace)");
    return kExitUsage;
  }
  RotateLimits rotate;
  if (!request.rotate_size.empty()) {
    std::optional<uint64_t> size = ParseSize(request.rotate_size);
    if (!size.has_value()) {
      Error(absl::StrCat("record: --rotate-size ", request.rotate_size,
                         ": expected a size such as 256M (K, M, G suffixes)"));
      return kExitUsage;
    }
    rotate.max_bytes = *size;
  }
  if (!request.rotate_time.empty()) {
    std::optional<uint64_t> seconds = ParseDuration(request.rotate_time);
    if (!seconds.has_value()) {
      Error(absl::StrCat("record: --rotate-time ", request.rotate_time,
                         ": expected a duration such as 90s, 15m, 6h or 1d"));
      return kExitUsage;
    }
    rotate.max_seconds = *seconds;
  }
  rotate.keep_segments = request.rotate_keep;
  const bool rotating = rotate.max_bytes != 0 || rotate.max_seconds != 0;
  if (request.rotate_keep != 0 && !rotating) {
    Error("record: --rotate-keep needs --rotate-size or --rotate-time");
    return kExitUsage;
  }
  if (rotating && request.no_trace) {
    Error("record: --no-trace keeps no trace to rotate");
    return kExitUsage;
  }

  ResolvedProgram program = ResolveProgram(request.command[0], getenv("PATH"));
  if (program.exit_code != 0) {
    Error(program.message);
    return program.exit_code;
  }

  absl::StatusOr<TraceManifest> manifest = TraceManifest::Create();
  if (!manifest.ok()) {
    Error(std::string(manifest.status().message()));
    return kExitRecordFailed;
  }
  set[kManifestVar] = manifest->path();

  // --no-trace and rotation: the preload's traces live in the manifest's
  // private directory (the rotated segments go where -o says).
  std::string pattern = AbsolutePattern(
      request.no_trace ? manifest->directory() + "/" + std::string(kDefaultOutputPattern)
      : request.output.empty() ? std::string(kDefaultOutputPattern)
                               : request.output,
      CurrentDirectory());
  if (absl::Status s = CheckOutputDirectory(pattern); !s.ok()) {
    Error(std::string(s.message()));
    return kExitRecordFailed;
  }
  std::string rotate_dir;
  if (rotating) {
    size_t slash = pattern.rfind('/');
    rotate_dir = slash == 0 ? "/" : pattern.substr(0, slash);
    if (rotate_dir.find('%') != std::string::npos) {
      Error("record: with --rotate-*, the directory part of -o cannot depend on the process");
      return kExitUsage;
    }
    pattern = manifest->directory() + pattern.substr(slash);
  }
  set[kOutputVar] = pattern;

  std::unique_ptr<LiveServer> server;
  if (listen.has_value() || rotating) {
    if (UserValue(set, kFlushVar).empty()) set[kFlushVar] = kServeFlushMs;
    if (UserValue(set, kLeakSignalVar).empty()) set[kLeakSignalVar] = kServeLeakSignal;
    LiveServerOptions options;
    const TraceManifest* m = &*manifest;
    options.list_traces = [m] { return m->Read(); };
    options.release_consumed = request.no_trace || rotating;
    options.rotate_dir = rotate_dir;
    options.rotate = rotate;
    options.leak_signal = SignalNumber(UserValue(set, kLeakSignalVar));
    options.merge_window_us =
        analyzer::ChunkTimeMerge::WindowForFlushMs(PreloadOptions(set).FLUSH_MS);
    absl::StatusOr<std::unique_ptr<LiveServer>> started = LiveServer::Start(listen, options);
    if (!started.ok()) {
      Error(std::string(started.status().message()));
      return kExitRecordFailed;
    }
    server = std::move(*started);
    if (!request.quiet && listen.has_value()) {
      Error(absl::StrCat("serving ",
                         listen->unix_socket ? server->address()
                                             : absl::StrCat("http://", server->address()),
                         " (/debug/pprof/heap, /debug/pprof/allocs, /metrics, "
                         "/debug/heapsight/leaks; index /debug/pprof/)"));
    }
  }

  // Address frees (version 6): paired here, on the second core, while the
  // program runs, so the traces land as version 4 (live_conversion.h).
  // --serve and --rotate-* read the traces themselves, as version 6.
  const bool auto_pairing = request.pairing == "auto" && UserValue(set, kPairingVar).empty() &&
                            AutoPairing(set, server != nullptr);
  if (auto_pairing) set[kPairingVar] = "address";
  std::unique_ptr<LiveConversion> conversion;
  if (server == nullptr && (request.convert_address_traces || auto_pairing)) {
    // The pairing mode and zstd level the preload will read, through its
    // own parser, defaults and range checks.
    if (std::strcmp(PreloadOptions(set).PAIRING, "address") == 0) {
      if (UserValue(set, kFlushVar).empty()) set[kFlushVar] = kConvertFlushMs;
      const format::Options preload_options = PreloadOptions(set);
      const TraceManifest* m = &*manifest;
      conversion = std::make_unique<LiveConversion>(
          [m] { return m->Read(); }, static_cast<int>(preload_options.ZSTD_LEVEL),
          analyzer::ChunkTimeMerge::WindowForFlushMs(preload_options.FLUSH_MS));
      conversion->Start();
    }
  }

  std::fflush(stdout);
  std::fflush(stderr);
  const auto child_start = std::chrono::steady_clock::now();
  ChildStatus child = RunChild(program.path, request.command, ChildEnvironment(*preload, set));
  const auto run_us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                std::chrono::steady_clock::now() - child_start)
                                                .count());
  if (child.exec_errno != 0) {
    Error(absl::StrCat(request.command[0], ": cannot execute: ", std::strerror(child.exec_errno)));
    return child.exec_errno == ENOENT ? kExitNotFound : kExitCannotExecute;
  }

  if (server != nullptr) server->Stop();
  if (conversion != nullptr) {
    // One line per reason (a shell loop's children share theirs).
    std::vector<std::pair<std::string, std::vector<std::string>>> kept;  // why -> traces
    // Checked by the option's parser; "all" if it still does not parse.
    const uint64_t wait_us =
        ConvertWaitUs(request.convert_wait, run_us).value_or(LiveConversion::kNoLimit);
    for (const LiveConversion::Outcome& o : conversion->Finish(wait_us)) {
      if (o.converted || o.why_not.empty()) continue;
      auto it = std::find_if(kept.begin(), kept.end(),
                             [&](const auto& k) { return k.first == o.why_not; });
      if (it == kept.end()) it = kept.insert(kept.end(), {o.why_not, {}});
      it->second.push_back(o.trace);
    }
    for (const auto& [why, traces] : kept) {
      // Asked for (--convert-traces): say which traces stay version 6 and
      // why. Chosen by auto: the user asked for neither, and a version-6
      // trace reads the same (only slower): not worth a line.
      if (request.quiet || !request.convert_address_traces) break;
      analyzer::PrintWarning(absl::StrCat(
          Printable(traces[0]),
          traces.size() > 1 ? absl::StrCat(" and ", traces.size() - 1, " other traces stay")
                            : std::string(" stays"),
          " version 6 (", why, "); every command still reads ",
          traces.size() > 1 ? "them" : "it"));
    }
  }
  std::vector<std::string> traces = manifest->Read();
  if (server != nullptr && !request.quiet) {
    for (const std::string& e : server->errors()) Error(absl::StrCat("live analysis: ", e));
  }
  if (rotating) {
    // The preload's own traces were only the spool of the segments.
    for (const std::string& trace : traces) unlink(trace.c_str());
    std::vector<std::string> segments = server->segments();
    // A segment of every process (its newest, which has the end record)
    // stands for it in the leak summary.
    traces.clear();
    std::map<std::string, std::string> newest;
    for (const std::string& s : segments) {
      newest[s.substr(0, s.rfind('.', s.size() - 5))] = s;
    }
    for (const auto& [stem, s] : newest) traces.push_back(s);
    if (!request.quiet) {
      for (const std::string& s : segments) Error(absl::StrCat("wrote ", Printable(s)));
    }
  } else if (request.no_trace) {
    // Streamed and analyzed; their analyzed parts are gone from disk anyway.
    for (const std::string& trace : traces) unlink(trace.c_str());
    if (!request.quiet) {
      Error(absl::StrCat("streamed ", traces.size(), " trace", traces.size() == 1 ? "" : "s",
                         " (not kept: --no-trace)"));
    }
    return child.exit_code;
  }
  if (!rotating && !request.quiet) {
    for (const std::string& trace : traces) Error(absl::StrCat("wrote ", Printable(trace)));
    if (traces.empty()) {
      Error(program.untraced_reason.empty()
                ? std::string("no trace was written (see the messages above)")
                : absl::StrCat("no trace was written: ", program.untraced_reason));
    }
  }

  bool leaks_remain = false;
  bool want_summary = !request.quiet && request.leak_summary;
  if (!traces.empty() && (want_summary || request.leak_exitcode.has_value())) {
    absl::StatusOr<analyzer::LeakSummary> summary =
        analyzer::SummarizeTraces(traces, request.suppressions);
    if (!summary.ok()) {
      Error(absl::StrCat("cannot summarize the trace: ", summary.status().message()));
    } else {
      leaks_remain = summary->totals.leaked.blocks > 0;
      if (want_summary) analyzer::PrintLeakSummary(stderr, *summary);
      if (!summary->complete && !request.quiet) ExplainIncomplete(traces, request, child);
    }
  }

  // As LeakSanitizer's exitcode: only a program that succeeded gets the leak
  // status; a failure (or a signal) is reported as it is.
  if (!child.signaled && child.exit_code == 0 && leaks_remain &&
      request.leak_exitcode.has_value()) {
    return *request.leak_exitcode;
  }
  return child.exit_code;
}

}  // namespace heapsight::record
