#pragma once

#include <iosfwd>
#include <string>

#include "relay/config/ConfigLoader.hpp"

namespace relay::config {

/// `relayd check-config --config PATH`: loads the file with the process environment. On success
/// prints "PATH: OK" and a readable summary (listen address, storage, retention, delivery
/// settings, one line per webhook with id, url, events and enabled) to `out` and returns 0. It
/// never prints a secret, a header value or the token. On failure prints each problem as
/// "PATH:LINE:COL: message" (or "PATH: cannot read config file: <reason>") on its own line to
/// `err` and returns 1. Never throws.
int run_check_config(const std::string& path, std::ostream& out, std::ostream& err);

/// Same with an explicit environment (for tests).
int run_check_config(const std::string& path, std::ostream& out, std::ostream& err,
                     const EnvLookup& env);

/// The summary run_check_config prints on success (no secrets, no header values, no token).
void print_config_summary(const Config& config, std::ostream& out);

}  // namespace relay::config
