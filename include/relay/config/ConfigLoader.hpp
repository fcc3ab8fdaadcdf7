#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "relay/config/Config.hpp"

namespace relay::config {

/// Looks up an environment variable; nullopt when it is not set.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

/// The process environment.
EnvLookup process_env();

/// Reads, expands and validates the YAML file at `path` (plus any secret_file / token_file it
/// names). Throws ConfigError listing every problem as PATH:LINE:COL.
std::shared_ptr<const Config> load_config_file(const std::string& path,
                                               const EnvLookup& env = process_env());

/// Same, from text already in memory; `path` is used in messages and to resolve nothing else.
std::shared_ptr<const Config> parse_config(std::string_view yaml_text, const std::string& path,
                                           const EnvLookup& env = process_env());

/// "250ms", "30s", "5m", "2h", "30d" (a non-negative integer and one unit). nullopt otherwise.
std::optional<Duration> parse_duration(std::string_view text);

/// The user guide's event catalogue (ticket.created, …, sla.breached).
const std::vector<std::string>& event_catalogue();
bool is_known_event_type(std::string_view type);

}  // namespace relay::config
