#pragma once

#include <array>
#include <string_view>

#include "relay/common/Ascii.hpp"

/// Request header names relayd owns when it sends a webhook (SPEC §4). Config validation
/// refuses them in a webhook's `headers:`, the request builder drops them, and the HTTP client
/// sets the framing ones itself: one list, so the three can never disagree.
namespace relay::common {

/// Message framing and routing: only the HTTP client writes these.
inline constexpr std::array<std::string_view, 4> kFramingHeaders = {
    "host", "content-length", "transfer-encoding", "connection"};

/// Set by the request builder: on every delivery, and the Standard Webhooks signature headers
/// (SPEC §9) for webhooks with `signature: standard` or `both`.
inline constexpr std::array<std::string_view, 5> kBuilderHeaders = {
    "content-type", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature"};

/// The prefix of relayd's own headers (X-Relay-Event, X-Relay-Delivery, X-Relay-Signature).
inline constexpr std::string_view kRelayHeaderPrefix = "x-relay-";

[[nodiscard]] constexpr bool is_framing_header(std::string_view name) noexcept {
  for (const auto reserved : kFramingHeaders) {
    if (iequals(name, reserved)) return true;
  }
  return false;
}

/// Framing or builder header: a webhook may not set it ("is set by relayd").
[[nodiscard]] constexpr bool is_relay_set_header(std::string_view name) noexcept {
  if (is_framing_header(name)) return true;
  for (const auto reserved : kBuilderHeaders) {
    if (iequals(name, reserved)) return true;
  }
  return false;
}

[[nodiscard]] constexpr bool is_relay_prefixed_header(std::string_view name) noexcept {
  return istarts_with(name, kRelayHeaderPrefix);
}

/// Anything a webhook's configured headers can never replace or duplicate.
[[nodiscard]] constexpr bool is_reserved_header(std::string_view name) noexcept {
  return is_relay_set_header(name) || is_relay_prefixed_header(name);
}

}  // namespace relay::common
