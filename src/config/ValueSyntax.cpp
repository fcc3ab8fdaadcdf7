// The syntax of single config values: webhook ids, header names and values, HOST:PORT, URLs.
#include "ValueSyntax.hpp"

#include <algorithm>
#include <cstddef>

#include "relay/common/Ascii.hpp"
#include "relay/common/Url.hpp"

namespace relay::config::detail {

using common::is_alpha;
using common::is_digit;

namespace {

constexpr std::size_t kMaxWebhookIdLength = 64;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool is_reg_name_char(char c) {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '%';
}

bool is_ipv6_literal_char(char c) {
  // hex digits, ':' and '.', plus a zone id after '%' (e.g. fe80::1%eth0)
  return is_alpha(c) || is_digit(c) || c == ':' || c == '.' || c == '%' || c == '_' || c == '-';
}

/// check-config's wording of each URL rule (docs/configuration.md lists these messages).
std::string url_error_text(common::UrlError code) {
  using common::UrlError;
  switch (code) {
    case UrlError::kControlCharacter:
      return "must not contain spaces or control characters";
    case UrlError::kNotAbsolute:
    case UrlError::kUnsupportedScheme:
      return "expected an absolute https:// URL";
    case UrlError::kUserInfo:
      return "must not contain a user name or password (user:password@)";
    case UrlError::kMissingHost:
      return "missing host";
    case UrlError::kUnterminatedIpv6:
      return "missing ']' after the IPv6 address";
    case UrlError::kTextAfterIpv6:
      return "unexpected text after ']'";
    case UrlError::kInvalidIpv6:
      return "invalid IPv6 address in brackets (zone ids such as %eth0 are not supported)";
    case UrlError::kUnbracketedIpv6:
      return "IPv6 addresses must be written in brackets, e.g. [::1]:8686";
    case UrlError::kInvalidHost:
      return "invalid host name (letters, digits, '-', '.' and '_'; not starting with '.' or '-')";
    case UrlError::kInvalidPort:
      return "invalid port (expected 1-65535)";
  }
  return "invalid URL";  // not reached: the switch names every code (-Wswitch)
}

}  // namespace

std::string trim(std::string s) {
  std::size_t b = 0;
  while (b < s.size() && is_space(s[b])) ++b;
  std::size_t e = s.size();
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

bool is_valid_webhook_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxWebhookIdLength) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || c == '-';
  });
}

bool is_valid_header_name(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return is_alpha(c) || is_digit(c) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

bool is_valid_header_value(std::string_view value) {
  return std::none_of(value.begin(), value.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

std::optional<HostPort> split_host_port(std::string_view s, std::string& error) {
  HostPort hp;
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find(']');
    if (close == std::string_view::npos) {
      error = "missing ']' after the IPv6 address";
      return std::nullopt;
    }
    hp.host = std::string(s.substr(1, close - 1));
    if (hp.host.empty() || hp.host.find(':') == std::string::npos ||
        !std::all_of(hp.host.begin(), hp.host.end(), is_ipv6_literal_char)) {
      error = "invalid IPv6 address in brackets";
      return std::nullopt;
    }
    const std::string_view rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        error = "unexpected text after ']'";
        return std::nullopt;
      }
      hp.had_port = true;
      hp.port = std::string(rest.substr(1));
    }
    return hp;
  }
  const auto colon = s.rfind(':');
  if (colon != std::string_view::npos) {
    if (s.substr(0, colon).find(':') != std::string_view::npos) {
      error = "IPv6 addresses must be written in brackets, e.g. [::1]:8686";
      return std::nullopt;
    }
    hp.had_port = true;
    hp.port = std::string(s.substr(colon + 1));
    s = s.substr(0, colon);
  }
  hp.host = std::string(s);
  if (hp.host.empty()) {
    error = "missing host";
    return std::nullopt;
  }
  if (!std::all_of(hp.host.begin(), hp.host.end(), is_reg_name_char)) {
    error = "invalid host name";
    return std::nullopt;
  }
  return hp;
}

std::optional<std::string> check_url(std::string_view text, bool allow_http, std::string& error) {
  common::UrlError code{};
  const auto url = common::parse_url(text, nullptr, &code);
  if (!url) {
    error = url_error_text(code);
    return std::nullopt;
  }
  if (!url->is_https() && !allow_http) {
    error = "http:// is not allowed unless allow_insecure_http: true";
    return std::nullopt;
  }
  // The client would drop it silently; a fragment in a webhook URL is a mistake worth naming.
  if (url->had_fragment) {
    error = "must not contain a fragment (#...)";
    return std::nullopt;
  }
  // RFC 3986 reads "host:" as the default port and the client accepts it; in a config file it is
  // more likely a port left out by mistake.
  if (url->empty_port) {
    error = "invalid port (expected 1-65535)";
    return std::nullopt;
  }
  // parse_url took the scheme from before the first "://" and only lower-cased it, so the rest
  // of the text follows it unchanged.
  return url->scheme + std::string(text.substr(url->scheme.size()));
}

}  // namespace relay::config::detail
