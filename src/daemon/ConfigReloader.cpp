#include "relay/daemon/ConfigReloader.hpp"

#include <spdlog/spdlog.h>

#include "ConfigDiff.hpp"
#include "Reconcile.hpp"
#include "relay/config/ConfigLoader.hpp"
#include "relay/config/FileModes.hpp"
#include "relay/daemon/Logging.hpp"
#include "relay/store/Store.hpp"

namespace relay::daemon {

ConfigReloader::ConfigReloader(std::string path, std::shared_ptr<const config::Config> initial,
                               store::MaintenanceStore& store, std::function<void()> on_due)
    : path_(std::move(path)), current_(std::move(initial)), store_(store), on_due_(on_due) {}

ReloadOutcome ConfigReloader::reload() {
  // Two reloads at once would reconcile in either order; one at a time, the last file wins.
  std::lock_guard lock(reload_mutex_);
  ReloadOutcome outcome;
  std::shared_ptr<const config::Config> next;
  try {
    next = config::load_config_file(path_);
  } catch (const config::ConfigError& e) {
    for (const auto& p : e.problems()) {
      outcome.problems.push_back(p.to_string());
      spdlog::error("reload rejected: {}", p.to_string());
    }
    spdlog::error("reload: the previous configuration stays in effect");
    outcome.webhooks = current()->webhooks.size();
    return outcome;
  }
  const auto old = current();
  if (const auto keys = restart_only_changes(*old, *next); !keys.empty()) {
    // Name only what changed: an operator who moved the database should not hunt for a
    // listen-address change that is not there.
    outcome.warnings.push_back(restart_warning(keys));
    spdlog::warn("reload: {}", outcome.warnings.back());
  }
  configure_logging(next->logging);
  for (const auto& w : config::secret_file_warnings(*next)) {
    outcome.warnings.push_back(w);
    spdlog::warn("{}", w);
  }
  current_.store(next);
  reconcile(store_, *next, on_due_, on_due_);
  outcome.applied = true;
  outcome.webhooks = next->webhooks.size();
  spdlog::info("reload: configuration applied ({} webhooks)", outcome.webhooks);
  return outcome;
}

ReloadPreview ConfigReloader::preview() const {
  ReloadPreview preview;
  preview.current = current();
  try {
    preview.next = config::load_config_file(path_);
  } catch (const config::ConfigError& e) {
    for (const auto& p : e.problems()) preview.problems.push_back(p.to_string());
    return preview;
  }
  if (const auto keys = restart_only_changes(*preview.current, *preview.next); !keys.empty()) {
    preview.warnings.push_back(restart_warning(keys));
  }
  for (const auto& w : config::secret_file_warnings(*preview.next)) preview.warnings.push_back(w);
  return preview;
}

}  // namespace relay::daemon
