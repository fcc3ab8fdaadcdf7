#include "relay/delivery/RequestBuilder.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "relay/common/HeaderNames.hpp"
#include "relay/common/Redaction.hpp"
#include "relay/common/Version.hpp"
#include "relay/delivery/Signer.hpp"

namespace relay::delivery {
namespace {

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
    if (!common::is_reserved_header(name)) request.headers.emplace_back(name, value);
  }
  request.body = std::move(payload);
  request.timeout = delivery.timeout;
  request.allow_insecure_http = webhook.allow_insecure_http;
  request.allow_private_networks = delivery.allow_private_networks;
  request.extra_ca_file = webhook.ca_file.value_or("");
  return request;
}

namespace {

enum class Redact { kNothing, kSecretNames, kAllButOwn };

std::string to_json(const Headers& headers, Redact redact) {
  const auto shown = [&](const std::pair<std::string, std::string>& h) -> std::string_view {
    if (redact == Redact::kSecretNames && common::looks_secret(h.first)) return common::kRedacted;
    if (redact == Redact::kAllButOwn && !common::request_header_shown(h.first)) {
      return common::kRedacted;
    }
    return h.second;
  };
  // Each name is judged once (the redaction rule scans it for several words).
  std::vector<std::string_view> values;
  values.reserve(headers.size());
  for (const auto& h : headers) values.push_back(shown(h));
  // Written for every attempt: the usual headers (plain ASCII, each name once) are put together
  // directly; anything else goes through the JSON library below.
  bool plain = true;
  std::size_t size = 2;
  for (std::size_t i = 0; i < headers.size() && plain; ++i) {
    const auto& name = headers[i].first;
    const auto value = values[i];
    plain = json_plain(name) && json_plain(value);
    for (std::size_t j = 0; j < i && plain; ++j) plain = headers[j].first != name;
    size += name.size() + value.size() + 6;
  }
  if (plain) {
    std::string out;
    out.reserve(size);
    out += '{';
    for (std::size_t i = 0; i < headers.size(); ++i) {
      if (i > 0) out += ',';
      out += '"';
      out += headers[i].first;
      out += "\":\"";
      out += values[i];
      out += '"';
    }
    out += '}';
    return out;
  }
  // ordered_json keeps the order the headers came in; a repeated name keeps one key with the
  // values joined by ", " (RFC 9110 §5.3).
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (std::size_t i = 0; i < headers.size(); ++i) {
    const std::string value(values[i]);
    auto it = out.find(headers[i].first);
    if (it == out.end()) {
      out[headers[i].first] = value;
    } else {
      *it = it->get<std::string>() + ", " + value;
    }
  }
  // Header values are arbitrary bytes; never throw on invalid UTF-8 in a log helper.
  return out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace

std::string headers_json(const Headers& headers, bool redact_credentials) {
  return to_json(headers, redact_credentials ? Redact::kSecretNames : Redact::kNothing);
}

std::string headers_for_log(const Headers& headers) {
  return to_json(headers, Redact::kAllButOwn);
}

}  // namespace relay::delivery
