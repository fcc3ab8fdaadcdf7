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
    : path_(std::move(path)),
      current_(initial),
      file_(std::move(initial)),
      store_(store),
      on_due_(std::move(on_due)) {}

std::shared_ptr<const config::Config> ConfigReloader::effective() const {
  return compose(file_);
}

std::shared_ptr<const config::Config> ConfigReloader::compose(
    const std::shared_ptr<const config::Config>& file) const {
  if (disabled_.empty() && api_webhooks_.empty()) return file;
  auto c = std::make_shared<config::Config>(*file);
  c->webhooks.insert(c->webhooks.end(), api_webhooks_.begin(), api_webhooks_.end());
  for (auto& wh : c->webhooks) {
    const auto it = disabled_.find(wh.id);
    if (it == disabled_.end()) continue;
    wh.enabled = false;
    wh.disabled_reason = it->second.reason;
    wh.disabled_at = it->second.at;
  }
  return c;
}

void ConfigReloader::set_api_webhooks(std::vector<config::WebhookConfig> webhooks) {
  std::lock_guard lock(reload_mutex_);
  std::lock_guard state(state_mutex_);
  for (const auto& w : webhooks) {
    if (file_->find_webhook(w.id) != nullptr) {
      throw std::runtime_error("webhook id '" + w.id +
                               "' is both in the config file and managed over the API; rename "
                               "or remove the one in the file");
    }
  }
  api_webhooks_ = std::move(webhooks);
  current_.store(effective());
}

void ConfigReloader::change_api_webhooks(
    const std::function<std::optional<ApiChange>(
        const config::Config&, const std::vector<config::WebhookConfig>&)>& change) {
  std::lock_guard lock(reload_mutex_);
  auto result = change(*current(), api_webhooks_);
  if (!result) return;
  std::shared_ptr<const config::Config> next;
  {
    std::lock_guard state(state_mutex_);
    api_webhooks_ = std::move(result->webhooks);
    next = effective();
    current_.store(next);
  }
  reconcile_webhook(store_, *next, result->changed_id, on_due_);
}

void ConfigReloader::restore_disabled(std::map<std::string, RuntimeDisable> disabled) {
  std::lock_guard lock(state_mutex_);
  disabled_ = std::move(disabled);
  current_.store(effective());
}

void ConfigReloader::set_disabled(const std::string& webhook_id, std::optional<RuntimeDisable> d) {
  std::lock_guard lock(state_mutex_);
  if (d) {
    disabled_.emplace(webhook_id, std::move(*d));  // the first disable's reason stays
  } else {
    disabled_.erase(webhook_id);
  }
  auto next = effective();
  current_.store(next);
  const auto* wh = next->find_webhook(webhook_id);
  if (wh == nullptr) return;
  store_.set_webhook_paused(
      webhook_id, !wh->enabled, wh->max_queued,
      [webhook_id](store::WriteStatus st) {
        if (st != store::WriteStatus::kOk) {
          spdlog::error("webhook={}: cannot pause or resume its deliveries: storage unavailable",
                        webhook_id);
        }
      },
      on_due_);
}

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
  for (const auto& w : api_webhooks_) {
    if (next->find_webhook(w.id) != nullptr) {
      outcome.problems.push_back(path_ + ": webhooks[" + w.id + "].id: '" + w.id +
                                 "' is managed over the API (ids are unique across both)");
      spdlog::error("reload rejected: {}", outcome.problems.back());
      spdlog::error("reload: the previous configuration stays in effect");
      outcome.webhooks = current()->webhooks.size();
      return outcome;
    }
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
  {
    std::lock_guard state(state_mutex_);
    file_ = next;
    const auto applied = effective();
    current_.store(applied);
    reconcile(store_, *applied, on_due_, on_due_);
  }
  outcome.applied = true;
  outcome.webhooks = current()->webhooks.size();
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
  // Compared as a reload would apply it: with the API's webhooks and the runtime disables, so
  // that neither shows as removed or re-enabled.
  {
    std::lock_guard state(state_mutex_);
    preview.next = compose(preview.next);
  }
  return preview;
}

}  // namespace relay::daemon
