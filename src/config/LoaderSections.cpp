// relayd's schema, the sections other than webhooks: server, storage (and storage.postgres),
// delivery (and its retry schedule and circuit breaker), logging.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ConfigFiles.hpp"
#include "Loader.hpp"
#include "ValueSyntax.hpp"
#include "relay/common/SecretBox.hpp"

namespace relay::config::detail {

using yaml::parse_uint;

constexpr std::size_t kMaxRetryScheduleEntries = 20;

// ---- sections ------------------------------------------------------------------------------

void Loader::server(const Entry& entry, ServerConfig& out) {
  const auto s = section(
      entry, {"listen", "token_file", "max_body_bytes", "max_connections", "tls_cert", "tls_key"});
  if (!s) return;
  if (const auto* e = s->get("listen")) listen(*e, s->key_path("listen"), out);
  if (const auto* e = s->get("token_file")) {
    const auto path = s->key_path("token_file");
    if (auto file = non_empty_text(*e, path)) {
      std::string error;
      auto contents = read_file(*file, kMaxSecretFileBytes, error);
      if (!contents) {
        add(e->value_mark(), path + ": cannot read '" + *file + "': " + error);
      } else {
        std::string token = trim(std::move(*contents));
        if (token.empty()) {
          add(e->value_mark(), path + ": file '" + *file + "' is empty");
        } else if (std::any_of(token.begin(), token.end(), [](char c) {
                     return static_cast<unsigned char>(c) <= 0x20 ||
                            static_cast<unsigned char>(c) == 0x7f;
                   })) {
          add(e->value_mark(), path + ": the token in '" + *file +
                                   "' must be one word (no spaces, line breaks or control "
                                   "characters)");
        } else {
          out.token_file = *file;
          out.token = std::move(token);
        }
      }
    }
  }
  if (const auto* e = s->get("max_body_bytes")) {
    if (auto n = positive_int(*e, s->key_path("max_body_bytes"),
                              std::numeric_limits<std::uint32_t>::max())) {
      out.max_body_bytes = static_cast<std::size_t>(*n);
    }
  }
  if (const auto* e = s->get("max_connections")) {
    if (auto n = positive_int(*e, s->key_path("max_connections"), 1000000)) {
      out.max_connections = static_cast<std::size_t>(*n);
    }
  }
  const auto* cert = s->get("tls_cert");
  const auto* key = s->get("tls_key");
  if (cert) out.tls_cert = readable_file(*cert, s->key_path("tls_cert"));
  if (key) out.tls_key = readable_file(*key, s->key_path("tls_key"));
  if (cert && !key) {
    add(cert->value_mark(), "server.tls_cert: server.tls_key must be set too (TLS needs both)");
  } else if (key && !cert) {
    add(key->value_mark(), "server.tls_key: server.tls_cert must be set too (TLS needs both)");
  }
}

void Loader::listen(const Entry& e, const std::string& path, ServerConfig& out) {
  const auto v = non_empty_text(e, path);
  if (!v) return;
  std::string error;
  const auto hp = split_host_port(*v, error);
  if (!hp) {
    add(e.value_mark(), path + ": " + error);
    return;
  }
  if (!hp->had_port) {
    add(e.value_mark(), path + ": expected HOST:PORT, e.g. 127.0.0.1:8686 or [::1]:8686");
    return;
  }
  const auto port = parse_uint(hp->port, 65535);
  if (!port) {
    add(e.value_mark(), path + ": invalid port (expected 1-65535, or 0 for any free port)");
    return;
  }
  out.listen = *v;
  out.listen_host = hp->host;
  out.listen_port = static_cast<std::uint16_t>(*port);
}

void Loader::storage(const Entry& entry, StorageConfig& out) {
  const auto s = section(entry, {"backend", "postgres", "path", "retention", "secret_key_file"});
  if (!s) return;
  if (const auto* e = s->get("backend")) {
    if (auto v = non_empty_text(*e, s->key_path("backend"))) {
      if (*v == "sqlite") {
        out.backend = StorageConfig::Backend::kSqlite;
      } else if (*v == "postgres") {
        out.backend = StorageConfig::Backend::kPostgres;
      } else {
        add(e->value_mark(),
            s->key_path("backend") + ": expected sqlite or postgres, got '" + *v + "'");
      }
    }
  }
  if (const auto* e = s->get("postgres")) postgres(*e, out.postgres);
  if (out.backend == StorageConfig::Backend::kPostgres && out.postgres.dsn.empty()) {
    add(entry.value_mark(),
        "storage.postgres.dsn: required with storage.backend: postgres (a libpq connection "
        "string, e.g. \"host=db.internal dbname=relayd user=relayd password=${PGPASSWORD}\")");
  }
  if (const auto* e = s->get("secret_key_file")) {
    const auto path = s->key_path("secret_key_file");
    if (auto file = non_empty_text(*e, path)) {
      std::string error;
      auto contents = read_file(*file, kMaxSecretFileBytes, error);
      if (!contents) {
        add(e->value_mark(), path + ": cannot read '" + *file + "': " + error);
      } else if (auto key = common::parse_secret_key(*contents, error)) {
        out.secret_key_file = *file;
        out.secret_key = std::move(*key);
      } else {
        add(e->value_mark(), path + ": '" + *file + "': " + error);
      }
    }
  }
  if (const auto* e = s->get("path")) {
    if (auto v = non_empty_text(*e, s->key_path("path"))) out.path = *v;
  }
  if (const auto* e = s->get("retention")) {
    if (auto d = positive_duration(*e, s->key_path("retention"))) out.retention = *d;
  }
}

void Loader::postgres(const Entry& entry, PostgresConfig& out) {
  const std::string path = "storage.postgres";
  if (entry.value.IsNull()) return;
  if (!entry.value.IsMap()) {
    add(entry.value_mark(), path + ": expected a mapping, e.g. { dsn: \"host=db dbname=relayd\" }");
    return;
  }
  const auto s = check_keys(collect(entry.value), path, entry.value.Mark(),
                            {"dsn", "pool_size", "lease", "node_id"});
  if (const auto* e = s.get("dsn")) {
    if (auto v = non_empty_text(*e, s.key_path("dsn"))) out.dsn = *v;
  }
  if (const auto* e = s.get("pool_size")) {
    if (auto n = positive_int(*e, s.key_path("pool_size"), 256)) {
      if (*n < 3) {
        add(e->value_mark(),
            s.key_path("pool_size") + ": at least 3 (one writer, one listener, one reader)");
      } else {
        out.pool_size = static_cast<std::size_t>(*n);
      }
    }
  }
  if (const auto* e = s.get("lease")) {
    if (auto d = positive_duration(*e, s.key_path("lease"))) out.lease = *d;
  }
  if (const auto* e = s.get("node_id")) {
    if (auto v = non_empty_text(*e, s.key_path("node_id"))) out.node_id = *v;
  }
}

void Loader::delivery(const Entry& entry, DeliveryConfig& out) {
  const auto s = section(
      entry, {"concurrency", "per_webhook_concurrency", "timeout", "retry_schedule", "ca_file",
              "allow_private_networks", "circuit_breaker", "auto_disable_after"});
  if (!s) return;
  constexpr auto kIntMax = static_cast<std::uint64_t>(std::numeric_limits<int>::max());
  if (const auto* e = s->get("concurrency")) {
    if (auto n = positive_int(*e, s->key_path("concurrency"), kIntMax)) {
      out.concurrency = static_cast<int>(*n);
    }
  }
  if (const auto* e = s->get("per_webhook_concurrency")) {
    if (auto n = positive_int(*e, s->key_path("per_webhook_concurrency"), kIntMax)) {
      out.per_webhook_concurrency = static_cast<int>(*n);
    }
  }
  if (const auto* e = s->get("timeout")) {
    if (auto d = positive_duration(*e, s->key_path("timeout"))) out.timeout = *d;
  }
  if (const auto* e = s->get("retry_schedule")) retry_schedule(*e, out);
  if (const auto* e = s->get("ca_file")) {
    if (auto p = readable_file(*e, s->key_path("ca_file"))) out.ca_file = *p;
  }
  if (const auto* e = s->get("allow_private_networks")) {
    if (auto b = boolean(*e, s->key_path("allow_private_networks"))) {
      out.allow_private_networks = *b;
    }
  }
  if (const auto* e = s->get("circuit_breaker")) circuit_breaker(*e, out.circuit_breaker);
  if (const auto* e = s->get("auto_disable_after")) {
    if (auto d = duration(*e, s->key_path("auto_disable_after"))) out.auto_disable_after = *d;
  }
}

void Loader::circuit_breaker(const Entry& entry, CircuitBreakerConfig& out) {
  const std::string path = "delivery.circuit_breaker";
  if (!entry.value.IsNull() && !entry.value.IsMap()) {
    add(entry.value_mark(), path + ": expected a mapping, e.g. { failures: 10, cooldown: 30s }");
    return;
  }
  if (entry.value.IsNull()) return;
  const auto s = check_keys(collect(entry.value), path, entry.value.Mark(),
                            {"failures", "cooldown", "max_cooldown"});
  if (const auto* e = s.get("failures")) {
    if (auto n = positive_int(*e, s.key_path("failures"), 1000000)) {
      out.failures = static_cast<int>(*n);
    }
  }
  if (const auto* e = s.get("cooldown")) {
    if (auto d = positive_duration(*e, s.key_path("cooldown"))) out.cooldown = *d;
  }
  if (const auto* e = s.get("max_cooldown")) {
    if (auto d = positive_duration(*e, s.key_path("max_cooldown"))) out.max_cooldown = *d;
  }
  if (out.max_cooldown < out.cooldown) {
    add(entry.value_mark(), path + ": max_cooldown must be at least cooldown");
  }
}

void Loader::retry_schedule(const Entry& e, DeliveryConfig& out) {
  const std::string path = "delivery.retry_schedule";
  if (!e.value.IsSequence() || e.value.size() == 0) {
    add(e.value_mark(), path + ": expected a non-empty list of durations, e.g. [0s, 1m, 5m]");
    return;
  }
  if (e.value.size() > kMaxRetryScheduleEntries) {
    add(e.value_mark(), path + ": at most " + std::to_string(kMaxRetryScheduleEntries) +
                            " entries (found " + std::to_string(e.value.size()) + ")");
    return;
  }
  std::vector<Duration> schedule;
  bool ok = true;
  for (std::size_t i = 0; i < e.value.size(); ++i) {
    const YAML::Node item = e.value[i];
    const YAML::Mark mark = item.Mark().is_null() ? e.value_mark() : item.Mark();
    auto d = duration_node(item, mark, path + "[" + std::to_string(i) + "]");
    if (d) {
      schedule.push_back(*d);
    } else {
      ok = false;
    }
  }
  if (ok) out.retry_schedule = std::move(schedule);
}

void Loader::logging(const Entry& entry, LoggingConfig& out) {
  const auto s = section(entry, {"level", "format"});
  if (!s) return;
  if (const auto* e = s->get("level")) {
    if (auto v = text(*e, s->key_path("level"))) {
      static constexpr std::string_view kLevels[] = {"trace", "debug",    "info", "warn",
                                                     "error", "critical", "off"};
      if (std::find(std::begin(kLevels), std::end(kLevels), *v) == std::end(kLevels)) {
        add(e->value_mark(),
            "logging.level: must be one of trace, debug, info, warn, error, critical, off "
            "(found '" +
                *v + "')");
      } else {
        out.level = *v;
      }
    }
  }
  if (const auto* e = s->get("format")) {
    if (auto v = text(*e, s->key_path("format"))) {
      if (*v == "text") {
        out.format = LoggingConfig::Format::kText;
      } else if (*v == "json") {
        out.format = LoggingConfig::Format::kJson;
      } else {
        add(e->value_mark(), "logging.format: must be text or json (found '" + *v + "')");
      }
    }
  }
}

}  // namespace relay::config::detail
