#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relay/common/EventTypes.hpp"
#include "relay/config/Config.hpp"

namespace relay::config {

/// Looks up an environment variable; nullopt when it is not set. Tests inject their own so they
/// never depend on (or change) the real environment.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

/// The process environment (std::getenv; do not call setenv concurrently).
EnvLookup process_env();

/// Reads, expands and validates the YAML file at `path` (plus any secret_file / token_file it
/// names). Throws ConfigError listing every problem as PATH:LINE:COL; a file that cannot be read
/// is one problem "PATH: cannot read config file: <reason>". Thread-safe (no shared state).
std::shared_ptr<const Config> load_config_file(const std::string& path,
                                               const EnvLookup& env = process_env());

/// Same, from text already in memory; `path` is used in messages and to resolve nothing else.
std::shared_ptr<const Config> parse_config(std::string_view yaml_text, const std::string& path,
                                           const EnvLookup& env = process_env());

/// One webhook as the API takes it (SPEC §11): the keys of a `webhooks:` entry as a JSON
/// object (`text`; JSON is YAML), checked by the same rules as the file but without ${VAR}
/// expansion and without `secret_file` (the API must not read the server's files). Problems
/// are "FIELD: message" with the field's path inside the object (`events[2]: unknown event
/// type 'ticket.creatd'`); the caller checks JSON types and unknown keys first. Thread-safe.
/// Returns the webhook (managed_by_api set) or throws ConfigError.
WebhookConfig parse_api_webhook(std::string_view json_text);

/// "250ms", "30s", "5m", "2h", "30d" (a non-negative integer and one unit). nullopt otherwise,
/// including values that do not fit in Duration.
std::optional<Duration> parse_duration(std::string_view text);

/// The inverse of parse_duration, in the largest unit that divides exactly: 90000ms -> "90s",
/// 120000ms -> "2m", 0 -> "0s", 1500ms -> "1500ms".
std::string format_duration(Duration d);

/// Expands `${NAME}` (error when NAME is unset), `${NAME:-default}` (default when NAME is unset or
/// empty) and `$$` (a literal `$`) in `text`; any other `$` is kept as is. NAME is
/// [A-Za-z_][A-Za-z0-9_]*. On failure returns nullopt and sets `error` to a message that names the
/// variable but never a value, e.g. "environment variable RELAY_CRM_SECRET is not set".
std::optional<std::string> expand_env(std::string_view text, const EnvLookup& env,
                                      std::string& error);

/// The user guide's event catalogue (common/EventTypes.hpp) as strings.
const std::vector<std::string>& event_catalogue();
using common::is_known_event_type;

}  // namespace relay::config
