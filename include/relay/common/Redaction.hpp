#pragma once

#include <string>
#include <string_view>

/// The one redaction rule (SPEC §8): what relayd shows of a webhook's request in the attempt
/// log, the admin API, check-config and its own log lines. Secrets are
///  - every header value a webhook configures (its `headers:`; only relayd's own request
///    headers, which carry no secret, are shown),
///  - every value in a URL's query string (`?api_token=…`) and any user info,
///  - any value whose name looks like a credential (see looks_secret()).
/// Pure functions; thread-safe; nothing throws except bad_alloc.
namespace relay::common {

/// What a hidden value is replaced with.
inline constexpr std::string_view kRedacted = "[redacted]";

/// Names that suggest a credential, ASCII case-insensitive substrings: auth, cookie, token, key,
/// secret, pass, credential, session, access. ("signature" is not one: relayd's own
/// X-Relay-Signature is shown, it is not the secret.)
[[nodiscard]] bool looks_secret(std::string_view name) noexcept;

/// Whether the value of request header `name` may be shown: only for the headers relayd itself
/// sets on every delivery (Content-Type, User-Agent, X-Relay-*). Everything else came from the
/// configuration and is hidden, whatever its name.
[[nodiscard]] bool request_header_shown(std::string_view name) noexcept;

/// `url` with every query value replaced by kRedacted (names kept, so an operator still sees
/// which parameters are sent; a part without '=' is all value) and any user info replaced by
/// kRedacted; the rest unchanged. "https://h/p?api_token=abc&x" →
/// "https://h/p?api_token=[redacted]&[redacted]".
[[nodiscard]] std::string redact_url(std::string_view url);

/// A libpq connection string with its secrets hidden, for errors and logs: in the
/// `key=value` form every value whose key looks_secret() (password, sslpassword, …) becomes
/// kRedacted; a `postgresql://` / `postgres://` URI goes through redact_url (user info and
/// query values). "host=db password='x y'" → "host=db password=[redacted]".
[[nodiscard]] std::string redact_dsn(std::string_view dsn);

}  // namespace relay::common
