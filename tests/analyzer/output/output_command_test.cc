// tests/analyzer/output/output_command_test.cc: `heapsight pprof|collapse|flamegraph`
// end to end on a synthetic trace of this binary (self_trace.h), with the
// profile checked by `go tool pprof` itself (skipped when go is missing).
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/analyzer/output/self_trace.h"
#include "tests/analyzer/output/xml_checker.h"
#include "tests/support/run_traced.h"

namespace heapsight::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Heapsight() { return BuildPath("cli/heapsight"); }

// `go` on PATH, or "".
std::string FindGo() {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return "";
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    std::string candidate = std::string(dir) + "/go";
    if (!dir.empty() && access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

class OutputCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    // RunPlain makes a capture directory per run under $TMPDIR: keep those
    // inside dir_ so TearDown removes them too.
    const char* tmpdir = std::getenv("TMPDIR");
    if (tmpdir != nullptr) saved_tmpdir_ = tmpdir;
    had_tmpdir_ = tmpdir != nullptr;
    std::string inner = dir_ + "/tmp";
    ASSERT_EQ(mkdir(inner.c_str(), 0700), 0);
    setenv("TMPDIR", inner.c_str(), 1);
    trace_ = dir_ + "/self.hst";
    ASSERT_TRUE(WriteSelfTrace(trace_, &info_));
  }

  // The temp dir holds traces and profiles of up to a few MB each.
  void TearDown() override {
    if (had_tmpdir_) {
      setenv("TMPDIR", saved_tmpdir_.c_str(), 1);
    } else {
      unsetenv("TMPDIR");
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  RunResult Run(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {Heapsight()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunPlain(argv);
  }

  // Runs `go tool pprof ARGS` with HOME and PPROF_TMPDIR in the temp dir.
  RunResult Pprof(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {go_, "tool", "pprof"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string home = dir_ + "/home";
    mkdir(home.c_str(), 0700);
    return RunPlain(argv, {{"HOME", home},
                           {"PPROF_TMPDIR", home},
                           {"GOCACHE", home + "/gocache"},
                           {"PPROF_BINARY_PATH", home + "/none"}});
  }

  std::string dir_;
  std::string saved_tmpdir_;
  bool had_tmpdir_ = false;
  std::string trace_;
  std::string go_ = FindGo();
  SelfTraceInfo info_;
};

// One row of `go tool pprof -top`.
struct TopRow {
  std::string flat;
  std::string cum;
  std::string name;
};

// Parses the rows after the "flat  flat%" header.
std::vector<TopRow> ParseTop(const std::string& out) {
  std::vector<TopRow> rows;
  bool in_table = false;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::StrContains(line, "flat  flat%")) {
      in_table = true;
      continue;
    }
    if (!in_table || line.empty()) continue;
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() < 6) continue;
    std::string name;
    for (size_t i = 5; i < f.size(); ++i) {
      if (!name.empty()) name += " ";
      name += std::string(f[i]);
    }
    rows.push_back({std::string(f[0]), std::string(f[3]), name});
  }
  return rows;
}

std::string Rows(const std::vector<TopRow>& rows) {
  std::string out;
  for (const TopRow& r : rows) out += r.flat + " " + r.cum + " " + r.name + "\n";
  return out;
}

// The "Samples:" block of -raw up to "Locations".
std::string RawSamples(const std::string& raw) {
  size_t begin = raw.find("Samples:\n");
  size_t end = raw.find("Locations\n");
  if (begin == std::string::npos || end == std::string::npos) return "";
  return raw.substr(begin, end - begin);
}

TEST_F(OutputCommandTest, PprofProfileReadsInGoPprofWithTheTracesNumbers) {
  std::string out = dir_ + "/heap.pb.gz";
  RunResult r = Run({"pprof", trace_, "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "heapsight: wrote the pprof profile to " + out + "\n");
  std::string gz = ReadFile(out);
  ASSERT_GE(gz.size(), 2u);
  EXPECT_EQ(gz.substr(0, 2), "\x1f\x8b");
  if (go_.empty()) GTEST_SKIP() << "go not found on PATH; install golang-go to check with pprof";

  RunResult raw = Pprof({"-raw", out});
  ASSERT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_EQ(raw.err, "");
  EXPECT_THAT(raw.out, StartsWith("Comment: heapsight heap profile of " + info_.exe + "\n"
                                  "Comment: inuse = live at the end of the trace\n"
                                  "Comment: temporary = freed by the allocating thread before "
                                  "its next allocation or free\n"
                                  "PeriodType: space bytes\n"
                                  "Period: 1\n"));
  EXPECT_EQ(RawSamples(raw.out),
            "Samples:\n"
            "alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes[dflt] "
            "temporary_objects/count temporary_space/bytes\n"
            "          3        192          2        128          0          0: 1 2 3 \n"
            "                api:[malloc]\n"
            "                bytes:[64 bytes]\n"
            "          2       2000          0          0          0          0: 4 5 3 \n"
            "                api:[operator new(unsigned long)]\n"
            "                bytes:[1000 bytes]\n");
  // Locations name our functions at the call lines, leaf first.
  auto loc = [&](int id, const std::string& fn, int line) {
    return ::testing::ContainsRegex(absl::StrCat("\n +", id, ": 0x[0-9a-f]+ M=1 pprof_fixture::", fn,
                                                 " [^ ]*tests/analyzer/output/self_trace\\.cc:", line, " "));
  };
  EXPECT_THAT(raw.out, loc(1, "AllocateWidgets", info_.line_allocate));
  EXPECT_THAT(raw.out, loc(2, "BuildScene", info_.line_build_a));
  EXPECT_THAT(raw.out, loc(3, "RunScenario", info_.line_run));
  EXPECT_THAT(raw.out, loc(4, "MakeBuffers", info_.line_make_buffers));
  EXPECT_THAT(raw.out, loc(5, "BuildScene", info_.line_build_b));
  // mapping[0] is this executable, with its build id, fully symbolized.
  EXPECT_THAT(raw.out, ::testing::ContainsRegex("Mappings\n1: 0x[0-9a-f]+/0x[0-9a-f]+/0x[0-9a-f]+ " +
                                                info_.exe + " [0-9a-f]{40} \\[FN\\]\\[FL\\]\\[LN\\]\\[IN\\]"));

  RunResult top = Pprof({"-top", "-nodefraction=0", "-sample_index=inuse_space", "-unit=B", out});
  ASSERT_EQ(top.exit_code, 0) << top.err;
  EXPECT_EQ(top.err, "");
  EXPECT_THAT(top.out, StartsWith("File: output_command_test\n"));
  EXPECT_THAT(top.out, HasSubstr("Type: inuse_space\n"));
  EXPECT_EQ(Rows(ParseTop(top.out)),
            "128B 128B pprof_fixture::AllocateWidgets\n"
            "0 128B pprof_fixture::BuildScene\n"
            "0 128B pprof_fixture::RunScenario\n");

  top = Pprof({"-top", "-nodefraction=0", "-sample_index=alloc_space", "-unit=B", out});
  ASSERT_EQ(top.exit_code, 0) << top.err;
  EXPECT_EQ(top.err, "");
  EXPECT_EQ(Rows(ParseTop(top.out)),
            "2000B 2000B pprof_fixture::MakeBuffers\n"
            "192B 192B pprof_fixture::AllocateWidgets\n"
            "0 2192B pprof_fixture::BuildScene\n"
            "0 2192B pprof_fixture::RunScenario\n");

  top = Pprof({"-top", "-nodefraction=0", "-sample_index=alloc_objects", out});
  ASSERT_EQ(top.exit_code, 0) << top.err;
  EXPECT_EQ(top.err, "");
  EXPECT_EQ(Rows(ParseTop(top.out)),
            "3 3 pprof_fixture::AllocateWidgets\n"
            "2 2 pprof_fixture::MakeBuffers\n"
            "0 5 pprof_fixture::BuildScene\n"
            "0 5 pprof_fixture::RunScenario\n");

  RunResult traces = Pprof({"-traces", "-sample_index=alloc_space", "-unit=B", out});
  ASSERT_EQ(traces.exit_code, 0) << traces.err;
  EXPECT_EQ(traces.err, "");
  const std::string sep = "-----------+-------------------------------------------------------\n";
  EXPECT_THAT(traces.out, HasSubstr(sep +
                                    "       api:  malloc\n"
                                    "     bytes:  64B\n"
                                    "      192B   pprof_fixture::AllocateWidgets\n"
                                    "             pprof_fixture::BuildScene\n"
                                    "             pprof_fixture::RunScenario\n" +
                                    sep +
                                    "       api:  operator new(unsigned long)\n"
                                    "     bytes:  1000B\n"
                                    "     2000B   pprof_fixture::MakeBuffers\n"
                                    "             pprof_fixture::BuildScene\n"
                                    "             pprof_fixture::RunScenario\n" +
                                    sep));
  RunResult tags = Pprof({"-tags", out});
  ASSERT_EQ(tags.exit_code, 0) << tags.err;
  EXPECT_EQ(tags.err, "");
  EXPECT_THAT(tags.out, HasSubstr("api: Total"));
}

TEST_F(OutputCommandTest, PprofAtPeakAndAtTime) {
  if (go_.empty()) GTEST_SKIP() << "go not found on PATH; install golang-go to check with pprof";
  std::string peak = dir_ + "/peak.pb.gz";
  RunResult r = Run({"pprof", trace_, "-o", peak, "--at=peak"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  RunResult raw = Pprof({"-raw", peak});
  ASSERT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_EQ(raw.err, "");
  EXPECT_THAT(raw.out, HasSubstr("Comment: inuse = live at the peak of the heap\n"));
  EXPECT_THAT(RawSamples(raw.out), HasSubstr("          3        192          2        128          0          0: 1 2 3 \n"));
  EXPECT_THAT(RawSamples(raw.out),
              HasSubstr("          2       2000          2       2000          0          0: 4 5 3 \n"));

  // 5 us after the start: B#0 was freed at 5 us, B#1 is still live.
  std::string at5 = dir_ + "/at5.pb.gz";
  r = Run({"pprof", trace_, "-o", at5, "--at=0.000005"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  raw = Pprof({"-raw", at5});
  ASSERT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_THAT(RawSamples(raw.out), HasSubstr("          3        192          2        128          0          0: 1 2 3 \n"));
  EXPECT_THAT(RawSamples(raw.out),
              HasSubstr("          2       2000          1       1000          0          0: 4 5 3 \n"));
}

TEST_F(OutputCommandTest, CollapseEveryMetric) {
  const std::string a = "pprof_fixture::RunScenario;pprof_fixture::BuildScene;pprof_fixture::AllocateWidgets";
  const std::string b = "pprof_fixture::RunScenario;pprof_fixture::BuildScene;pprof_fixture::MakeBuffers";
  std::map<std::string, std::string> expected = {
      {"alloc_bytes", a + " 192\n" + b + " 2000\n"},
      {"alloc_count", a + " 3\n" + b + " 2\n"},
      {"leaked_bytes", a + " 128\n"},
      {"peak_bytes", a + " 128\n" + b + " 2000\n"},
  };
  for (const auto& [metric, text] : expected) {
    RunResult r = Run({"collapse", trace_, "--metric=" + metric});
    EXPECT_EQ(r.exit_code, 0) << metric << ": " << r.err;
    EXPECT_EQ(r.out, text) << metric;
    EXPECT_EQ(r.err, "");
  }
  RunResult def = Run({"collapse", trace_});
  EXPECT_EQ(def.out, expected["alloc_bytes"]);
  std::string file = dir_ + "/stacks.txt";
  RunResult to_file = Run({"collapse", trace_, "-o", file});
  EXPECT_EQ(to_file.exit_code, 0);
  EXPECT_EQ(to_file.out, "");
  EXPECT_EQ(ReadFile(file), expected["alloc_bytes"]);
}

// Without -o, pprof and flamegraph write next to where they run, named
// after the trace, and say so.
TEST_F(OutputCommandTest, OutputNamesDefaultToTheTracesName) {
  std::filesystem::copy_file(trace_, dir_ + "/heapsight.prog.4242.hst");
  std::string script = "cd '" + dir_ + "' && '" + Heapsight() +
                       "' pprof heapsight.prog.4242.hst && '" + Heapsight() +
                       "' flamegraph heapsight.prog.4242.hst";
  RunResult r = RunPlain({"/bin/sh", "-c", script});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err,
            "heapsight: wrote the pprof profile to heapsight.prog.4242.pb.gz\n"
            "heapsight: wrote the flame graph to heapsight.prog.4242.svg\n");
  EXPECT_GT(ReadFile(dir_ + "/heapsight.prog.4242.pb.gz").size(), 100u);
  EXPECT_NE(ReadFile(dir_ + "/heapsight.prog.4242.svg").find("<svg"), std::string::npos);
}

TEST_F(OutputCommandTest, FlamegraphSvg) {
  std::string svg_path = dir_ + "/heap.svg";
  RunResult r = Run({"flamegraph", trace_, "-o", svg_path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "heapsight: wrote the flame graph to " + svg_path + "\n");
  std::string svg = ReadFile(svg_path);
  EXPECT_EQ(CheckXmlWellFormed(svg), "");
  EXPECT_THAT(svg, HasSubstr(">heapsight: alloc_bytes of " + info_.exe + "</text>"));
  EXPECT_THAT(svg, HasSubstr("<title>all (2,192 bytes, 100.00%)</title>"));
  EXPECT_THAT(svg, HasSubstr("<title>pprof_fixture::MakeBuffers (2,000 bytes, 91.24%)</title>"));
  EXPECT_THAT(svg, HasSubstr("<title>pprof_fixture::AllocateWidgets (192 bytes, 8.76%)</title>"));
  EXPECT_THAT(svg, HasSubstr("<title>pprof_fixture::RunScenario (2,192 bytes, 100.00%)</title>"));

  RunResult count = Run({"flamegraph", trace_, "-o", svg_path, "--metric=alloc_count",
                         "--title=Counts <&>"});
  ASSERT_EQ(count.exit_code, 0) << count.err;
  svg = ReadFile(svg_path);
  EXPECT_EQ(CheckXmlWellFormed(svg), "");
  EXPECT_THAT(svg, HasSubstr(">Counts &lt;&amp;&gt;</text>"));
  EXPECT_THAT(svg, HasSubstr("<title>pprof_fixture::AllocateWidgets (3 allocations, 60.00%)</title>"));
  // Deterministic.
  RunResult again = Run({"flamegraph", trace_, "-o", svg_path + "2", "--metric=alloc_count",
                         "--title=Counts <&>"});
  EXPECT_EQ(ReadFile(svg_path + "2"), svg);
}

TEST_F(OutputCommandTest, HtmlReport) {
  std::string html_path = dir_ + "/report.html";
  RunResult r = Run({"html", trace_, "-o", html_path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string html = ReadFile(html_path);
  // Well-formed XML as well as HTML: every trace string was escaped.
  EXPECT_EQ(CheckXmlWellFormed(html.substr(html.find("<html"))), "");
  EXPECT_THAT(html, StartsWith("<!DOCTYPE html>\n"));
  EXPECT_TRUE(absl::StrContains(html, ">allocations</th><td class=\"n\">5</td></tr>"));
  // (Expectations as booleans: a failed HasSubstr would print the whole page.)
  EXPECT_TRUE(absl::StrContains(
      html, ">bytes allocated</th><td class=\"n\">2,192 bytes</td></tr>"));
  EXPECT_TRUE(absl::StrContains(
      html, "<td class=\"n\">2,000</td><td class=\"n\">2</td><td>operator new(unsigned long)"
            "</td><td class=\"s\"><b>pprof_fixture::MakeBuffers(pprof_fixture::Ips*) "
            "(self_trace.cc:"));
  EXPECT_TRUE(absl::StrContains(
      html, ">not freed at exit</th><td class=\"n\">128 bytes in 2 blocks</td></tr>"));
  EXPECT_TRUE(absl::StrContains(html, "<h3>Call sites whose memory keeps growing</h3>"));
  EXPECT_TRUE(absl::StrContains(html, "<path class=\"heap-line\""));
  // The call-site views' table (html_flame.h): the frame's name, and the
  // metric's total.
  EXPECT_TRUE(absl::StrContains(html, "<script type=\"application/json\" id=\"flame-data-p0\">"));
  EXPECT_TRUE(absl::StrContains(html, "\"pprof_fixture::MakeBuffers(pprof_fixture::Ips*)\""));
  EXPECT_TRUE(absl::StrContains(
      html, "{\"key\":\"alloc_bytes\",\"label\":\"bytes allocated\",\"unit\":\"bytes\","
            "\"total\":2192,"));
  // No external resource: nothing to fetch.
  EXPECT_FALSE(absl::StrContains(html, "src=\"http"));
  EXPECT_FALSE(absl::StrContains(html, "href=\"http"));
}

TEST_F(OutputCommandTest, HtmlReportEscapesCxxNames) {
  // A real C++ program: its std::vector<...> frames must arrive escaped.
  std::string out_dir = dir_ + "/traces";
  ASSERT_EQ(mkdir(out_dir.c_str(), 0700), 0);
  RunResult run = RunTraced({BuildPath("examples/04_vector_growth"), "costly"}, out_dir);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.traces.size(), 1u);
  std::string html_path = dir_ + "/vector.html";
  RunResult r = Run({"html", run.traces[0], "-o", html_path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string html = ReadFile(html_path);
  EXPECT_EQ(CheckXmlWellFormed(html.substr(html.find("<html"))), "");
  EXPECT_TRUE(absl::StrContains(html, "GrowWithoutReserve"));
  EXPECT_TRUE(absl::StrContains(html, "std::vector&lt;"));
  EXPECT_FALSE(absl::StrContains(html, "std::vector<"));
  // The program's frame leads the cell; the library frames below it fold.
  EXPECT_TRUE(absl::StrContains(html, "<b>(anonymous namespace)::GrowWithoutReserve()"));
  EXPECT_TRUE(absl::StrContains(html, " library frames)</span><details><summary>all "));
}

TEST_F(OutputCommandTest, ErrorsNameTheFileAndExitOne) {
  RunResult missing = Run({"pprof", dir_ + "/missing.hst", "-o", dir_ + "/x.pb.gz"});
  // Bad input exits 3 (docs/cli.md "Exit status"); an unwritable output 1.
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_THAT(missing.err, StartsWith("heapsight: " + dir_ + "/missing.hst: "));

  std::string garbage = dir_ + "/garbage.hst";
  {
    std::ofstream g(garbage, std::ios::binary);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 4096; ++i) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      g.put(static_cast<char>(x));
    }
  }
  std::string empty = dir_ + "/empty.hst";
  std::ofstream(empty).close();
  for (const std::string& bad : {garbage, empty}) {
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"pprof", bad, "-o", dir_ + "/x.pb.gz"},
          std::vector<std::string>{"collapse", bad},
          std::vector<std::string>{"flamegraph", bad, "-o", dir_ + "/x.svg"}}) {
      RunResult r = Run(args);
      EXPECT_EQ(r.exit_code, 3) << args[0] << " " << bad;
      EXPECT_THAT(r.err, StartsWith("heapsight: " + bad + ": ")) << args[0];
    }
  }

  RunResult unwritable = Run({"pprof", trace_, "-o", "/nonexistent-dir/out.pb.gz"});
  EXPECT_EQ(unwritable.exit_code, 1);
  EXPECT_EQ(unwritable.err,
            "heapsight: /nonexistent-dir/out.pb.gz: cannot write: No such file or directory\n");
  RunResult unwritable_svg = Run({"flamegraph", trace_, "-o", "/nonexistent-dir/out.svg"});
  EXPECT_EQ(unwritable_svg.exit_code, 1);
  EXPECT_EQ(unwritable_svg.err,
            "heapsight: /nonexistent-dir/out.svg: cannot write: No such file or directory\n");

  // Bad option values are usage errors (status 2, README "Exit status"),
  // found before the trace is read: the same on a trace that does not exist.
  for (const std::string& trace : {trace_, dir_ + "/missing.hst"}) {
    RunResult metric = Run({"collapse", trace, "--metric=bogus"});
    EXPECT_EQ(metric.exit_code, 2);
    EXPECT_THAT(metric.err, StartsWith("heapsight: unknown metric \"bogus\""));
    RunResult flame_metric = Run({"flamegraph", trace, "-o", dir_ + "/x.svg", "--metric=bogus"});
    EXPECT_EQ(flame_metric.exit_code, 2);
    EXPECT_THAT(flame_metric.err, StartsWith("heapsight: unknown metric \"bogus\""));
    RunResult at = Run({"pprof", trace, "-o", dir_ + "/x.pb.gz", "--at=soon"});
    EXPECT_EQ(at.exit_code, 2);
    EXPECT_THAT(at.err,
                StartsWith("heapsight: --at: expected end, peak, marker:NAME or a time in seconds"));
    RunResult kinds = Run({"pprof", trace, "-o", dir_ + "/x.pb.gz", "--leak-kinds=sometimes"});
    EXPECT_EQ(kinds.exit_code, 2);
    EXPECT_THAT(kinds.err, StartsWith("heapsight: --leak-kinds: unknown leak kind 'sometimes'"));
    RunResult kinds_at =
        Run({"pprof", trace, "-o", dir_ + "/x.pb.gz", "--leak-kinds=definite", "--at=peak"});
    EXPECT_EQ(kinds_at.exit_code, 2);
    EXPECT_EQ(kinds_at.err,
              "heapsight: --leak-kinds describes the end of the trace: use --at=end\n");
    RunResult collapse_kinds = Run({"collapse", trace, "--leak-kinds=bogus"});
    EXPECT_EQ(collapse_kinds.exit_code, 2);
    RunResult leak_kinds = Run({"leaks", trace, "--leak-kinds=sometimes"});
    EXPECT_EQ(leak_kinds.exit_code, 2);
    EXPECT_THAT(leak_kinds.err,
                StartsWith("heapsight: --leak-kinds: unknown leak kind 'sometimes'"));
    EXPECT_EQ(leak_kinds.out, "");
    RunResult show_kinds = Run({"leaks", trace, "--show-kinds=often"});
    EXPECT_EQ(show_kinds.exit_code, 2);
    EXPECT_THAT(show_kinds.err, StartsWith("heapsight: --show-kinds: unknown leak kind 'often'"));
  }
}

TEST_F(OutputCommandTest, TruncatedTraceStillGivesAValidProfile) {
  std::string whole = ReadFile(trace_);
  std::string cut = dir_ + "/cut.hst";
  std::ofstream(cut, std::ios::binary) << whole.substr(0, whole.size() - 10);
  std::string out = dir_ + "/cut.pb.gz";
  RunResult r = Run({"pprof", cut, "-o", out});
  // Truncated input: the profile is written, status 4 (docs/cli.md).
  ASSERT_EQ(r.exit_code, 4) << r.err;
  EXPECT_THAT(r.err, HasSubstr("trace cut short (the file ends inside a block)"));
  if (go_.empty()) GTEST_SKIP() << "go not found on PATH";
  RunResult raw = Pprof({"-raw", out});
  EXPECT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_EQ(raw.err, "");
  EXPECT_THAT(raw.out, HasSubstr("Comment: the trace was cut short (truncated file)\n"));
}

// Sums of Go's four value columns over the samples of `go tool pprof -raw`
// (an exact trace's temporary_* columns follow them).
std::vector<int64_t> RawTotals(const std::string& raw) {
  std::vector<int64_t> totals(4, 0);
  std::regex row("^ +(\\d+) +(\\d+) +(\\d+) +(\\d+)(?: +\\d+)*: ");
  for (absl::string_view line : absl::StrSplit(RawSamples(raw), '\n')) {
    std::string l(line);
    std::smatch m;
    if (!std::regex_search(l, m, row)) continue;
    for (int i = 0; i < 4; ++i) totals[static_cast<size_t>(i)] += std::stoll(m[i + 1]);
  }
  return totals;
}

std::string WorkloadRows(const std::vector<TopRow>& rows) {
  std::vector<TopRow> ours;
  for (const TopRow& r : rows) {
    if (r.name.rfind("workload::", 0) == 0) ours.push_back(r);
  }
  return Rows(ours);
}

TEST_F(OutputCommandTest, RealProgramUnderThePreload) {
  if (go_.empty()) GTEST_SKIP() << "go not found on PATH; install golang-go to check with pprof";
  std::string out_dir = dir_ + "/traces";
  ASSERT_EQ(mkdir(out_dir.c_str(), 0700), 0);
  RunResult run = RunTraced({BuildPath("tests/analyzer/output/pprof_workload")}, out_dir);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.traces.size(), 1u);
  const std::string trace = run.traces[0];
  TraceContents contents = ReadTrace(trace);
  ASSERT_EQ(contents.error, "");
  TraceCounts counts = CountTrace(contents);
  uint64_t allocs = 0;
  for (const auto& [api, n] : counts.allocs) allocs += n;

  // Every block of the trace (runtime ones included): the profile's totals
  // are the trace's record counts.
  std::string all = dir_ + "/all.pb.gz";
  RunResult r = Run({"pprof", trace, "-o", all, "--include-runtime"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  RunResult raw = Pprof({"-raw", all});
  ASSERT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_EQ(raw.err, "");
  EXPECT_EQ(RawTotals(raw.out),
            (std::vector<int64_t>{static_cast<int64_t>(allocs),
                                  static_cast<int64_t>(counts.bytes_allocated),
                                  static_cast<int64_t>(counts.live_blocks),
                                  static_cast<int64_t>(counts.live_bytes)}));

  // The program's own sites, by function, as go tool pprof shows them.
  std::string heap = dir_ + "/heap.pb.gz";
  r = Run({"pprof", trace, "-o", heap});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  RunResult top = Pprof({"-top", "-nodefraction=0", "-sample_index=inuse_space", "-unit=B", heap});
  ASSERT_EQ(top.exit_code, 0) << top.err;
  EXPECT_EQ(top.err, "");
  EXPECT_THAT(top.out, StartsWith("File: pprof_workload\n"));
  EXPECT_EQ(WorkloadRows(ParseTop(top.out)),
            "16384B 16384B workload::AllocateRecords\n"
            "0 16384B workload::Run\n");
  top = Pprof({"-top", "-nodefraction=0", "-sample_index=alloc_space", "-unit=B", heap});
  ASSERT_EQ(top.exit_code, 0) << top.err;
  EXPECT_EQ(WorkloadRows(ParseTop(top.out)),
            "40960B 40960B workload::AllocateRecords\n"
            "5000B 5000B workload::NewBuffer\n"
            "0 45960B workload::Run\n");
  top = Pprof({"-top", "-nodefraction=0", "-sample_index=alloc_objects", heap});
  ASSERT_EQ(top.exit_code, 0) << top.err;
  EXPECT_EQ(WorkloadRows(ParseTop(top.out)),
            "10 10 workload::AllocateRecords\n"
            "5 5 workload::NewBuffer\n"
            "0 15 workload::Run\n");

  std::string peak = dir_ + "/peak.pb.gz";
  r = Run({"pprof", trace, "-o", peak, "--at=peak"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  top = Pprof({"-top", "-nodefraction=0", "-sample_index=inuse_space", "-unit=B", peak});
  ASSERT_EQ(top.exit_code, 0) << top.err;
  EXPECT_EQ(WorkloadRows(ParseTop(top.out)),
            "40960B 40960B workload::AllocateRecords\n"
            "5000B 5000B workload::NewBuffer\n"
            "0 45960B workload::Run\n");

  // collapse: the leaf is the program's function, the allocator is gone,
  // and the root is main (the preload ends stacks there).
  RunResult folded = Run({"collapse", trace, "--metric=leaked_bytes"});
  ASSERT_EQ(folded.exit_code, 0) << folded.err;
  EXPECT_THAT(folded.out, ::testing::ContainsRegex("(^|\n)main;workload::Run;workload::AllocateRecords 16384\n"));
  EXPECT_THAT(folded.out, ::testing::Not(HasSubstr("_start")));
  EXPECT_THAT(folded.out, ::testing::Not(HasSubstr("malloc")));
}

TEST_F(OutputCommandTest, HundredThousandSites) {
  std::string big = dir_ + "/big.hst";
  int64_t total = WriteManySitesTrace(big, 100000);
  ASSERT_GT(total, 0);
  auto timed = [&](const std::vector<std::string>& args) {
    auto start = std::chrono::steady_clock::now();
    RunResult r = Run(args);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
    std::printf("heapsight %s on 100k sites: %.2f s\n", args[0].c_str(), s);
    return s;
  };
  std::string out = dir_ + "/big.pb.gz";
  double pprof_s = timed({"pprof", big, "-o", out});
  double collapse_s = timed({"collapse", big, "-o", dir_ + "/big.folded"});
  double flame_s = timed({"flamegraph", big, "-o", dir_ + "/big.svg"});
  // The measured numbers are printed, not asserted: wall time on a shared
  // CI machine is no test (flaky23, 2026-12-07: these were "< 20 s").
  (void)pprof_s;
  (void)collapse_s;
  (void)flame_s;
  std::string folded = ReadFile(dir_ + "/big.folded");
  // The pool's two BuildScene addresses fold together: count the distinct
  // function sequences (digit 1 and 3 are both BuildScene).
  std::set<std::string> sequences;
  for (int i = 0; i < 100000; ++i) {
    std::string seq;
    for (int d = 0, v = i; d < 8; ++d, v /= 5) seq.push_back("ABCBD"[v % 5]);
    sequences.insert(seq);
  }
  EXPECT_EQ(static_cast<size_t>(std::count(folded.begin(), folded.end(), '\n')),
            sequences.size());
  int64_t folded_total = 0;
  for (absl::string_view line : absl::StrSplit(folded, '\n', absl::SkipEmpty())) {
    folded_total += std::stoll(std::string(line.substr(line.rfind(' ') + 1)));
  }
  EXPECT_EQ(folded_total, total);
  EXPECT_EQ(CheckXmlWellFormed(ReadFile(dir_ + "/big.svg")), "");
  if (go_.empty()) GTEST_SKIP() << "go not found on PATH";
  RunResult raw = Pprof({"-raw", out});
  ASSERT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_EQ(raw.err, "");
  EXPECT_EQ(RawTotals(raw.out), (std::vector<int64_t>{100000, total, 100000, total}));
}

TEST_F(OutputCommandTest, CorruptedTracesNeverCrash) {
  const std::string whole = ReadFile(trace_);
  uint64_t x = 0x2545F4914F6CDD1Dull;
  auto next = [&] {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
  };
  int ok = 0, failed = 0;
  for (int round = 0; round < 150; ++round) {
    std::string bytes = whole;
    std::remove((dir_ + "/m.pb.gz").c_str());
    int flips = 1 + static_cast<int>(next() % 4);
    for (int k = 0; k < flips; ++k) {
      size_t pos = 64 + next() % (bytes.size() - 64);  // keep the file header valid
      bytes[pos] = static_cast<char>(next());
    }
    if (round % 10 == 9) bytes.resize(64 + next() % (bytes.size() - 64));
    std::string path = dir_ + "/mutant.hst";
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"pprof", path, "-o", dir_ + "/m.pb.gz", "--at=peak"},
          std::vector<std::string>{"flamegraph", path, "-o", dir_ + "/m.svg"}}) {
      RunResult r = Run(args);
      // 4: a mutant that reads as a trace cut short (output written).
      ASSERT_TRUE(r.exit_code == 0 || r.exit_code == 3 || r.exit_code == 4)
          << args[0] << " round " << round << " exit " << r.exit_code << ": " << r.err;
      if (r.exit_code == 3) {
        ++failed;
        EXPECT_THAT(r.err, StartsWith("heapsight: ")) << round;
      } else {
        ++ok;
      }
    }
    if (!go_.empty() && round % 10 == 0 && access((dir_ + "/m.pb.gz").c_str(), F_OK) == 0) {
      RunResult raw = Pprof({"-raw", dir_ + "/m.pb.gz"});
      // Whatever heapsight wrote last must still be a valid profile.
      EXPECT_EQ(raw.exit_code, 0) << raw.err;
    }
  }
  std::printf("mutants: %d outputs written, %d clean errors\n", ok, failed);
}

TEST_F(OutputCommandTest, HundredThousandDistinctAddresses) {
  // Every site's leaf is its own address: 100k symbolizer lookups.
  std::string big = dir_ + "/distinct.hst";
  ASSERT_GT(WriteManySitesTrace(big, 100000, /*distinct_leaves=*/true), 0);
  auto start = std::chrono::steady_clock::now();
  RunResult r = Run({"pprof", big, "-o", dir_ + "/distinct.pb.gz"});
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // Printed, not asserted (was "< 60 s"): see HundredThousandSites.
  std::printf("heapsight pprof on 100k sites with 100k distinct leaf addresses: %.2f s\n", s);
}

}  // namespace
}  // namespace heapsight::testing
