// cli/attach_command.cc: `heapsight attach PID`, `heapsight detach PID` and
// `heapsight attach --status PID` (issue 19): start and end a recording
// window in a process that runs heapsight's preload paused
// (HEAPSIGHT_START=paused, e.g. `heapsight record --paused`).
//
// The process listens on the abstract unix socket "@heapsight.<pid>"
// (preload/control.h); a request is one line, the answer one line ("ok
// <trace path>" or "error <message>"). Before connecting, the target is
// checked to run the preload (/proc/PID/maps names libheapsight.so) so a
// wrong pid gets a clear message; after connecting, the socket's owner
// must be that pid (SO_PEERCRED): another process cannot answer in its
// name.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/diagnostics.h"

namespace heapsight::analyzer {
namespace {

// Exit status of attach/detach when the process is there but cannot do
// what was asked (docs/cli.md's table): not paused-mode, already
// recording, nothing to detach.
constexpr int kExitRefused = 1;

absl::StatusOr<pid_t> ParsePid(const std::string& text) {
  int64_t pid = 0;
  if (!absl::SimpleAtoi(text, &pid) || pid <= 0 || pid > (int64_t{1} << 31)) {
    return WithExitStatus(absl::InvalidArgumentError(absl::StrCat("not a process id: ", text)),
                          kExitUsage);
  }
  return static_cast<pid_t>(pid);
}

// The process runs libheapsight.so (mapped, i.e. loaded by LD_PRELOAD).
absl::Status CheckPreloaded(pid_t pid) {
  std::string maps_path = absl::StrCat("/proc/", pid, "/maps");
  std::ifstream maps(maps_path);
  if (!maps) {
    if (access(absl::StrCat("/proc/", pid).c_str(), F_OK) != 0) {
      return absl::NotFoundError(absl::StrCat("no process ", pid));
    }
    return absl::PermissionDeniedError(
        absl::StrCat("cannot read ", maps_path, ": ", std::strerror(errno),
                     " (attach works for processes of your own user)"));
  }
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find("/libheapsight.so") != std::string::npos) return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "process ", pid, " does not run heapsight's preload (libheapsight.so is not in ", maps_path,
      "); start it with `heapsight record --paused -- PROG` or with "
      "LD_PRELOAD=/path/to/libheapsight.so HEAPSIGHT_START=paused"));
}

// Sends `request` to the process's control socket; returns the answer line.
absl::StatusOr<std::string> Ask(pid_t pid, const std::string& request) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string name = absl::StrCat("heapsight.", pid);
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    int err = errno;
    close(fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "process ", pid, " runs heapsight's preload but does not listen for attach (@", name,
        ": ", std::strerror(err),
        "); only a process started with HEAPSIGHT_START=paused (`heapsight record --paused`) "
        "can be attached"));
  }
  ucred cred{};
  socklen_t cred_len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) != 0 || cred.pid != pid) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "the socket @", name, " belongs to process ", cred.pid, ", not ", pid, "; refusing"));
  }
  timeval timeout{30, 0};  // a start reads /proc and the module map: well under this
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string line = request + "\n";
  if (send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
    int err = errno;
    close(fd);
    return absl::UnavailableError(absl::StrCat("cannot talk to process ", pid, ": ",
                                               std::strerror(err)));
  }
  std::string answer;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
    if (answer.find('\n') != std::string::npos) break;
  }
  close(fd);
  if (size_t nl = answer.find('\n'); nl != std::string::npos) answer.resize(nl);
  if (answer.empty()) {
    return absl::UnavailableError(absl::StrCat("process ", pid, " did not answer"));
  }
  return answer;
}

// attach/detach/status: the checks, the request, the answer printed.
int Run(const std::string& pid_text, const std::string& request) {
  absl::StatusOr<pid_t> pid = ParsePid(pid_text);
  if (!pid.ok()) return Fail(pid.status());
  if (absl::Status st = CheckPreloaded(*pid); !st.ok()) {
    return Fail(WithExitStatus(st, kExitRefused));
  }
  absl::StatusOr<std::string> answer = Ask(*pid, request);
  if (!answer.ok()) return Fail(WithExitStatus(answer.status(), kExitRefused));
  if (answer->rfind("ok ", 0) != 0) {
    std::string message = answer->rfind("error ", 0) == 0 ? answer->substr(6) : *answer;
    PrintError(absl::StrCat("process ", *pid, ": ", message));
    return kExitRefused;
  }
  std::string rest = answer->substr(3);
  if (request == "attach") {
    std::printf("heapsight: recording process %d into %s\n", static_cast<int>(*pid), rest.c_str());
    std::printf("heapsight: blocks allocated before now are not seen; end with `heapsight detach %d`\n",
                static_cast<int>(*pid));
  } else if (request == "detach") {
    std::printf("heapsight: detached from process %d; trace %s is complete\n",
                static_cast<int>(*pid), rest.c_str());
  } else {
    std::printf("process %d: %s\n", static_cast<int>(*pid), rest.c_str());
  }
  return 0;
}

}  // namespace

void RegisterAttachCommands(CLI::App& app, int* exit_code) {
  auto pid = std::make_shared<std::string>();
  auto status = std::make_shared<bool>(false);
  CLI::App* attach = app.add_subcommand(
      "attach", "Start recording a process that runs heapsight paused (HEAPSIGHT_START=paused)");
  attach->footer(
      "The process must run heapsight's preload with HEAPSIGHT_START=paused (`heapsight record "
      "--paused -- PROG`, or LD_PRELOAD=.../libheapsight.so HEAPSIGHT_START=paused PROG). A new "
      "trace starts now and its path is printed; blocks allocated before the attach are not "
      "seen, and reports say so. `heapsight detach PID` ends it; attach again for a new trace.");
  attach->add_option("PID", *pid, "Process id")->required();
  attach->add_flag("--status", *status, "Only print whether the process is paused or recording");
  attach->callback([pid, status, exit_code] { *exit_code = Run(*pid, *status ? "status" : "attach"); });

  auto detach_pid = std::make_shared<std::string>();
  CLI::App* detach =
      app.add_subcommand("detach", "Stop recording a process attached with `heapsight attach`");
  detach->footer(
      "Every thread's buffered events are written, the trace ends (kEnd \"detach\") and is "
      "closed; the process runs on paused, and can be attached again (a new trace).");
  detach->add_option("PID", *detach_pid, "Process id")->required();
  detach->callback([detach_pid, exit_code] { *exit_code = Run(*detach_pid, "detach"); });
}

}  // namespace heapsight::analyzer
