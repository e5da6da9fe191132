// tests/analyzer/output/html_report_test.cc: the HTML page of a fork/exec
// family on hand-made profiles (no browser: tests/browser/ drives one):
// the process tree, the selector, the family totals (sums, the peak the
// largest single one), an image that ended in exec described as discarded
// by exec and never as "not freed at exit", hostile names escaped, and the
// page well-formed XML.
#include "analyzer/output/html_report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "tests/analyzer/output/xml_checker.h"

namespace heapsight::analyzer::output {
namespace {

using ::heapsight::testing::CheckXmlWellFormed;

ProcessProfile Process(uint64_t pid, const std::string& trace, const std::string& parent,
                       uint64_t allocs, uint64_t bytes, uint64_t peak, uint64_t not_freed) {
  ProcessProfile p;
  p.pid = pid;
  p.trace_path = trace;
  p.parent_trace = parent;
  p.exe = "/bin/<script>alert(1)</script>&\"prog";
  p.argv = {p.exe, "--x='&'"};
  p.complete = true;
  p.totals.allocs = allocs;
  p.totals.bytes_allocated = bytes;
  p.totals.peak_bytes = peak;
  p.totals.leaked_bytes = not_freed;
  p.totals.leaked_blocks = not_freed == 0 ? 0 : 1;
  HeapTimelineBuilder b;
  b.Observe(10, peak);
  b.Observe(20, not_freed);
  p.heap_series = b.Finish(30);
  p.duration_us = 30;
  p.totals.peak_time_us = 10;
  return p;
}

// The text of the section of process `index`.
std::string Section(const std::string& page, int index) {
  std::string open = "<section class=\"process\" id=\"proc-" + std::to_string(index) + "\"";
  size_t at = page.find(open);
  if (at == std::string::npos) return "";
  return page.substr(at, page.find("</section>", at) - at);
}

TEST(HtmlReportTest, FamilyPage) {
  ProcessProfile root = Process(10, "/rec/heapsight.prog.10.hst", "", 5, 5000, 3000, 100);
  // The fork child, replaced by exec: its 64 KiB were discarded, not leaked.
  ProcessProfile child = Process(11, "/rec/heapsight.prog.11.hst", "/rec/heapsight.prog.10.hst",
                                 1, 65536, 65536, 65536);
  child.end_reason = format::EndReason::kExec;
  child.exec_path = "/bin/small";
  // The exec'd image names the pre-exec trace by another spelling of the
  // same directory.
  ProcessProfile image = Process(11, "/rec/heapsight.prog.11.1.hst",
                                 "/mnt/rec/heapsight.prog.11.hst", 2, 1000100, 1000000, 100);
  ASSERT_TRUE(child.EndedInExec());
  std::vector<HtmlProcess> processes(3);
  const ProcessProfile* traces[] = {&root, &child, &image};
  for (size_t i = 0; i < 3; ++i) {
    processes[i].trace = traces[i];
    processes[i].leaks_known = true;
  }
  processes[0].leaked = {100, 1};
  processes[1].discarded_by_exec = {65536, 1};
  std::string page = RenderHtmlReport(processes, HtmlReportOptions{});

  EXPECT_EQ(CheckXmlWellFormed(page.substr(page.find("<html"))), "");
  // Escaped everywhere; the chart's and the selector's scripts are the
  // page's only scripts.
  EXPECT_FALSE(absl::StrContains(page, "<script>alert"));
  EXPECT_TRUE(absl::StrContains(page, "&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;prog"));
  size_t scripts = 0;
  for (size_t at = page.find("<script>"); at != std::string::npos;
       at = page.find("<script>", at + 1)) {
    ++scripts;
  }
  EXPECT_EQ(scripts, 3u);  // the chart's, the call-site views', the selector's
  // Besides them, one data table per process (html_flame.h), not run.
  size_t data = 0;
  for (size_t at = page.find("<script"); at != std::string::npos;
       at = page.find("<script", at + 1)) {
    ++data;
  }
  EXPECT_EQ(data, 6u);
  EXPECT_TRUE(absl::StrContains(page, "<script type=\"application/json\" id=\"flame-data-p2\">"));
  // The tree: the child under the root, the image under the child.
  EXPECT_TRUE(absl::StrContains(
      page, "<li>fork: <a href=\"#proc-1\" class=\"proc-link\" data-proc=\"1\">pid 11 "));
  EXPECT_TRUE(absl::StrContains(
      page, "<ul>\n<li>exec: <a href=\"#proc-2\" class=\"proc-link\" data-proc=\"2\">pid 11 "));
  EXPECT_TRUE(absl::StrContains(page, "prog (until exec)</option>"));
  // Family totals: allocations and bytes summed, the peak the largest one,
  // "not freed at exit" without the discarded heap.
  EXPECT_TRUE(absl::StrContains(
      page, "<tr class=\"total\"><th>family</th><td class=\"n\">8</td><td class=\"n\">"
            "1,070,636</td><td class=\"n\">largest of one process: 1,000,000</td>"
            "<td class=\"n\">200</td><td class=\"n\">100</td></tr>"));
  // The image that ended in exec.
  std::string exec = Section(page, 1);
  EXPECT_TRUE(absl::StrContains(exec, ">heap discarded by exec</th><td class=\"n\">65,536 "
                                      "bytes (64.0 KiB) in 1 blocks (not leaks)</td>"));
  EXPECT_TRUE(absl::StrContains(exec, "Heap discarded by exec (not leaks"));
  EXPECT_FALSE(absl::StrContains(exec, "not freed at exit"));
  EXPECT_FALSE(absl::StrContains(exec, ">leaked<"));
  // The others say what they did not free, and what of it leaked.
  std::string first = Section(page, 0);
  EXPECT_TRUE(absl::StrContains(first, ">not freed at exit</th><td class=\"n\">100 bytes in 1 "
                                       "blocks</td>"));
  EXPECT_TRUE(absl::StrContains(first, ">leaked</th><td class=\"n\">100 bytes in 1 blocks</td>"));
  // Every section has its chart; the glossary is on the page.
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(absl::StrContains(Section(page, i), "<path class=\"heap-line\"")) << i;
  }
  EXPECT_TRUE(absl::StrContains(page, "<summary>What these numbers mean</summary>"));
  EXPECT_TRUE(absl::StrContains(page, "docs/glossary.md"));
}

TEST(HtmlReportTest, OneProcessHasNoSelector) {
  ProcessProfile p = Process(10, "/rec/a.hst", "", 1, 10, 10, 0);
  std::string page = RenderHtmlReport(p, HtmlReportOptions{});
  EXPECT_EQ(CheckXmlWellFormed(page.substr(page.find("<html"))), "");
  // The chart's and the call-site views' only (and the views' data).
  EXPECT_EQ(page.find("<script>", page.find("<script>") + 1), page.rfind("<script>"));
  EXPECT_FALSE(absl::StrContains(page, "process-select"));
  EXPECT_TRUE(absl::StrContains(page, "Content-Security-Policy"));
}

}  // namespace
}  // namespace heapsight::analyzer::output

namespace heapsight::analyzer::output {
namespace {

// The leaks section: a part per class with its total and LSan-style groups,
// the free errors, the page still well-formed; an image that ended in exec
// has no leaks.
TEST(HtmlReportTest, LeaksSection) {
  ProcessProfile p = Process(10, "/rec/a.hst", "", 3, 300, 300, 300);
  HtmlProcess hp;
  hp.trace = &p;
  hp.leaks.known = true;
  hp.leaks.scanned = true;
  hp.leaks.classes[LeakClass::kDefinite] = {100, 1};
  hp.leaks.classes[LeakClass::kReachable] = {200, 2};
  hp.leaks.groups.push_back({LeakClass::kDefinite, {100, 1}, format::Api::kMalloc, 0});
  hp.leaks.groups.push_back({LeakClass::kReachable, {200, 2}, format::Api::kMalloc, 0});
  FreeErrorEvent e;
  e.error = format::FreeError::kDoubleFree;
  e.free_api = format::Api::kFree;
  hp.leaks.errors.push_back(e);
  std::string page = RenderHtmlReport({hp}, HtmlReportOptions{});
  EXPECT_EQ(CheckXmlWellFormed(page.substr(page.find("<html"))), "");
  EXPECT_TRUE(absl::StrContains(page, ">definitely lost: 100 bytes in 1 block</h4>"));
  EXPECT_TRUE(absl::StrContains(page, ">Direct leak of 100 byte(s) in 1 object(s) allocated "
                                      "from (malloc):\n    (no stack)\n</pre>"));
  EXPECT_TRUE(absl::StrContains(page, ">Still reachable of 200 byte(s) in 2 object(s)"));
  EXPECT_TRUE(absl::StrContains(page, ">Free errors: 1</h4>"));
  EXPECT_TRUE(absl::StrContains(page, ">double free (free) at "));
  // Ended in exec: no leak classes at all.
  p.end_reason = format::EndReason::kExec;
  page = RenderHtmlReport({hp}, HtmlReportOptions{});
  EXPECT_FALSE(absl::StrContains(page, "definitely lost:"));
  EXPECT_TRUE(absl::StrContains(page, "None: this image ended in exec"));
}

}  // namespace
}  // namespace heapsight::analyzer::output
