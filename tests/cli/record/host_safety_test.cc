// tests/cli/record/host_safety_test.cc: issue 12, the `heapsight` command's
// side: `record` survives a closed stderr, exit statuses tell the truth
// (leak exit code, usage errors, full disks), the manifest can neither be
// re-created nor redirected after `record` is gone and is removed on every
// exit path, and the messages say what happened (set-user-ID, 32-bit, full
// disk, odd -o values, scripts without "#!").
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/run_traced.h"

extern char** environ;

namespace heapsight::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

namespace fs = std::filesystem;

std::string Heapsight() { return BuildPath("cli/heapsight"); }
std::string Program(const std::string& name) { return BuildPath("tests/cli/record/" + name); }

RunResult Record(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {Heapsight(), "record"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunPlain(argv);
}

bool WaitFor(const std::string& path) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!fs::exists(path)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// Starts argv with stdout and stderr on `fd` (and stdin on /dev/null);
// returns the pid.
pid_t Spawn(const std::vector<std::string>& argv, int fd) {
  std::vector<std::string> copy = argv;
  std::vector<char*> args;
  for (auto& a : copy) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    execve(args[0], args.data(), environ);
    _exit(127);
  }
  return pid;
}

// Waits for pid; its exit status, or 128+N after signal N.
int Wait(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

// A shell command that writes $HEAPSIGHT_MANIFEST (the path the preload
// writes to) into `info`.
std::string SaveManifestPath(const std::string& info) {
  return "printf '%s' \"$HEAPSIGHT_MANIFEST\" > '" + info + "'";
}

// Issue 12, host harm 6: `heapsight record -- prog 2>&1 | head -1`.
TEST(RecordHostSafety, SurvivesAClosedStderrAndKeepsTheExitStatus) {
  std::string dir = MakeTempDir();
  std::string info = dir + "/manifest-path";
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  close(pipe_fds[0]);  // the reader is gone before heapsight says anything
  pid_t pid = Spawn({Heapsight(), "record", "-o", dir + "/%p.hst", "--", "/bin/sh", "-c",
                     SaveManifestPath(info) + "; exit 3"},
                    pipe_fds[1]);
  close(pipe_fds[1]);
  EXPECT_EQ(Wait(pid), 3) << "141 is 128+SIGPIPE: heapsight died writing to the closed pipe";
  std::string manifest = ReadFile(info);
  ASSERT_THAT(manifest, Not(IsEmpty()));
  EXPECT_FALSE(fs::exists(manifest)) << "manifest left behind: " << manifest;
}

// heapsight ignores SIGPIPE for itself only: PROGRAM still gets the
// disposition it would have had (here the default, so `kill -PIPE $$` kills).
TEST(RecordHostSafety, ProgramKeepsItsSigpipeDisposition) {
  std::string dir = MakeTempDir();
  RunResult r = Record({"-q", "-o", dir + "/%p.hst", "--", "/bin/sh", "-c", "kill -PIPE $$"});
  EXPECT_EQ(r.exit_code, 128 + SIGPIPE) << r.err;
}

// Issue 12, exit statuses: the leak exit code only replaces a status of 0.
TEST(RecordHostSafety, LeakExitcodeAppliesOnlyWhenTheProgramSucceeded) {
  std::string dir = MakeTempDir();
  std::string leak_then_fail = "\"$0\"; exit 5";
  for (const char* code : {"0", "23"}) {
    RunResult r = Record({"--leak-exitcode", code, "-o", dir + "/" + code + ".%p.hst", "--",
                          "/bin/sh", "-c", leak_then_fail, Program("record_leaky_program")});
    EXPECT_EQ(r.exit_code, 5) << "--leak-exitcode " << code << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr("300 bytes in 3 blocks"));  // the leaks were seen
  }
  RunResult ok = Record({"--leak-exitcode", "23", "-o", dir + "/ok.%p.hst", "--",
                         Program("record_leaky_program")});
  EXPECT_EQ(ok.exit_code, 23) << ok.err;
}

// Issue 12, exit statuses: output to a full disk is an error.
TEST(RecordHostSafety, AnalyzerCommandsFailWhenStdoutIsFull) {
  std::string dir = MakeTempDir();
  RunResult rec = Record({"-q", "-o", dir + "/t.hst", "--", Program("record_leaky_program")});
  ASSERT_EQ(rec.exit_code, 0) << rec.err;
  std::string trace = dir + "/t.hst";
  const std::vector<std::vector<std::string>> commands = {
      {"leaks", "--format=json", trace}, {"leaks", trace},   {"report", trace},
      {"dump", trace},                   {"growth", trace},  {"diff", trace, trace},
      {"collapse", trace},               {"options"},        {"--help"},
  };
  for (const auto& command : commands) {
    std::vector<std::string> argv = {"/bin/sh", "-c", "exec \"$0\" \"$@\" > /dev/full",
                                     Heapsight()};
    argv.insert(argv.end(), command.begin(), command.end());
    RunResult r = RunPlain(argv);
    EXPECT_EQ(r.exit_code, 1) << command[0] << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("heapsight: error writing standard output")) << command[0];
  }
  // -o FILE is checked the same way (analyzer/output/output_file.cc).
  RunResult to_file = RunPlain({Heapsight(), "collapse", trace, "-o", "/dev/full"});
  EXPECT_EQ(to_file.exit_code, 1);
  EXPECT_THAT(to_file.err, HasSubstr("/dev/full: cannot write: No space left on device"));
  // A closed stdout with nothing written to it is no error.
  RunResult closed = RunPlain({"/bin/sh", "-c", "exec \"$0\" record -q -o \"$1\" -- /bin/true >&-",
                               Heapsight(), dir + "/closed.%p.hst"});
  EXPECT_EQ(closed.exit_code, 0) << closed.err;
}

// Issue 12, security: a descendant that outlives `record` starts a new
// trace. It must neither re-create the manifest nor write through what
// someone planted at its name (a symlink in a re-created directory).
TEST(RecordHostSafety, LateDescendantNeverWritesAManifestAfterRecordIsGone) {
  for (bool plant : {false, true}) {
    SCOPED_TRACE(plant ? "symlink planted" : "nothing planted");
    std::string dir = MakeTempDir();
    std::string info = dir + "/manifest-path", fifo = dir + "/go", done = dir + "/done";
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    // The background job waits on the FIFO (a shell builtin: no process
    // starts meanwhile), then execs a traced shell that starts a new trace.
    std::string script = SaveManifestPath(info) + "; ( read x < '" + fifo +
                         "'; exec /bin/sh -c 'touch \"$0\"' '" + done +
                         "' ) </dev/null >/dev/null 2>&1 & exit 0";
    RunResult r = Record({"-q", "-o", dir + "/%p.hst", "--", "/bin/sh", "-c", script});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::string manifest = ReadFile(info);
    ASSERT_THAT(manifest, Not(IsEmpty()));
    EXPECT_FALSE(fs::exists(manifest)) << "record did not remove " << manifest;

    std::string victim = dir + "/victim";
    std::ofstream(victim) << "victim\n";
    if (plant) {
      // Same user here; what matters is that nothing follows the link.
      std::error_code ec;
      fs::create_directories(fs::path(manifest).parent_path(), ec);
      fs::permissions(fs::path(manifest).parent_path(), fs::perms::owner_all, ec);
      fs::remove(manifest, ec);
      fs::create_symlink(victim, manifest);
    }
    { std::ofstream(fifo) << "go\n"; }
    ASSERT_TRUE(WaitFor(done)) << "the late descendant did not run";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // its exit
    EXPECT_EQ(ReadFile(victim), "victim\n") << "a trace path was appended through the symlink";
    if (!plant) {
      EXPECT_FALSE(fs::exists(manifest)) << "the late descendant re-created " << manifest;
    }
    std::error_code ec;
    fs::remove(manifest, ec);
  }
}

// Issue 12, security: the manifest is in a directory of its own, mode 0700,
// removed with it, also when record dies of a signal it does not forward.
TEST(RecordHostSafety, ManifestDirectoryIsPrivateAndRemovedOnSignals) {
  std::string dir = MakeTempDir();
  std::string info = dir + "/manifest-path";
  RunResult r = Record({"-q", "-o", dir + "/%p.hst", "--", "/bin/sh", "-c",
                        SaveManifestPath(info) + "; stat -c %a \"${HEAPSIGHT_MANIFEST%/*}\""});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string manifest = ReadFile(info);
  std::string parent = fs::path(manifest).parent_path().string();
  EXPECT_EQ(r.out, "700\n");
  EXPECT_NE(parent, getenv("TMPDIR")) << "the manifest is not in a directory of its own";
  EXPECT_FALSE(fs::exists(parent));

  for (int sig : {SIGALRM, SIGTERM}) {
    SCOPED_TRACE(strsignal(sig));
    std::string run = MakeTempDir();
    std::string info2 = run + "/manifest-path", pid_file = run + "/pid";
    int null = open("/dev/null", O_WRONLY);
    pid_t pid = Spawn({Heapsight(), "record", "-q", "-o", run + "/%p.hst", "--", "/bin/sh", "-c",
                       SaveManifestPath(info2) + "; echo $$ > '" + pid_file + ".tmp'; mv '" +
                           pid_file + ".tmp' '" + pid_file + "'; exec sleep 30"},
                      null);
    close(null);
    ASSERT_TRUE(WaitFor(pid_file));
    int program = std::atoi(ReadFile(pid_file).c_str());
    kill(pid, sig);
    int status = Wait(pid);
    if (program > 0) kill(program, SIGKILL);  // SIGALRM is not forwarded
    EXPECT_EQ(status, 128 + sig);
    std::string m = ReadFile(info2);
    ASSERT_THAT(m, Not(IsEmpty()));
    EXPECT_FALSE(fs::exists(m)) << "left behind: " << m;
    EXPECT_FALSE(fs::exists(fs::path(m).parent_path()));
  }
}

// Issue 12, messages: set-user-ID programs ignore LD_PRELOAD; say so.
TEST(RecordHostSafety, SetuidProgramIsExplained) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give a file to another user";
  std::string dir = MakeTempDir();
  chmod(dir.c_str(), 0755);
  std::string prog = dir + "/setuid_leaky";
  fs::copy_file(Program("record_leaky_program"), prog);
  ASSERT_EQ(chown(prog.c_str(), 65534, 65534), 0);
  ASSERT_EQ(chmod(prog.c_str(), 04755), 0);
  RunResult r = Record({"-o", dir + "/%p.hst", "--", prog});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "leaked 3 blocks\n");
  EXPECT_THAT(r.err, HasSubstr("no trace was written: " + prog + " is set-user-ID"));
  EXPECT_THAT(r.err, HasSubstr("ignores LD_PRELOAD"));
}

// A minimal 32-bit ELF executable header with a PT_INTERP program header.
void WriteElf32(const std::string& path) {
  std::string interp = "/lib/ld-linux.so.2";
  std::string f(52 + 32, '\0');
  const char ident[] = {0x7f, 'E', 'L', 'F', 1 /*ELFCLASS32*/, 1, 1};
  f.replace(0, sizeof ident, ident, sizeof ident);
  auto put16 = [&](size_t at, uint16_t v) { f[at] = char(v & 0xff), f[at + 1] = char(v >> 8); };
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) f[at + i] = char((v >> (8 * i)) & 0xff);
  };
  put16(16, 2);   // ET_EXEC
  put16(18, 3);   // EM_386
  put32(20, 1);   // EV_CURRENT
  put32(28, 52);  // e_phoff
  put16(40, 52);  // e_ehsize
  put16(42, 32);  // e_phentsize
  put16(44, 1);   // e_phnum
  put32(52, 3);   // PT_INTERP
  put32(56, 84);  // p_offset
  put32(68, static_cast<uint32_t>(interp.size() + 1));
  put32(72, static_cast<uint32_t>(interp.size() + 1));
  f += interp + '\0';
  std::ofstream(path, std::ios::binary) << f;
  chmod(path.c_str(), 0755);
}

TEST(RecordHostSafety, ThirtyTwoBitProgramIsRefusedByName) {
  std::string dir = MakeTempDir();
  std::string prog = dir + "/prog32";
  WriteElf32(prog);
  RunResult r = Record({"--", prog});
  EXPECT_EQ(r.exit_code, 126);
  EXPECT_THAT(r.err, HasSubstr(prog + " is a 32-bit program; heapsight traces 64-bit programs only"));
  std::string script = dir + "/script32";
  std::ofstream(script) << "#!" << prog << "\n";
  chmod(script.c_str(), 0755);
  RunResult s = Record({"--", script});
  EXPECT_EQ(s.exit_code, 126);
  EXPECT_THAT(s.err, HasSubstr("heapsight traces 64-bit programs only"));
}

// Issue 12, messages: a trace cut short by a full disk says so.
TEST(RecordHostSafety, FullDiskTraceSaysTheDiskWasFull) {
  if (geteuid() != 0 || access("/usr/bin/unshare", X_OK) != 0) {
    GTEST_SKIP() << "needs root and unshare to mount a small tmpfs";
  }
  std::string dir = MakeTempDir();
  std::string mnt = dir + "/small";
  fs::create_directories(mnt);
  RunResult r = RunPlain(
      {"/usr/bin/unshare", "-m", "/bin/sh", "-c",
       "mount -t tmpfs -o size=1m tmpfs \"$1\" || exit 99; exec \"$2\" record -o \"$1/t.%p.hst\" -- \"$3\" "
       "\"$1/fill\"",
       "sh", mnt, Heapsight(), Program("record_disk_filler_program")});
  if (r.exit_code == 99) GTEST_SKIP() << "cannot mount a tmpfs here: " << r.err;
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, ContainsRegex("is incomplete: writing it failed: the file system holding "
                                   "it is full \\([0-9]+ bytes free\\)"));
}

// Issue 12, messages: a newline in -o (or in %e) keeps the trace list and
// the summary whole.
TEST(RecordHostSafety, NewlineInOutputKeepsTheSummary) {
  std::string dir = MakeTempDir();
  RunResult r = Record({"-o", dir + "/two\nlines.%p.hst", "--", Program("record_leaky_program")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, ContainsRegex("heapsight: wrote [^\n]*/two\\\\nlines\\.[0-9]+\\.hst\n"));
  EXPECT_THAT(r.err, HasSubstr("300 bytes in 3 blocks"));
  EXPECT_THAT(r.err, Not(HasSubstr("cannot summarize")));
}

// Issue 12, messages: -o DIRECTORY writes into it with the default names.
TEST(RecordHostSafety, OutputDirectoryGetsTheDefaultName) {
  std::string dir = MakeTempDir();
  std::string out = dir + "/traces";
  fs::create_directories(out);
  for (const std::string& o : {out, out + "/"}) {
    RunResult r = Record({"-q", "-o", o, "--", Program("record_leaky_program")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(out)) files.push_back(e.path().filename());
  EXPECT_THAT(files, SizeIs(2));
  for (const std::string& f : files) {
    EXPECT_THAT(f, ContainsRegex("^heapsight\\.record_leaky_program\\.[0-9]+\\.hst$"));
  }
  EXPECT_FALSE(fs::exists(out + ".1"));
}

// Issue 12, messages: usage errors exit 2, for CLI11's errors and ours.
TEST(RecordHostSafety, UsageErrorsExit2) {
  const std::vector<std::vector<std::string>> commands = {
      {"record", "--no-such-flag", "--", "/bin/true"},
      {"record", "--leak-exitcode", "300", "--", "/bin/true"},
      {"record"},
      {"leaks"},
      {"no-such-command"},
      {"record", "--option", "no-such-option=1", "--", "/bin/true"},
      {"record", "--option", "max-depth=deep", "--", "/bin/true"},
      {"record", "--option", "max-depth=0", "--", "/bin/true"},
      {"record", "--option", "zstd-level=20", "--", "/bin/true"},
      {"record", "--option", "unwind=magic", "--", "/bin/true"},
  };
  for (const auto& command : commands) {
    std::vector<std::string> argv = {Heapsight()};
    argv.insert(argv.end(), command.begin(), command.end());
    RunResult r = RunPlain(argv);
    EXPECT_EQ(r.exit_code, 2) << command.back() << ": " << r.err;
    EXPECT_THAT(r.err, Not(IsEmpty()));
  }
  RunResult depth = RunPlain({Heapsight(), "record", "--option", "max-depth=0", "--", "/bin/true"});
  EXPECT_THAT(depth.err, HasSubstr("HEAPSIGHT_MAX_DEPTH=0 is not valid"));
  EXPECT_THAT(depth.err, HasSubstr("(1-256)"));
  RunResult help = RunPlain({Heapsight(), "record", "--help"});
  EXPECT_EQ(help.exit_code, 0);
}

// Issue 12, messages: a script without "#!" runs with /bin/sh, as execvp
// and the shells run it.
TEST(RecordHostSafety, ScriptWithoutShebangRunsWithSh) {
  std::string dir = MakeTempDir();
  std::string script = dir + "/no-shebang";
  std::ofstream(script) << "echo \"$0:$1:$2\"\nexit 7\n";
  chmod(script.c_str(), 0755);
  RunResult r = Record({"-q", "-o", dir + "/%p.hst", "--", script, "a b", "c"});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_EQ(r.out, script + ":a b:c\n");
}

}  // namespace
}  // namespace heapsight::testing
