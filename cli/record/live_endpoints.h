// cli/record/live_endpoints.h: what `heapsight record --serve` answers,
// from the live analysis of the family it records (live_family.h):
//
//   /debug/pprof/             index page: the endpoints and the processes
//   /debug/pprof/heap         Go's heap profile (gzipped profile.proto, four
//                             sample types, default inuse_space), inuse = now
//   /debug/pprof/allocs       the same, default sample type alloc_space
//     both: ?pid=N one process (default: every process, a `pid` label per
//           sample); ?seconds=N the difference over the next N seconds
//           (1..3600), as Go's handlers compute it (every value subtracted)
//   /metrics                  Prometheus text format, per process (pid, exe)
//   /debug/heapsight/leaks    runs a leak scan in every running process now
//                             and answers `heapsight leaks --format=json`
//   /debug/heapsight/sites    JSON: the top call sites by live bytes, for
//                             `heapsight top` (?n=N, default 50)
//
// Unknown paths get 404, bad parameters 400 (with the reason in the body).
#ifndef HEAPSIGHT_CLI_RECORD_LIVE_ENDPOINTS_H_
#define HEAPSIGHT_CLI_RECORD_LIVE_ENDPOINTS_H_

#include <cstdint>
#include <map>
#include <string>

#include "cli/record/http_server.h"
#include "cli/record/live_family.h"

namespace heapsight::record {

struct LiveEndpointsOptions {
  int leak_signal = 0;          // sent for /debug/heapsight/leaks; 0: no scans on demand
  int leak_timeout_ms = 15000;  // how long /debug/heapsight/leaks waits for the scans
};

class LiveEndpoints {
 public:
  LiveEndpoints(LiveFamily& family, LiveEndpointsOptions options)
      : family_(family), options_(options) {}

  HandlerResult Handle(const HttpRequest& request);

  // The Prometheus text (exposed for tests).
  std::string MetricsText();

 private:
  HandlerResult Profile(const HttpRequest& request, bool allocs);
  HandlerResult Leaks(const HttpRequest& request);
  HttpResponse Index(const HttpRequest& request);
  HttpResponse Sites(const HttpRequest& request);

  LiveFamily& family_;
  LiveEndpointsOptions options_;
};

// The signal number of a name such as "RTMIN+4", "USR2" or "12"; -1 if bad.
int SignalNumber(const std::string& name);

}  // namespace heapsight::record

#endif  // HEAPSIGHT_CLI_RECORD_LIVE_ENDPOINTS_H_
