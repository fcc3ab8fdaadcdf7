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
  std::string ca_file;  // PEM bundle used to verify servers; empty = OpenSSL default paths
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
  /// The webhook's `ca_file`: CAs trusted for this request in addition to ClientOptions::ca_file
  /// (empty: only those). Pooled connections are never shared across different trust.
  std::string extra_ca_file;
};

/// The outcome of one request. Exactly one of `status` or `error` is meaningful: once a final
/// status line and its headers have arrived the result has a status, whatever happens to the
/// body afterwards (a body that is larger than max_response_body, or that breaks off or times
/// out, gives body_truncated = true and keeps the status).
///
/// `error` formats (one line, never contains the secret or the body):
///   "url: <reason>"                       unparsable URL
///   "insecure: http:// URL requires allow_insecure_http"
///   "dns: <resolver message>"             e.g. "dns: Host not found"
///   "refused: <host> resolves only to private/loopback addresses (allow_private_networks is
///   false)" "connect: <socket message>"           e.g. "connect: Connection refused" "tls:
///   certificate verify failed (<OpenSSL verify reason>)" "tls: host name mismatch (certificate is
///   not valid for <host>)" "tls: <OpenSSL reason>"               other handshake failures "write:
///   <socket message>" "read: <reason>"                      e.g. "read: connection closed before a
///   response" "timeout after <N> ms (during dns|connect|tls|write|read)" "cancelled: client shut
///   down"         done() called from teardown of the io_context
struct HttpResult {
  std::optional<int> status;  // set when a complete final status line + headers arrived
  Headers headers;
  std::string body;  // at most max_response_body bytes
  bool body_truncated = false;
  std::string body_error;      // why the body is incomplete when it broke off (status kept)
  std::string error;           // transport failure, e.g. "connect: Connection refused"
  std::string remote_address;  // the address actually connected to, "ip:port"
  std::chrono::milliseconds duration{0};
};

/// Sends one request and reports its result: what the dispatcher needs from a client (a test
/// can stand in for the pool). `done` runs exactly once, on a thread of the client's choosing.
class HttpSender {
 public:
  virtual ~HttpSender() = default;
  virtual void send(OutgoingRequest request, std::function<void(HttpResult)> done) = 0;
};

/// HTTPS client with keep-alive connections pooled per origin (scheme, host, port).
/// Certificate + host-name verification, SNI, TLS >= 1.2; redirects never followed; every
/// resolved address is checked by the SSRF guard and tried in turn; the checked address is the
/// one connected to. A pooled connection that the server closed while idle is retried once on
/// a fresh connection without costing an attempt. Thread-safe: send() may be called from any
/// thread; `done` runs on one of the io_context's threads, exactly once per send() (also when
/// the io_context is destroyed with the request still queued: then with a "cancelled" error).
/// Destroying the pool closes idle connections; requests in flight finish (within their
/// timeout) and still call `done`. The constructor throws std::runtime_error when the CA file
/// cannot be loaded; send() never throws and reports every failure in HttpResult::error.
class HttpClientPool final : public HttpSender {
 public:
  HttpClientPool(boost::asio::io_context& io, ClientOptions options);
  ~HttpClientPool() override;
  HttpClientPool(const HttpClientPool&) = delete;
  HttpClientPool& operator=(const HttpClientPool&) = delete;

  void send(OutgoingRequest request, std::function<void(HttpResult)> done) override;

  /// Closes pooled idle connections (shutdown). Requests in flight are not affected.
  void close_idle();

  /// Idle pooled connections right now, over all origins (for tests and metrics).
  [[nodiscard]] std::size_t idle_connections() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace relay::delivery
