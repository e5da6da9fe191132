// cli/record/live_server.cc: see live_server.h.
#include "cli/record/live_server.h"

#include <signal.h>

namespace heapsight::record {

absl::StatusOr<std::unique_ptr<LiveServer>> LiveServer::Start(const ListenAddress& address,
                                                              LiveServerOptions options) {
  absl::StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::Listen(address);
  if (!server.ok()) return server.status();
  std::unique_ptr<LiveServer> live(new LiveServer(std::move(*server), std::move(options)));
  // The forwarded signals (child_process.h) are for the main thread's
  // handler; this thread never takes them.
  sigset_t block, old;
  sigemptyset(&block);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) sigaddset(&block, sig);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  live->thread_ = std::thread([p = live.get()] { p->Run(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return live;
}

LiveServer::LiveServer(std::unique_ptr<HttpServer> server, LiveServerOptions options)
    : server_(std::move(server)),
      address_(server_->address()),
      family_(std::move(options.list_traces), options.release_consumed),
      endpoints_(family_, LiveEndpointsOptions{options.leak_signal}) {}

LiveServer::~LiveServer() { Stop(); }

void LiveServer::Stop() {
  if (!thread_.joinable()) return;
  stop_.store(true, std::memory_order_release);
  thread_.join();
  server_.reset();
}

void LiveServer::Run() {
  Handler handler = [this](const HttpRequest& r) { return endpoints_.Handle(r); };
  while (!stop_.load(std::memory_order_acquire)) {
    // A backlog (the program wrote faster than we read) is read before the
    // server sleeps again; a quiet trace lets poll() wait its 100 ms.
    size_t applied = family_.Poll();
    server_->Poll(applied != 0 ? 0 : 100, handler);
  }
  while (family_.Poll() != 0) {
  }
  server_->Poll(0, handler);
}

}  // namespace heapsight::record
