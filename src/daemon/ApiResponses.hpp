#pragma once

// The admin API's answers, one home for the handlers of AdminApi, HealthApi, StatsApi and
// TestSend: a JSON body, or SPEC §3's error shape {"error": {"code", "message"}}.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "relay/server/HttpServer.hpp"

namespace relay::daemon::api {

/// `body` as the answer with `status`; invalid UTF-8 in it is replaced, never thrown on.
inline server::Response json_response(int status, const nlohmann::json& body) {
  server::Response r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

inline server::Response error_response(int status, const std::string& code,
                                       const std::string& message) {
  return json_response(status, {{"error", {{"code", code}, {"message", message}}}});
}

/// The first query parameter called `name`, decoded; nullopt when absent.
inline std::optional<std::string> query_value(const server::Request& req, const std::string& name) {
  for (const auto& [k, v] : req.query) {
    if (k == name) return v;
  }
  return std::nullopt;
}

}  // namespace relay::daemon::api
