// cli/record/live_server.h: the thread behind `heapsight record --serve`.
// It alternates between the live analysis (LiveFamily::Poll: the chunks the
// traces gained) and the HTTP server (HttpServer::Poll, at most 100 ms), so
// one thread owns every piece of live state and nothing is locked. The
// record process's main thread only runs and waits for the program.
#ifndef HEAPSIGHT_CLI_RECORD_LIVE_SERVER_H_
#define HEAPSIGHT_CLI_RECORD_LIVE_SERVER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/record/http_server.h"
#include "cli/record/live_endpoints.h"
#include "cli/record/live_family.h"

namespace heapsight::record {

struct LiveServerOptions {
  std::function<std::vector<std::string>()> list_traces;  // the manifest
  bool release_consumed = false;                          // --no-trace
  int leak_signal = 0;                                    // LiveEndpointsOptions
  std::string rotate_dir;  // --rotate-*: segments go here (LiveFamily::RotateInto)
  RotateLimits rotate;
  // The time merge's window for address-frees traces
  // (LiveFamily::set_merge_window_us).
  uint64_t merge_window_us = analyzer::ChunkTimeMerge::WindowForFlushMs(0);
};

class LiveServer {
 public:
  // Binds `address` (so a bad or busy address fails before the program
  // starts; none: no HTTP server, only the live reading, e.g. for
  // rotation) and starts the thread.
  static absl::StatusOr<std::unique_ptr<LiveServer>> Start(
      const std::optional<ListenAddress>& address, LiveServerOptions options);
  ~LiveServer();  // Stop()

  // Reads what the traces still hold (the program has exited), answers
  // the requests already received, then stops the thread and closes the
  // sockets. Idempotent.
  void Stop();

  const std::string& address() const { return address_; }
  // The rotated segments written; valid after Stop().
  std::vector<std::string> segments() const { return family_.segments(); }
  // Traces whose reading stopped at a corrupt block or a write error, with
  // the reason ("PATH: what"); valid after Stop().
  std::vector<std::string> errors() const;

 private:
  LiveServer(std::unique_ptr<HttpServer> server, LiveServerOptions options);
  void Run();

  std::unique_ptr<HttpServer> server_;
  std::string address_;
  LiveFamily family_;
  LiveEndpoints endpoints_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace heapsight::record

#endif  // HEAPSIGHT_CLI_RECORD_LIVE_SERVER_H_
