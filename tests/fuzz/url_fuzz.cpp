// libFuzzer target for what relayd parses from webhook URLs and subscriber responses:
// relay::common::parse_url (with check-config's policy on top of it), parse_retry_after (with
// decide_retry on its result) and the SSRF guard's classify_address. Every input goes through
// all three; invariants are checked on the results (docs/reliability.md, "Fuzzing").
#include <arpa/inet.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "FuzzCheck.hpp"
#include "relay/common/Url.hpp"
#include "relay/config/ConfigLoader.hpp"
#include "relay/delivery/AddressPolicy.hpp"
#include "relay/delivery/RetryPolicy.hpp"

namespace {

using namespace std::chrono_literals;
using relay::delivery::AddressClass;
using relay::delivery::Duration;

bool is_ctl_or_space(char c) {
  return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
}

bool same_url(const relay::common::Url& a, const relay::common::Url& b) {
  return a.scheme == b.scheme && a.host == b.host && a.port == b.port && a.target == b.target &&
         a.host_is_ip == b.host_is_ip && a.host_is_ipv6 == b.host_is_ipv6;
}

void check_url(std::string_view text) {
  std::string error;
  const auto url = relay::common::parse_url(text, &error);
  if (!url) {
    RELAY_FUZZ_CHECK(!error.empty());
    return;
  }
  RELAY_FUZZ_CHECK(url->scheme == "https" || url->scheme == "http");
  RELAY_FUZZ_CHECK(!url->host.empty());
  RELAY_FUZZ_CHECK(url->port >= 1);  // uint16_t: at most 65535 by type
  RELAY_FUZZ_CHECK(!url->target.empty() && url->target.front() == '/');
  RELAY_FUZZ_CHECK(url->target.find('#') == std::string::npos);
  for (char c : url->host) {
    RELAY_FUZZ_CHECK(!is_ctl_or_space(c));
    RELAY_FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
    RELAY_FUZZ_CHECK(c != '@' && c != '/' && c != '?' && c != '#' && c != '[' && c != ']');
  }
  for (char c : url->target) RELAY_FUZZ_CHECK(!is_ctl_or_space(c));
  RELAY_FUZZ_CHECK(!url->host_is_ipv6 || url->host_is_ip);
  // What the client treats as an IP literal (no DNS, no SNI) is exactly what the SSRF guard can
  // classify without resolving.
  const auto host_class = relay::delivery::classify_address(url->host);
  RELAY_FUZZ_CHECK(host_class.has_value() == url->host_is_ip);
  RELAY_FUZZ_CHECK(!url->host_header().empty());

  // The pieces identify the URL: origin + target parses back to the same value.
  const auto again = relay::common::parse_url(url->origin() + url->target);
  RELAY_FUZZ_CHECK(again.has_value());
  RELAY_FUZZ_CHECK(same_url(*url, *again));
}

/// A YAML double-quoted scalar holding exactly `text` (JSON escapes are valid YAML escapes).
std::string yaml_quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7f) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\x%02x", u);
      out += escape;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

/// check-config validates webhook URLs with parse_url itself, so "config accepts a URL the
/// client cannot parse" cannot happen by construction any more. What is left to check is the
/// other direction: a URL the client can use is refused by check-config only for its documented
/// policy (a fragment or an empty port; http is allowed here), and the URL it stores parses back
/// to the same value.
void check_config_policy(std::string_view text, const relay::common::Url& url) {
  // '$' is read as an environment reference, and bytes >= 0x80 cannot go into YAML as raw
  // bytes (an \xNN escape is a code point, two bytes in UTF-8): the config would see another URL.
  for (char c : text) {
    if (c == '$' || static_cast<unsigned char>(c) >= 0x80) return;
  }
  const std::string yaml = "webhooks:\n  - id: fuzz\n    url: " + yaml_quote(text) +
                           "\n    secret: s\n    events: [\"*\"]\n    allow_insecure_http: true\n";
  const relay::config::EnvLookup no_env = [](const std::string&) -> std::optional<std::string> {
    return std::nullopt;
  };
  const bool allowed = !url.had_fragment && !url.empty_port;
  std::shared_ptr<const relay::config::Config> config;
  try {
    config = relay::config::parse_config(yaml, "fuzz.yaml", no_env);
  } catch (const relay::config::ConfigError& e) {
    RELAY_FUZZ_CHECK(!allowed);
    RELAY_FUZZ_CHECK(e.problems().size() == 1);
    const std::string& message = e.problems()[0].message;
    RELAY_FUZZ_CHECK(message.ends_with(url.had_fragment ? "must not contain a fragment (#...)"
                                                        : "invalid port (expected 1-65535)"));
    return;
  }
  RELAY_FUZZ_CHECK(allowed);
  RELAY_FUZZ_CHECK(config->webhooks.size() == 1);
  const auto stored = relay::common::parse_url(config->webhooks[0].url);
  RELAY_FUZZ_CHECK(stored.has_value());
  RELAY_FUZZ_CHECK(same_url(*stored, url));
}

AddressClass classify_checked(const std::string& literal) {
  const auto c = relay::delivery::classify_address(literal);
  RELAY_FUZZ_CHECK(c.has_value());
  return *c;
}

void check_address(std::string_view text) {
  const auto c = relay::delivery::classify_address(text);
  if (!c) return;
  const auto name = relay::delivery::to_string(*c);
  RELAY_FUZZ_CHECK(!name.empty() && name != "unknown");

  std::array<std::uint8_t, 4> v4{};
  const std::string owned(text);
  if (inet_pton(AF_INET, owned.c_str(), v4.data()) != 1) return;
  // IPv6 spellings of an IPv4 address must not get past the guard when the IPv4 one does not.
  char dotted[16];
  std::snprintf(dotted, sizeof dotted, "%u.%u.%u.%u", v4[0], v4[1], v4[2], v4[3]);
  RELAY_FUZZ_CHECK(classify_checked(dotted) == *c);
  RELAY_FUZZ_CHECK(classify_checked(std::string("::ffff:") + dotted) == *c);
  RELAY_FUZZ_CHECK(classify_checked(std::string("64:ff9b::") + dotted) == *c);
  char six_to_four[40];
  std::snprintf(six_to_four, sizeof six_to_four, "2002:%02x%02x:%02x%02x::1", v4[0], v4[1], v4[2],
                v4[3]);
  RELAY_FUZZ_CHECK(classify_checked(six_to_four) == *c);
  // ::a.b.c.d: ::1 and :: are loopback/unspecified themselves; either way not public.
  const bool public_v4 = relay::delivery::is_address_allowed(*c, false);
  const bool public_compat =
      relay::delivery::is_address_allowed(classify_checked(std::string("::") + dotted), false);
  RELAY_FUZZ_CHECK(public_v4 == public_compat);
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

void check_retry_after(std::string_view text) {
  // 2025-01-15T10:30:00Z, fixed so that a finding reproduces.
  const relay::common::TimePoint now{1736937000000ms};
  const auto value = relay::delivery::parse_retry_after(text, now);
  const auto trimmed = trim(text);
  if (all_digits(trimmed)) {
    // delta-seconds: always accepted, saturated at 1e9 s.
    RELAY_FUZZ_CHECK(value.has_value());
    RELAY_FUZZ_CHECK(*value <= Duration(std::chrono::seconds(1'000'000'000)));
  }
  if (!value) return;
  RELAY_FUZZ_CHECK(*value >= Duration{0});
  if (!all_digits(trimmed)) {
    // An HTTP-date (IMF-fixdate is exactly 29 characters): the delay shrinks as time passes.
    RELAY_FUZZ_CHECK(trimmed.size() == 29);
    const auto earlier = relay::delivery::parse_retry_after(text, now - 1h);
    RELAY_FUZZ_CHECK(earlier.has_value());
    RELAY_FUZZ_CHECK(*earlier >= *value);
    RELAY_FUZZ_CHECK(*earlier - *value <= Duration(1h));
  }

  // The decision honours it within the schedule's delay and the 8 h cap.
  const std::vector<Duration> schedule = {0s, 1min, 5min, 30min, 2h, 8h};
  for (int status : {429, 503}) {
    const auto decision = relay::delivery::decide_retry(1, status, value, schedule);
    RELAY_FUZZ_CHECK(decision.kind == relay::delivery::RetryDecision::Kind::kRetry);
    RELAY_FUZZ_CHECK(decision.delay >= Duration(1min));
    RELAY_FUZZ_CHECK(decision.delay <= Duration(8h));
    RELAY_FUZZ_CHECK(decision.delay == std::max(Duration(1min), std::min(*value, Duration(8h))));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (const auto url = relay::common::parse_url(text)) check_config_policy(text, *url);
  check_url(text);
  check_address(text);
  check_retry_after(text);
  return 0;
}
