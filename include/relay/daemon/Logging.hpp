#pragma once

#include "relay/config/Config.hpp"

namespace relay::daemon {

/// Installs the process-wide spdlog logger (stderr, which systemd sends to the journal):
/// human-readable text, or one JSON object per line. Safe to call again on reload.
void configure_logging(const config::LoggingConfig& logging);

}  // namespace relay::daemon
