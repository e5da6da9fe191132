// cli/record/trace_manifest.cc: see trace_manifest.h.
#include "cli/record/trace_manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace heapsight::record {
namespace {

// What the fatal-signal handler removes; empty when no manifest exists.
char g_cleanup_file[4096];
char g_cleanup_dir[4096];
volatile sig_atomic_t g_cleanup_pid = 0;

// Signals whose default action ends the process, other than SIGKILL and
// SIGSTOP (which cannot be caught) and SIGPIPE (ignored by record). The
// forwarded ones are included: RunChild replaces these handlers only while
// the program runs.
constexpr int kFatalSignals[] = {SIGHUP,  SIGINT,  SIGQUIT,   SIGILL,    SIGTRAP, SIGABRT,
                                 SIGBUS,  SIGFPE,  SIGUSR1,   SIGSEGV,   SIGUSR2, SIGALRM,
                                 SIGTERM, SIGSTKFLT, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF,
                                 SIGIO,   SIGPWR,  SIGSYS};

struct SavedAction {
  int sig;
  struct sigaction action;
};
SavedAction g_saved[std::size(kFatalSignals) + 64];
size_t g_saved_count = 0;

// Async-signal-safe: unlink, rmdir, sigaction, raise. Only the process that
// created the manifest removes it (a fork child before its exec keeps our
// handlers).
void RemoveAndReraise(int sig) {
  if (g_cleanup_pid == getpid()) {
    if (g_cleanup_file[0] != '\0') unlink(g_cleanup_file);
    if (g_cleanup_dir[0] != '\0') rmdir(g_cleanup_dir);
  }
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  raise(sig);  // delivered when the handler returns (or the fault repeats)
}

void InstallCleanupHandlers() {
  g_saved_count = 0;
  struct sigaction action = {};
  action.sa_handler = RemoveAndReraise;
  sigemptyset(&action.sa_mask);
  auto install = [&](int sig) {
    struct sigaction old;
    if (sigaction(sig, nullptr, &old) != 0) return;
    // Ignored (nohup) or handled by someone else: leave it alone.
    if ((old.sa_flags & SA_SIGINFO) != 0 || old.sa_handler != SIG_DFL) return;
    if (sigaction(sig, &action, nullptr) != 0) return;
    g_saved[g_saved_count++] = {sig, old};
  };
  for (int sig : kFatalSignals) install(sig);
  for (int sig = SIGRTMIN; sig <= SIGRTMAX && g_saved_count < std::size(g_saved); ++sig) {
    install(sig);
  }
}

void RestoreHandlers() {
  for (size_t i = 0; i < g_saved_count; ++i) {
    sigaction(g_saved[i].sig, &g_saved[i].action, nullptr);
  }
  g_saved_count = 0;
}

bool CopyPath(const std::string& from, char (&to)[4096]) {
  if (from.size() >= sizeof to) return false;
  std::memcpy(to, from.c_str(), from.size() + 1);
  return true;
}

}  // namespace

absl::StatusOr<TraceManifest> TraceManifest::Create() {
  const char* tmp = getenv("TMPDIR");
  std::string tmpl = absl::StrCat(tmp != nullptr && tmp[0] == '/' ? tmp : "/tmp",
                                  "/heapsight-record.XXXXXX");
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {  // mode 0700
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create a temporary directory ", tmpl, ": ", std::strerror(errno)));
  }
  std::string dir = buf.data();
  std::string path = dir + "/traces";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    int err = errno;
    rmdir(dir.c_str());
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create ", path, ": ", std::strerror(err)));
  }
  close(fd);
  if (CopyPath(path, g_cleanup_file) && CopyPath(dir, g_cleanup_dir)) {
    g_cleanup_pid = getpid();
    InstallCleanupHandlers();
  }
  return TraceManifest(std::move(dir), std::move(path));
}

TraceManifest::TraceManifest(TraceManifest&& other) noexcept
    : dir_(std::move(other.dir_)), path_(std::move(other.path_)) {
  other.dir_.clear();
  other.path_.clear();
}

TraceManifest::~TraceManifest() {
  if (path_.empty()) return;
  // Removed before the handlers go, so no signal finds a half-removed pair.
  unlink(path_.c_str());
  rmdir(dir_.c_str());
  g_cleanup_pid = 0;
  RestoreHandlers();
  g_cleanup_file[0] = '\0';
  g_cleanup_dir[0] = '\0';
}

std::vector<std::string> TraceManifest::Read() const {
  std::vector<std::string> entries;
  std::ifstream in(path_, std::ios::binary);
  std::string entry;
  while (std::getline(in, entry, '\0')) {
    if (entry.empty()) continue;
    if (std::find(entries.begin(), entries.end(), entry) == entries.end()) {
      entries.push_back(entry);
    }
  }
  return entries;
}

}  // namespace heapsight::record
