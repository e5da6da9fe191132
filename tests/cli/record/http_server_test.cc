// tests/cli/record/http_server_test.cc: the `record --serve` HTTP server:
// address and request parsing, and a real server on a loopback port: a
// client that never reads its (large) response does not hold up another
// client, deferred answers, bad requests, too many bytes.
#include "cli/record/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace heapsight::record {
namespace {

TEST(HttpServerTest, ListenAddresses) {
  absl::StatusOr<ListenAddress> a = ParseListenAddress(":6060");
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->unix_socket);
  EXPECT_EQ(a->host, "127.0.0.1");  // loopback unless spelled out
  EXPECT_EQ(a->port, "6060");
  a = ParseListenAddress("0.0.0.0:80");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "0.0.0.0");
  a = ParseListenAddress("[::1]:7");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "::1");
  a = ParseListenAddress("/run/x/serve.sock");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->unix_socket);
  EXPECT_EQ(a->path, "/run/x/serve.sock");
  a = ParseListenAddress("unix:rel.sock");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->path, "rel.sock");
  for (const char* bad : {"6060", ":99999", ":abc", ":", "host:-1", "unix:"}) {
    EXPECT_FALSE(ParseListenAddress(bad).ok()) << bad;
  }
}

TEST(HttpServerTest, RequestHeads) {
  ParsedRequest p = ParseRequestHead("GET /debug/pprof/heap?seconds=5&pid=%34%32&x HTTP/1.1\r\nHost: a\r\n");
  ASSERT_EQ(p.error, 0);
  EXPECT_EQ(p.request.method, "GET");
  EXPECT_EQ(p.request.path, "/debug/pprof/heap");
  EXPECT_EQ(p.request.query.at("seconds"), "5");
  EXPECT_EQ(p.request.query.at("pid"), "42");
  EXPECT_EQ(p.request.query.at("x"), "");
  EXPECT_EQ(ParseRequestHead("HEAD / HTTP/1.0\r\n").error, 0);
  EXPECT_EQ(ParseRequestHead("POST / HTTP/1.1\r\n").error, 405);
  EXPECT_EQ(ParseRequestHead("GET / HTTP/2.0\r\n").error, 505);
  EXPECT_EQ(ParseRequestHead("GET / FTP/1.0\r\n").error, 400);
  EXPECT_EQ(ParseRequestHead("GET /%zz HTTP/1.1\r\n").error, 400);
  EXPECT_EQ(ParseRequestHead("GET /a%2 HTTP/1.1\r\n").error, 400);
  EXPECT_EQ(ParseRequestHead("GET nopath HTTP/1.1\r\n").error, 400);
  EXPECT_EQ(ParseRequestHead("GET\r\n").error, 400);
  EXPECT_EQ(ParseRequestHead("").error, 400);
  std::string r = SerializeResponse(TextResponse(404, "gone\n"), false);
  EXPECT_EQ(r.substr(0, 24), "HTTP/1.1 404 Not Found\r\n");
  EXPECT_NE(r.find("Content-Length: 5\r\n"), std::string::npos);
  EXPECT_EQ(r.substr(r.size() - 9), "\r\n\r\ngone\n");
  EXPECT_EQ(SerializeResponse(TextResponse(200, "body"), true).find("body"), std::string::npos);
}

class LiveServerFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<HttpServer>> s = HttpServer::Listen(*ParseListenAddress(":0"));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    port_ = std::stoi(server_->address().substr(server_->address().rfind(':') + 1));
    thread_ = std::thread([this] {
      while (!stop_) server_->Poll(20, [this](const HttpRequest& r) { return Handle(r); });
    });
  }
  void TearDown() override {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  HandlerResult Handle(const HttpRequest& r) {
    if (r.path == "/big") return {TextResponse(200, std::string(32 << 20, 'x')), nullptr};
    if (r.path == "/later") {
      auto polls = std::make_shared<int>(0);
      return {std::nullopt, [polls]() -> std::optional<HttpResponse> {
                if (++*polls < 3) return std::nullopt;
                return TextResponse(200, "later\n");
              }};
    }
    return {TextResponse(200, "small\n"), nullptr};
  }

  int Connect() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa = {};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port_));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    return fd;
  }

  // Sends `request` and reads the whole answer.
  std::string Exchange(const std::string& request) {
    int fd = Connect();
    EXPECT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
    std::string reply;
    char buf[65536];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) reply.append(buf, static_cast<size_t>(n));
    close(fd);
    return reply;
  }

  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_F(LiveServerFixture, ASlowClientDoesNotHoldUpOthers) {
  int slow = Connect();
  std::string req = "GET /big HTTP/1.1\r\n\r\n";
  ASSERT_EQ(send(slow, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  usleep(200000);  // its 32 MiB answer fills the socket buffers and waits
  std::string reply = Exchange("GET /small HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(reply.substr(0, 15), "HTTP/1.1 200 OK");
  EXPECT_EQ(reply.substr(reply.size() - 6), "small\n");
  close(slow);
}

TEST_F(LiveServerFixture, DeferredAndBadRequests) {
  std::string later = Exchange("GET /later HTTP/1.1\r\n\r\n");
  EXPECT_EQ(later.substr(later.size() - 6), "later\n");
  EXPECT_EQ(Exchange("DELETE / HTTP/1.1\r\n\r\n").substr(0, 12), "HTTP/1.1 405");
  EXPECT_EQ(Exchange(std::string("\x01\x02\r\n\r\n", 6)).substr(0, 12), "HTTP/1.1 400");
  EXPECT_EQ(Exchange("GET /" + std::string(20000, 'a')).substr(0, 12), "HTTP/1.1 414");
  EXPECT_EQ(Exchange("GET / HTTP/1.1\r\n" + std::string(20000, 'h')).substr(0, 12),
            "HTTP/1.1 431");
  EXPECT_EQ(Exchange("HEAD /x HTTP/1.1\r\n\r\n").find("small"), std::string::npos);
  // Still serving.
  EXPECT_EQ(Exchange("GET / HTTP/1.1\r\n\r\n").substr(0, 15), "HTTP/1.1 200 OK");
}

}  // namespace
}  // namespace heapsight::record
