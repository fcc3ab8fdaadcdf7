#include "relay/delivery/RequestBuilder.hpp"

#include <algorithm>
#include <array>

#include <nlohmann/json.hpp>

#include "relay/common/Version.hpp"
#include "relay/delivery/Signer.hpp"

namespace relay::delivery {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return out;
}

// Headers relay sets itself or that belong to the transport: a webhook's extra headers can
// never replace or duplicate them.
bool is_reserved_header(std::string_view name) {
  static constexpr std::array<std::string_view, 6> kReserved = {
      "content-type", "user-agent", "host", "content-length", "transfer-encoding", "connection"};
  const std::string n = lower(name);
  return n.starts_with("x-relay-") ||
         std::find(kReserved.begin(), kReserved.end(), n) != kReserved.end();
}

bool looks_like_credential(std::string_view name) {
  static constexpr std::array<std::string_view, 6> kWords = {"authorization", "cookie", "token",
                                                             "key",           "secret", "password"};
  const std::string n = lower(name);
  return std::any_of(kWords.begin(), kWords.end(),
                     [&](std::string_view w) { return n.find(w) != std::string::npos; });
}

}  // namespace

OutgoingRequest build_request(const config::WebhookConfig& webhook,
                              const config::DeliveryConfig& delivery, std::string_view delivery_id,
                              std::string_view event_type, std::string payload) {
  OutgoingRequest request;
  request.url = webhook.url;
  request.headers.reserve(5 + webhook.headers.size());
  request.headers.emplace_back("Content-Type", "application/json");
  request.headers.emplace_back("User-Agent", std::string("relayd/") + relay::kVersion);
  request.headers.emplace_back("X-Relay-Event", std::string(event_type));
  request.headers.emplace_back("X-Relay-Delivery", std::string(delivery_id));
  request.headers.emplace_back("X-Relay-Signature", signature_header(webhook.secret, payload));
  for (const auto& [name, value] : webhook.headers) {
    if (!is_reserved_header(name)) request.headers.emplace_back(name, value);
  }
  request.body = std::move(payload);
  request.timeout = delivery.timeout;
  request.allow_insecure_http = webhook.allow_insecure_http;
  request.allow_private_networks = delivery.allow_private_networks;
  return request;
}

std::string headers_for_log(const Headers& headers) {
  // ordered_json keeps the order the headers were sent in; a repeated name keeps one key with
  // the values joined by ", " (RFC 9110 §5.3).
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& [name, value] : headers) {
    const std::string shown = looks_like_credential(name) ? "[redacted]" : value;
    auto it = out.find(name);
    if (it == out.end()) {
      out[name] = shown;
    } else {
      *it = it->get<std::string>() + ", " + shown;
    }
  }
  // Header values are arbitrary bytes; never throw on invalid UTF-8 in a log helper.
  return out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace relay::delivery
