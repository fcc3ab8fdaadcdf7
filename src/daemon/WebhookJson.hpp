#pragma once

// Private to the daemon module: the JSON side of the webhooks API (WebhookApi.cpp). A request
// body read and its shape checked (which keys, of which JSON types), the error answers, and what
// a client sees of a webhook. What the values mean is the config module's job.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ApiResponses.hpp"
#include "relay/config/Config.hpp"
#include "relay/server/HttpServer.hpp"

namespace relay::daemon::detail {

struct ApiError {
  int status;
  std::string code;
  std::string message;
};

using api::json_response;
/// SPEC §3's error shape, with the list of `problems` when given.
server::Response error_response(const ApiError& e, const nlohmann::json& problems = nullptr);

/// "an object", "an array", "a string", "a boolean", "null" or "a number".
const char* type_name(const nlohmann::json& v);

// The JSON side of validation: which keys, of which JSON types. What the values mean (URL,
// event types, ids, secrets, header names) is the config module's job.
void check_shape(const nlohmann::json& body, bool patch, std::vector<std::string>& problems);

// What a client sees of a webhook: never a secret, header value or URL query value.
nlohmann::json webhook_view(const config::WebhookConfig& w);

/// The body as a JSON object, or nullopt with `error` set (413 too large, 400 not an object).
std::optional<nlohmann::json> parse_body(const std::string& body, server::Response& error);
/// The 422 answer naming every problem, the first as its message.
server::Response shape_error(const std::vector<std::string>& problems);

}  // namespace relay::daemon::detail
