// The JSON side of the webhooks API: request bodies and their shape, error answers, the view of
// a webhook a client gets (never a secret, header value or URL query value).
#include "WebhookJson.hpp"

#include <cstddef>
#include <map>

#include "relay/common/Redaction.hpp"
#include "relay/common/Time.hpp"

namespace relay::daemon::detail {

using nlohmann::json;
using server::Response;

namespace {

// A webhook's document is a few hundred bytes; anything near this is a mistake or an attack,
// refused before parsing.
constexpr std::size_t kMaxWebhookBody = 64 * 1024;

}  // namespace

Response error_response(const ApiError& e, const json& problems) {
  json err = {{"code", e.code}, {"message", e.message}};
  if (!problems.is_null()) err["problems"] = problems;
  return json_response(e.status, {{"error", err}});
}

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::null:
      return "null";
    default:
      return "a number";
  }
}

void check_shape(const json& body, bool patch, std::vector<std::string>& problems) {
  static const std::map<std::string, json::value_t> kKeys = {
      {"id", json::value_t::string},
      {"url", json::value_t::string},
      {"secret", json::value_t::string},
      {"signature", json::value_t::string},
      {"previous_secrets", json::value_t::array},
      {"events", json::value_t::array},
      {"enabled", json::value_t::boolean},
      {"max_queued", json::value_t::number_unsigned},
      {"headers", json::value_t::object},
      {"allow_insecure_http", json::value_t::boolean}};
  for (const auto& [key, value] : body.items()) {
    const auto it = kKeys.find(key);
    if (it == kKeys.end()) {
      problems.push_back(key +
                         ": unknown key (known: id, url, secret, signature, "
                         "previous_secrets, events, enabled, max_queued, headers, "
                         "allow_insecure_http)");
      continue;
    }
    // merge-patch: null removes an optional key (back to its default).
    if (patch && value.is_null() && key != "url" && key != "events" && key != "secret" &&
        key != "id") {
      continue;
    }
    const bool ok = it->second == json::value_t::number_unsigned ? value.is_number_unsigned()
                                                                 : value.type() == it->second;
    if (!ok) {
      const char* want = it->second == json::value_t::number_unsigned ? "a positive integer"
                         : it->second == json::value_t::string        ? "a string"
                         : it->second == json::value_t::boolean       ? "a boolean"
                         : it->second == json::value_t::array         ? "an array"
                                                                      : "an object";
      problems.push_back(key + ": expected " + want + " (found " + type_name(value) + ")");
      continue;
    }
    if (key == "events") {
      for (std::size_t i = 0; i < value.size(); ++i) {
        if (!value[i].is_string()) {
          problems.push_back("events[" + std::to_string(i) + "]: expected a string (found " +
                             type_name(value[i]) + ")");
        }
      }
    } else if (key == "headers") {
      for (const auto& [name, v] : value.items()) {
        if (!v.is_string()) {
          problems.push_back("headers." + name + ": expected a string (found " + type_name(v) +
                             ")");
        }
      }
    } else if (key == "previous_secrets") {
      for (std::size_t i = 0; i < value.size(); ++i) {
        const auto path = "previous_secrets[" + std::to_string(i) + "]";
        if (!value[i].is_object()) {
          problems.push_back(path + ": expected an object {secret, expires}");
          continue;
        }
        for (const auto& [k, v] : value[i].items()) {
          if (k != "secret" && k != "expires") {
            problems.push_back(path + "." + k + ": unknown key (known: secret, expires)");
          } else if (!v.is_string()) {
            problems.push_back(path + "." + k + ": expected a string (found " + type_name(v) + ")");
          }
        }
      }
    }
  }
}

json webhook_view(const config::WebhookConfig& w) {
  json headers = json::object();
  for (const auto& [name, value] : w.headers) headers[name] = std::string(common::kRedacted);
  json previous = json::array();
  for (const auto& p : w.previous_secrets) {
    previous.push_back({{"expires", common::format_rfc3339_s(p.expires)}});
  }
  return {{"id", w.id},
          {"source", w.managed_by_api ? "api" : "config"},
          {"url", common::redact_url(w.url)},
          {"events", w.events},
          {"enabled", w.enabled},
          {"signature", std::string(config::to_string(w.signature))},
          {"previous_secrets", previous},
          {"max_queued", w.max_queued},
          {"headers", headers},
          {"allow_insecure_http", w.allow_insecure_http}};
}

std::optional<json> parse_body(const std::string& body, Response& error) {
  if (body.size() > kMaxWebhookBody) {
    error = error_response({413, "body_too_large", "a webhook is at most 65536 bytes of JSON"});
    return std::nullopt;
  }
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    error = error_response({400, "invalid_json", "the body must be a JSON object"});
    return std::nullopt;
  }
  return j;
}

Response shape_error(const std::vector<std::string>& problems) {
  return error_response({422, "invalid_webhook", problems.front()}, problems);
}

}  // namespace relay::daemon::detail
