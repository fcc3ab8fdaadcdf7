#pragma once

#include <spdlog/common.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "relay/config/Config.hpp"

namespace relay::daemon {

/// Installs the process-wide spdlog logger (stderr, which systemd sends to the journal):
/// human-readable text, or one JSON object per line. When stderr is the journal (JOURNAL_STREAM
/// names it), every line starts with sd-daemon's "<N>" priority prefix so that
/// `journalctl -p warning` sees warnings and errors. Safe to call again on reload.
void configure_logging(const config::LoggingConfig& logging);

/// The syslog priority (LOG_ERR, LOG_WARNING, …) journald should record for an spdlog level.
int journal_priority(spdlog::level::level_enum level);

/// True when JOURNAL_STREAM holds the device and inode of this process's stderr (systemd sets it
/// when StandardError=journal), i.e. the "<N>" prefixes will be understood.
bool stderr_is_journal();

/// The `delivery=`, `webhook=`, `event=` and `attempt=` tokens of a log message, in message
/// order, for the JSON format's own keys. A token starts the message or follows a space; its
/// value runs to the next space. Repeated keys: the first wins.
std::vector<std::pair<std::string, std::string>> log_fields(std::string_view message);

/// One JSON log line (without the newline), as the json format writes it: ts, level, msg and the
/// lifted fields (attempt as a number when it is one). Exposed for tests.
std::string json_log_line(std::string_view ts, std::string_view level, std::string_view message);

}  // namespace relay::daemon
