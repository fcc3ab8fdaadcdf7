#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace relay::delivery {

/// An absolute http(s) URL split into what a client needs to connect and send. Plain value.
struct Url {
  std::string scheme;        // "https" or "http" (lower case)
  std::string host;          // lower case; an IPv6 literal without brackets
  std::uint16_t port = 443;  // explicit port, else 443 / 80
  std::string target;        // path + "?query" ("/" when empty); the fragment is dropped
  bool host_is_ip = false;   // IPv4 or IPv6 literal (no DNS, no SNI, certificate IP check)
  bool host_is_ipv6 = false;

  [[nodiscard]] bool is_https() const { return scheme == "https"; }
  /// Host header value: host, "[v6]", plus ":port" when not the scheme's default.
  [[nodiscard]] std::string host_header() const;
  /// "scheme://host:port" (IPv6 in brackets): identifies a connection pool.
  [[nodiscard]] std::string origin() const;
};

/// Parses "https://host[:port][/path][?query][#fragment]" (scheme case-insensitive, http
/// allowed). Rejects other schemes, user info, empty or malformed hosts, bad ports, spaces and
/// control characters. On failure returns nullopt and, when `error` is given, a reason such as
/// "unsupported scheme \"ftp\"". Pure; never throws (except bad_alloc).
std::optional<Url> parse_url(std::string_view text, std::string* error = nullptr);

}  // namespace relay::delivery
