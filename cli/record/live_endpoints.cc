// cli/record/live_endpoints.cc: see live_endpoints.h.
#include "cli/record/live_endpoints.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "analyzer/output/pprof_writer.h"
#include "analyzer/output/profile_family.h"
#include "analyzer/output/trace_heap_profile.h"
#include "analyzer/model/sample_estimate.h"
#include "analyzer/report/leak_report.h"
#include "cli/monotonic_clock.h"
#include "nlohmann/json.hpp"

namespace heapsight::record {
namespace {

using analyzer::LiveProcess;
using analyzer::ProcessProfile;
using analyzer::output::FamilyMember;
using analyzer::output::HeapProfile;

constexpr int kMaxSeconds = 3600;
constexpr char kMoment[] = "now (the newest events the live trace holds)";

HttpResponse BadRequest(const std::string& why) { return TextResponse(400, why + "\n"); }

// The value of query parameter `name` as an integer in [lo, hi]; `fallback`
// when absent; nullopt (and *error set) when malformed.
std::optional<int64_t> IntParam(const HttpRequest& r, const std::string& name, int64_t lo,
                                int64_t hi, int64_t fallback, std::string* error) {
  auto it = r.query.find(name);
  if (it == r.query.end()) return fallback;
  int64_t v = 0;
  if (!absl::SimpleAtoi(it->second, &v) || v < lo || v > hi) {
    *error = absl::StrCat("bad ", name, "=", it->second, ": expected an integer from ", lo, " to ",
                          hi);
    return std::nullopt;
  }
  return v;
}

std::string HtmlEscape(absl::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// A Prometheus label value: backslash, double quote and newline escaped.
std::string LabelValue(absl::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

uint64_t OwnRssBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

std::string OwnCpuSeconds() {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return "0";
  double s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
             static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  return absl::StrFormat("%.3f", s);
}

// Whether `pid` still runs the preload: a process whose trace has no end
// record may have been killed, and its pid reused by an unrelated program,
// which must not receive the leak signal.
bool RunsPreload(uint64_t pid) {
  std::FILE* f = std::fopen(absl::StrCat("/proc/", pid, "/maps").c_str(), "r");
  if (f == nullptr) return false;
  char line[4096];
  bool found = false;
  while (!found && std::fgets(line, sizeof line, f) != nullptr) {
    found = std::strstr(line, "/libheapsight.so") != nullptr;
  }
  std::fclose(f);
  return found;
}

// The processes a request names: ?pid=N, or every process.
std::optional<std::vector<LiveProcess*>> Selected(LiveFamily& family, const HttpRequest& r,
                                                  HttpResponse* error) {
  auto it = r.query.find("pid");
  if (it == r.query.end()) return family.processes();
  uint64_t pid = 0;
  if (!absl::SimpleAtoi(it->second, &pid)) {
    *error = BadRequest(absl::StrCat("bad pid=", it->second, ": expected a process id"));
    return std::nullopt;
  }
  LiveProcess* p = family.Find(pid);
  if (p == nullptr) {
    *error = TextResponse(404, absl::StrCat("no process ", pid, " in this family\n"));
    return std::nullopt;
  }
  return std::vector<LiveProcess*>{p};
}

absl::StatusOr<std::vector<FamilyMember>> Members(const std::vector<LiveProcess*>& processes) {
  std::vector<FamilyMember> members;
  for (LiveProcess* live : processes) {
    ProcessProfile p = live->Snapshot();
    analyzer::output::TraceHeapProfileOptions options;
    options.moment = kMoment;
    absl::StatusOr<HeapProfile> profile = analyzer::output::HeapProfileFromTrace(p, options);
    if (!profile.ok()) return profile.status();
    FamilyMember m;
    m.profile = std::move(*profile);
    m.pid = static_cast<int64_t>(p.pid);
    m.executable = p.exe;
    m.trace_path = p.trace_path;
    members.push_back(std::move(m));
  }
  return members;
}

// A sample's identity across two profiles of one process: its API and the
// addresses of its stack (location indices differ between profiles).
std::string SampleKey(const HeapProfile& profile, const analyzer::output::ProfileSample& s) {
  std::string key = s.api;
  for (uint32_t loc : s.locations) {
    absl::StrAppend(&key, "/", loc < profile.locations.size() ? profile.locations[loc].address : 0);
  }
  return key;
}

// `end` minus `start`, sample by sample (Go's delta profile: every value).
void Subtract(const HeapProfile& start, HeapProfile* end) {
  absl::flat_hash_map<std::string, analyzer::output::SiteValues> before;
  for (const auto& s : start.samples) {
    analyzer::output::SiteValues& v = before[SampleKey(start, s)];
    v.alloc_count += s.values.alloc_count;
    v.alloc_bytes += s.values.alloc_bytes;
    v.inuse_count += s.values.inuse_count;
    v.inuse_bytes += s.values.inuse_bytes;
    v.alloc_count_estimate = std::max<int64_t>(v.alloc_count_estimate, 0) +
                             std::max<int64_t>(s.values.alloc_count_estimate, 0);
    v.alloc_bytes_estimate = std::max<int64_t>(v.alloc_bytes_estimate, 0) +
                             std::max<int64_t>(s.values.alloc_bytes_estimate, 0);
  }
  for (auto& s : end->samples) {
    auto it = before.find(SampleKey(*end, s));
    if (it == before.end()) continue;
    analyzer::output::SiteValues& v = s.values;
    const analyzer::output::SiteValues& b = it->second;
    v.alloc_count -= b.alloc_count;
    v.alloc_bytes -= b.alloc_bytes;
    v.inuse_count -= b.inuse_count;
    v.inuse_bytes -= b.inuse_bytes;
    if (v.alloc_count_estimate >= 0) v.alloc_count_estimate -= b.alloc_count_estimate;
    if (v.alloc_bytes_estimate >= 0) v.alloc_bytes_estimate -= b.alloc_bytes_estimate;
    v.leaked_count = v.leaked_bytes = v.peak_count = v.peak_bytes = 0;
    v.temporary_count = v.temporary_bytes = 0;
    before.erase(it);  // samples of one key are summed once
  }
}

HttpResponse EncodeProfile(std::vector<FamilyMember> members, bool single, bool allocs,
                           int64_t seconds) {
  absl::StatusOr<HeapProfile> profile =
      single ? absl::StatusOr<HeapProfile>(std::move(members.front().profile))
             : analyzer::output::MergeFamilyProfiles(std::move(members));
  if (!profile.ok()) return TextResponse(500, std::string(profile.status().message()) + "\n");
  if (seconds > 0) {
    profile->duration_nanos = seconds * 1000000000;
    profile->comments.push_back(
        absl::StrCat("delta profile: the allocations of the last ", seconds,
                     " seconds; inuse_* is the change of the live heap over them"));
  }
  absl::StatusOr<perftools::profiles::Profile> pprof =
      analyzer::output::BuildPprofProfile(*profile);
  if (!pprof.ok()) return TextResponse(500, std::string(pprof.status().message()) + "\n");
  // Go's four sample types only: whether a live block is temporary is
  // known only once the thread's next call is read.
  if (pprof->sample_type_size() > 4) {
    pprof->mutable_sample_type()->DeleteSubrange(4, pprof->sample_type_size() - 4);
    for (auto& sample : *pprof->mutable_sample()) sample.mutable_value()->Truncate(4);
    auto* comments = pprof->mutable_comment();
    for (int i = comments->size() - 1; i >= 0; --i) {
      if (absl::StrContains(pprof->string_table(static_cast<int>(comments->Get(i))),
                            "temporary")) {
        comments->erase(comments->begin() + i);
      }
    }
  }
  if (allocs) {
    // Go's allocs handler: the same profile, alloc_space by default.
    for (int i = 0; i < pprof->string_table_size(); ++i) {
      if (pprof->string_table(i) == "alloc_space") pprof->set_default_sample_type(i);
    }
  }
  absl::StatusOr<std::string> gz = analyzer::output::EncodePprof(*pprof);
  if (!gz.ok()) return TextResponse(500, std::string(gz.status().message()) + "\n");
  HttpResponse r;
  r.content_type = "application/octet-stream";
  r.body = std::move(*gz);
  r.headers.push_back({"Content-Disposition",
                       absl::StrCat("attachment; filename=\"", allocs ? "allocs" : "heap", "\"")});
  return r;
}

}  // namespace

int SignalNumber(const std::string& name) {
  std::string text = name.rfind("SIG", 0) == 0 ? name.substr(3) : name;
  int v = 0;
  if (absl::SimpleAtoi(text, &v)) return v > 0 && v < NSIG ? v : -1;
  static constexpr struct {
    const char* name;
    int number;
  } kNames[] = {{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"HUP", SIGHUP},
                {"WINCH", SIGWINCH}, {"URG", SIGURG}, {"PWR", SIGPWR}};
  for (const auto& s : kNames) {
    if (text == s.name) return s.number;
  }
  if (text.rfind("RTMIN+", 0) == 0 && absl::SimpleAtoi(text.substr(6), &v) && v >= 0 &&
      SIGRTMIN + v <= SIGRTMAX) {
    return SIGRTMIN + v;
  }
  return -1;
}

HandlerResult LiveEndpoints::Handle(const HttpRequest& request) {
  const std::string& path = request.path;
  if (path == "/debug/pprof/heap") return Profile(request, false);
  if (path == "/debug/pprof/allocs") return Profile(request, true);
  if (path == "/debug/pprof/" || path == "/debug/pprof" || path == "/") {
    return {Index(request), nullptr};
  }
  if (path == "/metrics") {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = MetricsText();
    return {r, nullptr};
  }
  if (path == "/debug/heapsight/leaks") return Leaks(request);
  if (path == "/debug/heapsight/sites") return {Sites(request), nullptr};
  return {TextResponse(404, absl::StrCat("no such endpoint: ", path,
                                         " (the list is at /debug/pprof/)\n")),
          nullptr};
}

HandlerResult LiveEndpoints::Profile(const HttpRequest& request, bool allocs) {
  std::string error;
  std::optional<int64_t> seconds = IntParam(request, "seconds", 1, kMaxSeconds, 0, &error);
  if (!seconds.has_value()) return {BadRequest(error), nullptr};
  std::optional<int64_t> debug = IntParam(request, "debug", 0, 0, 0, &error);
  if (!debug.has_value()) {
    return {BadRequest("only debug=0 (the binary profile.proto) is served"), nullptr};
  }
  HttpResponse bad;
  std::optional<std::vector<LiveProcess*>> processes = Selected(family_, request, &bad);
  if (!processes.has_value()) return {bad, nullptr};
  if (processes->empty()) return {TextResponse(503, "no trace has been read yet\n"), nullptr};
  bool single = request.query.count("pid") != 0;
  absl::StatusOr<std::vector<FamilyMember>> start = Members(*processes);
  if (!start.ok()) return {TextResponse(500, std::string(start.status().message()) + "\n"), nullptr};
  if (*seconds == 0) return {EncodeProfile(std::move(*start), single, allocs, 0), nullptr};

  // The difference over the next `seconds`: the processes then (a process
  // that started in between is counted whole) minus these.
  auto before = std::make_shared<std::vector<FamilyMember>>(std::move(*start));
  int64_t deadline = MonotonicMs() + *seconds * 1000;
  std::optional<uint64_t> pid;
  if (single) pid = (*processes)[0]->pid();
  int64_t secs = *seconds;
  return {std::nullopt, [this, before, deadline, pid, single, allocs,
                         secs]() -> std::optional<HttpResponse> {
            if (MonotonicMs() < deadline) return std::nullopt;
            std::vector<LiveProcess*> now;
            if (pid.has_value()) {
              if (LiveProcess* p = family_.Find(*pid)) now.push_back(p);
            } else {
              now = family_.processes();
            }
            absl::StatusOr<std::vector<FamilyMember>> end = Members(now);
            if (!end.ok()) return TextResponse(500, std::string(end.status().message()) + "\n");
            for (FamilyMember& m : *end) {
              for (const FamilyMember& b : *before) {
                if (b.trace_path == m.trace_path) Subtract(b.profile, &m.profile);
              }
            }
            return EncodeProfile(std::move(*end), single, allocs, secs);
          }};
}

std::string LiveEndpoints::MetricsText() {
  struct Metric {
    const char* name;
    const char* type;
    const char* help;
  };
  static constexpr Metric kMetrics[] = {
      {"heapsight_live_bytes", "gauge",
       "Bytes in blocks the program allocated and has not freed (the C/C++ runtime's own "
       "blocks left out; an estimate when sampled)"},
      {"heapsight_live_blocks", "gauge", "Blocks the program allocated and has not freed"},
      {"heapsight_allocations_total", "counter", "Blocks allocated since the process began"},
      {"heapsight_allocated_bytes_total", "counter", "Bytes allocated since the process began"},
      {"heapsight_frees_total", "counter", "Blocks freed since the process began"},
      {"heapsight_peak_live_bytes", "gauge",
       "Highest live heap so far (every block counted, the runtime's too)"},
      {"heapsight_runtime_live_bytes", "gauge",
       "Bytes the C/C++ runtime holds for itself (not in heapsight_live_bytes)"},
      {"heapsight_rss_bytes", "gauge", "Resident set size of the process (its last sample)"},
      {"heapsight_leak_scans", "gauge", "Number of the last leak scan (0: none yet)"},
      {"heapsight_leak_blocks", "gauge", "Blocks per reachability class in the last leak scan"},
      {"heapsight_leak_bytes", "gauge", "Bytes per reachability class in the last leak scan"},
      {"heapsight_markers_total", "counter", "Markers the program set (heapsight_marker)"},
      {"heapsight_process_running", "gauge", "1 while the process runs, 0 once its trace ended"},
  };
  static constexpr const char* kClassNames[] = {"definite", "indirect", "possible", "reachable"};
  std::vector<LiveProcess*> processes = family_.processes();
  std::vector<ProcessProfile> snaps;
  snaps.reserve(processes.size());
  for (LiveProcess* p : processes) snaps.push_back(p->Snapshot(/*with_stacks=*/false));
  std::string out;
  for (const Metric& m : kMetrics) {
    absl::StrAppend(&out, "# HELP ", m.name, " ", m.help, "\n# TYPE ", m.name, " ", m.type, "\n");
    absl::string_view name = m.name;
    for (size_t i = 0; i < processes.size(); ++i) {
      const LiveProcess& live = *processes[i];
      const ProcessProfile& s = snaps[i];
      std::string labels = absl::StrCat("pid=\"", live.pid(), "\",exe=\"",
                                        LabelValue(live.exe()), "\"");
      auto line = [&](uint64_t value, absl::string_view extra = "") {
        out += absl::StrCat(name, "{", labels, extra, "} ", value, "\n");
      };
      if (name == "heapsight_live_bytes") line(s.totals.leaked_bytes);
      if (name == "heapsight_live_blocks") line(s.totals.leaked_blocks);
      if (name == "heapsight_allocations_total") line(s.totals.allocs);
      if (name == "heapsight_allocated_bytes_total") line(s.totals.bytes_allocated);
      if (name == "heapsight_frees_total") line(s.totals.frees);
      if (name == "heapsight_peak_live_bytes") line(s.totals.peak_bytes);
      if (name == "heapsight_runtime_live_bytes") line(s.runtime_totals.leaked_bytes);
      if (name == "heapsight_rss_bytes") line(live.counters().rss_bytes);
      if (name == "heapsight_leak_scans") line(live.last_scan().scan);
      if (name == "heapsight_markers_total") line(live.marker_count());
      if (name == "heapsight_process_running") line(live.ended() ? 0 : 1);
      if (name == "heapsight_leak_blocks" || name == "heapsight_leak_bytes") {
        for (int c = 0; c < format::kLeakClassCount; ++c) {
          line(name == "heapsight_leak_blocks" ? live.last_scan().blocks[c]
                                               : live.last_scan().bytes[c],
               absl::StrCat(",class=\"", kClassNames[c], "\""));
        }
      }
    }
  }
  absl::StrAppend(&out,
                  "# HELP heapsight_record_rss_bytes Resident set size of the heapsight record "
                  "process itself\n# TYPE heapsight_record_rss_bytes gauge\n"
                  "heapsight_record_rss_bytes ",
                  OwnRssBytes(), "\n",
                  "# HELP heapsight_record_cpu_seconds_total CPU time (user and system) of the "
                  "heapsight record process itself\n"
                  "# TYPE heapsight_record_cpu_seconds_total counter\n"
                  "heapsight_record_cpu_seconds_total ",
                  OwnCpuSeconds(), "\n",
                  "# HELP heapsight_trace_read_bytes_total Trace bytes the live analysis read\n"
                  "# TYPE heapsight_trace_read_bytes_total counter\n"
                  "heapsight_trace_read_bytes_total ",
                  family_.bytes_read(), "\n");
  return out;
}

HandlerResult LiveEndpoints::Leaks(const HttpRequest& request) {
  HttpResponse bad;
  std::optional<std::vector<LiveProcess*>> processes = Selected(family_, request, &bad);
  if (!processes.has_value()) return {bad, nullptr};
  if (processes->empty()) return {TextResponse(503, "no trace has been read yet\n"), nullptr};
  if (options_.leak_signal <= 0) {
    return {TextResponse(503, "scans on demand are off in this session\n"), nullptr};
  }
  // Ask every running, exactly traced process for a scan; wait for the
  // kLeakScan records with a higher number (or the process's end).
  struct Wait {
    uint64_t pid;
    uint64_t scan;
  };
  auto waits = std::make_shared<std::vector<Wait>>();
  for (LiveProcess* p : *processes) {
    bool sampled = (p->header().flags & format::kFileFlagSampled) != 0;
    if (p->ended() || sampled || !RunsPreload(p->pid())) continue;
    if (kill(static_cast<pid_t>(p->pid()), options_.leak_signal) == 0) {
      waits->push_back({p->pid(), p->last_scan().scan});
    }
  }
  int64_t deadline = MonotonicMs() + options_.leak_timeout_ms;
  std::vector<uint64_t> pids;
  for (LiveProcess* p : *processes) pids.push_back(p->pid());
  return {std::nullopt, [this, waits, deadline, pids]() -> std::optional<HttpResponse> {
            for (const Wait& w : *waits) {
              LiveProcess* p = family_.Find(w.pid);
              if (p == nullptr || p->ended() || p->last_scan().scan > w.scan) continue;
              if (MonotonicMs() < deadline) return std::nullopt;
              return TextResponse(504, absl::StrCat("process ", w.pid,
                                                    " did not answer the leak scan request\n"));
            }
            std::vector<ProcessProfile> snaps;
            for (uint64_t pid : pids) {
              if (LiveProcess* p = family_.Find(pid)) snaps.push_back(p->Snapshot());
            }
            std::vector<const ProcessProfile*> ptrs;
            for (const ProcessProfile& s : snaps) ptrs.push_back(&s);
            analyzer::LeakReport report = analyzer::BuildLeakReport(ptrs, analyzer::Suppressions());
            HttpResponse r;
            r.content_type = "application/json";
            r.body = analyzer::FormatLeakJson(report);
            return r;
          }};
}

HttpResponse LiveEndpoints::Sites(const HttpRequest& request) {
  std::string error;
  std::optional<int64_t> n = IntParam(request, "n", 1, 10000, 50, &error);
  if (!n.has_value()) return BadRequest(error);
  HttpResponse bad;
  std::optional<std::vector<LiveProcess*>> processes = Selected(family_, request, &bad);
  if (!processes.has_value()) return bad;
  nlohmann::json sites = nlohmann::json::array();
  nlohmann::json procs = nlohmann::json::array();
  struct Row {
    nlohmann::json j;
    int64_t live;
  };
  std::vector<Row> rows;
  for (LiveProcess* live : *processes) {
    ProcessProfile p = live->Snapshot();
    procs.push_back({{"pid", p.pid},
                     {"exe", p.exe},
                     {"running", !live->ended()},
                     {"live_bytes", p.totals.leaked_bytes},
                     {"live_blocks", p.totals.leaked_blocks},
                     {"allocated_bytes", p.totals.bytes_allocated},
                     {"allocations", p.totals.allocs},
                     {"frees", p.totals.frees},
                     {"peak_bytes", p.totals.peak_bytes},
                     {"rss_bytes", live->counters().rss_bytes},
                     {"time_us", live->counters().last_time_us}});
    analyzer::output::TraceHeapProfileOptions options;
    options.moment = kMoment;
    absl::StatusOr<HeapProfile> profile = analyzer::output::HeapProfileFromTrace(p, options);
    if (!profile.ok()) continue;
    const int64_t period = profile->sample_period > 1 ? profile->sample_period : 1;
    for (const auto& s : profile->samples) {
      std::string function = "?";
      std::string where;
      if (!s.locations.empty() && s.locations[0] < profile->locations.size()) {
        const auto& loc = profile->locations[s.locations[0]];
        if (!loc.frames.empty()) {
          function = loc.frames.front().function;
          if (!loc.frames.front().file.empty()) {
            where = absl::StrCat(loc.frames.front().file, ":", loc.frames.front().line);
          }
        }
      }
      int64_t live_bytes = s.values.inuse_bytes;
      int64_t alloc_bytes = s.values.alloc_bytes_estimate >= 0 ? s.values.alloc_bytes_estimate
                                                                : s.values.alloc_bytes;
      if (period > 1) {
        live_bytes = analyzer::ScaleLiveBlocks(s.values.inuse_count, s.values.inuse_bytes, period)
                         .bytes;
      }
      rows.push_back({{{"pid", p.pid},
                       {"function", function},
                       {"location", where},
                       {"api", s.api},
                       {"live_bytes", live_bytes},
                       {"live_blocks", s.values.inuse_count},
                       {"allocated_bytes", alloc_bytes},
                       {"allocations", s.values.alloc_count}},
                      live_bytes});
    }
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const Row& a, const Row& b) { return a.live > b.live; });
  for (size_t i = 0; i < rows.size() && i < static_cast<size_t>(*n); ++i) {
    sites.push_back(std::move(rows[i].j));
  }
  HttpResponse r;
  r.content_type = "application/json";
  r.body = nlohmann::json{{"processes", procs}, {"sites", sites}}.dump(
               -1, ' ', false, nlohmann::json::error_handler_t::replace) +
           "\n";
  return r;
}

HttpResponse LiveEndpoints::Index(const HttpRequest& request) {
  (void)request;
  std::string rows;
  for (LiveProcess* p : family_.processes()) {
    ProcessProfile s = p->Snapshot(false);
    absl::StrAppend(&rows, "<tr><td>", p->pid(), "</td><td>", HtmlEscape(p->exe()), "</td><td>",
                    p->ended() ? "ended" : "running", "</td><td>", s.totals.leaked_bytes,
                    "</td><td>", s.totals.leaked_blocks, "</td><td>", s.totals.bytes_allocated,
                    "</td><td><a href=\"heap?pid=", p->pid(), "\">heap</a> <a href=\"allocs?pid=",
                    p->pid(), "\">allocs</a></td></tr>\n");
  }
  HttpResponse r;
  r.content_type = "text/html; charset=utf-8";
  r.body = absl::StrCat(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>heapsight: "
      "/debug/pprof/</title></head><body>\n<h1>heapsight record --serve</h1>\n"
      "<p>Profiles of the process family heapsight records (Go's formats: "
      "<code>go tool pprof http://HOST:PORT/debug/pprof/heap</code>).</p>\n"
      "<table>\n"
      "<tr><td><a href=\"/debug/pprof/heap\">heap</a></td><td>live heap now: inuse_space "
      "(default), inuse_objects, alloc_space, alloc_objects; ?seconds=N: the change over the next "
      "N seconds</td></tr>\n"
      "<tr><td><a href=\"/debug/pprof/allocs\">allocs</a></td><td>the same, alloc_space by "
      "default</td></tr>\n"
      "<tr><td><a href=\"/metrics\">/metrics</a></td><td>Prometheus metrics per process</td></tr>\n"
      "<tr><td><a href=\"/debug/heapsight/leaks\">/debug/heapsight/leaks</a></td><td>runs a leak "
      "scan now (exact traces) and answers heapsight leaks --format=json</td></tr>\n"
      "<tr><td><a href=\"/debug/heapsight/sites\">/debug/heapsight/sites</a></td><td>top call "
      "sites by live bytes (JSON, for heapsight top)</td></tr>\n"
      "</table>\n<h2>Processes</h2>\n<p>Add <code>?pid=N</code> to a profile for one process; "
      "without it every sample has a <code>pid</code> label.</p>\n"
      "<table>\n<tr><th>pid</th><th>executable</th><th>state</th><th>live bytes</th>"
      "<th>live blocks</th><th>allocated bytes</th><th>profiles</th></tr>\n",
      rows, "</table>\n</body></html>\n");
  return r;
}

}  // namespace heapsight::record
