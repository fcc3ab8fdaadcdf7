#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "relay/config/Config.hpp"

namespace relay::daemon {

/// What replacing one configuration with another changes, by name only (never a value: a
/// secret or header value must not leak into an answer or a log).
struct ConfigDiff {
  std::vector<std::string> added;    // webhook ids, in the new file's order
  std::vector<std::string> removed;  // webhook ids, in the old file's order
  /// Added id → a removed id with the same URL (probably a rename: its deliveries are
  /// cancelled, not moved).
  std::map<std::string, std::string> same_url_as_removed;
  /// Webhook id → the keys that differ ("url", "secret", "events", …).
  std::vector<std::pair<std::string, std::vector<std::string>>> changed;
  std::vector<std::string> disabled;  // enabled → disabled (pending deliveries pause)
  std::vector<std::string> enabled;   // disabled → enabled (paused deliveries resume)
  /// Settings that a reload does not apply (the daemon keeps the old value until a restart).
  std::vector<std::string> restart_required;
  /// Other settings that a reload applies at once.
  std::vector<std::string> settings_changed;

  [[nodiscard]] bool empty() const {
    return added.empty() && removed.empty() && changed.empty() && restart_required.empty() &&
           settings_changed.empty();
  }
};

ConfigDiff diff_configs(const config::Config& old_config, const config::Config& new_config);

/// Only the restart-only keys that differ (server.listen, server.tls_cert, server.tls_key,
/// storage.path, delivery.ca_file).
std::vector<std::string> restart_only_changes(const config::Config& old_config,
                                              const config::Config& new_config);

/// "storage.path takes effect only after a restart (…)" naming exactly `keys`.
std::string restart_warning(const std::vector<std::string>& keys);

/// Deliveries per webhook and status, as the store counts them.
using DeliveryCounts = std::map<std::string, std::map<std::string, std::int64_t>>;

/// The dry-run answer of POST /v1/reload?dry_run=true (docs/api.md), as JSON text: the diff
/// plus what the reconcile step would do to stored deliveries (`counts`).
std::string preview_json(const ConfigDiff& diff, const config::Config& new_config,
                         const DeliveryCounts& counts, const std::vector<std::string>& warnings);

}  // namespace relay::daemon
