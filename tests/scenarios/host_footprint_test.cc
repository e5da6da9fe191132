// tests/scenarios/host_footprint_test.cc: issue 14 fault 4, what the
// preload adds to its host. libheapsight.so needs nothing but libc (a
// traced C program maps no libstdc++, no libunwind, no liblzma, no
// libzstd), the only TLS module it brings is its own (docs/DESIGN.md, "What
// the preload adds to a host"), and a
// traced program makes exactly the allocation calls it makes untraced:
// same count, same bytes, same frees, as a counting allocator
// (tests/preload/alloc_tally.c) sees them alone and behind heapsight; and
// the trace records every one of them.
#include <gtest/gtest.h>
#include <stdio.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

// stdout of a shell command.
std::string Capture(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

std::set<std::string> Lines(const std::string& text) {
  std::set<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.insert(line);
  }
  return lines;
}

TEST(HostFootprint, LibraryNeedsNoCxxRuntimeAndExportsNoZstd) {
  std::string lib = BuildPath("preload/libheapsight.so");
  std::string dynamic = Capture("readelf -dW '" + lib + "'");
  ASSERT_NE(dynamic.find("(NEEDED)"), std::string::npos) << dynamic;
  std::set<std::string> needed;
  std::istringstream in(dynamic);
  for (std::string line; std::getline(in, line);) {
    if (line.find("(NEEDED)") == std::string::npos) continue;
    size_t open = line.find('['), close = line.find(']');
    needed.insert(line.substr(open + 1, close - open - 1));
  }
  // No libstdc++, libgcc_s, libm (the C++ runtime), no libzstd (linked
  // in, hidden) and no libunwind (loaded privately: private_libunwind.h).
  // ld.so itself is needed for _dl_find_object (the unwind cache's
  // .eh_frame lookup); it is mapped in every dynamically linked program,
  // so it adds nothing to a host.
  EXPECT_EQ(needed, (std::set<std::string>{"libc.so.6", "ld-linux-x86-64.so.2"}));
  std::string symbols = Capture("nm -D --defined-only '" + lib + "'");
  ASSERT_NE(symbols.find(" malloc"), std::string::npos) << symbols;
  EXPECT_EQ(symbols.find("ZSTD"), std::string::npos) << symbols;
  EXPECT_EQ(symbols.find("__cxa"), std::string::npos) << symbols;
  EXPECT_EQ(symbols.find("unw_"), std::string::npos) << symbols;
}

TEST(HostFootprint, TracedCProgramMapsNoCxxRuntime) {
  std::string dir = MakeTempDir();
  RunResult r = RunTraced({ScenarioProgram("host_footprint_program"), "maps"}, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.traces.size(), 1u);
  EXPECT_NE(r.out.find("libheapsight.so"), std::string::npos) << r.out;
  for (const char* runtime :
       {"libstdc++", "libgcc_s", "libm.so", "libzstd", "libunwind", "liblzma"}) {
    EXPECT_EQ(r.out.find(runtime), std::string::npos) << runtime << " mapped:\n" << r.out;
  }
}

TEST(HostFootprint, TheOnlyTlsModuleAddedIsOurs) {
  std::string program = ScenarioProgram("host_footprint_program");
  RunResult plain = RunPlain({program, "tls"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(Lines(plain.out), (std::set<std::string>{"libc.so.6"}));
  std::string dir = MakeTempDir();
  RunResult traced = RunTraced({program, "tls"}, dir);
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  // libstdc++'s TLS module is gone, and libunwind's 16 bytes (its
  // per-thread unw_backtrace cache) are part of ours.
  EXPECT_EQ(Lines(traced.out), (std::set<std::string>{"libc.so.6", "libheapsight.so"}));
}

struct Tally {
  std::string line;  // "allocs=N bytes=B frees=F"
  std::vector<std::string> traces;
  int exit_code = -1;
  std::string out;
};

// Runs argv with the counting allocator alone, or behind heapsight.
Tally RunTallied(const std::vector<std::string>& argv, bool with_heapsight) {
  Tally t;
  std::string dir = MakeTempDir();
  std::string tally_lib = BuildPath("tests/preload/liballoc_tally.so");
  // The same environment both times (programs may copy it into the heap),
  // down to LD_PRELOAD's length: alone, the tally's path is padded with
  // spaces (separators the loader skips) to the length of both paths.
  std::string both = BuildPath("preload/libheapsight.so") + " " + tally_lib;
  std::map<std::string, std::string> env = {
      {"ALLOC_TALLY_OUT", dir + "/tally"},
      {"HEAPSIGHT_OUTPUT", dir + "/%e.%p.hst"},
      {"LC_ALL", "C"},
      {"LD_PRELOAD", with_heapsight ? both : tally_lib + std::string(both.size() - tally_lib.size(), ' ')}};
  RunResult r = RunPlain(argv, env);
  t.exit_code = r.exit_code;
  t.out = r.out;
  t.line = ReadFile(dir + "/tally");
  if (!t.line.empty() && t.line.back() == '\n') t.line.pop_back();
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".hst") t.traces.push_back(entry.path());
  }
  return t;
}

void ExpectSameAllocations(const std::vector<std::string>& argv) {
  Tally plain = RunTallied(argv, false);
  Tally traced = RunTallied(argv, true);
  ASSERT_EQ(plain.exit_code, 0) << argv[0];
  ASSERT_EQ(traced.exit_code, 0) << argv[0];
  EXPECT_EQ(plain.out, traced.out);
  ASSERT_NE(plain.line.find("allocs="), std::string::npos) << argv[0];
  EXPECT_EQ(traced.line, plain.line) << argv[0];
  // And heapsight did trace the run.
  ASSERT_EQ(traced.traces.size(), 1u) << argv[0];
  TraceContents trace = ReadTrace(traced.traces[0]);
  ASSERT_TRUE(trace.error.empty()) << trace.error;
  EXPECT_TRUE(trace.complete) << argv[0];
  EXPECT_EQ(plain.traces.size(), 0u);
  // Every call the program made is in the trace, from its first
  // (issue 14 fault 3: also those before heapsight's constructor ran).
  uint64_t calls = 0, bytes = 0;
  for (const auto& r : trace.records) {
    if (r.tag == format::RecordTag::kAlloc || r.tag == format::RecordTag::kRealloc ||
        r.tag == format::RecordTag::kAllocFailed) {
      ++calls;
      bytes += r.size;
    }
  }
  EXPECT_EQ("allocs=" + std::to_string(calls) + " bytes=" + std::to_string(bytes),
            plain.line.substr(0, plain.line.find(" frees=")))
      << argv[0];
}

TEST(HostFootprint, CProgramAllocatesExactlyWhatItAllocatesUntraced) {
  ExpectSameAllocations({ScenarioProgram("host_footprint_program"), "alloc"});
}

TEST(HostFootprint, LsAllocatesExactlyWhatItAllocatesUntraced) {
  ExpectSameAllocations({"/usr/bin/ls", "-l", SourcePath("preload")});
}

TEST(HostFootprint, XzAllocatesExactlyWhatItAllocatesUntraced) {
  std::string dir = MakeTempDir();
  std::string input = dir + "/input";
  {
    std::ofstream out(input, std::ios::binary);
    uint32_t x = 12345;
    for (int i = 0; i < 200000; ++i) {
      x = x * 1103515245u + 12345u;
      out.put(static_cast<char>('a' + (x >> 16) % 16));
    }
  }
  ExpectSameAllocations({"/usr/bin/xz", "-c", "-k", input});
}

// Without a C++ runtime of its own, the preload runs the nothrow forms'
// new-handler loop inside the host's nothrow operator new: the handler is
// called as often as libstdc++ calls it, what it throws is caught, a retry
// it makes room for succeeds, and each call is recorded once.
TEST(HostFootprint, NothrowNewRunsTheHostsNewHandler) {
  std::string dir = MakeTempDir();
  RunResult r = RunTraced({ScenarioProgram("host_new_handler_program")}, dir,
                          {{"HEAPSIGHT_HEAP_LIMIT", "1M"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "new-handler done\n");
  ASSERT_EQ(r.traces.size(), 1u);
  TraceContents t = ReadTrace(r.traces[0]);
  ASSERT_TRUE(t.error.empty()) << t.error;
  std::map<format::Api, int> failed, allocs;
  for (const auto& rec : t.records) {
    if (rec.tag == format::RecordTag::kAllocFailed) ++failed[rec.api];
    if (rec.tag == format::RecordTag::kAlloc && rec.size == 600000) ++allocs[rec.api];
  }
  // The throwing new whose handler threw is not a failure of ours (the
  // exception is the program's), as new_delete_hooks.cc records it.
  EXPECT_EQ(failed, (std::map<format::Api, int>{{format::Api::kNewNothrow, 1},
                                                 {format::Api::kNewArrayNothrow, 1},
                                                 {format::Api::kNewAlignedNothrow, 1}}));
  EXPECT_EQ(allocs, (std::map<format::Api, int>{{format::Api::kNewNothrow, 1}}));
}

}  // namespace
}  // namespace heapsight::testing
