// cli/top_command.cc: `heapsight top`, a live terminal view of a program's
// heap: the call sites holding the most live bytes, their growth per
// second, and the totals, refreshed every second.
//
//   heapsight top ADDR          attaches to a running `record --serve ADDR`
//   heapsight top -- PROG ARGS  runs `heapsight record --serve` on a private
//                               unix socket (--no-trace) and shows PROG
//
// The data comes from the server's /debug/heapsight/sites (JSON, computed
// by the live analysis in the record process: cli/record/live_endpoints.h);
// growth per second is the change of a site's live bytes between two
// refreshes. Keys: l / g / a sort by live bytes, growth, allocated bytes
// (s cycles), p pauses (the view stays, the data is not fetched), q (or
// Ctrl-C) quits. With `-- PROG`, quitting stops PROG (SIGTERM through the
// record process) and top exits with its status.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <netdb.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "cli/diagnostics.h"
#include "cli/monotonic_clock.h"
#include "cli/record/http_server.h"
#include "nlohmann/json.hpp"

extern char** environ;

namespace heapsight::analyzer {
namespace {

struct TopRequest {
  std::string address;               // ADDR, or empty with a command
  std::vector<std::string> command;  // -- PROG ARGS
  int rows = 0;                      // --rows N (0: the terminal's height)
  bool once = false;                 // --once: print one view and exit
};

// GET `path` from a `record --serve` address (":PORT", "HOST:PORT",
// "http://HOST:PORT" or a unix socket path): the body of a 200 answer.
absl::StatusOr<std::string> HttpGet(const std::string& address, const std::string& path) {
  std::string addr = address;
  if (addr.rfind("http://", 0) == 0) addr = addr.substr(7);
  if (size_t slash = addr.find('/'); slash != std::string::npos && slash != 0 &&
                                     addr.rfind("unix:", 0) != 0) {
    addr = addr.substr(0, slash);  // http://host:port/debug/pprof/ -> host:port
  }
  absl::StatusOr<record::ListenAddress> a = record::ParseListenAddress(addr);
  if (!a.ok()) return a.status();
  int fd = -1;
  if (a->unix_socket) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa = {};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, a->path.data(), a->path.size());
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      int err = errno;
      if (fd >= 0) close(fd);
      return absl::UnavailableError(absl::StrCat(a->path, ": ", std::strerror(err)));
    }
  } else {
    addrinfo hints = {};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    if (int gai = getaddrinfo(a->host.c_str(), a->port.c_str(), &hints, &list); gai != 0) {
      return absl::UnavailableError(absl::StrCat(addr, ": ", gai_strerror(gai)));
    }
    int err = ECONNREFUSED;
    for (addrinfo* ai = list; ai != nullptr && fd < 0; ai = ai->ai_next) {
      fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        err = errno;
        close(fd);
        fd = -1;
      }
    }
    freeaddrinfo(list);
    if (fd < 0) return absl::UnavailableError(absl::StrCat(addr, ": ", std::strerror(err)));
  }
  timeval tv = {30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string request = absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: heapsight\r\n",
                                     "Connection: close\r\n\r\n");
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::UnavailableError(absl::StrCat(addr, ": cannot send the request"));
  }
  std::string reply;
  char buf[65536];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) reply.append(buf, static_cast<size_t>(n));
  close(fd);
  size_t head_end = reply.find("\r\n\r\n");
  if (reply.rfind("HTTP/1.1 ", 0) != 0 || head_end == std::string::npos) {
    return absl::UnavailableError(absl::StrCat(addr, ": not a heapsight record --serve answer"));
  }
  if (reply.compare(9, 3, "200") != 0) {
    return absl::UnavailableError(absl::StrCat(addr, ": ", path, ": ",
                                               reply.substr(9, reply.find("\r\n") - 9)));
  }
  return reply.substr(head_end + 4);
}

std::string Bytes(double v) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double a = v < 0 ? -v : v;
  int u = 0;
  while (a >= 1024 && u < 4) {
    a /= 1024;
    v /= 1024;
    ++u;
  }
  return u == 0 ? absl::StrFormat("%.0f %s", v, units[u]) : absl::StrFormat("%.1f %s", v, units[u]);
}

enum class SortBy { kLive, kGrowth, kAllocated };
const char* SortName(SortBy s) {
  switch (s) {
    case SortBy::kLive: return "live bytes";
    case SortBy::kGrowth: return "growth/s";
    case SortBy::kAllocated: return "allocated bytes";
  }
  return "";
}

struct SiteRow {
  std::string key;
  uint64_t pid = 0;
  std::string function;
  std::string location;
  std::string api;
  double live = 0;
  double allocated = 0;
  double growth = 0;  // bytes per second since the previous refresh
};

// The terminal in raw mode (keys without Enter, no echo) while it lives.
class RawTerminal {
 public:
  RawTerminal() {
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    active_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    std::fputs("\x1b[?1049h\x1b[?25l", stdout);  // alternate screen, hide the cursor
  }
  ~RawTerminal() {
    if (!active_) return;
    std::fputs("\x1b[?25h\x1b[?1049l", stdout);
    std::fflush(stdout);
    tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  bool active() const { return active_; }

 private:
  termios saved_{};
  bool active_ = false;
};

volatile sig_atomic_t g_interrupted = 0;
void OnInterrupt(int) { g_interrupted = 1; }

class TopView {
 public:
  TopView(std::string address, int rows) : address_(std::move(address)), rows_(rows) {}

  // Fetches the sites; false (with the error in *error) when the server
  // cannot be reached.
  bool Refresh(std::string* error) {
    absl::StatusOr<std::string> body = HttpGet(address_, "/debug/heapsight/sites?n=500");
    if (!body.ok()) {
      *error = std::string(body.status().message());
      return false;
    }
    nlohmann::json j = nlohmann::json::parse(*body, nullptr, false);
    if (j.is_discarded() || !j.contains("sites") || !j.contains("processes")) {
      *error = address_ + ": the sites answer is not the expected JSON";
      return false;
    }
    int64_t now = MonotonicMs();
    double dt = last_ms_ == 0 ? 0 : static_cast<double>(now - last_ms_) / 1000.0;
    std::map<std::string, double> before = std::move(previous_);
    previous_.clear();
    rows_data_.clear();
    for (const auto& s : j["sites"]) {
      SiteRow r;
      r.pid = s.value("pid", uint64_t{0});
      r.function = s.value("function", std::string("?"));
      r.location = s.value("location", std::string());
      r.api = s.value("api", std::string());
      r.live = s.value("live_bytes", 0.0);
      r.allocated = s.value("allocated_bytes", 0.0);
      r.key = absl::StrCat(r.pid, "|", r.function, "|", r.location, "|", r.api);
      // The same function, file and line can be two sites (different
      // callers): their rows are summed.
      auto it = std::find_if(rows_data_.begin(), rows_data_.end(),
                             [&](const SiteRow& o) { return o.key == r.key; });
      if (it != rows_data_.end()) {
        it->live += r.live;
        it->allocated += r.allocated;
      } else {
        rows_data_.push_back(r);
      }
    }
    for (SiteRow& r : rows_data_) {
      auto it = before.find(r.key);
      r.growth = dt > 0 ? (r.live - (it == before.end() ? 0 : it->second)) / dt : 0;
      previous_[r.key] = r.live;
    }
    live_ = allocated_ = rss_ = 0;
    blocks_ = 0;
    processes_ = 0;
    running_ = 0;
    for (const auto& p : j["processes"]) {
      ++processes_;
      if (p.value("running", false)) ++running_;
      live_ += p.value("live_bytes", 0.0);
      blocks_ += p.value("live_blocks", 0.0);
      allocated_ += p.value("allocated_bytes", 0.0);
      rss_ += p.value("rss_bytes", 0.0);
    }
    double live_growth = dt > 0 && last_ms_ != 0 ? (live_ - last_live_) / dt : 0;
    live_growth_ = live_growth;
    last_live_ = live_;
    last_ms_ = now;
    return true;
  }

  std::string Render(bool paused, const std::string& status) const {
    int height = rows_;
    int width = 120;
    winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
      if (height <= 0) height = ws.ws_row;
      width = ws.ws_col;
    }
    if (height <= 0) height = 24;
    std::vector<SiteRow> sorted = rows_data_;
    std::stable_sort(sorted.begin(), sorted.end(), [this](const SiteRow& a, const SiteRow& b) {
      switch (sort_) {
        case SortBy::kGrowth: return a.growth > b.growth;
        case SortBy::kAllocated: return a.allocated > b.allocated;
        default: return a.live > b.live;
      }
    });
    std::string out;
    auto line = [&](std::string text) {
      if (static_cast<int>(text.size()) > width) text.resize(static_cast<size_t>(width));
      absl::StrAppend(&out, text, "\x1b[K\n");
    };
    line(absl::StrCat("heapsight top  ", address_, "  ", processes_, " process",
                      processes_ == 1 ? "" : "es", " (", running_, " running)",
                      paused ? "  [paused]" : "", status.empty() ? "" : "  ", status));
    line(absl::StrCat("live ", Bytes(live_), " in ", static_cast<uint64_t>(blocks_),
                      " blocks  growth ", Bytes(live_growth_), "/s  allocated ",
                      Bytes(allocated_), "  rss ", Bytes(rss_)));
    line(absl::StrCat("sort: ", SortName(sort_),
                      "   keys: l live  g growth  a allocated  s next  p pause  q quit"));
    line("");
    line(absl::StrFormat("%12s %12s %14s %8s  %s", "LIVE", "GROWTH/s", "ALLOCATED", "PID",
                         "FUNCTION (API) LOCATION"));
    int room = std::max(1, height - 6);
    for (int i = 0; i < room && i < static_cast<int>(sorted.size()); ++i) {
      const SiteRow& r = sorted[static_cast<size_t>(i)];
      line(absl::StrFormat("%12s %12s %14s %8d  %s (%s) %s", Bytes(r.live), Bytes(r.growth),
                           Bytes(r.allocated), r.pid, r.function, r.api, r.location));
    }
    return out;
  }

  void set_sort(SortBy s) { sort_ = s; }
  SortBy sort() const { return sort_; }

 private:
  std::string address_;
  int rows_;
  SortBy sort_ = SortBy::kLive;
  std::vector<SiteRow> rows_data_;
  std::map<std::string, double> previous_;
  int64_t last_ms_ = 0;
  double live_ = 0, blocks_ = 0, allocated_ = 0, rss_ = 0, last_live_ = 0, live_growth_ = 0;
  int processes_ = 0, running_ = 0;
};

// Starts `heapsight record --serve SOCKET --no-trace -q -- PROG...` with
// its output discarded (the view owns the terminal). Returns its pid.
absl::StatusOr<pid_t> StartRecord(const std::string& socket_path,
                                  const std::vector<std::string>& command) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return absl::InternalError("cannot find the heapsight binary");
  self[n] = '\0';
  std::vector<std::string> args = {self, "record", "-q", "--no-trace", "--serve", socket_path,
                                   "--"};
  args.insert(args.end(), command.begin(), command.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  // Its own process group: the terminal's Ctrl-C is top's to handle.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, self, &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return absl::InternalError(absl::StrCat("cannot run heapsight record: ",
                                                       std::strerror(rc)));
  return pid;
}

// Whether the single argument of `top` is a server address rather than a
// program: http://..., unix:..., an existing unix socket, or HOST:PORT /
// :PORT (a program path with a ':' but no '/' would have to be run as
// ./NAME, as in a shell).
bool IsAddress(const std::string& arg) {
  if (arg.rfind("http://", 0) == 0 || arg.rfind("unix:", 0) == 0) return true;
  struct stat st;
  if (stat(arg.c_str(), &st) == 0) return S_ISSOCK(st.st_mode);
  return arg.find(':') != std::string::npos && arg.find('/') == std::string::npos;
}

int ExitStatus(int wstatus) {
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 1;
}

int RunTop(const TopRequest& request) {
  if (request.address.empty() == request.command.empty()) {
    PrintError("top: give either ADDR (of a running `heapsight record --serve`) or -- PROGRAM");
    return kExitUsage;
  }
  std::string address = request.address;
  std::string private_dir;
  pid_t record_pid = -1;
  if (!request.command.empty()) {
    const char* tmp = getenv("TMPDIR");
    std::string templ = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp",
                                     "/heapsight-top.XXXXXX");
    if (mkdtemp(templ.data()) == nullptr) {
      PrintError(absl::StrCat("top: cannot create a directory in ", templ, ": ",
                              std::strerror(errno)));
      return 125;
    }
    private_dir = templ;
    address = private_dir + "/serve.sock";
    absl::StatusOr<pid_t> pid = StartRecord(address, request.command);
    if (!pid.ok()) {
      rmdir(private_dir.c_str());
      PrintError(std::string(pid.status().message()));
      return 125;
    }
    record_pid = *pid;
  }

  struct sigaction sa = {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  TopView view(address, request.rows);
  std::string error;
  int exit_code = 0;
  bool user_quit = false;  // q or Ctrl-C: PROGRAM was stopped on request
  // The first answer: a program just started needs a moment to listen.
  int64_t give_up = MonotonicMs() + (record_pid > 0 ? 20000 : 0);
  bool ok = false;
  while (!(ok = view.Refresh(&error)) && MonotonicMs() < give_up && !g_interrupted) {
    if (record_pid > 0 && waitpid(record_pid, nullptr, WNOHANG) == record_pid) {
      record_pid = -1;
      break;
    }
    usleep(50000);
  }
  if (!ok) {
    PrintError(absl::StrCat("top: ", error));
    exit_code = 1;
  } else if (request.once) {
    std::fputs(view.Render(false, "").c_str(), stdout);
  } else {
    RawTerminal terminal;
    bool paused = false;
    std::string status;
    int64_t next = MonotonicMs() + 1000;
    for (bool quit = false; !quit && !g_interrupted;) {
      std::fputs("\x1b[H", stdout);
      std::fputs(view.Render(paused, status).c_str(), stdout);
      std::fputs("\x1b[J", stdout);
      std::fflush(stdout);
      pollfd in = {STDIN_FILENO, POLLIN, 0};
      int wait = static_cast<int>(std::max<int64_t>(0, next - MonotonicMs()));
      if (poll(&in, 1, wait) > 0 && (in.revents & POLLIN)) {
        char keys[16];
        ssize_t n = read(STDIN_FILENO, keys, sizeof keys);
        if (n <= 0 && !terminal.active()) in.fd = -1;
        for (ssize_t i = 0; i < n; ++i) {
          switch (keys[i]) {
            case 'q': case 'Q': quit = user_quit = true; break;
            case 'p': case 'P': case ' ': paused = !paused; break;
            case 'l': view.set_sort(SortBy::kLive); break;
            case 'g': view.set_sort(SortBy::kGrowth); break;
            case 'a': view.set_sort(SortBy::kAllocated); break;
            case 's':
              view.set_sort(view.sort() == SortBy::kLive     ? SortBy::kGrowth
                            : view.sort() == SortBy::kGrowth ? SortBy::kAllocated
                                                             : SortBy::kLive);
              break;
            default: break;
          }
        }
        continue;  // redraw at once
      }
      if (MonotonicMs() < next) continue;
      next = MonotonicMs() + 1000;
      if (paused) continue;
      if (!view.Refresh(&error)) {
        // With -- PROG: the program ended and took its server along.
        if (record_pid > 0 && waitpid(record_pid, nullptr, WNOHANG) == 0) {
          status = "(no answer: " + error + ")";
          continue;
        }
        status = "(ended)";
        quit = true;
      } else {
        status.clear();
      }
    }
  }

  if (record_pid > 0) {
    int wstatus = 0;
    if (waitpid(record_pid, &wstatus, WNOHANG) == 0) {
      kill(record_pid, SIGTERM);  // forwarded to PROG by record
      while (waitpid(record_pid, &wstatus, 0) < 0 && errno == EINTR) {
      }
    }
    if (exit_code == 0 && !user_quit && !g_interrupted) exit_code = ExitStatus(wstatus);
    rmdir(private_dir.c_str());
  }
  return exit_code;
}

}  // namespace

void RegisterTopCommand(CLI::App& app, int* exit_code) {
  auto request = std::make_shared<TopRequest>();
  CLI::App* top = app.add_subcommand(
      "top",
      "Live terminal view of a program's heap: top call sites by live bytes, growth per "
      "second, totals: top ADDR | top [OPTIONS] -- PROGRAM ...");
  top->add_option("--rows", request->rows, "Lines to use (default: the terminal's height)")
      ->type_name("N")
      ->check(CLI::Range(6, 10000));
  top->add_flag("--once", request->once, "Print one view and exit (no keys, no refresh)");
  top->add_option("ADDR_OR_PROGRAM", request->command,
                  "ADDR of a running `heapsight record --serve` (:PORT, HOST:PORT, "
                  "http://HOST:PORT or a unix socket path), or -- PROGRAM and its arguments "
                  "to run under `heapsight record --serve` on a private socket")
      ->type_name("[ARGS...]");
  top->positionals_at_end();
  top->footer(
      "Keys: l / g / a sort by live bytes, growth per second, allocated bytes (s cycles);\n"
      "p pauses; q or Ctrl-C quits (stopping PROGRAM when top started it).\n"
      "Exit status: 0 after q or Ctrl-C; PROGRAM's when top started it and it ended on its\n"
      "own; 1 when ADDR cannot be reached; 2 usage error.");
  top->callback([request, exit_code] {
    // One word that is an address is ADDR; anything else is PROGRAM.
    TopRequest r = *request;
    if (r.command.size() == 1 && IsAddress(r.command[0])) {
      r.address = r.command[0];
      r.command.clear();
    }
    *exit_code = RunTop(r);
  });
}

}  // namespace heapsight::analyzer
