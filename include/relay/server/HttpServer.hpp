#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "relay/common/Ascii.hpp"
#include "relay/config/Config.hpp"

namespace boost::asio {
class io_context;
}

namespace relay::store {
class Store;
}

namespace relay::server {

struct Request {
  std::string method;                                      // "GET", "POST", …
  std::string target;                                      // path + query as received
  std::string path;                                        // without the query
  std::vector<std::pair<std::string, std::string>> query;  // decoded
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  /// The first header named `name` (ASCII case-insensitive), or nullopt.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (common::iequals(key, name)) return std::string_view(value);
    }
    return std::nullopt;
  }
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

/// Answers a request. `respond` may be called later and from any thread, exactly once.
using Handler = std::function<void(Request request, std::function<void(Response)> respond)>;

struct ServerContext {
  /// The current configuration (swapped on reload); called on I/O threads, must be cheap.
  std::function<std::shared_ptr<const config::Config>()> config;
  store::Store* store = nullptr;
  /// Called after an intake commit that created pending deliveries (wakes the dispatcher).
  std::function<void()> on_new_deliveries;
  /// Called after an intake commit with the number of new (non-duplicate) events (metrics).
  std::function<void(std::size_t)> on_events_accepted;
  /// Called with the status of every answer of the intake handler (metrics: intake 5xx).
  std::function<void(int)> on_intake_answer;
};

/// Transport limits and deadlines of every connection. The defaults suit production; tests
/// shorten them. The body size limit is not here: it is server.max_body_bytes of the current
/// config, read for every request.
struct ServerOptions {
  /// Request line + header fields; more → 431 headers_too_large, then close.
  std::size_t header_limit = 16 * 1024;
  /// From connect (TLS handshake included) or from the first byte of a keep-alive request to
  /// the end of its header → else 408 request_timeout, then close.
  std::chrono::milliseconds header_timeout = std::chrono::seconds(10);
  /// Body deadline: body_timeout + Content-Length / body_min_rate, at most body_timeout_max
  /// (chunked bodies get body_timeout_max) → else 408 request_timeout, then close.
  std::chrono::milliseconds body_timeout = std::chrono::seconds(10);
  std::chrono::milliseconds body_timeout_max = std::chrono::seconds(60);
  std::size_t body_min_rate = 64 * 1024;  // bytes per second
  /// A keep-alive connection waiting for its next request is closed after this.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(30);
  /// Writing one response (a client that does not read is cut off).
  std::chrono::milliseconds write_timeout = std::chrono::seconds(30);
  /// A handler that has not answered after this gets 500 internal_error (a bug guard).
  std::chrono::milliseconds handler_timeout = std::chrono::seconds(120);
  /// Threads for blocking calls made by the server itself (store->writable() for /readyz).
  std::size_t blocking_threads = 1;
};

/// The connection cap's state, for /metrics.
struct ConnectionStats {
  std::size_t open = 0;       // client connections now
  std::size_t limit = 0;      // server.max_connections, or less when the open-file limit is lower
  std::uint64_t shed = 0;     // idle connections closed to make room for a new one
  std::uint64_t refused = 0;  // new connections closed at once because every one was busy
};

/// The HTTP/1.1 listener on server.listen (plain, or TLS with server.tls_cert/tls_key):
/// intake (POST /v1/events, /v1/events/batch), /healthz, /readyz, plus routes the daemon adds
/// (admin API). Keep-alive, header/body limits and read deadlines on every connection.
/// start() throws std::runtime_error when the address cannot be bound or the TLS files cannot
/// be loaded. Every other failure is answered on (or closes) the one connection it concerns.
/// Thread-safety: add_route() and start() before the io_context runs other work of this
/// server; port(), begin_shutdown() and stop() from any thread. Destroy it before the
/// io_context; the destructor calls stop() and waits for the server's blocking calls.
class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, ServerContext context);
  HttpServer(boost::asio::io_context& io, ServerContext context, ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Adds a route before start(). `path_prefix` ending in '/' matches by prefix, else exactly.
  /// Routes under /v1 and /metrics require the bearer token when one is configured; the token,
  /// method and path are checked as soon as the header is read (Router.hpp).
  void add_route(std::string method, std::string path_prefix, Handler handler);

  void start();
  /// Open/shed/refused connection counts (thread-safe).
  [[nodiscard]] ConnectionStats connection_stats() const;
  /// The bound port (useful with port 0).
  [[nodiscard]] std::uint16_t port() const;
  /// From now on intake answers 503 shutting_down and /readyz 503; /healthz still answers.
  void begin_shutdown();
  [[nodiscard]] bool shutting_down() const;
  /// Stops accepting, closes idle connections and cancels reads; a request whose handler is
  /// running still gets its answer, then its connection closes. Idempotent.
  void stop();
  /// After stop(): blocks until every connection has closed (each answered the request it was
  /// serving, e.g. intake waiting for its commit) or `timeout` has passed (false). Never call it
  /// from an I/O thread: the connections finish there.
  [[nodiscard]] bool wait_drained(std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace relay::server
