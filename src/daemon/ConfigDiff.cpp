#include "ConfigDiff.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace relay::daemon {

namespace {

bool same_previous(const config::WebhookConfig& a, const config::WebhookConfig& b) {
  if (a.previous_secrets.size() != b.previous_secrets.size()) return false;
  for (std::size_t i = 0; i < a.previous_secrets.size(); ++i) {
    if (a.previous_secrets[i].secret != b.previous_secrets[i].secret ||
        a.previous_secrets[i].expires != b.previous_secrets[i].expires) {
      return false;
    }
  }
  return true;
}

std::vector<std::string> webhook_keys(const config::WebhookConfig& a,
                                      const config::WebhookConfig& b) {
  std::vector<std::string> keys;
  if (a.url != b.url) keys.emplace_back("url");
  if (a.secret != b.secret || a.secret_file != b.secret_file) keys.emplace_back("secret");
  if (a.signature != b.signature) keys.emplace_back("signature");
  if (!same_previous(a, b)) keys.emplace_back("previous_secrets");
  if (a.events != b.events) keys.emplace_back("events");
  if (a.enabled != b.enabled) keys.emplace_back("enabled");
  if (a.max_queued != b.max_queued) keys.emplace_back("max_queued");
  if (a.headers != b.headers) keys.emplace_back("headers");
  if (a.allow_insecure_http != b.allow_insecure_http) keys.emplace_back("allow_insecure_http");
  if (a.ca_file != b.ca_file) keys.emplace_back("ca_file");
  return keys;
}

std::int64_t count(const DeliveryCounts& counts, const std::string& id, const char* status) {
  const auto it = counts.find(id);
  if (it == counts.end()) return 0;
  const auto s = it->second.find(status);
  return s == it->second.end() ? 0 : s->second;
}

}  // namespace

std::vector<std::string> restart_only_changes(const config::Config& a, const config::Config& b) {
  std::vector<std::string> keys;
  if (a.server.listen != b.server.listen) keys.emplace_back("server.listen");
  if (a.server.tls_cert != b.server.tls_cert) keys.emplace_back("server.tls_cert");
  if (a.server.tls_key != b.server.tls_key) keys.emplace_back("server.tls_key");
  if (a.storage.path != b.storage.path) keys.emplace_back("storage.path");
  if (a.storage.backend != b.storage.backend) keys.emplace_back("storage.backend");
  if (a.storage.postgres.dsn != b.storage.postgres.dsn) keys.emplace_back("storage.postgres.dsn");
  if (a.storage.postgres.pool_size != b.storage.postgres.pool_size) {
    keys.emplace_back("storage.postgres.pool_size");
  }
  if (a.storage.postgres.node_id != b.storage.postgres.node_id) {
    keys.emplace_back("storage.postgres.node_id");
  }
  if (a.storage.postgres.lease != b.storage.postgres.lease) {
    keys.emplace_back("storage.postgres.lease");
  }
  if (a.delivery.ca_file != b.delivery.ca_file) keys.emplace_back("delivery.ca_file");
  return keys;
}

std::string restart_warning(const std::vector<std::string>& keys) {
  std::string names;
  for (const auto& k : keys) names += (names.empty() ? "" : ", ") + k;
  return names + (keys.size() == 1 ? " takes" : " take") +
         " effect only after a restart (the previous value stays in use)";
}

ConfigDiff diff_configs(const config::Config& a, const config::Config& b) {
  ConfigDiff d;
  for (const auto& wh : a.webhooks) {
    if (b.find_webhook(wh.id) == nullptr) d.removed.push_back(wh.id);
  }
  for (const auto& wh : b.webhooks) {
    const auto* old = a.find_webhook(wh.id);
    if (old == nullptr) {
      d.added.push_back(wh.id);
      for (const auto& gone : a.webhooks) {
        if (gone.url == wh.url && b.find_webhook(gone.id) == nullptr) {
          d.same_url_as_removed.emplace(wh.id, gone.id);
          break;
        }
      }
      continue;
    }
    auto keys = webhook_keys(*old, wh);
    if (!keys.empty()) d.changed.emplace_back(wh.id, std::move(keys));
    if (old->enabled && !wh.enabled) d.disabled.push_back(wh.id);
    if (!old->enabled && wh.enabled) d.enabled.push_back(wh.id);
  }
  d.restart_required = restart_only_changes(a, b);
  auto setting = [&](bool differs, const char* name) {
    if (differs) d.settings_changed.emplace_back(name);
  };
  setting(a.server.token != b.server.token || a.server.token_file != b.server.token_file,
          "server.token_file");
  setting(a.server.max_body_bytes != b.server.max_body_bytes, "server.max_body_bytes");
  setting(a.server.max_connections != b.server.max_connections, "server.max_connections");
  setting(a.storage.retention != b.storage.retention, "storage.retention");
  setting(a.delivery.concurrency != b.delivery.concurrency, "delivery.concurrency");
  setting(a.delivery.per_webhook_concurrency != b.delivery.per_webhook_concurrency,
          "delivery.per_webhook_concurrency");
  setting(a.delivery.timeout != b.delivery.timeout, "delivery.timeout");
  setting(a.delivery.retry_schedule != b.delivery.retry_schedule, "delivery.retry_schedule");
  setting(a.delivery.allow_private_networks != b.delivery.allow_private_networks,
          "delivery.allow_private_networks");
  setting(a.shutdown_grace != b.shutdown_grace, "shutdown_grace");
  setting(a.logging.level != b.logging.level, "logging.level");
  setting(a.logging.format != b.logging.format, "logging.format");
  return d;
}

std::string preview_json(const ConfigDiff& d, const config::Config& next,
                         const DeliveryCounts& counts, const std::vector<std::string>& warnings) {
  using nlohmann::json;
  std::int64_t cancelled = 0;
  std::int64_t paused = 0;
  std::int64_t dropped = 0;
  std::int64_t resumed = 0;
  json removed = json::array();
  for (const auto& id : d.removed) {
    const auto n = count(counts, id, "pending") + count(counts, id, "paused") +
                   count(counts, id, "delivering");
    cancelled += n;
    removed.push_back({{"id", id}, {"deliveries_cancelled", n}});
  }
  json added = json::array();
  for (const auto& id : d.added) {
    json item = {{"id", id}};
    // A rename is a remove + an add: say so, the old id's deliveries are not moved.
    if (const auto it = d.same_url_as_removed.find(id); it != d.same_url_as_removed.end()) {
      item["same_url_as_removed"] = it->second;
    }
    added.push_back(std::move(item));
  }
  json changed = json::array();
  for (const auto& [id, keys] : d.changed) changed.push_back({{"id", id}, {"keys", keys}});
  // The reconcile step: every configured webhook is set paused or not, capped at max_queued.
  json disabled = json::array();
  json enabled = json::array();
  for (const auto& wh : next.webhooks) {
    const auto pending = count(counts, wh.id, "pending");
    const auto already = count(counts, wh.id, "paused");
    if (!wh.enabled) {
      const auto over =
          std::max<std::int64_t>(0, pending + already - static_cast<std::int64_t>(wh.max_queued));
      paused += pending;
      dropped += over;
      if (std::find(d.disabled.begin(), d.disabled.end(), wh.id) != d.disabled.end()) {
        disabled.push_back(
            {{"id", wh.id}, {"deliveries_paused", pending}, {"deliveries_dropped", over}});
      } else if (over > 0) {
        disabled.push_back({{"id", wh.id}, {"deliveries_paused", 0}, {"deliveries_dropped", over}});
      }
    } else if (already > 0) {
      resumed += already;
      enabled.push_back({{"id", wh.id}, {"deliveries_resumed", already}});
    }
  }
  json body = {
      {"status", "dry_run"},
      {"applied", false},
      {"webhooks",
       {{"added", added},
        {"removed", removed},
        {"changed", changed},
        {"disabled", disabled},
        {"enabled", enabled},
        {"total", next.webhooks.size()}}},
      {"deliveries",
       {{"cancelled", cancelled}, {"paused", paused}, {"dropped", dropped}, {"resumed", resumed}}},
      {"restart_required", d.restart_required},
      {"settings_changed", d.settings_changed},
      {"warnings", warnings}};
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace relay::daemon
