// A raw POSIX-socket HTTP client for the HTTP server's tests: it writes exactly the bytes a test
// gives it (malformed requests, slow drips, pipelining) and reads the answer as it arrives.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

namespace relay::server::test_support {

using namespace std::chrono_literals;

struct HttpReply {
  int status = 0;
  std::string head;
  std::string body;
  [[nodiscard]] bool has_header(const std::string& line) const {
    return head.find(line) != std::string::npos;
  }
};

class RawClient {
 public:
  explicit RawClient(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawClient() { close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  [[nodiscard]] bool connected() const { return connected_; }
  [[nodiscard]] int fd() const { return fd_; }

  void send(const std::string& data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
      auto n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
  }

  /// Reads one response; status 0 when the connection closed or timed out first.
  HttpReply read_reply() {
    HttpReply reply;
    std::size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return reply;
    }
    reply.head = buffer_.substr(0, end + 4);
    buffer_.erase(0, end + 4);
    reply.status = std::stoi(reply.head.substr(9, 3));
    std::size_t length = 0;
    auto pos = reply.head.find("Content-Length: ");
    if (pos != std::string::npos) length = std::stoul(reply.head.substr(pos + 16));
    while (buffer_.size() < length) {
      if (!fill()) return HttpReply{};
    }
    reply.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return reply;
  }

  /// True when the server closed the connection (EOF or reset) before `within`.
  bool closed_by_peer(std::chrono::milliseconds within = 3s) {
    timeval tv{static_cast<time_t>(within.count() / 1000),
               static_cast<suseconds_t>((within.count() % 1000) * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c;
    const auto n = ::recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  bool fill() {
    char chunk[4096];
    const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

inline std::string post(const std::string& path, const std::string& body,
                        const std::string& extra_headers = "",
                        const std::string& content_type = "application/json") {
  std::string req = "POST " + path + " HTTP/1.1\r\nHost: test\r\n";
  if (!content_type.empty()) req += "Content-Type: " + content_type + "\r\n";
  req += extra_headers;
  req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  return req;
}

inline std::string get(const std::string& path, const std::string& extra_headers = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: test\r\n" + extra_headers + "\r\n";
}

inline std::string error_code_of(const HttpReply& reply) {
  const std::string key = "\"code\":\"";
  const auto pos = reply.body.find(key);
  if (pos == std::string::npos) return "";
  return reply.body.substr(pos + key.size(),
                           reply.body.find('"', pos + key.size()) - pos - key.size());
}

// ---------------------------------------------------------------- fixture

}  // namespace relay::server::test_support
