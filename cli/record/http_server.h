// cli/record/http_server.h: the small HTTP/1.1 server of `heapsight record
// --serve`: one listening socket (TCP or a unix socket), non-blocking
// connections multiplexed with poll(2) on the caller's thread.
//
// Deliberately small: GET and HEAD only, one request per connection
// (responses say "Connection: close"), request heads up to kMaxRequestBytes,
// no request bodies. A request that is malformed, too long or uses another
// method gets 400/405/414/431 and the connection is closed; nothing a client
// sends can make the server fail. Every socket is non-blocking: a client
// that reads slowly only keeps its own response pending (at most
// kMaxClients connections, each dropped after kClientTimeoutMs without
// progress), so the caller's other work (the live analysis) never waits
// for a client.
//
// A handler may answer later (a profile over the next N seconds): it
// returns a Deferred, which Poll() calls on every round until it gives the
// response.
#ifndef HEAPSIGHT_CLI_RECORD_HTTP_SERVER_H_
#define HEAPSIGHT_CLI_RECORD_HTTP_SERVER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace heapsight::record {

struct HttpRequest {
  std::string method;  // "GET" or "HEAD"
  std::string path;    // percent-decoded, without the query
  std::map<std::string, std::string> query;  // decoded; the last of repeated names
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// A text response with `status` and `body`.
HttpResponse TextResponse(int status, std::string body);

// Called on every poll round until it returns the response.
using Deferred = std::function<std::optional<HttpResponse>()>;

struct HandlerResult {
  std::optional<HttpResponse> response;  // answer now
  Deferred later;                        // or later (when response is empty)
};

using Handler = std::function<HandlerResult(const HttpRequest&)>;

// Where to listen, parsed from --serve's ADDR:
//   ":PORT"        127.0.0.1:PORT (loopback: the default)
//   "HOST:PORT"    that host (a name or address; "[::1]:PORT" for IPv6)
//   a path with a '/' (or "unix:PATH"): a unix socket only its owner may
//                  connect to (created under umask 077)
struct ListenAddress {
  bool unix_socket = false;
  std::string host;  // TCP
  std::string port;  // TCP, "0" = any free port
  std::string path;  // unix socket
};
absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& text);

// Parses a request head ("GET /path?q=1 HTTP/1.1\r\n...\r\n\r\n"): the
// status to answer with on failure (400 malformed, 405 method, 505 version).
struct ParsedRequest {
  int error = 0;  // 0: `request` is valid
  HttpRequest request;
};
ParsedRequest ParseRequestHead(const std::string& head);

// The bytes of a whole response (status line, headers, body; no body for
// HEAD).
std::string SerializeResponse(const HttpResponse& response, bool head_only);

class HttpServer {
 public:
  static constexpr size_t kMaxRequestBytes = 16 << 10;
  static constexpr size_t kMaxClients = 64;
  static constexpr int kClientTimeoutMs = 30000;

  // Binds and listens (close-on-exec). Errors say which address failed.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Listen(const ListenAddress& address);
  ~HttpServer();  // closes every socket; removes a unix socket it created
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The address as bound, for messages and URLs: "127.0.0.1:6060",
  // "[::1]:6060" or the unix socket's path.
  const std::string& address() const { return bound_; }
  bool unix_socket() const { return unix_; }

  // One round: waits up to `timeout_ms` for socket activity, accepts,
  // reads, calls `handler` for each complete request, writes what the
  // sockets take, and runs the pending Deferreds.
  void Poll(int timeout_ms, const Handler& handler);

  // Open connections (for tests).
  size_t clients() const { return clients_.size(); }

 private:
  struct Client;
  HttpServer(int fd, std::string bound, bool unix_socket, std::string unix_path);
  void Accept();
  // False when the client is done (closed or failed).
  bool ReadFrom(Client& c, const Handler& handler);
  bool WriteTo(Client& c);
  void Respond(Client& c, const HttpResponse& r);

  int fd_;
  std::string bound_;
  bool unix_;
  std::string unix_path_;
  std::vector<std::unique_ptr<Client>> clients_;
};

}  // namespace heapsight::record

#endif  // HEAPSIGHT_CLI_RECORD_HTTP_SERVER_H_
