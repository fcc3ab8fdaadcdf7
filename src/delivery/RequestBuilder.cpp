#include "relay/delivery/RequestBuilder.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>

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
  static constexpr std::array<std::string_view, 9> kReserved = {
      "content-type",   "user-agent",        "host",
      "content-length", "transfer-encoding", "connection",
      "webhook-id",     "webhook-timestamp", "webhook-signature"};
  const std::string n = lower(name);
  return n.starts_with("x-relay-") ||
         std::find(kReserved.begin(), kReserved.end(), n) != kReserved.end();
}

bool looks_like_credential(std::string_view name) {
  static constexpr std::array<std::string_view, 6> kWords = {"authorization", "cookie", "token",
                                                             "key",           "secret", "password"};
  // Runs for every header of every attempt: lower-case into a stack buffer, no allocation.
  std::array<char, 128> buffer{};
  if (name.size() > buffer.size()) {
    const std::string n = lower(name);
    return std::any_of(kWords.begin(), kWords.end(),
                       [&](std::string_view w) { return n.find(w) != std::string::npos; });
  }
  std::transform(name.begin(), name.end(), buffer.begin(), [](char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  });
  const std::string_view n(buffer.data(), name.size());
  return std::any_of(kWords.begin(), kWords.end(),
                     [&](std::string_view w) { return n.find(w) != std::string_view::npos; });
}

// Bytes a JSON string holds as they are: printable ASCII except the quote and the backslash.
bool json_plain(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\'; });
}

std::string standard_signatures(const config::WebhookConfig& webhook, std::string_view msg_id,
                                std::int64_t timestamp, std::string_view body,
                                common::TimePoint now) {
  std::string out = standard_signature(webhook.signing_key, msg_id, timestamp, body);
  for (const auto& prev : webhook.previous_secrets) {
    if (prev.expires <= now) continue;
    out += ' ';
    out += standard_signature(prev.key, msg_id, timestamp, body);
  }
  return out;
}

}  // namespace

OutgoingRequest build_request(const config::WebhookConfig& webhook,
                              const config::DeliveryConfig& delivery, std::string_view delivery_id,
                              std::string_view event_type, std::string payload,
                              common::TimePoint now, bool test) {
  using config::SignatureScheme;
  OutgoingRequest request;
  request.url = webhook.url;
  request.headers.reserve(9 + webhook.headers.size());
  request.headers.emplace_back("Content-Type", "application/json");
  request.headers.emplace_back("User-Agent", std::string("relayd/") + relay::kVersion);
  request.headers.emplace_back("X-Relay-Event", std::string(event_type));
  request.headers.emplace_back("X-Relay-Delivery", std::string(delivery_id));
  if (webhook.signature != SignatureScheme::kStandard) {
    request.headers.emplace_back("X-Relay-Signature", signature_header(webhook.secret, payload));
  }
  if (webhook.signature != SignatureScheme::kRelay) {
    const auto timestamp =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    request.headers.emplace_back("webhook-id", std::string(delivery_id));
    request.headers.emplace_back("webhook-timestamp", std::to_string(timestamp));
    request.headers.emplace_back(
        "webhook-signature", standard_signatures(webhook, delivery_id, timestamp, payload, now));
  }
  if (test) request.headers.emplace_back("X-Relay-Test", "true");
  for (const auto& [name, value] : webhook.headers) {
    if (!is_reserved_header(name)) request.headers.emplace_back(name, value);
  }
  request.body = std::move(payload);
  request.timeout = delivery.timeout;
  request.allow_insecure_http = webhook.allow_insecure_http;
  request.allow_private_networks = delivery.allow_private_networks;
  return request;
}

std::string headers_json(const Headers& headers, bool redact_credentials) {
  const auto shown = [&](const std::pair<std::string, std::string>& h) -> std::string_view {
    if (redact_credentials && looks_like_credential(h.first)) return "[redacted]";
    return h.second;
  };
  // Written for every attempt: the usual headers (plain ASCII, each name once) are put together
  // directly; anything else goes through the JSON library below.
  bool plain = true;
  std::size_t size = 2;
  for (std::size_t i = 0; i < headers.size() && plain; ++i) {
    const auto& name = headers[i].first;
    const auto value = shown(headers[i]);
    plain = json_plain(name) && json_plain(value);
    for (std::size_t j = 0; j < i && plain; ++j) plain = headers[j].first != name;
    size += name.size() + value.size() + 6;
  }
  if (plain) {
    std::string out;
    out.reserve(size);
    out += '{';
    for (const auto& h : headers) {
      if (out.size() > 1) out += ',';
      out += '"';
      out += h.first;
      out += "\":\"";
      out += shown(h);
      out += '"';
    }
    out += '}';
    return out;
  }
  // ordered_json keeps the order the headers came in; a repeated name keeps one key with the
  // values joined by ", " (RFC 9110 §5.3).
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& h : headers) {
    const std::string value(shown(h));
    auto it = out.find(h.first);
    if (it == out.end()) {
      out[h.first] = value;
    } else {
      *it = it->get<std::string>() + ", " + value;
    }
  }
  // Header values are arbitrary bytes; never throw on invalid UTF-8 in a log helper.
  return out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string headers_for_log(const Headers& headers) {
  return headers_json(headers, true);
}

}  // namespace relay::delivery
