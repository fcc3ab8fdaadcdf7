#include "relay/daemon/ConfigReloader.hpp"

#include <spdlog/spdlog.h>

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
      store_(store),
      on_due_(std::move(on_due)),
      file_config_(std::move(initial)) {}

std::shared_ptr<const config::Config> ConfigReloader::compose(
    const std::shared_ptr<const config::Config>& file) const {
  if (api_webhooks_.empty()) return file;
  auto next = std::make_shared<config::Config>(*file);
  next->webhooks.insert(next->webhooks.end(), api_webhooks_.begin(), api_webhooks_.end());
  return next;
}

void ConfigReloader::set_api_webhooks(std::vector<config::WebhookConfig> webhooks) {
  std::lock_guard lock(reload_mutex_);
  for (const auto& w : webhooks) {
    if (file_config_->find_webhook(w.id) != nullptr) {
      throw std::runtime_error("webhook id '" + w.id +
                               "' is both in the config file and managed over the API; rename "
                               "or remove the one in the file");
    }
  }
  api_webhooks_ = std::move(webhooks);
  current_.store(compose(file_config_));
}

void ConfigReloader::change_api_webhooks(
    const std::function<std::optional<ApiChange>(
        const config::Config&, const std::vector<config::WebhookConfig>&)>& change) {
  std::lock_guard lock(reload_mutex_);
  auto result = change(*current(), api_webhooks_);
  if (!result) return;
  api_webhooks_ = std::move(result->webhooks);
  const auto next = compose(file_config_);
  current_.store(next);
  reconcile_webhook(store_, *next, result->changed_id, on_due_);
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
  if (next->server.listen != old->server.listen || next->storage.path != old->storage.path ||
      next->server.tls_cert != old->server.tls_cert ||
      next->server.tls_key != old->server.tls_key ||
      next->delivery.ca_file != old->delivery.ca_file) {
    outcome.warnings.emplace_back(
        "server.listen, TLS files, storage.path and delivery.ca_file take effect only after a "
        "restart");
    spdlog::warn("reload: {}", outcome.warnings.back());
  }
  configure_logging(next->logging);
  for (const auto& w : config::secret_file_warnings(*next)) {
    outcome.warnings.push_back(w);
    spdlog::warn("{}", w);
  }
  file_config_ = next;
  const auto composed = compose(next);
  current_.store(composed);
  reconcile(store_, *composed, on_due_, on_due_);
  outcome.applied = true;
  outcome.webhooks = composed->webhooks.size();
  spdlog::info("reload: configuration applied ({} webhooks)", outcome.webhooks);
  return outcome;
}

}  // namespace relay::daemon
