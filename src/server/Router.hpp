#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "Framing.hpp"
#include "relay/server/HttpServer.hpp"

/// Routing, authentication and framing decisions of the HTTP server, as plain C++ (no Beast):
/// the transport (HttpServer.cpp) asks them right after a request's header is read, before any
/// body byte is buffered or `100 Continue` is sent, so unit tests and the fuzzer can call them.
namespace relay::server {

/// Whether a path needs "Authorization: Bearer <token>" when server.token_file is set:
/// everything under /v1 and /metrics. /healthz and /readyz stay open (probes carry no token).
[[nodiscard]] bool requires_token(std::string_view path) noexcept;

/// What to do with a request, decided from the request line and headers alone.
struct RouteDecision {
  const Handler* handler = nullptr;  // run it (after reading the body)
  std::optional<Response> refusal;   // or answer this without reading the body
};

/// The route table. Not thread-safe to add to; decide() is const and may run on any thread
/// once the table is complete.
class Router {
 public:
  /// `path` ending in '/' matches by prefix, else exactly.
  void add(std::string method, std::string path, Handler handler);

  /// 401 (wrong or missing token on a protected path; one check for every route, see
  /// BearerAuth.hpp), 404, 405 with Allow, or the handler of the best match (exact beats
  /// prefix, longer prefix beats shorter). `token` empty: no token required.
  [[nodiscard]] RouteDecision decide(std::string_view method, std::string_view path,
                                     std::optional<std::string_view> authorization,
                                     std::string_view token) const;

 private:
  struct Route {
    std::string method;
    std::string path;
    bool prefix = false;
    Handler handler;
  };
  std::vector<Route> routes_;
};

}  // namespace relay::server
