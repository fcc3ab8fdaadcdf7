#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

/// The one URL grammar of relayd. The delivery client connects with what parse_url() returns,
/// and check-config validates webhook URLs with the same function (adding only its policy: http
/// needs allow_insecure_http, no fragment, no empty port), so a URL check-config accepts is one
/// the client can send to. Pure; never throws (except bad_alloc).
namespace relay::common {

/// An absolute http(s) URL split into what a client needs to connect and send. Plain value.
struct Url {
  std::string scheme;        // "https" or "http" (lower case)
  std::string host;          // lower case; an IPv6 literal without brackets
  std::uint16_t port = 443;  // explicit port, else 443 / 80
  std::string target;        // path + "?query" ("/" when empty); the fragment is dropped
  bool host_is_ip = false;   // IPv4 or IPv6 literal (no DNS, no SNI, certificate IP check)
  bool host_is_ipv6 = false;
  // How it was written, for callers with a stricter policy than the grammar (check-config).
  bool had_fragment = false;  // a '#' was present (the client drops it)
  bool empty_port = false;    // "host:" with nothing after the colon (RFC 3986: the default)

  [[nodiscard]] bool is_https() const { return scheme == "https"; }
  /// Host header value: host, "[v6]", plus ":port" when not the scheme's default.
  [[nodiscard]] std::string host_header() const;
  /// "scheme://host:port" (IPv6 in brackets): identifies a connection pool.
  [[nodiscard]] std::string origin() const;
};

/// Which rule a URL broke, in the order they are checked, so that a caller can word its own
/// messages (check-config's are pinned by docs/configuration.md).
enum class UrlError {
  kControlCharacter,   // a byte <= 0x20 or 0x7f anywhere
  kNotAbsolute,        // no "scheme://"
  kUnsupportedScheme,  // not http or https
  kUserInfo,           // "user:password@" in the authority
  kMissingHost,
  kUnterminatedIpv6,  // "[" without "]"
  kTextAfterIpv6,     // "[v6]" followed by something other than ":port"
  kInvalidIpv6,       // bracketed host that is not an IPv6 address (zone ids included)
  kUnbracketedIpv6,   // a ':' inside an unbracketed host, e.g. "::1" or "a:b:443"
  kInvalidHost,       // not a DNS-style name: letters, digits, '-', '.', '_'; at most 253
  kInvalidPort,       // not digits, or outside 1-65535
};

/// Parses "https://host[:port][/path][?query][#fragment]" (scheme case-insensitive, http
/// allowed). Rejects other schemes, user info, empty or malformed hosts, bad ports, spaces and
/// control characters. On failure returns nullopt and, when given, sets `error` to a reason such
/// as "unsupported scheme \"ftp\"" and `code` to the rule that failed.
std::optional<Url> parse_url(std::string_view text, std::string* error = nullptr,
                             UrlError* code = nullptr);

}  // namespace relay::common
