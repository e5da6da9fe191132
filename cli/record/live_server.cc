// cli/record/live_server.cc: see live_server.h.
#include "cli/record/live_server.h"

#include <unistd.h>

#include "cli/record/child_process.h"

namespace heapsight::record {

absl::StatusOr<std::unique_ptr<LiveServer>> LiveServer::Start(
    const std::optional<ListenAddress>& address, LiveServerOptions options) {
  std::unique_ptr<HttpServer> server;
  if (address.has_value()) {
    absl::StatusOr<std::unique_ptr<HttpServer>> listening = HttpServer::Listen(*address);
    if (!listening.ok()) return listening.status();
    server = std::move(*listening);
  }
  std::unique_ptr<LiveServer> live(new LiveServer(std::move(server), std::move(options)));
  live->thread_ = StartThreadWithoutForwardedSignals([p = live.get()] { p->Run(); });
  return live;
}

LiveServer::LiveServer(std::unique_ptr<HttpServer> server, LiveServerOptions options)
    : server_(std::move(server)),
      address_(server_ != nullptr ? server_->address() : ""),
      family_(std::move(options.list_traces), options.release_consumed),
      endpoints_(family_, LiveEndpointsOptions{options.leak_signal}) {
  family_.set_merge_window_us(options.merge_window_us);
  if (!options.rotate_dir.empty()) family_.RotateInto(options.rotate_dir, options.rotate);
}

std::vector<std::string> LiveServer::errors() const {
  std::vector<std::string> out;
  for (const auto& m : family_.members()) {
    if (!m->error.empty()) out.push_back(m->error);
  }
  return out;
}

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
    if (server_ != nullptr) {
      server_->Poll(applied != 0 ? 0 : 100, handler);
    } else if (applied == 0) {
      usleep(100000);
    }
  }
  while (family_.Poll() != 0) {
  }
  // Nothing more comes: the time merges' last events are applied.
  family_.Finish();
  if (server_ != nullptr) server_->Poll(0, handler);
}

}  // namespace heapsight::record
