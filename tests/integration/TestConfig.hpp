#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "PgServer.hpp"

namespace relay::testing {

/// A complete relayd config for tests: listen on 127.0.0.1:`port`, database `db` (with
/// RELAYD_TEST_BACKEND=postgres: the PostgreSQL database that stands for it, dsn_for), short
/// grace, JSON-free text logs; `webhooks_yaml` is pasted under `webhooks:` (each line already
/// indented by two spaces), `extra_yaml` appended at top level (e.g. a delivery: block is
/// given through `delivery_yaml`).
struct TestConfig {
  std::uint16_t port = 0;
  std::filesystem::path db;
  std::string server_extra;    // more lines under server:, indented by 2
  std::string storage_extra;   // more lines under storage:, indented by 2
  std::string delivery_yaml =  // the whole delivery: block body, indented by 2
      "  concurrency: 16\n"
      "  per_webhook_concurrency: 4\n"
      "  timeout: 5s\n"
      "  retry_schedule: [0s, 1s, 1s, 1s, 1s, 1s]\n"
      "  allow_private_networks: true\n";
  std::string webhooks_yaml;  // list items under webhooks:, indented by 2
  std::string shutdown_grace = "2s";
  std::string log_level = "info";

  [[nodiscard]] std::string yaml() const {
    std::string y;
    y += "server:\n  listen: 127.0.0.1:" + std::to_string(port) + "\n";
    y += "  max_body_bytes: 65536\n" + server_extra;
    y += "storage:\n  path: " + db.string() + "\n  retention: 30d\n" + storage_extra;
    if (postgres_backend()) {
      // The same test on PostgreSQL: `db` names a database of the run's server instead.
      y += "  backend: postgres\n  postgres:\n    dsn: \"" + dsn_for(db) +
           "\"\n    node_id: it\n    lease: 30s\n";
    }
    y += "delivery:\n" + delivery_yaml;
    y += "shutdown_grace: " + shutdown_grace + "\n";
    y += "logging:\n  level: " + log_level + "\n  format: text\n";
    y += webhooks_yaml.empty() ? "webhooks: []\n" : "webhooks:\n" + webhooks_yaml;
    return y;
  }
};

}  // namespace relay::testing
