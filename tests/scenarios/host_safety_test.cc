// tests/scenarios/host_safety_test.cc: issue 12's "host harm" items: the
// preload never deadlocks (pthread_cancel), never slows exit down or
// balloons the trace after exit began, never touches the program's fds,
// never changes errno, and never crashes behind another allocator.
//
// Every program runs with a deadline: a regression fails the test (the
// child is killed) instead of hanging the suite.
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "tests/scenarios/scenario_util.h"

extern char** environ;

namespace heapsight::testing {
namespace {

struct BoundedRun {
  RunResult result;
  bool timed_out = false;
  double seconds = 0;
};

struct RunSpec {
  std::vector<std::string> argv;
  std::string preload;  // LD_PRELOAD value ("" = none)
  std::string trace_dir;  // HEAPSIGHT_OUTPUT=<dir>/%e.%p.hst when non-empty
  std::map<std::string, std::string> env;
  int timeout_seconds = 20;
  rlim_t nofile = 0;  // RLIMIT_NOFILE for the program (0 = inherited)
  bool stderr_reader_gone = false;  // stderr: a pipe whose read end is closed
  rlim_t fsize = 0;  // RLIMIT_FSIZE for the program (0 = inherited)
};

// Like RunTraced, but killed (SIGKILL) after timeout_seconds and with an
// optional fd limit and LD_PRELOAD list.
BoundedRun RunBounded(const RunSpec& spec) {
  BoundedRun run;
  std::string dir = MakeTempDir();
  std::string out_path = dir + "/stdout", err_path = dir + "/stderr";
  std::map<std::string, std::string> merged;
  for (char** e = environ; *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq == nullptr) continue;
    std::string key(*e, static_cast<size_t>(eq - *e));
    if (key == "LD_PRELOAD" || key.rfind("HEAPSIGHT_", 0) == 0) continue;
    merged[key] = eq + 1;
  }
  if (!spec.preload.empty()) merged["LD_PRELOAD"] = spec.preload;
  if (!spec.trace_dir.empty()) merged["HEAPSIGHT_OUTPUT"] = spec.trace_dir + "/%e.%p.hst";
  for (const auto& [k, v] : spec.env) merged[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : merged) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = spec.argv;
  for (auto& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);

  auto start = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    if (spec.stderr_reader_gone) {
      int pipe_fds[2];
      if (pipe(pipe_fds) != 0 || dup2(pipe_fds[1], 2) != 2) _exit(125);
      signal(SIGPIPE, SIG_DFL);
    }
    for (int fd = 3; fd < 1024; ++fd) close(fd);
    if (spec.fsize != 0) {
      struct rlimit rl = {spec.fsize, spec.fsize};
      if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(126);
      signal(SIGXFSZ, SIG_DFL);
    }
    if (spec.nofile != 0) {
      struct rlimit rl = {spec.nofile, spec.nofile};
      if (setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(126);
    }
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  int status = 0;
  auto deadline = start + std::chrono::seconds(spec.timeout_seconds);
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      run.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  run.result.out = ReadFile(out_path);
  run.result.err = ReadFile(err_path);
  if (!spec.trace_dir.empty()) {
    RunResult listed = RunPlain({"/bin/sh", "-c", "ls -1 '" + spec.trace_dir + "'"});
    std::istringstream names(listed.out);
    for (std::string name; std::getline(names, name);) {
      if (name.size() > 4 && name.substr(name.size() - 4) == ".hst") {
        run.result.traces.push_back(spec.trace_dir + "/" + name);
      }
    }
  }
  return run;
}

std::string Preload() { return BuildPath("preload/libheapsight.so"); }

RunSpec Traced(std::vector<std::string> argv, const std::string& trace_dir) {
  RunSpec spec;
  spec.argv = std::move(argv);
  spec.preload = Preload();
  spec.trace_dir = trace_dir;
  return spec;
}

RunSpec Plain(std::vector<std::string> argv) {
  RunSpec spec;
  spec.argv = std::move(argv);
  return spec;
}

off_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

// --- 1. pthread_cancel -------------------------------------------------------

// A thread cancelled inside a trace write (write(2) is a cancellation point)
// used to die holding its state lock and the file lock: the next flush spun
// for ever. The program's own alarm (30 s) would end it with SIGALRM (142).
TEST(HostSafety, CancelledWorkersNeverDeadlock) {
  for (const char* threads : {"1", "4"}) {
    SCOPED_TRACE(threads);
    std::string dir = MakeTempDir();
    RunSpec spec = Traced({ScenarioProgram("host_cancel_program"), threads}, dir);
    spec.timeout_seconds = 40;
    BoundedRun run = RunBounded(spec);
    EXPECT_FALSE(run.timed_out);
    EXPECT_EQ(run.result.exit_code, 0) << run.result.err;
    EXPECT_EQ(run.result.out, "ok\n");
    EXPECT_EQ(run.result.err, "");
    ASSERT_EQ(run.result.traces.size(), 1u);
    TraceContents t = ReadTrace(run.result.traces[0]);
    EXPECT_EQ(t.error, "");
    EXPECT_TRUE(t.complete);
    // 20 rounds of `threads` workers, each a thread of its own in the trace.
    EXPECT_EQ(CountTag(t, format::RecordTag::kThreadStart), 1 + 20 * atoi(threads));
  }
}

// --- 2. exit with busy threads ----------------------------------------------

// The busy-exit trace: small, read whole by the analyzer (report and dump;
// ReadTrace would copy a million records), main's block of 7777 bytes in it,
// kEnd with main's status, and after kEnd at most the frees of the blocks
// the 16 workers held at the exit point (8 each), each written at once.
void CheckBusyExitTrace(const std::string& trace) {
  EXPECT_LT(FileSize(trace), 16 << 20);
  std::string heapsight = "'" + BuildPath("cli/heapsight") + "' ";
  RunResult report = RunPlain({"/bin/sh", "-c", heapsight + "report '" + trace + "' >/dev/null"});
  EXPECT_EQ(report.exit_code, 0) << report.err;
  std::string text = trace + ".txt";
  RunResult dump = RunPlain(
      {"/bin/sh", "-c",
       heapsight + "dump '" + trace + "' > '" + text + "' && grep -c ' alloc .*size=7777 ' '" +
           text + "' && grep ' end ' '" + text + "' | sed 's/^ *[0-9]* //'"});
  EXPECT_EQ(dump.exit_code, 0) << dump.err;
  EXPECT_EQ(dump.out, "1\nend reason=1 exit_status=4\n");
  RunResult late = RunPlain(
      {"/bin/sh", "-c", "sed -n '/ end reason/,$p' '" + text + "' | grep -v '^chunk' | wc -l"});
  int records_from_end = atoi(late.out.c_str());
  EXPECT_GE(records_from_end, 1);
  EXPECT_LE(records_from_end, 1 + 16 * 8) << "records after kEnd";
}

// 16 threads allocate for ever while main returns 4. Exit used to take
// 9-28 s and write 70 MB to gigabytes (every late event written at once,
// and the main thread fighting 16 busy threads for their buffer locks).
// Now the exit point stops the other threads' recording: bounded trace
// (CheckBusyExitTrace: at most one chunk of records per thread after the
// end record, the mechanism that also bounds the time), status kept, trace
// complete and readable. The exit's wall time is printed, not asserted
// (flaky23, 2026-12-07: "plain + 2.5 s" depends on the machine's load;
// 0.3 s vs 0.6 s idle, 9.7 s before the exit point existed); a run that
// hangs still fails at timeout_seconds.
TEST(HostSafety, ExitWithBusyThreadsIsQuickAndBounded) {
  BoundedRun plain = RunBounded(Plain({ScenarioProgram("host_busy_exit_program"), "16"}));
  ASSERT_EQ(plain.result.exit_code, 4);
  std::string dir = MakeTempDir();
  RunSpec spec = Traced({ScenarioProgram("host_busy_exit_program"), "16"}, dir);
  spec.timeout_seconds = 30;
  BoundedRun run = RunBounded(spec);
  EXPECT_FALSE(run.timed_out);
  EXPECT_EQ(run.result.exit_code, 4) << run.result.err;
  EXPECT_EQ(run.result.err, "");
  std::printf("exit with 16 busy threads: %.2f s traced, %.2f s plain\n", run.seconds,
              plain.seconds);
  ASSERT_EQ(run.result.traces.size(), 1u);
  CheckBusyExitTrace(run.result.traces[0]);
}

TEST(HostSafety, ExitWithBusyThreadsWithoutLeakScan) {
  std::string dir = MakeTempDir();
  RunSpec spec = Traced({ScenarioProgram("host_busy_exit_program"), "16"}, dir);
  spec.env["HEAPSIGHT_LEAK_SCAN"] = "0";
  spec.timeout_seconds = 30;
  BoundedRun plain = RunBounded(Plain({ScenarioProgram("host_busy_exit_program"), "16"}));
  ASSERT_EQ(plain.result.exit_code, 4);
  BoundedRun run = RunBounded(spec);
  EXPECT_FALSE(run.timed_out);
  EXPECT_EQ(run.result.exit_code, 4) << run.result.err;
  EXPECT_EQ(run.result.err, "");
  std::printf("exit with 16 busy threads, no leak scan: %.2f s traced, %.2f s plain\n",
              run.seconds, plain.seconds);
  ASSERT_EQ(run.result.traces.size(), 1u);
  CheckBusyExitTrace(run.result.traces[0]);
}

// A fork child after the exit point (from a thread other than the exiting
// one) is a process of its own, not exiting: it is traced.
TEST(HostSafety, ForkChildAfterTheExitPointIsTraced) {
  std::string dir = MakeTempDir();
  BoundedRun run = RunBounded(Traced({ScenarioProgram("host_exit_fork_program")}, dir));
  EXPECT_EQ(run.result.exit_code, 0) << run.result.err;
  EXPECT_EQ(run.result.err, "");
  ASSERT_EQ(run.result.traces.size(), 2u);
  int children = 0;
  for (const std::string& path : run.result.traces) {
    TraceContents t = ReadTrace(path);
    EXPECT_EQ(t.error, "") << path;
    EXPECT_TRUE(t.complete) << path;
    bool child = (t.header.flags & format::kFileFlagForkChild) != 0;
    children += child;
    EXPECT_EQ(CountMagic(t, 5151, 5152).allocs[format::Api::kMalloc], child ? 1 : 0) << path;
  }
  EXPECT_EQ(children, 1);
}

// A daemon() parent leaves through glibc's internal _exit, which no hook
// sees: its trace was header-only (no process record, "(unknown program)")
// and had no end record. Now both traces are complete, the parent's with
// _exit status 0, its executable and its allocation; the child's with its
// own allocation.
TEST(HostSafety, DaemonParentTraceIsComplete) {
  std::string dir = MakeTempDir();
  std::string done = MakeTempDir() + "/done";
  BoundedRun run = RunBounded(Traced({ScenarioProgram("host_daemon_program"), done}, dir));
  EXPECT_EQ(run.result.exit_code, 0) << run.result.err;
  EXPECT_EQ(run.result.err, "");
  // The daemon outlives its parent: wait for its file, then for its trace
  // to be finished (its exit follows the file).
  for (int i = 0; i < 2000 && FileSize(done) < 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GE(FileSize(done), 0) << "the daemon did not finish";
  std::vector<std::string> traces;
  for (int i = 0; i < 1000; ++i) {
    traces.clear();
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      traces.push_back(entry.path().string());
    }
    bool all_complete = traces.size() == 2;
    for (const std::string& path : traces) all_complete = all_complete && ReadTrace(path).complete;
    if (all_complete) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(traces.size(), 2u);
  int children = 0;
  for (const std::string& path : traces) {
    TraceContents t = ReadTrace(path);
    EXPECT_EQ(t.error, "") << path;
    EXPECT_TRUE(t.complete) << path;
    bool child = (t.header.flags & format::kFileFlagForkChild) != 0;
    children += child;
    // The process record names the program (its strings are copied out).
    bool named = false;
    for (const std::string& text : t.strings) {
      named = named || text.find("host_daemon_program") != std::string::npos;
    }
    EXPECT_TRUE(named) << path;
    int64_t end_status = -1;
    format::EndReason reason = format::EndReason::kDisabled;
    for (const format::Record& r : t.records) {
      if (r.tag == format::RecordTag::kEnd) {
        reason = r.end.reason;
        end_status = r.end.exit_status;
      }
    }
    EXPECT_EQ(end_status, 0) << path;
    EXPECT_EQ(reason, child ? format::EndReason::kExit : format::EndReason::kUnderscoreExit)
        << path;
    MagicCounts parent_block = CountMagic(t, 6161, 6162), child_block = CountMagic(t, 6262, 6263);
    EXPECT_EQ(parent_block.allocs[format::Api::kMalloc], child ? 0 : 1) << path;
    EXPECT_EQ(child_block.allocs[format::Api::kMalloc], child ? 1 : 0) << path;
  }
  EXPECT_EQ(children, 1);
}

// The preload's own warning written to a stderr whose reader has exited
// (`prog 2>&1 | head -0`) raised SIGPIPE and killed the program (status
// 141 instead of its own 6).
TEST(HostSafety, WarningToClosedStderrKeepsTheProgramAlive) {
  std::string dir = MakeTempDir();
  RunSpec spec = Traced({ScenarioProgram("exit_program"), "exit"}, dir);
  spec.env["HEAPSIGHT_MAX_DEPTH"] = "zz";  // warns "invalid HEAPSIGHT_MAX_DEPTH=zz"
  RunSpec reference = spec;
  BoundedRun warned = RunBounded(reference);
  EXPECT_EQ(warned.result.exit_code, 6);
  EXPECT_NE(warned.result.err.find("invalid HEAPSIGHT_MAX_DEPTH=zz"), std::string::npos)
      << warned.result.err;
  spec.trace_dir = MakeTempDir();
  spec.stderr_reader_gone = true;
  BoundedRun run = RunBounded(spec);
  EXPECT_EQ(run.result.exit_code, 6);
  ASSERT_EQ(run.result.traces.size(), 1u);
  EXPECT_TRUE(ReadTrace(run.result.traces[0]).complete);
}

// A trace write past RLIMIT_FSIZE raised SIGXFSZ and killed the program
// (status 153 instead of its own 4). Now the write fails with EFBIG: tracing
// stops with one warning and the program runs on.
TEST(HostSafety, FileSizeLimitStopsTracingNotTheProgram) {
  std::string dir = MakeTempDir();
  // 400,000 loop turns make a trace of about 120 KiB (0.3 bytes a turn,
  // compressed); without a floor a loaded machine ran the threads so
  // little in main's 200 ms that the trace stayed under the limit.
  RunSpec spec = Traced({ScenarioProgram("host_busy_exit_program"), "2", "400000"}, dir);
  spec.fsize = 32 * 1024;
  BoundedRun run = RunBounded(spec);
  EXPECT_EQ(run.result.exit_code, 4) << run.result.err;
  EXPECT_NE(run.result.err.find("cannot write trace"), std::string::npos) << run.result.err;
  EXPECT_NE(run.result.err.find("File too large"), std::string::npos) << run.result.err;
  ASSERT_EQ(run.result.traces.size(), 1u);
  EXPECT_LE(FileSize(run.result.traces[0]), 32 * 1024);
}

// --- 3. the program's fds ---------------------------------------------------

std::string ExpectedDaemonLog() {
  std::string log;
  for (int i = 0; i < 3000; ++i) log += "line " + std::to_string(i) + "\n";
  return log;
}

// libunwind's memory-validation pipe lived at the lowest fds free at
// start-up: after the daemon closed every fd and opened its own files there,
// libunwind found its pipe "closed" and closed the daemon's files (the log
// stayed empty), or read the daemon's data and wrote bytes of process memory
// into its files.
TEST(HostSafety, DaemonThatClosesEveryFdKeepsItsFiles) {
  for (const char* mode : {"wronly", "rdwr"}) {
    SCOPED_TRACE(mode);
    std::string dir = MakeTempDir();
    std::string log = dir + "/daemon.log", quiet = MakeTempDir();
    BoundedRun run = RunBounded(
        Traced({ScenarioProgram("host_fd_daemon_program"), log, quiet, mode}, dir));
    EXPECT_FALSE(run.timed_out);
    EXPECT_EQ(run.result.exit_code, 0) << run.result.err;
    std::string got = ReadFile(log);
    EXPECT_TRUE(got == ExpectedDaemonLog()) << "the log has " << got.size() << " bytes, not "
                                            << ExpectedDaemonLog().size();
    for (int fd = 4; fd < 16; ++fd) {
      std::string path = quiet + "/q" + std::to_string(fd);
      EXPECT_EQ(FileSize(path), 0) << path;
    }
    ASSERT_EQ(run.result.traces.size(), 1u);
    TraceContents t = ReadTrace(run.result.traces[0]);
    EXPECT_EQ(t.error, "");
    EXPECT_TRUE(t.complete);
    EXPECT_EQ(CountMagic(t, 100, 150).allocs[format::Api::kMalloc], 1500);
    EXPECT_EQ(CountMagic(t, 200, 230).allocs[format::Api::kCalloc], 1500);
    // And the unwinder still works: each allocation's stack holds Deep's
    // frames (1 to 24 of them), the loop's and main's.
    ProgramSymbols symbols(ScenarioProgram("host_fd_daemon_program"), t);
    ASSERT_EQ(symbols.Error(), "");
    int deep_stacks = 0;
    for (const auto& r : t.records) {
      if (r.tag != format::RecordTag::kAlloc || r.size < 100 || r.size >= 150) continue;
      std::vector<std::string> frames = symbols.Frames(t, r.stack);
      deep_stacks += frames.size() >= 2 && frames.back() == "main" &&
                     frames.front().find("Deep") != std::string::npos;
    }
    EXPECT_EQ(deep_stacks, 1500);
  }
}

// With a limit of 16 fds the program opens one file fewer than plain: the
// trace file is the preload's only lasting fd (docs/DESIGN.md).
TEST(HostSafety, LowFdLimitCostsTheProgramOneFd) {
  RunSpec plain = Plain({ScenarioProgram("host_fd_count_program")});
  plain.nofile = 16;
  BoundedRun p = RunBounded(plain);
  ASSERT_EQ(p.result.exit_code, 0);
  EXPECT_EQ(p.result.out, "13 EMFILE\n");
  std::string dir = MakeTempDir();
  RunSpec traced = Traced({ScenarioProgram("host_fd_count_program")}, dir);
  traced.nofile = 16;
  BoundedRun t = RunBounded(traced);
  EXPECT_EQ(t.result.exit_code, 0) << t.result.err;
  EXPECT_EQ(t.result.out, "12 EMFILE\n");
  EXPECT_EQ(t.result.err, "");
  ASSERT_EQ(t.result.traces.size(), 1u);
  EXPECT_TRUE(ReadTrace(t.result.traces[0]).complete);
}

// --- 4. errno -----------------------------------------------------------------

TEST(HostSafety, ErrnoIsWhatTheRealFunctionLeaves) {
  std::vector<std::string> argv = {ScenarioProgram("host_errno_program"), "sequence",
                                   BuildPath("tests/scenarios/libscenario_plugin.so")};
  BoundedRun plain = RunBounded(Plain(argv));
  ASSERT_EQ(plain.result.exit_code, 0);
  std::string dir = MakeTempDir();
  BoundedRun traced = RunBounded(Traced(argv, dir));
  EXPECT_EQ(traced.result.exit_code, 0) << traced.result.err;
  EXPECT_EQ(traced.result.out, plain.result.out);
  // The values themselves: untouched by successful calls, ENOMEM from the
  // failing ones.
  for (const char* where : {"main", "thread"}) {
    std::string w = where;
    for (const char* ok : {"malloc", "malloc-again", "free", "calloc", "free-realloced",
                           "reallocarray", "free-reallocarray", "memalign", "free-memalign",
                           "valloc", "free-valloc",
                           "posix_memalign", "free-aligned", "aligned_alloc", "free-aligned2",
                           "new", "delete", "dlopen", "dlclose", "free-first"}) {
      EXPECT_NE(traced.result.out.find(w + " " + ok + " 55\n"), std::string::npos)
          << w << " " << ok << "\n" << traced.result.out;
    }
    for (const char* fail : {"malloc-huge", "calloc-overflow", "realloc-huge",
                             "reallocarray-overflow", "new-nothrow-huge"}) {
      EXPECT_NE(traced.result.out.find(w + " " + fail + " 12\n"), std::string::npos)
          << w << " " << fail << "\n" << traced.result.out;
    }
  }
}

TEST(HostSafety, FirstCallFailingKeepsEnomem) {
  std::vector<std::string> argv = {ScenarioProgram("host_errno_program"), "huge-first"};
  std::string dir = MakeTempDir();
  BoundedRun traced = RunBounded(Traced(argv, dir));
  EXPECT_EQ(traced.result.exit_code, 0) << traced.result.err;
  EXPECT_EQ(traced.result.out, "huge-first null 12\n");
}

// --- 5. another allocator in front --------------------------------------------

struct Allocator {
  const char* name;
  const char* library;
};
constexpr Allocator kAllocators[] = {{"jemalloc", "libjemalloc.so.2"},
                                     {"tcmalloc", "libtcmalloc.so.4"}};

bool Installed(const char* library) {
  return access(("/usr/lib/x86_64-linux-gnu/" + std::string(library)).c_str(), R_OK) == 0;
}

// In front of heapsight, the allocator serves the program and heapsight
// would hand blocks to the wrong one: it warns once and steps aside; the
// program runs exactly as plain.
TEST(HostSafety, AllocatorInFrontMakesHeapsightStepAside) {
  std::vector<std::string> argv = {ScenarioProgram("output_program"), "6"};
  for (const Allocator& a : kAllocators) {
    SCOPED_TRACE(a.name);
    ASSERT_TRUE(Installed(a.library)) << "scripts/debian-packages.txt lists its package";
    RunSpec plain_spec = Plain(argv);
    plain_spec.preload = a.library;
    BoundedRun plain = RunBounded(plain_spec);
    ASSERT_EQ(plain.result.exit_code, 6);
    std::string dir = MakeTempDir();
    RunSpec spec = Traced(argv, dir);
    spec.preload = std::string(a.library) + " " + Preload();
    BoundedRun run = RunBounded(spec);
    EXPECT_FALSE(run.timed_out);
    EXPECT_EQ(run.result.exit_code, 6);
    EXPECT_EQ(run.result.out, plain.result.out);
    EXPECT_EQ(run.result.err,
              "heapsight: another allocator serves this program's malloc (" +
                  std::string(a.library) + " comes before libheapsight.so);"
                  " tracing disabled\n" + plain.result.err);
    EXPECT_EQ(run.result.traces.size(), 0u);
    // `ls /` too (the crash).
    RunSpec ls = Traced({"/bin/ls", "/"}, dir);
    ls.preload = spec.preload;
    BoundedRun ls_run = RunBounded(ls);
    EXPECT_EQ(ls_run.result.exit_code, 0) << ls_run.result.err;
    EXPECT_EQ(ls_run.result.out, RunPlain({"/bin/ls", "/"}).out);
  }
}

// Not another allocator: a non-PIE executable that takes malloc's address
// makes dlsym(RTLD_DEFAULT, "malloc") answer with the executable's PLT
// entry (python3 is one). Taking that for an allocator in front made malloc
// call itself until the stack ran out.
TEST(HostSafety, ExecutableTakingMallocsAddressIsTraced) {
  std::string dir = MakeTempDir();
  BoundedRun run = RunBounded(Traced({ScenarioProgram("host_malloc_address_program")}, dir));
  EXPECT_EQ(run.result.exit_code, 0) << run.result.err;
  EXPECT_EQ(run.result.out, "hello\n");
  EXPECT_EQ(run.result.err, "");
  ASSERT_EQ(run.result.traces.size(), 1u);
  TraceContents t = ReadTrace(run.result.traces[0]);
  EXPECT_TRUE(t.complete);
  MagicCounts c = CountMagic(t, 6001, 6002);
  EXPECT_EQ(c.allocs[format::Api::kMalloc], 1);
  EXPECT_EQ(c.frees[format::Api::kFree], 1);
  // And python3, the program that showed it, when installed.
  if (access("/usr/bin/python3", X_OK) == 0) {
    RunSpec py = Traced({"/usr/bin/python3", "-c", "print(1)"}, MakeTempDir());
    BoundedRun py_run = RunBounded(py);
    EXPECT_EQ(py_run.result.exit_code, 0) << py_run.result.err;
    EXPECT_EQ(py_run.result.out, "1\n");
    EXPECT_EQ(py_run.result.traces.size(), 1u);
  }
}

// Counts over the allocations whose stack has no frame in the object whose
// path ends in `loader` (the dynamic loader, which calls the library
// constructors: what is left is what the program's code allocated), and
// the frees of those blocks.
struct ProgramCounts {
  uint64_t allocs = 0, frees = 0, bytes = 0;
  bool operator==(const ProgramCounts&) const = default;
};
ProgramCounts CountOutsideLoader(const TraceContents& t, const std::string& loader) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (size_t i = 0; i < t.records.size(); ++i) {
    const format::Record& r = t.records[i];
    // A record's text fields are strings[2 i] and [2 i + 1] (run_traced.h).
    const std::string& path = t.strings[2 * i];
    if (r.tag != format::RecordTag::kModule || path.size() < loader.size() ||
        path.compare(path.size() - loader.size(), loader.size(), loader) != 0) {
      continue;
    }
    for (const auto& seg : r.module.segments) {
      ranges.push_back({r.module.load_address + seg.vaddr,
                        r.module.load_address + seg.vaddr + seg.memsz});
    }
  }
  auto from_program = [&](uint64_t node) {
    for (int depth = 0; node != 0 && depth < 10000; ++depth) {
      auto it = t.stack_nodes.find(node);
      if (it == t.stack_nodes.end()) return true;
      for (const auto& [lo, hi] : ranges) {
        if (it->second.second >= lo && it->second.second < hi) return false;
      }
      node = it->second.first;
    }
    return true;
  };
  ProgramCounts c;
  std::set<uint64_t> ids;
  for (const auto& r : t.records) {
    if ((r.tag == format::RecordTag::kAlloc || r.tag == format::RecordTag::kRealloc) &&
        from_program(r.stack)) {
      ++c.allocs;
      c.bytes += r.size;
      ids.insert(r.id);
    }
  }
  for (const auto& r : t.records) {
    if (r.tag == format::RecordTag::kFree && ids.count(r.id) != 0) ++c.frees;
    if (r.tag == format::RecordTag::kRealloc && ids.count(r.old_id) != 0) ++c.frees;
  }
  return c;
}

// Behind heapsight, the allocator is simply the one heapsight calls: the
// trace is complete and exact. (Its own constructors' allocations, made
// before ours ran, are recorded too since issue 14 fault 3: the program's
// are compared.)
TEST(HostSafety, AllocatorBehindIsTracedThrough) {
  std::vector<std::string> argv = {ScenarioProgram("output_program"), "6"};
  std::string alone_dir = MakeTempDir();
  BoundedRun alone = RunBounded(Traced(argv, alone_dir));
  ASSERT_EQ(alone.result.traces.size(), 1u);
  ProgramCounts want = CountOutsideLoader(ReadTrace(alone.result.traces[0]), "/ld-linux-x86-64.so.2");
  ASSERT_GE(want.allocs, 10u);  // the vector's growth, stdio's buffer
  for (const Allocator& a : kAllocators) {
    SCOPED_TRACE(a.name);
    ASSERT_TRUE(Installed(a.library));
    std::string dir = MakeTempDir();
    RunSpec spec = Traced(argv, dir);
    spec.preload = Preload() + " " + a.library;
    BoundedRun run = RunBounded(spec);
    EXPECT_FALSE(run.timed_out);
    EXPECT_EQ(run.result.exit_code, 6) << run.result.err;
    EXPECT_EQ(run.result.out, "1000 words, last word999\n");
    EXPECT_EQ(run.result.err, "to stderr\n");
    ASSERT_EQ(run.result.traces.size(), 1u);
    TraceContents t = ReadTrace(run.result.traces[0]);
    EXPECT_EQ(t.error, "");
    EXPECT_TRUE(t.complete);
    EXPECT_EQ(UnpairedFrees(t), 0u);
    EXPECT_EQ(CountTag(t, format::RecordTag::kFreeError), 0);
    ProgramCounts got = CountOutsideLoader(t, "/ld-linux-x86-64.so.2");
    EXPECT_EQ(got.allocs, want.allocs);
    EXPECT_EQ(got.frees, want.frees);
    EXPECT_EQ(got.bytes, want.bytes);
  }
}

}  // namespace
}  // namespace heapsight::testing
