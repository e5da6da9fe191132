// cli/record/http_server.cc: see http_server.h.
#include "cli/record/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "cli/monotonic_clock.h"

namespace heapsight::record {
namespace {

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `text` ('+' is a space in a query); false if malformed.
bool Decode(absl::string_view text, bool query, std::string* out) {
  out->clear();
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return false;
      int hi = HexValue(text[i + 1]);
      int lo = HexValue(text[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && query) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

void SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

}  // namespace

HttpResponse TextResponse(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& text) {
  ListenAddress a;
  if (text.rfind("unix:", 0) == 0 || text.find('/') != std::string::npos) {
    a.unix_socket = true;
    a.path = text.rfind("unix:", 0) == 0 ? text.substr(5) : text;
    if (a.path.empty() || a.path.size() >= sizeof(sockaddr_un::sun_path)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--serve ", text, ": a unix socket path of 1 to ",
                       sizeof(sockaddr_un::sun_path) - 1, " bytes is expected"));
    }
    return a;
  }
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--serve ", text, ": expected HOST:PORT, :PORT (loopback) or a unix socket path"));
  }
  a.host = text.substr(0, colon);
  a.port = text.substr(colon + 1);
  if (a.host.size() >= 2 && a.host.front() == '[' && a.host.back() == ']') {
    a.host = a.host.substr(1, a.host.size() - 2);
  }
  // Loopback unless another host is spelled out.
  if (a.host.empty()) a.host = "127.0.0.1";
  uint32_t port = 0;
  if (!absl::SimpleAtoi(a.port, &port) || port > 65535 ||
      a.port.find_first_not_of("0123456789") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--serve ", text, ": the port must be a number from 0 to 65535"));
  }
  return a;
}

ParsedRequest ParseRequestHead(const std::string& head) {
  ParsedRequest out;
  size_t eol = head.find("\r\n");
  absl::string_view line(head.data(), eol == std::string::npos ? head.size() : eol);
  std::vector<absl::string_view> parts = absl::StrSplit(line, absl::ByChar(' '));
  if (parts.size() != 3 || parts[1].empty() || parts[1][0] != '/') {
    out.error = 400;
    return out;
  }
  if (parts[2] != "HTTP/1.1" && parts[2] != "HTTP/1.0") {
    out.error = parts[2].rfind("HTTP/", 0) == 0 ? 505 : 400;
    return out;
  }
  for (char c : line) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out.error = 400;
      return out;
    }
  }
  if (parts[0] != "GET" && parts[0] != "HEAD") {
    out.error = 405;
    return out;
  }
  out.request.method = std::string(parts[0]);
  absl::string_view target = parts[1];
  size_t q = target.find('?');
  if (!Decode(target.substr(0, q), false, &out.request.path)) {
    out.error = 400;
    return out;
  }
  if (q != absl::string_view::npos) {
    for (absl::string_view pair : absl::StrSplit(target.substr(q + 1), absl::ByChar('&'), absl::SkipEmpty())) {
      size_t eq = pair.find('=');
      std::string name, value;
      if (!Decode(pair.substr(0, eq), true, &name) ||
          (eq != absl::string_view::npos && !Decode(pair.substr(eq + 1), true, &value))) {
        out.error = 400;
        return out;
      }
      out.request.query[name] = value;
    }
  }
  return out;
}

std::string SerializeResponse(const HttpResponse& r, bool head_only) {
  std::string out = absl::StrCat("HTTP/1.1 ", r.status, " ", ReasonPhrase(r.status), "\r\n",
                                 "Content-Type: ", r.content_type, "\r\n",
                                 "Content-Length: ", r.body.size(), "\r\n",
                                 "Connection: close\r\n", "Cache-Control: no-store\r\n",
                                 "X-Content-Type-Options: nosniff\r\n");
  for (const auto& [name, value] : r.headers) absl::StrAppend(&out, name, ": ", value, "\r\n");
  out += "\r\n";
  if (!head_only) out += r.body;
  return out;
}

struct HttpServer::Client {
  int fd = -1;
  std::string in;
  std::string out;
  size_t sent = 0;
  bool responding = false;  // a response is queued or deferred
  bool head_only = false;
  bool eof = false;  // the client shut down its side
  Deferred later;
  int64_t last_progress_ms = 0;
};

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Listen(const ListenAddress& a) {
  if (a.unix_socket) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
    sockaddr_un sa = {};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, a.path.data(), a.path.size());
    // Only its owner may connect: the profiles show the program's memory.
    mode_t old = umask(077);
    int rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    int err = errno;
    umask(old);
    if (rc != 0 || listen(fd, 64) != 0) {
      if (rc == 0) err = errno;
      close(fd);
      return absl::FailedPreconditionError(
          absl::StrCat("--serve ", a.path, ": cannot listen: ", std::strerror(err)));
    }
    SetNonBlocking(fd);
    return std::unique_ptr<HttpServer>(new HttpServer(fd, a.path, true, a.path));
  }
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* list = nullptr;
  int gai = getaddrinfo(a.host.c_str(), a.port.c_str(), &hints, &list);
  if (gai != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--serve ", a.host, ":", a.port, ": ", gai_strerror(gai)));
  }
  std::string error = "no address";
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
      error = std::strerror(errno);
      close(fd);
      continue;
    }
    freeaddrinfo(list);
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    std::string bound;
    if (ss.ss_family == AF_INET6) {
      auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
      inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
      port = ntohs(s6->sin6_port);
      bound = absl::StrCat("[", host, "]:", port);
    } else {
      auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
      inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
      port = ntohs(s4->sin_port);
      bound = absl::StrCat(host, ":", port);
    }
    SetNonBlocking(fd);
    return std::unique_ptr<HttpServer>(new HttpServer(fd, bound, false, ""));
  }
  freeaddrinfo(list);
  return absl::FailedPreconditionError(
      absl::StrCat("--serve ", a.host, ":", a.port, ": cannot listen: ", error));
}

HttpServer::HttpServer(int fd, std::string bound, bool unix_socket, std::string unix_path)
    : fd_(fd), bound_(std::move(bound)), unix_(unix_socket), unix_path_(std::move(unix_path)) {}

HttpServer::~HttpServer() {
  for (auto& c : clients_) close(c->fd);
  close(fd_);
  if (unix_) unlink(unix_path_.c_str());
}

void HttpServer::Accept() {
  for (;;) {
    int fd = accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a client that left already
    if (clients_.size() >= kMaxClients) {
      std::string busy = SerializeResponse(TextResponse(503, "too many connections\n"), false);
      ssize_t ignored = send(fd, busy.data(), busy.size(), MSG_NOSIGNAL);
      (void)ignored;
      close(fd);
      continue;
    }
    auto c = std::make_unique<Client>();
    c->fd = fd;
    c->last_progress_ms = MonotonicMs();
    clients_.push_back(std::move(c));
  }
}

void HttpServer::Respond(Client& c, const HttpResponse& r) {
  c.out = SerializeResponse(r, c.head_only);
  c.sent = 0;
  c.later = nullptr;
}

bool HttpServer::ReadFrom(Client& c, const Handler& handler) {
  char buf[4096];
  for (;;) {
    ssize_t n = recv(c.fd, buf, sizeof buf, 0);
    if (n == 0) {  // half-closed: still send the answer, stop reading
      c.eof = true;
      return c.responding;
    }
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c.last_progress_ms = MonotonicMs();
    if (c.responding) continue;  // one request per connection; the rest is ignored
    c.in.append(buf, static_cast<size_t>(n));
    size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (c.in.size() > kMaxRequestBytes) {
        c.responding = true;
        bool line_too_long = c.in.find("\r\n") == std::string::npos;
        Respond(c, TextResponse(line_too_long ? 414 : 431, "request too long\n"));
      }
      continue;
    }
    c.responding = true;
    ParsedRequest parsed = ParseRequestHead(c.in.substr(0, end + 2));
    c.in.clear();
    if (parsed.error != 0) {
      Respond(c, TextResponse(parsed.error, absl::StrCat(ReasonPhrase(parsed.error), "\n")));
      continue;
    }
    c.head_only = parsed.request.method == "HEAD";
    HandlerResult result = handler(parsed.request);
    if (result.response.has_value()) {
      Respond(c, *result.response);
    } else if (result.later) {
      c.later = std::move(result.later);
    } else {
      Respond(c, TextResponse(500, "no response\n"));
    }
  }
}

bool HttpServer::WriteTo(Client& c) {
  while (c.sent < c.out.size()) {
    ssize_t n = send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c.sent += static_cast<size_t>(n);
    c.last_progress_ms = MonotonicMs();
  }
  if (!c.out.empty()) {
    shutdown(c.fd, SHUT_WR);
    return false;  // done
  }
  return true;
}

void HttpServer::Poll(int timeout_ms, const Handler& handler) {
  std::vector<pollfd> fds;
  fds.push_back({fd_, POLLIN, 0});
  bool deferred = false;
  for (const auto& c : clients_) {
    short events = c->eof ? 0 : POLLIN;
    if (!c->out.empty()) events |= POLLOUT;
    if (c->later) deferred = true;
    fds.push_back({c->fd, events, 0});
  }
  // Deferred answers are looked at every 50 ms at least.
  int wait = deferred && timeout_ms > 50 ? 50 : timeout_ms;
  int n = poll(fds.data(), fds.size(), wait);
  if (n < 0 && errno != EINTR) return;
  int64_t now = MonotonicMs();
  std::vector<std::unique_ptr<Client>> keep;
  for (size_t i = 0; i < clients_.size(); ++i) {
    Client& c = *clients_[i];
    short rev = fds[i + 1].revents;
    bool alive = true;
    // Gone altogether (a hang-up after its end of file): nothing to answer.
    if ((rev & POLLERR) || ((rev & POLLHUP) && c.eof)) alive = false;
    if (alive && (rev & (POLLIN | POLLHUP))) alive = ReadFrom(c, handler);
    if (alive && c.later) {
      if (std::optional<HttpResponse> r = c.later(); r.has_value()) Respond(c, *r);
    }
    if (alive && !c.out.empty()) alive = WriteTo(c);
    if (alive && !c.later && now - c.last_progress_ms > kClientTimeoutMs) alive = false;
    if (alive) {
      keep.push_back(std::move(clients_[i]));
    } else {
      close(c.fd);
    }
  }
  clients_ = std::move(keep);
  if (fds[0].revents & POLLIN) Accept();
}

}  // namespace heapsight::record
