// tests/scenarios/dormant_test.cc: issue 19's "start dormant, attach later":
// a program started with HEAPSIGHT_START=paused under the real preload,
// attached and detached with the real `heapsight attach` / `detach` between
// phases of known allocations (programs/dormant_program.cc). The window's
// trace must hold exactly the attached phase's allocations, no bad frees
// of blocks allocated before the attach, and reports that say the window
// is partial.
//
// Every wait is bounded: a regression fails instead of hanging the suite.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "tests/scenarios/scenario_util.h"

extern char** environ;

namespace heapsight::testing {
namespace {

using format::Api;
using format::RecordTag;

std::string Heapsight() { return BuildPath("cli/heapsight"); }

struct CommandResult {
  int status = -1;
  std::string output;  // stdout and stderr
};

CommandResult RunCommand(const std::string& command) {
  CommandResult r;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

// The program, running, with a pipe to its stdin and one from its stdout.
class Dormant {
 public:
  enum Mode { kNoPreload, kPaused, kActive };
  Dormant(const std::string& dir, const std::vector<std::string>& args, Mode mode = kPaused) {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) return;
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, "HEAPSIGHT_", 10) != 0 && std::strncmp(*e, "LD_PRELOAD=", 11) != 0) {
        env_strings.push_back(*e);
      }
    }
    if (mode != kNoPreload) {
      env_strings.push_back("LD_PRELOAD=" + BuildPath("preload/libheapsight.so"));
      env_strings.push_back("HEAPSIGHT_OUTPUT=" + dir + "/%e.%p.hst");
    }
    if (mode == kPaused) env_strings.push_back("HEAPSIGHT_START=paused");
    std::vector<std::string> argv = {ScenarioProgram("dormant_program")};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv, cenv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    for (auto& e : env_strings) cenv.push_back(e.data());
    cenv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      close(in[0]);
      close(in[1]);
      close(out[0]);
      close(out[1]);
      execve(cargv[0], cargv.data(), cenv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_ = in[1];
    from_ = out[0];
  }
  ~Dormant() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (to_ >= 0) close(to_);
    if (from_ >= 0) close(from_);
  }
  pid_t pid() const { return pid_; }

  // Reads the program's next line (10 s at most).
  std::string ReadLine() {
    std::string line;
    char c;
    while (true) {
      pollfd pfd{from_, POLLIN, 0};
      if (poll(&pfd, 1, 10000) <= 0) return line + "<timeout>";
      if (read(from_, &c, 1) != 1) return line + "<eof>";
      if (c == '\n') return line;
      line += c;
    }
  }
  void Send(const std::string& line) {
    std::string l = line + "\n";
    (void)!write(to_, l.data(), l.size());
  }
  // Exit status (128+N if killed), 20 s at most.
  int Wait() {
    for (int i = 0; i < 2000; ++i) {
      int st;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        reaped_ = true;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      usleep(10000);
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int to_ = -1;
  int from_ = -1;
  bool reaped_ = false;
};

std::vector<std::string> Traces(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".hst") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

int FreeErrors(const TraceContents& t) {
  int n = 0;
  for (const auto& r : t.records) n += r.tag == RecordTag::kFreeError;
  return n;
}

// attach, phase 2, detach, phase 3: the window holds phase 2 exactly.
TEST(Dormant, AttachDetachRecordsExactlyTheWindow) {
  std::string dir = MakeTempDir();
  Dormant prog(dir, {});
  ASSERT_GT(prog.pid(), 0);
  ASSERT_EQ(prog.ReadLine(), "phase1");
  EXPECT_TRUE(Traces(dir).empty()) << "a paused process writes no trace";

  CommandResult attach = RunCommand("'" + Heapsight() + "' attach " + std::to_string(prog.pid()));
  ASSERT_EQ(attach.status, 0) << attach.output;
  std::vector<std::string> traces = Traces(dir);
  ASSERT_EQ(traces.size(), 1u);
  EXPECT_NE(attach.output.find("recording process " + std::to_string(prog.pid()) + " into " +
                               traces[0]),
            std::string::npos)
      << attach.output;
  // A second attach is refused, naming the trace.
  CommandResult again = RunCommand("'" + Heapsight() + "' attach " + std::to_string(prog.pid()));
  EXPECT_EQ(again.status, 1);
  EXPECT_NE(again.output.find("already recording into " + traces[0]), std::string::npos)
      << again.output;

  prog.Send("go");
  ASSERT_EQ(prog.ReadLine(), "phase2");
  CommandResult detach = RunCommand("'" + Heapsight() + "' detach " + std::to_string(prog.pid()));
  ASSERT_EQ(detach.status, 0) << detach.output;
  EXPECT_NE(detach.output.find("trace " + traces[0] + " is complete"), std::string::npos)
      << detach.output;
  CommandResult detach2 = RunCommand("'" + Heapsight() + "' detach " + std::to_string(prog.pid()));
  EXPECT_EQ(detach2.status, 1) << detach2.output;
  EXPECT_NE(detach2.output.find("not recording"), std::string::npos) << detach2.output;

  // Read while the process still runs: the detach closed the file.
  TraceContents t = ReadTrace(traces[0]);
  ASSERT_TRUE(t.error.empty()) << t.error;
  EXPECT_TRUE(t.complete);
  EXPECT_NE(t.header.flags & format::kFileFlagAttached, 0u);

  prog.Send("go");
  ASSERT_EQ(prog.ReadLine(), "phase3");
  prog.Send("exit");
  EXPECT_EQ(prog.Wait(), 0);
  EXPECT_EQ(Traces(dir).size(), 1u) << "phase 3 (detached) wrote nothing";
  EXPECT_EQ(ReadTrace(traces[0]).records.size(), t.records.size()) << "the file did not grow";

  // Phase 1 (1001..1005) and phase 3 (3001) are not in the window at all.
  EXPECT_EQ(CountMagic(t, 1000, 1100).by_size.size(), 0u);
  EXPECT_EQ(CountMagic(t, 3000, 3100).by_size.size(), 0u);
  MagicCounts c = CountMagic(t, 2000, 2200);
  EXPECT_EQ(c.by_size[2001], 20);
  EXPECT_EQ(c.by_size[2002], 6);
  EXPECT_EQ(c.by_size[2003], 1);  // realloc of a phase-1 block: an allocation
  EXPECT_EQ(c.by_size[2004], 100);
  EXPECT_EQ(c.by_size[2005], 2);
  EXPECT_EQ(c.by_size[2100], 1);
  EXPECT_EQ(c.allocs[Api::kMalloc], 20 + 100 + 2);
  EXPECT_EQ(c.allocs[Api::kNewArray], 6);
  EXPECT_EQ(c.allocs[Api::kRealloc], 1);
  EXPECT_EQ(c.allocs[Api::kCalloc], 1);
  EXPECT_EQ(c.frees[Api::kFree], 8 + 100);
  EXPECT_EQ(c.live.size(), 22u);
  // The frees of phase-1 blocks (5 free, 7 delete[], the realloc's old
  // side) are neither errors nor events.
  EXPECT_EQ(FreeErrors(t), 0);
  EXPECT_EQ(UnpairedFrees(t), 0u);
  uint64_t delete_arrays = 0;
  for (const auto& r : t.records) delete_arrays += r.tag == RecordTag::kFree && r.api == Api::kDeleteArray;
  EXPECT_EQ(delete_arrays, 0u);
  const format::Record* end = nullptr;
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kEnd) end = &r;
  }
  ASSERT_NE(end, nullptr);
  EXPECT_EQ(end->end.reason, format::EndReason::kDetach);

  // The reports say the window is partial, in text and JSON; the leak
  // report's not-freed blocks are phase 2's only.
  CommandResult report = RunCommand("'" + Heapsight() + "' report '" + traces[0] + "'");
  EXPECT_EQ(report.status, 0) << report.output;
  EXPECT_NE(report.output.find("window: recorded from attach at "), std::string::npos)
      << report.output;
  EXPECT_NE(report.output.find(" to detach at "), std::string::npos) << report.output;
  EXPECT_NE(report.output.find("blocks allocated before attach are not seen"), std::string::npos);
  CommandResult report_json =
      RunCommand("'" + Heapsight() + "' report --format=json '" + traces[0] + "' 2>/dev/null");
  nlohmann::json rj = nlohmann::json::parse(report_json.output, nullptr, false);
  ASSERT_FALSE(rj.is_discarded()) << report_json.output;
  EXPECT_EQ(rj["processes"][0]["window"]["end"], "detach") << report_json.output;
  CommandResult leaks = RunCommand("'" + Heapsight() + "' leaks --format=json '" + traces[0] +
                                   "' 2>/dev/null");
  nlohmann::json lj = nlohmann::json::parse(leaks.output, nullptr, false);
  ASSERT_FALSE(lj.is_discarded()) << leaks.output;
  ASSERT_TRUE(lj["processes"][0].contains("window")) << leaks.output;
  EXPECT_NE(lj["processes"][0]["window"]["text"].get<std::string>().find(
                "blocks allocated before attach are not seen"),
            std::string::npos);
  CommandResult leaks_text = RunCommand("'" + Heapsight() + "' leaks --show-kinds=all '" +
                                        traces[0] + "'");
  EXPECT_NE(leaks_text.output.find("recorded from attach at"), std::string::npos)
      << leaks_text.output;
  EXPECT_EQ(leaks_text.output.find("Phase1"), std::string::npos) << leaks_text.output;
  EXPECT_EQ(leaks_text.output.find("Phase3"), std::string::npos) << leaks_text.output;
  EXPECT_NE(leaks_text.output.find("Phase2"), std::string::npos) << leaks_text.output;
}

// attach, phase 2, exit: the exit leak scan classifies the window's blocks
// only: phase 2's two lost blocks, not phase 1's three.
TEST(Dormant, ExitInsideTheWindowScansOnlyTheWindow) {
  std::string dir = MakeTempDir();
  Dormant prog(dir, {});
  ASSERT_EQ(prog.ReadLine(), "phase1");
  CommandResult attach = RunCommand("'" + Heapsight() + "' attach " + std::to_string(prog.pid()));
  ASSERT_EQ(attach.status, 0) << attach.output;
  prog.Send("go");
  ASSERT_EQ(prog.ReadLine(), "phase2");
  prog.Send("exit");
  EXPECT_EQ(prog.Wait(), 0);
  std::vector<std::string> traces = Traces(dir);
  ASSERT_EQ(traces.size(), 1u);
  TraceContents t = ReadTrace(traces[0]);
  ASSERT_TRUE(t.error.empty()) << t.error;
  EXPECT_EQ(FreeErrors(t), 0);
  CommandResult leaks = RunCommand("'" + Heapsight() + "' leaks --format=json '" + traces[0] +
                                   "' 2>/dev/null");
  nlohmann::json lj = nlohmann::json::parse(leaks.output, nullptr, false);
  ASSERT_FALSE(lj.is_discarded()) << leaks.output;
  const nlohmann::json& proc = lj["processes"][0];
  EXPECT_TRUE(proc["scanned"].get<bool>()) << leaks.output;
  EXPECT_EQ(proc["window"]["end"], "exit");
  EXPECT_TRUE(proc["window"].contains("leak_scan"));
  EXPECT_EQ(lj["totals"]["leaked_blocks"], 2) << leaks.output;
  EXPECT_EQ(lj["totals"]["leaked_bytes"], 2 * 2005) << leaks.output;
  CommandResult text = RunCommand("'" + Heapsight() + "' leaks '" + traces[0] + "'");
  EXPECT_NE(text.output.find("only blocks allocated inside the window are classified"),
            std::string::npos)
      << text.output;
  EXPECT_NE(text.output.find("LeakPhase2"), std::string::npos) << text.output;
  EXPECT_EQ(text.output.find("LeakPhase1"), std::string::npos) << text.output;
}

// Attach twice: each window is a trace of its own; threads allocate
// without pause through both attaches and detaches. Every trace reads
// back whole, with no free errors and no free of an unknown id.
TEST(Dormant, WindowsUnderLoadAreWholeTraces) {
  std::string dir = MakeTempDir();
  Dormant prog(dir, {"churn"});
  ASSERT_EQ(prog.ReadLine(), "phase1");
  std::string pid = std::to_string(prog.pid());
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(RunCommand("'" + Heapsight() + "' attach " + pid).status, 0);
    usleep(100 * 1000);
    ASSERT_EQ(RunCommand("'" + Heapsight() + "' detach " + pid).status, 0);
  }
  prog.Send("go");
  ASSERT_EQ(prog.ReadLine(), "phase2");
  prog.Send("go");
  ASSERT_EQ(prog.ReadLine(), "phase3");
  prog.Send("exit");
  EXPECT_EQ(prog.Wait(), 0);
  std::vector<std::string> traces = Traces(dir);
  ASSERT_EQ(traces.size(), 2u);
  for (const std::string& path : traces) {
    TraceContents t = ReadTrace(path);
    ASSERT_TRUE(t.error.empty()) << path << ": " << t.error;
    EXPECT_TRUE(t.complete) << path;
    EXPECT_EQ(FreeErrors(t), 0) << path;
    EXPECT_EQ(UnpairedFrees(t), 0u) << path;
    EXPECT_GT(CountMagic(t, 4000, 4001).allocs[Api::kMalloc], 0) << path;
    CommandResult report = RunCommand("'" + Heapsight() + "' report '" + path + "'");
    EXPECT_EQ(report.status, 0) << report.output;
  }
}

// fork inside a window: the child records a window of its own
// (kFileFlagForkChild | kFileFlagAttached) that inherits the window's
// blocks; its free of a phase-1 block is neither an event nor an error.
TEST(Dormant, ForkInsideTheWindowGivesTheChildAWindow) {
  std::string dir = MakeTempDir();
  Dormant prog(dir, {"fork"});
  ASSERT_EQ(prog.ReadLine(), "phase1");
  ASSERT_EQ(RunCommand("'" + Heapsight() + "' attach " + std::to_string(prog.pid())).status, 0);
  prog.Send("go");
  ASSERT_EQ(prog.ReadLine(), "phase2");
  ASSERT_EQ(RunCommand("'" + Heapsight() + "' detach " + std::to_string(prog.pid())).status, 0);
  prog.Send("exit");
  EXPECT_EQ(prog.Wait(), 0);
  std::vector<std::string> traces = Traces(dir);
  ASSERT_EQ(traces.size(), 2u);
  int children = 0;
  for (const std::string& path : traces) {
    TraceContents t = ReadTrace(path);
    ASSERT_TRUE(t.error.empty()) << path << ": " << t.error;
    EXPECT_TRUE(t.complete) << path;
    EXPECT_NE(t.header.flags & format::kFileFlagAttached, 0u) << path;
    EXPECT_EQ(FreeErrors(t), 0) << path;
    EXPECT_EQ(UnpairedFrees(t), 0u) << path;
    if ((t.header.flags & format::kFileFlagForkChild) == 0) continue;
    ++children;
    MagicCounts c = CountMagic(t, 2000, 2600);
    EXPECT_EQ(c.by_size[2501], 2);
    EXPECT_EQ(c.inherited, 22);  // the window's live blocks at fork (the lost 2005s too)
    EXPECT_EQ(c.frees[Api::kFree], 1);  // the inherited 2001 block; not the 1004 one
    EXPECT_EQ(CountMagic(t, 1000, 1100).by_size.size(), 0u);
  }
  EXPECT_EQ(children, 1);
}

// Paused and never attached: no trace, and the program's output and exit
// status are those of a run without heapsight.
TEST(Dormant, PausedWithoutAttachChangesNothing) {
  std::string dir = MakeTempDir();
  RunResult plain = RunPlain({ScenarioProgram("output_program")});
  RunResult paused = RunTraced({ScenarioProgram("output_program")}, dir,
                               {{"HEAPSIGHT_START", "paused"}});
  EXPECT_EQ(paused.exit_code, plain.exit_code);
  EXPECT_EQ(paused.out, plain.out);
  EXPECT_EQ(paused.err, plain.err);
  EXPECT_TRUE(paused.traces.empty());
}

// attach refuses a process without the preload, and a wrong pid.
TEST(Dormant, AttachRefusesAProcessWithoutThePreload) {
  std::string dir = MakeTempDir();
  Dormant prog(dir, {}, Dormant::kNoPreload);
  ASSERT_EQ(prog.ReadLine(), "phase1");
  CommandResult r = RunCommand("'" + Heapsight() + "' attach " + std::to_string(prog.pid()));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("does not run heapsight's preload"), std::string::npos) << r.output;
  CommandResult bad = RunCommand("'" + Heapsight() + "' attach 12x");
  EXPECT_EQ(bad.status, 2) << bad.output;
  prog.Send("exit");
  EXPECT_EQ(prog.Wait(), 0);
  EXPECT_TRUE(Traces(dir).empty());
}

// The preload, active (no HEAPSIGHT_START): no control socket, so attach
// says the process was not started paused, and its trace goes on.
TEST(Dormant, AttachRefusesAProcessRecordingFromTheStart) {
  std::string dir = MakeTempDir();
  Dormant prog(dir, {}, Dormant::kActive);
  ASSERT_EQ(prog.ReadLine(), "phase1");
  CommandResult r = RunCommand("'" + Heapsight() + "' attach " + std::to_string(prog.pid()));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("does not listen for attach"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("HEAPSIGHT_START=paused"), std::string::npos) << r.output;
  prog.Send("exit");
  EXPECT_EQ(prog.Wait(), 0);
  std::vector<std::string> traces = Traces(dir);
  ASSERT_EQ(traces.size(), 1u);
  TraceContents t = ReadTrace(traces[0]);
  EXPECT_EQ(t.header.flags & format::kFileFlagAttached, 0u);
  EXPECT_EQ(CountMagic(t, 1001, 1002).by_size[1001], 10);
}

}  // namespace
}  // namespace heapsight::testing
