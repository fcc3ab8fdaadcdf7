#include "Router.hpp"

#include "IntakeHandler.hpp"
#include "relay/common/Ascii.hpp"
#include "relay/server/BearerAuth.hpp"

namespace relay::server {

bool requires_token(std::string_view path) noexcept {
  return path == "/v1" || path.starts_with("/v1/") || path == "/metrics";
}

void Router::add(std::string method, std::string path, Handler handler) {
  const bool prefix = !path.empty() && path.back() == '/';
  routes_.push_back({std::move(method), std::move(path), prefix, std::move(handler)});
}

RouteDecision Router::decide(std::string_view method, std::string_view path,
                             std::optional<std::string_view> authorization,
                             std::string_view token) const {
  RouteDecision decision;
  // Before routing, so an unauthenticated client learns nothing about which paths exist.
  if (!token.empty() && requires_token(path) && !bearer_token_matches(authorization, token)) {
    auto response =
        error_response(401, "unauthorized", "missing or wrong \"Authorization: Bearer <token>\"");
    response.headers.emplace_back("WWW-Authenticate", "Bearer");
    decision.refusal = std::move(response);
    return decision;
  }
  const Route* best = nullptr;
  std::string allow;
  for (const auto& route : routes_) {
    const bool path_matches = route.prefix ? path.starts_with(route.path) : path == route.path;
    if (!path_matches) continue;
    if (allow.find(route.method) == std::string::npos) {
      if (!allow.empty()) allow += ", ";
      allow += route.method;
    }
    if (route.method != method) continue;
    if (best == nullptr || (best->prefix && !route.prefix) ||
        (best->prefix && route.prefix && route.path.size() > best->path.size())) {
      best = &route;
    }
  }
  if (best != nullptr) {
    decision.handler = &best->handler;
  } else if (allow.empty()) {
    decision.refusal = error_response(404, "not_found", "no such endpoint: " + std::string(path));
  } else {
    auto response =
        error_response(405, "method_not_allowed",
                       std::string(method) + " is not allowed here (allowed: " + allow + ")");
    response.headers.emplace_back("Allow", allow);
    decision.refusal = std::move(response);
  }
  return decision;
}

}  // namespace relay::server
