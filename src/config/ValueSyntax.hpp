#pragma once
// Private to the config module: the syntax of single values (webhook ids, header names and
// values, HOST:PORT, webhook URLs), as pure functions of text; the schema (ConfigLoader.cpp and
// the Loader*.cpp files) reports what they refuse at the value's line:col.

#include <optional>
#include <string>
#include <string_view>

namespace relay::config::detail {

/// `s` without leading and trailing ASCII white space.
std::string trim(std::string s);

/// 1-64 characters from a-z, 0-9, _ and -.
bool is_valid_webhook_id(std::string_view id);

/// RFC 9110 token characters.
bool is_valid_header_name(std::string_view name);
/// No control characters but tab.
bool is_valid_header_value(std::string_view value);

struct HostPort {
  std::string host;  // IPv6 without brackets
  std::string port;  // digits as written, may be empty when there was no ':'
  bool had_port = false;
};

/// Splits "host:port" / "[v6]:port" / "host" into parts; the error is a complete sentence.
std::optional<HostPort> split_host_port(std::string_view s, std::string& error);

/// Validates a webhook URL; on success returns it with the scheme lower-cased. The grammar is
/// the delivery client's own (common::parse_url), so check-config cannot pass a URL that every
/// attempt would then fail on; only the policy below is config's. The error never quotes the
/// URL (its path or query may carry a credential).
std::optional<std::string> check_url(std::string_view text, bool allow_http, std::string& error);

}  // namespace relay::config::detail
