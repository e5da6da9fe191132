// tests/cli/record/record_command_test.cc: `heapsight record` end to end. Runs
// the real build/cli/heapsight with the real preload on small programs
// and checks exit statuses, messages, trace lists and the environment the
// program sees.
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cli/record/live_conversion.h"
#include "cli/record/option_table.h"
#include "cli/record/record_session.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/run_traced.h"

extern char** environ;

namespace heapsight::testing {
namespace {

using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::ContainsRegex;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

namespace fs = std::filesystem;

std::string Heapsight() { return BuildPath("cli/heapsight"); }
std::string Program(const std::string& name) { return BuildPath("tests/cli/record/" + name); }

RunResult Record(const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& env = {}) {
  std::vector<std::string> argv = {Heapsight(), "record"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunPlain(argv, env);
}

// The "heapsight: wrote PATH" lines of stderr, as paths.
std::vector<std::string> WrittenTraces(const std::string& err) {
  std::vector<std::string> out;
  std::istringstream in(err);
  std::string line;
  const std::string prefix = "heapsight: wrote ";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) out.push_back(line.substr(prefix.size()));
  }
  return out;
}

std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir)) out.push_back(entry.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(RecordCommand, PassesTheExitStatusThrough) {
  std::string dir = MakeTempDir();
  RunResult r = Record({"-q", "-o", dir + "/t.%p.hst", "--", "/bin/sh", "-c", "exit 3"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
}

TEST(RecordCommand, KilledProgramGives128PlusSignal) {
  std::string dir = MakeTempDir();
  RunResult r = Record({"-q", "-o", dir + "/t.%p.hst", "--", "/bin/sh", "-c", "kill -KILL $$"});
  EXPECT_EQ(r.exit_code, 128 + SIGKILL) << r.err;
}

TEST(RecordCommand, ProgramNotFoundExits127) {
  RunResult r = Record({"--", "heapsight-no-such-program"});
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_THAT(r.err, HasSubstr("heapsight: heapsight-no-such-program: command not found"));
  RunResult by_path = Record({"--", "/nonexistent/prog"});
  EXPECT_EQ(by_path.exit_code, 127);
  EXPECT_THAT(by_path.err, HasSubstr("/nonexistent/prog: no such file"));
}

TEST(RecordCommand, NotExecutableExits126) {
  std::string dir = MakeTempDir();
  std::string file = dir + "/not-executable";
  std::ofstream(file) << "data\n";
  chmod(file.c_str(), 0644);
  RunResult r = Record({"--", file});
  EXPECT_EQ(r.exit_code, 126);
  EXPECT_THAT(r.err, HasSubstr("cannot execute"));
  RunResult directory = Record({"--", dir});
  EXPECT_EQ(directory.exit_code, 126);
}

TEST(RecordCommand, StaticBinaryIsNamedAndRefused) {
  if (std::string(HEAPSIGHT_RECORD_STATIC_PROGRAM).empty()) {
    GTEST_SKIP() << "no static libc (libc.a) on this machine";
  }
  RunResult r = Record({"--", HEAPSIGHT_RECORD_STATIC_PROGRAM});
  EXPECT_EQ(r.exit_code, 126);
  EXPECT_THAT(r.err, HasSubstr(std::string("heapsight: ") + HEAPSIGHT_RECORD_STATIC_PROGRAM +
                               " is statically linked; LD_PRELOAD cannot trace it"));
  EXPECT_THAT(r.out, IsEmpty());  // it did not run
}

TEST(RecordCommand, UnwritableOutputDirectoryIsReportedBeforeRunning) {
  std::string dir = MakeTempDir();
  RunResult missing = Record({"-o", dir + "/missing/t.hst", "--", "/bin/sh", "-c", "echo ran"});
  EXPECT_EQ(missing.exit_code, 125);
  EXPECT_THAT(missing.err, HasSubstr("cannot write traces to " + dir + "/missing"));
  EXPECT_THAT(missing.out, IsEmpty());

  std::string file = dir + "/plain-file";
  std::ofstream(file) << "x";
  RunResult not_dir = Record({"-o", file + "/t.hst", "--", "/bin/sh", "-c", "echo ran"});
  EXPECT_EQ(not_dir.exit_code, 125);
  EXPECT_THAT(not_dir.err, HasSubstr("cannot write traces to " + file));
  EXPECT_THAT(not_dir.out, IsEmpty());
}

TEST(RecordCommand, ListsEveryTraceIncludingAForkedChild) {
  std::string dir = MakeTempDir();
  RunResult r = Record({"--no-leak-summary", "-o", dir + "/%e.%p.hst", "--",
                        Program("record_fork_program")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> listed = WrittenTraces(r.err);
  ASSERT_THAT(listed, SizeIs(2)) << r.err;
  std::sort(listed.begin(), listed.end());
  EXPECT_EQ(listed, FilesIn(dir));
  for (const std::string& trace : listed) {
    EXPECT_THAT(trace, AllOf(StartsWith(dir + "/record_fork_program."), EndsWith(".hst")));
    TraceContents contents = ReadTrace(trace);
    EXPECT_THAT(contents.error, IsEmpty()) << trace;
    EXPECT_TRUE(contents.complete) << trace;
  }
}

TEST(RecordCommand, QuietPrintsNothingOfItsOwn) {
  std::string dir = MakeTempDir();
  RunResult r = Record({"-q", "-o", dir + "/%e.%p.hst", "--", Program("record_fork_program")});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.err, IsEmpty());
  EXPECT_THAT(FilesIn(dir), SizeIs(2));  // still traced
}

TEST(RecordCommand, ProgramOutputIsUnchanged) {
  std::string dir = MakeTempDir();
  RunResult plain = RunPlain({Program("record_fork_program")});
  RunResult traced = Record({"-o", dir + "/%e.%p.hst", "--", Program("record_fork_program")});
  EXPECT_EQ(traced.exit_code, plain.exit_code);
  EXPECT_EQ(traced.out, plain.out);
  EXPECT_EQ(plain.out, "parent done, child status 0\n");
}

TEST(RecordCommand, ArgumentsReachTheProgramVerbatim) {
  std::string dir = MakeTempDir();
  RunResult r = Record({"-q", "-o", dir + "/%p.hst", "--", "/bin/sh", "-c",
                        "printf '%s|' \"$@\"", "sh", "-o", "-q", "--help", "a b", "--"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "-o|-q|--help|a b|--|");
}

TEST(RecordCommand, PutsThePreloadInFrontOfAnExistingLdPreload) {
  std::string dir = MakeTempDir();
  std::string stub = Program("librecord_preload_stub.so");
  std::string ours = fs::canonical(BuildPath("preload/libheapsight.so")).string();
  RunResult r = Record({"-q", "-o", dir + "/%p.hst", "--", "/bin/sh", "-c",
                        "printf %s \"$LD_PRELOAD\""},
                       {{"LD_PRELOAD", stub}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, ours + ":" + stub);

  RunResult alone = Record({"-q", "-o", dir + "/%p.hst", "--", "/bin/sh", "-c",
                            "printf %s \"$LD_PRELOAD\""});
  EXPECT_EQ(alone.out, ours);
}

TEST(RecordCommand, SetsOutputManifestAndOptionsInTheEnvironment) {
  // -o rel/... is relative to heapsight's current directory, made absolute.
  std::string dir = MakeTempDir();
  fs::create_directories(dir + "/rel");
  RunResult r = RunPlain(
      {"/bin/sh", "-c", "cd \"$1\" && exec \"$2\" record -q --option max-depth=7 "
                        "--option HEAPSIGHT_ZSTD_LEVEL=3 -o rel/%p.hst -- /bin/sh -c \"$3\"",
       "sh", dir, Heapsight(),
       "printf '%s|%s|%s' \"$HEAPSIGHT_MAX_DEPTH\" \"$HEAPSIGHT_ZSTD_LEVEL\" "
       "\"$HEAPSIGHT_OUTPUT\"; test -f \"$HEAPSIGHT_MANIFEST\""});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "7|3|" + dir + "/rel/%p.hst");
}

TEST(RecordCommand, RejectsUnknownOrBadOptions) {
  RunResult unknown = Record({"--option", "no-such-option=1", "--", "/bin/true"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("unknown option 'no-such-option'"));
  RunResult bad = Record({"--option", "max-depth=deep", "--", "/bin/true"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("HEAPSIGHT_MAX_DEPTH expects an integer"));
  RunResult output = Record({"--option", "output=x.hst", "--", "/bin/true"});
  EXPECT_EQ(output.exit_code, 2);
  EXPECT_THAT(output.err, HasSubstr("use -o"));
}

// Issue 15: --pairing=address asks for address frees (trace format
// version 6), which stay as written unless --convert-traces is given; only
// auto, table and address are accepted.
TEST(RecordCommand, PairingSetsTheOptionAndTheTraceVersion) {
  std::string dir = MakeTempDir();
  RunResult env = Record({"-q", "--pairing=address", "-o",
                          dir + "/%p.hst", "--", "/bin/sh", "-c",
                          "printf '%s' \"$HEAPSIGHT_PAIRING\""});
  EXPECT_EQ(env.exit_code, 0) << env.err;
  EXPECT_EQ(env.out, "address");
  std::vector<std::string> traces = FilesIn(dir);
  ASSERT_THAT(traces, Not(IsEmpty()));
  for (const std::string& t : traces) EXPECT_EQ(ReadTrace(t).header.version, 6u) << t;
  RunResult bad = Record({"--pairing=id", "--", "/bin/true"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("expected auto, table or address"));
}

// --pairing=auto: address frees converted to version 4 in record's
// process; table mode where the user chose it (HEAPSIGHT_PAIRING), where
// the preload would fall back (sampling), and on one CPU (taskset), where
// the pairing would take the program's. Without --pairing: table mode.
TEST(RecordCommand, AutoPairingConvertsAddressFreesWhereItCan) {
  struct Case {
    std::vector<std::string> args;
    std::map<std::string, std::string> env;
    std::vector<std::string> prefix;  // a command in front of heapsight
    std::string pairing;              // what the program sees
    uint32_t version;
  };
  const std::string print = "printf '%s' \"$HEAPSIGHT_PAIRING\"; : > /dev/null";
  const std::vector<Case> cases = {
      {{}, {}, {}, "", 4},
      {{"--pairing=auto"}, {}, {}, "address", 4},
      {{"--pairing=table"}, {}, {}, "table", 4},
      {{"--pairing=auto"}, {{"HEAPSIGHT_PAIRING", "table"}}, {}, "table", 4},
      {{"--pairing=auto", "--option", "sample-bytes=4096"}, {}, {}, "", 4},
      {{"--pairing=auto"}, {}, {"/usr/bin/taskset", "-c", "0"}, "", 4},
  };
  for (const Case& c : cases) {
    std::string dir = MakeTempDir();
    std::vector<std::string> argv = c.prefix;
    argv.push_back(Heapsight());
    argv.push_back("record");
    argv.insert(argv.end(), {"-q", "--convert-wait=all", "-o", dir + "/%p.hst"});
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    argv.insert(argv.end(), {"--", "/bin/sh", "-c", print});
    RunResult r = RunPlain(argv, c.env);
    std::string what;
    for (const std::string& a : argv) what += a + " ";
    EXPECT_EQ(r.exit_code, 0) << what << ": " << r.err;
    EXPECT_EQ(r.out, c.pairing) << what;
    EXPECT_EQ(r.err, "") << what;
    std::vector<std::string> traces = FilesIn(dir);
    ASSERT_THAT(traces, Not(IsEmpty())) << what;
    for (const std::string& t : traces) {
      TraceContents contents = ReadTrace(t);
      EXPECT_EQ(contents.header.version, c.version) << what << ": " << t;
      EXPECT_EQ(contents.header.flags & format::kFileFlagAddressFrees, 0u) << what;
    }
  }
}

// The leak summary's numbers that do not depend on the run (pids, paths
// and times aside): the leak classes, and the counts of allocations, frees
// and bytes of the peak line.
std::string SummaryNumbers(const std::string& err) {
  std::string out;
  std::istringstream in(err);
  for (std::string line; std::getline(in, line);) {
    if (line.find(" lost: ") != std::string::npos ||
        line.find("still reachable") != std::string::npos) {
      out += line + "\n";
    }
    if (line.find(" allocations, ") != std::string::npos) {
      if (size_t at = line.rfind("; "); at != std::string::npos) out += line.substr(at + 2) + "\n";
    }
  }
  return out;
}

// `program` recorded in table mode and with --pairing=address
// --convert-traces (live_conversion.h); the address-mode traces must all be
// version 4, with nothing left beside them, and the summary table mode's.
// Returns the address-mode run's stderr and its traces' headers.
std::pair<std::string, std::vector<format::FileHeader>> ExpectConvertedAsTableMode(
    const std::string& program) {
  std::string table_dir = MakeTempDir(), address_dir = MakeTempDir();
  RunResult table = Record({"-o", table_dir + "/t.%p.hst", "--", program});
  // --convert-wait=all: the default wait depends on the run's length and
  // the machine's speed (the tests of that are below).
  RunResult address = Record({"--pairing=address", "--convert-traces", "--convert-wait=all", "-o",
                              address_dir + "/t.%p.hst", "--", program});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(address.exit_code, 0) << address.err;
  std::vector<format::FileHeader> headers;
  for (const std::string& f : FilesIn(address_dir)) {
    EXPECT_THAT(f, EndsWith(".hst"));
    headers.push_back(ReadTrace(f).header);
    EXPECT_EQ(headers.back().version, 4u) << f;
    EXPECT_EQ(headers.back().flags & format::kFileFlagAddressFrees, 0u) << f;
  }
  EXPECT_THAT(address.err, Not(HasSubstr("stays version 6")));
  EXPECT_THAT(address.err, Not(HasSubstr("out of order")));
  EXPECT_EQ(SummaryNumbers(address.err), SummaryNumbers(table.err));
  return {SummaryNumbers(address.err), headers};
}

// With --convert-traces, record pairs the address frees while the
// program runs (live_conversion.h): the trace on disk is version 4, nothing
// else is left beside it, and the leak summary is the table-mode one.
TEST(RecordCommand, AddressPairingLeavesVersion4Traces) {
  auto [summary, headers] = ExpectConvertedAsTableMode(Program("record_leaky_program"));
  EXPECT_THAT(headers, SizeIs(1));
  EXPECT_THAT(summary, HasSubstr("definitely lost: 300 bytes in 3 blocks"));
}

// Two threads take turns at the same addresses (handoff_program.cc): the
// conversion merges the threads' chunks by time, so it pairs every free as
// table mode does and the trace is converted (paired in file order, as
// stop 36 did, 62 of its 4,736 events were forced by aliased hand-off
// counts, and the trace would have stayed version 6).
TEST(RecordCommand, AddressPairingConvertsThreadsHandingBlocksAcross) {
  auto [summary, headers] = ExpectConvertedAsTableMode(Program("record_handoff_program"));
  EXPECT_THAT(headers, SizeIs(1));
  EXPECT_THAT(summary, HasSubstr("definitely lost: 0 bytes in 0 blocks"));
  EXPECT_THAT(summary, HasSubstr("2,368 allocations, 2,368 frees, 473,600,000 bytes"));
}

// A fork family is converted too: the child after the exit, with its
// parent's blocks at the fork from the parent's version-6 trace, before
// the parent is renamed; the summary is table mode's.
TEST(RecordCommand, AddressPairingConvertsForkFamilies) {
  auto [summary, headers] = ExpectConvertedAsTableMode(Program("record_fork_program"));
  ASSERT_THAT(headers, SizeIs(2));
  int children = 0;
  for (const format::FileHeader& h : headers) {
    children += (h.flags & format::kFileFlagForkChild) != 0 ? 1 : 0;
  }
  EXPECT_EQ(children, 1);
  EXPECT_THAT(summary, HasSubstr("1 allocations, 2 frees, 64 bytes allocated"));
}

// A shell loop's many fork children (bash forks, then execs /bin/true;
// dash would vfork): every trace is converted, the children in one pass
// over the shell's trace (ReadForkInheritances; before serve30 each child
// read it again, and a family of more than 64 children stayed version 6).
// The shell's blocks reach each child: its kInherited carry the shell's
// stacks.
TEST(RecordCommand, AddressPairingConvertsAShellLoopsForkFamily) {
  std::string dir = MakeTempDir();
  RunResult r = Record({"--pairing=address", "--convert-traces", "--convert-wait=all", "-o",
                        dir + "/t.%p.hst", "--", "/bin/bash", "-c",
                        "for i in {1..70}; do /bin/true; done"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int v4 = 0, v6 = 0, children = 0, children_inheriting_stacks = 0;
  for (const std::string& f : FilesIn(dir)) {
    const TraceContents t = ReadTrace(f);
    if (t.header.version == 4u) {
      ++v4;
    } else {
      ++v6;
    }
    if ((t.header.flags & format::kFileFlagForkChild) == 0) continue;
    ++children;
    int inherited = 0, with_stack = 0;
    for (const format::Record& rec : t.records) {
      if (rec.tag != format::RecordTag::kInherited) continue;
      ++inherited;
      with_stack += rec.stack != 0 ? 1 : 0;
    }
    if (inherited > 0 && with_stack == inherited) ++children_inheriting_stacks;
  }
  EXPECT_EQ(v6, 0);
  EXPECT_EQ(v4, 141);  // the shell, its 70 fork children, the 70 /bin/true they exec
  EXPECT_EQ(children, 70);
  EXPECT_EQ(children_inheriting_stacks, 70);
  EXPECT_THAT(r.err, Not(HasSubstr("stays version 6")));
  EXPECT_THAT(r.err, Not(HasSubstr("stay version 6")));
}

// --convert-wait bounds the conversion after the program's exit
// (live_conversion.h). With no wait at all, nothing converted before the
// exit (the merge holds the last second of every trace) is converted
// after it: the trace stays version 6, record says why, and the leak
// summary, read from the version-6 trace, is table mode's.
TEST(RecordCommand, ConvertWaitZeroLeavesVersion6TracesAndSaysWhy) {
  std::string table_dir = MakeTempDir(), dir = MakeTempDir();
  RunResult table = Record({"-o", table_dir + "/t.%p.hst", "--", Program("record_leaky_program")});
  RunResult r = Record({"--pairing=address", "--convert-traces", "--convert-wait=0", "-o",
                        dir + "/t.%p.hst", "--", Program("record_leaky_program")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(table.exit_code, 0) << table.err;
  std::vector<std::string> files = FilesIn(dir);
  ASSERT_THAT(files, SizeIs(1));  // no .converting file left
  EXPECT_EQ(ReadTrace(files[0]).header.version, 6u);
  EXPECT_THAT(r.err, HasSubstr("stays version 6 (not converted within 0.00 s of the program's "
                               "exit (--convert-wait); `heapsight convert` converts it later)"));
  EXPECT_EQ(SummaryNumbers(r.err), SummaryNumbers(table.err));
  EXPECT_THAT(SummaryNumbers(r.err), HasSubstr("definitely lost: 300 bytes in 3 blocks"));
}

// The same for a fork family: past the deadline no child is converted
// (not even the pass over its parent's trace is made), and the parent of
// a child that stays version 6 stays too. The shell's children say why in
// one line.
TEST(RecordCommand, ConvertWaitZeroLeavesAForkFamilyVersion6) {
  std::string dir = MakeTempDir();
  RunResult r = Record({"--pairing=address", "--convert-traces", "--convert-wait=0", "-o",
                        dir + "/t.%p.hst", "--", "/bin/bash", "-c",
                        "for i in {1..5}; do /bin/true; done"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int v4 = 0, v6 = 0;
  std::vector<std::string> files = FilesIn(dir);
  for (const std::string& f : files) {
    EXPECT_THAT(f, EndsWith(".hst"));
    (ReadTrace(f).header.version == 6u ? v6 : v4)++;
  }
  EXPECT_EQ(v4, 0);
  EXPECT_EQ(v6, 11);  // the shell, its 5 fork children, the 5 /bin/true they exec
  EXPECT_THAT(r.err, HasSubstr("other traces stay version 6 (not converted within 0.00 s"));
}

// An event-dense program (dense_program.cc: 2 M events in a fraction of a
// second) leaves far more to pair after its exit than a 0.05 s wait
// allows (at 150 ns an event, 0.3 s: a 0.3 s wait was within reach of a
// fast machine, and the trace was converted): the conversion stops, by its
// estimate of the rest once it has converted a little, or at the deadline
// on a slow machine, and the trace stays version 6 (with
// --convert-wait=all it would be converted: the test
// AddressPairingLeavesVersion4Traces's path).
TEST(RecordCommand, ConvertWaitStopsAnEventDenseProgramsConversion) {
  std::string dir = MakeTempDir();
  RunResult r = Record({"--pairing=address", "--convert-traces", "--convert-wait=0.05", "-o",
                        dir + "/t.%p.hst", "--", Program("record_dense_program")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "done\n");
  std::vector<std::string> files = FilesIn(dir);
  ASSERT_THAT(files, SizeIs(1));  // no .converting file left
  EXPECT_EQ(ReadTrace(files[0]).header.version, 6u);
  EXPECT_THAT(r.err, AnyOf(HasSubstr("more, past --convert-wait's 0.05 s after the program's exit"),
                           HasSubstr("not converted within 0.05 s of the program's exit")));
  EXPECT_THAT(SummaryNumbers(r.err), HasSubstr("definitely lost: 0 bytes in 0 blocks"));
}

TEST(RecordCommand, ConvertWaitTakesAutoAllOrSeconds) {
  using record::ConvertWaitUs;
  using record::LiveConversion;
  EXPECT_EQ(ConvertWaitUs("auto", 0), LiveConversion::kMinAutoWaitUs);
  EXPECT_EQ(ConvertWaitUs("auto", 30'000'000), 3'000'000u);  // a tenth of the run
  EXPECT_EQ(ConvertWaitUs("all", 0), LiveConversion::kNoLimit);
  EXPECT_EQ(ConvertWaitUs("0", 0), 0u);
  EXPECT_EQ(ConvertWaitUs("2.5", 0), 2'500'000u);
  EXPECT_EQ(ConvertWaitUs("2.5s", 0), 2'500'000u);
  EXPECT_EQ(ConvertWaitUs("soon", 0), std::nullopt);
  EXPECT_EQ(ConvertWaitUs("-1", 0), std::nullopt);
  EXPECT_EQ(ConvertWaitUs("", 0), std::nullopt);
  EXPECT_EQ(ConvertWaitUs("nan", 0), std::nullopt);
  RunResult bad = Record({"--pairing=address", "--convert-traces", "--convert-wait=soon", "--",
                          "/bin/true"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("expected auto, all or seconds"));
}

TEST(RecordCommand, DefaultOutputIsInTheCurrentDirectory) {
  std::string dir = MakeTempDir();
  RunResult r = RunPlain({"/bin/sh", "-c", "cd \"$1\" && exec \"$2\" record -q -- \"$3\"", "sh",
                          dir, Heapsight(), Program("record_leaky_program")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> files = FilesIn(dir);
  ASSERT_THAT(files, SizeIs(1));
  EXPECT_THAT(files[0], ContainsRegex("/heapsight\\.record_leaky_program\\.[0-9]+\\.hst$"));
}

TEST(RecordCommand, ForwardsSigtermToTheProgram) {
  std::string dir = MakeTempDir();
  std::string ready = dir + "/ready";
  std::vector<std::string> args = {Heapsight(), "record", "-q", "-o", dir + "/%p.hst", "--",
                                   "/bin/sh", "-c", "touch \"$0\"; exec sleep 30", ready};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ), 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!fs::exists(ready) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(fs::exists(ready));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "heapsight itself died of signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM);
}

TEST(RecordCommand, WorksFromAnInstalledLayout) {
  std::string prefix = MakeTempDir();
  fs::create_directories(prefix + "/bin");
  fs::path libdir = fs::path(prefix) / HEAPSIGHT_RECORD_LIBDIR / "heapsight";
  fs::create_directories(libdir);
  fs::copy_file(Heapsight(), prefix + "/bin/heapsight");
  fs::copy_file(BuildPath("preload/libheapsight.so"), libdir / "libheapsight.so");
  std::string out = MakeTempDir();
  RunResult r = RunPlain({prefix + "/bin/heapsight", "record", "-q", "-o", out + "/%p.hst", "--",
                          "/bin/sh", "-c", "printf %s \"$LD_PRELOAD\""});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, (libdir / "libheapsight.so").string());
  EXPECT_THAT(FilesIn(out), SizeIs(1));

  fs::remove(libdir / "libheapsight.so");
  RunResult missing = RunPlain({prefix + "/bin/heapsight", "record", "--", "/bin/true"});
  EXPECT_EQ(missing.exit_code, 125);
  EXPECT_THAT(missing.err, HasSubstr("cannot find libheapsight.so"));
}

// The acceptance programs: same output and exit status as without
// heapsight, and a trace written for each. Programs not installed are skipped.
TEST(RecordCommand, RealProgramsBehaveAsWithoutHeapsight) {
  std::string dir = MakeTempDir();
  std::string data = dir + "/data.txt";
  {
    std::ofstream out(data);
    for (int i = 0; i < 20000; ++i) out << "line " << i << " of some compressible text\n";
  }
  const std::vector<std::vector<std::string>> programs = {
      {"/usr/bin/python3", "-c", "print(1)"},
      {"/usr/bin/git", "--version"},
      {"/usr/bin/g++", "--version"},
      {"/usr/bin/xz", "-T2", "-c", data},
  };
  int ran = 0;
  for (const auto& argv : programs) {
    if (access(argv[0].c_str(), X_OK) != 0) continue;
    ++ran;
    std::string out = MakeTempDir();
    RunResult plain = RunPlain(argv);
    std::vector<std::string> args = {"-q", "-o", out + "/%e.%p.hst", "--"};
    args.insert(args.end(), argv.begin(), argv.end());
    RunResult traced = Record(args);
    EXPECT_EQ(traced.exit_code, plain.exit_code) << argv[0] << ": " << traced.err;
    EXPECT_EQ(traced.out, plain.out) << argv[0];
    EXPECT_EQ(traced.err, plain.err) << argv[0];
    EXPECT_THAT(FilesIn(out), Not(IsEmpty())) << argv[0] << " wrote no trace";
  }
  EXPECT_GT(ran, 0);
}

TEST(RecordCommand, HelpListsEveryOptionOfTheTable) {
  RunResult r = RunPlain({Heapsight(), "record", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  ASSERT_THAT(record::OptionRows(), Not(IsEmpty()));
  for (const record::OptionRow& row : record::OptionRows()) {
    EXPECT_THAT(r.out, HasSubstr(record::EnvName(row))) << "missing from record --help";
  }
}

TEST(RecordCommand, DocsOptionsMdIsTheGeneratedTable) {
  RunResult r = RunPlain({Heapsight(), "options", "--markdown"});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(ReadFile(SourcePath("docs/options.md")), r.out)
      << "docs/options.md is stale: regenerate it with "
         "`build/cli/heapsight options --markdown > docs/options.md`";
}

TEST(RecordCommand, PrintsALeakSummaryAndHonoursLeakExitcode) {
  std::string dir = MakeTempDir();
  RunResult leaky = Record({"-o", dir + "/a.%p.hst", "--", Program("record_leaky_program")});
  EXPECT_EQ(leaky.exit_code, 0) << leaky.err;
  EXPECT_EQ(leaky.out, "leaked 3 blocks\n");
  EXPECT_THAT(leaky.err, HasSubstr("LEAK SUMMARY"));
  EXPECT_THAT(leaky.err, HasSubstr("300 bytes in 3 blocks"));

  RunResult gated = Record({"--leak-exitcode", "23", "-o", dir + "/b.%p.hst", "--",
                            Program("record_leaky_program")});
  EXPECT_EQ(gated.exit_code, 23) << gated.err;

  RunResult quiet_gated = Record({"-q", "--leak-exitcode", "23", "-o", dir + "/c.%p.hst", "--",
                                  Program("record_leaky_program")});
  EXPECT_EQ(quiet_gated.exit_code, 23);
  EXPECT_THAT(quiet_gated.err, IsEmpty());

  RunResult clean = Record({"--leak-exitcode", "23", "-o", dir + "/d.%p.hst", "--",
                            Program("record_leaky_program"), "clean"});
  EXPECT_EQ(clean.exit_code, 0) << clean.err;
  EXPECT_EQ(clean.out, "no leaks\n");
}

// deep_stack_program leaks at the bottom of a 200-deep recursion: cut at
// 16 frames, every output that shows the stack says frames are missing.
TEST(RecordCommand, ACutStackSaysFramesWereNotRecorded) {
  std::string dir = MakeTempDir();
  RunResult run = Record({"-q", "-o", dir + "/t.hst", "--",
                          BuildPath("tests/scenarios/deep_stack_program")},
                         {{"HEAPSIGHT_MAX_DEPTH", "16"}});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::string trace = dir + "/t.hst";
  RunResult text = RunPlain({Heapsight(), "leaks", trace});
  EXPECT_THAT(text.out, HasSubstr("in Recurse "));
  EXPECT_THAT(text.out, HasSubstr("    #15 "));
  EXPECT_THAT(text.out, Not(HasSubstr("    #16 ")));
  EXPECT_THAT(text.out, HasSubstr("    ... more frames not recorded\n"));
  RunResult json = RunPlain({Heapsight(), "leaks", "--format", "json", trace});
  EXPECT_THAT(json.out, HasSubstr("\"truncated\": true"));
  RunResult report = RunPlain({Heapsight(), "report", trace});
  EXPECT_THAT(report.out, HasSubstr("<- ... more frames not recorded"));

  // With the default depth the whole stack, main included, is there.
  RunResult full = Record({"-q", "-o", dir + "/full.hst", "--",
                           BuildPath("tests/scenarios/deep_stack_program")});
  ASSERT_EQ(full.exit_code, 0) << full.err;
  RunResult all = RunPlain({Heapsight(), "leaks", dir + "/full.hst"});
  EXPECT_THAT(all.out, HasSubstr(" in main "));
  EXPECT_THAT(all.out, Not(HasSubstr("not recorded")));
  EXPECT_THAT(all.out, Not(HasSubstr("truncated")));
}

TEST(RecordCommand, SuppressionsSilenceTheLeakExitcode) {
  std::string dir = MakeTempDir();
  std::string supp = dir + "/leaks.supp";
  std::ofstream(supp) << "# everything from main\nleak:main\n";
  RunResult r = Record({"--leak-exitcode", "23", "--suppressions", supp, "-o", dir + "/%p.hst",
                        "--", Program("record_leaky_program")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  RunResult missing = Record({"--suppressions", dir + "/nope.supp", "--", "/bin/true"});
  EXPECT_NE(missing.exit_code, 0);
}

}  // namespace
}  // namespace heapsight::testing
