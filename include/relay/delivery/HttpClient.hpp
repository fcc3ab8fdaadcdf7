#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace relay::delivery {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct ClientOptions {
  std::string ca_file;                        // PEM bundle used to verify servers
  std::size_t max_response_body = 64 * 1024;  // bytes read and kept; the rest is not read
  std::size_t max_response_header = 16 * 1024;
  std::size_t max_idle_per_origin = 16;
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};
};

struct OutgoingRequest {
  std::string url;  // https://… (http://… only when allow_insecure_http)
  Headers headers;  // complete: Content-Type, User-Agent, X-Relay-*, webhook extras
  std::string body;
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};  // DNS+connect+TLS+write+read
  bool allow_insecure_http = false;
  bool allow_private_networks = false;
};

/// The outcome of one request. Exactly one of `status` or `error` is meaningful.
struct HttpResult {
  std::optional<int> status;  // set when a complete status line + headers arrived
  Headers headers;
  std::string body;  // at most max_response_body bytes
  bool body_truncated = false;
  std::string error;           // transport failure, e.g. "connect: Connection refused"
  std::string remote_address;  // the address actually connected to, "ip:port"
  std::chrono::milliseconds duration{0};
};

/// HTTPS client with keep-alive connections pooled per origin (scheme, host, port).
/// Certificate + host-name verification, SNI, TLS >= 1.2; redirects never followed; every
/// resolved address is checked by the SSRF guard and tried in turn; the checked address is the
/// one connected to. A pooled connection that the server closed while idle is retried once on
/// a fresh connection without costing an attempt. Thread-safe: send() may be called from any
/// thread; `done` runs on one of the io_context's threads.
class HttpClientPool {
 public:
  HttpClientPool(boost::asio::io_context& io, ClientOptions options);
  ~HttpClientPool();
  HttpClientPool(const HttpClientPool&) = delete;
  HttpClientPool& operator=(const HttpClientPool&) = delete;

  void send(OutgoingRequest request, std::function<void(HttpResult)> done);

  /// Closes pooled idle connections (shutdown).
  void close_idle();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace relay::delivery
