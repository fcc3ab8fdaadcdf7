#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace relay::testing {

struct HttpReply {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  [[nodiscard]] std::string header(const std::string& name) const;
};

/// A blocking HTTP/1.1 client on one keep-alive connection (reconnects when the server closed
/// it). Throws std::runtime_error on transport errors.
class HttpTestClient {
 public:
  HttpTestClient(std::string host, std::uint16_t port);
  ~HttpTestClient();
  HttpTestClient(const HttpTestClient&) = delete;
  HttpTestClient& operator=(const HttpTestClient&) = delete;

  HttpReply request(const std::string& method, const std::string& target,
                    const std::string& body = {},
                    std::vector<std::pair<std::string, std::string>> headers = {},
                    std::chrono::milliseconds timeout = std::chrono::seconds(30));

  /// POST with Content-Type: application/json (plus `headers`).
  HttpReply post_json(const std::string& target, const std::string& body,
                      std::vector<std::pair<std::string, std::string>> headers = {});

  /// How many TCP connections this client opened so far.
  [[nodiscard]] int connections_opened() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Sends raw bytes on a new connection, then reads until the server closes or `timeout`;
/// returns what was read.
std::string raw_exchange(std::uint16_t port, const std::string& bytes,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace relay::testing
