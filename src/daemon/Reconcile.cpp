#include "Reconcile.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace relay::daemon {

void reconcile(store::MaintenanceStore& store, const config::Config& cfg,
               const std::function<void()>& due, std::function<void()> then) {
  std::vector<std::string> ids;
  ids.reserve(cfg.webhooks.size());
  for (const auto& wh : cfg.webhooks) ids.push_back(wh.id);
  auto remaining = std::make_shared<std::atomic<std::size_t>>(cfg.webhooks.size() + 1);
  auto step = [remaining, then = std::move(then)] {
    if (--*remaining == 0 && then) then();
  };
  store.cancel_webhooks_except(ids, [step](store::WriteStatus st, std::size_t cancelled) {
    if (st != store::WriteStatus::kOk) {
      spdlog::error("reconcile: cannot cancel deliveries of removed webhooks: storage unavailable");
    } else if (cancelled > 0) {
      spdlog::warn("cancelled {} unfinished deliveries of webhooks removed from the config",
                   cancelled);
    }
    step();
  });
  for (const auto& wh : cfg.webhooks) {
    store.set_webhook_paused(
        wh.id, !wh.enabled, wh.max_queued,
        [step, id = wh.id](store::WriteStatus st) {
          if (st != store::WriteStatus::kOk) {
            spdlog::error("reconcile: cannot update webhook={}: storage unavailable", id);
          }
          step();
        },
        due);
  }
}

void reconcile_webhook(store::MaintenanceStore& store, const config::Config& cfg,
                       const std::string& id, const std::function<void()>& due) {
  if (const auto* wh = cfg.find_webhook(id)) {
    store.set_webhook_paused(
        id, !wh->enabled, wh->max_queued,
        [id](store::WriteStatus st) {
          if (st != store::WriteStatus::kOk) {
            spdlog::error("reconcile: cannot update webhook={}: storage unavailable", id);
          }
        },
        due);
    return;
  }
  std::vector<std::string> ids;
  ids.reserve(cfg.webhooks.size());
  for (const auto& wh : cfg.webhooks) ids.push_back(wh.id);
  store.cancel_webhooks_except(std::move(ids), [id](store::WriteStatus st, std::size_t n) {
    if (st != store::WriteStatus::kOk) {
      spdlog::error("reconcile: cannot cancel deliveries of webhook={}: storage unavailable", id);
    } else if (n > 0) {
      spdlog::warn("cancelled {} unfinished deliveries of deleted webhook={}", n, id);
    }
  });
}

}  // namespace relay::daemon
