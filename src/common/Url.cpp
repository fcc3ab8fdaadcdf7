#include "relay/common/Url.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>

#include "relay/common/Ascii.hpp"

namespace relay::common {
namespace {

struct Failure {
  std::string* error;
  UrlError* code;

  bool operator()(UrlError which, std::string message) const {
    if (error) *error = std::move(message);
    if (code) *code = which;
    return false;
  }
};

// RFC 3986 reg-name restricted to what DNS names use (letters, digits, '-', '.', '_').
bool valid_reg_name(std::string_view host) {
  if (host.empty() || host.size() > 253 || host.front() == '.' || host.front() == '-') {
    return false;
  }
  return std::all_of(host.begin(), host.end(),
                     [](char c) { return is_alnum(c) || c == '-' || c == '.' || c == '_'; });
}

bool is_ipv4_literal(const std::string& host) {
  std::array<unsigned char, 4> buf{};
  return inet_pton(AF_INET, host.c_str(), buf.data()) == 1;
}

bool is_ipv6_literal(const std::string& host) {
  std::array<unsigned char, 16> buf{};
  return inet_pton(AF_INET6, host.c_str(), buf.data()) == 1;
}

bool parse_into(std::string_view text, Url& url, const Failure& fail) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return fail(UrlError::kControlCharacter, "URL contains a space or control character");
    }
  }
  const auto sep = text.find("://");
  if (sep == std::string_view::npos)
    return fail(UrlError::kNotAbsolute, "not an absolute http(s) URL");
  url.scheme = lower(text.substr(0, sep));
  if (url.scheme != "https" && url.scheme != "http") {
    return fail(UrlError::kUnsupportedScheme, "unsupported scheme \"" + url.scheme + "\"");
  }
  std::string_view rest = text.substr(sep + 3);
  const auto authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view tail =
      authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) {
    return fail(UrlError::kUserInfo, "user info in URLs is not supported (use webhook headers)");
  }

  std::string_view host;
  std::string_view port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos)
      return fail(UrlError::kUnterminatedIpv6, "unterminated IPv6 address");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        return fail(UrlError::kTextAfterIpv6, "unexpected characters after IPv6 address");
      has_port = true;
      port = after.substr(1);
    }
    url.host = lower(host);
    if (!is_ipv6_literal(url.host)) return fail(UrlError::kInvalidIpv6, "invalid IPv6 address");
    url.host_is_ip = true;
    url.host_is_ipv6 = true;
  } else {
    const auto colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      has_port = true;
      port = authority.substr(colon + 1);
      host = authority.substr(0, colon);
    } else {
      host = authority;
    }
    if (host.empty()) return fail(UrlError::kMissingHost, "missing host");
    url.host = lower(host);
    if (!valid_reg_name(url.host)) {
      // Told apart so that check-config can point at the brackets; same message for the client.
      const auto which = url.host.find(':') != std::string::npos ? UrlError::kUnbracketedIpv6
                                                                 : UrlError::kInvalidHost;
      return fail(which, "invalid host \"" + url.host + "\"");
    }
    url.host_is_ip = is_ipv4_literal(url.host);
  }

  url.port = url.scheme == "https" ? 443 : 80;
  url.empty_port = has_port && port.empty();
  if (has_port && !port.empty()) {
    if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return fail(UrlError::kInvalidPort, "invalid port");
    }
    // Leading zeros are valid (RFC 3986 port = *DIGIT) and check-config accepts them, so count
    // digits by value, saturating above the range instead of by length.
    int value = 0;
    for (char c : port) value = std::min(value * 10 + (c - '0'), 65536);
    if (value < 1 || value > 65535) return fail(UrlError::kInvalidPort, "invalid port");
    url.port = static_cast<std::uint16_t>(value);
  }

  const auto hash = tail.find('#');
  url.had_fragment = hash != std::string_view::npos;
  tail = tail.substr(0, hash);
  if (tail.empty()) {
    url.target.assign(1, '/');
  } else if (tail.front() == '?') {
    // assign/append rather than "/" + string or = "/": GCC 12 at -O3 reports a false
    // -Wrestrict on those, which -Werror turns into a failed Release build.
    url.target.assign(1, '/').append(tail);
  } else {
    url.target = std::string(tail);
  }
  return true;
}

}  // namespace

std::string Url::host_header() const {
  std::string out;
  if (host_is_ipv6) {
    out.append(1, '[').append(host).append(1, ']');
  } else {
    out = host;
  }
  const std::uint16_t default_port = scheme == "https" ? 443 : 80;
  if (port != default_port) out.append(1, ':').append(std::to_string(port));
  return out;
}

std::string Url::origin() const {
  return scheme + "://" + (host_is_ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<Url> parse_url(std::string_view text, std::string* error, UrlError* code) {
  Url url;
  if (!parse_into(text, url, Failure{error, code})) return std::nullopt;
  return url;
}

}  // namespace relay::common
