#pragma once

#include <string>

namespace relay::daemon {

/// `relayd serve`: loads the config, opens the store, binds the listener, runs intake and
/// delivery until SIGTERM/SIGINT, reloads on SIGHUP, talks to systemd (sd_notify).
/// Returns the process exit code; start-up failures are logged as one clear line and give 1.
int run_serve(const std::string& config_path);

}  // namespace relay::daemon
