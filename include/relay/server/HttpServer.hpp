#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "relay/config/Config.hpp"

namespace boost::asio {
class io_context;
}

namespace relay::store {
class Store;
}

namespace relay::server {

struct Request {
  std::string method;  // "GET", "POST", …
  std::string target;  // path + query as received
  std::string path;    // without the query
  std::vector<std::pair<std::string, std::string>> query;  // decoded
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
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
};

/// The HTTP/1.1 listener on server.listen (plain, or TLS with server.tls_cert/tls_key):
/// intake (POST /v1/events, /v1/events/batch), /healthz, /readyz, plus routes the daemon adds
/// (admin API). Keep-alive, header/body limits and read deadlines on every connection.
/// start() throws std::runtime_error when the address cannot be bound.
class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, ServerContext context);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Adds a route before start(). `path_prefix` ending in '/' matches by prefix, else exactly.
  /// Routes under /v1 require the bearer token when one is configured.
  void add_route(std::string method, std::string path_prefix, Handler handler);

  void start();
  /// The bound port (useful with port 0).
  [[nodiscard]] std::uint16_t port() const;
  /// From now on intake answers 503 shutting_down; /healthz still answers.
  void begin_shutdown();
  /// Stops accepting and closes idle connections.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace relay::server
