// storage.backend and storage.postgres (SPEC §14): parsing, validation and the one rule that
// matters most, that a password in the dsn never reaches a message.
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "ConfigTestSupport.hpp"
#include "relay/common/Redaction.hpp"
#include "relay/config/CheckConfig.hpp"
#include "relay/config/ConfigLoader.hpp"

namespace relay::config {
namespace {

using testing_support::fake_env;
using testing_support::problems;
using Lines = std::vector<std::string>;

TEST(PostgresConfig, DefaultIsSqlite) {
  const auto config = parse_config("webhooks: []\n", "t.yaml", fake_env());
  EXPECT_EQ(config->storage.backend, StorageConfig::Backend::kSqlite);
  EXPECT_EQ(config->storage.postgres.pool_size, 4U);
  EXPECT_EQ(config->storage.postgres.lease, std::chrono::minutes(2));
}

TEST(PostgresConfig, ReadsEveryKeyAndExpandsVariables) {
  const auto config = parse_config(
      "storage:\n  backend: postgres\n  postgres:\n"
      "    dsn: host=127.0.0.1 dbname=relayd password=${PGPASS}\n"
      "    pool_size: 6\n    lease: 45s\nwebhooks: []\n",
      "t.yaml", fake_env({{"PGPASS", "hunter2"}}));
  EXPECT_EQ(config->storage.backend, StorageConfig::Backend::kPostgres);
  EXPECT_EQ(config->storage.postgres.dsn, "host=127.0.0.1 dbname=relayd password=hunter2");
  EXPECT_EQ(config->storage.postgres.pool_size, 6U);
  EXPECT_EQ(config->storage.postgres.lease, std::chrono::seconds(45));
}

TEST(PostgresConfig, Problems) {
  EXPECT_EQ(problems("storage:\n  backend: mysql\n"),
            (Lines{"t.yaml:2:12: storage.backend: expected sqlite or postgres, got 'mysql'"}));
  EXPECT_EQ(problems("storage:\n  backend: postgres\n"),
            (Lines{"t.yaml:2:3: storage.postgres.dsn: required with storage.backend: postgres "
                   "(a libpq connection string, e.g. \"host=db.internal dbname=relayd "
                   "user=relayd password=${PGPASSWORD}\")"}));
  EXPECT_EQ(problems("storage:\n  postgres: { dsn: x, pool_size: 2, size: 3 }\n"),
            (Lines{"t.yaml:2:34: storage.postgres.pool_size: at least 3 (one writer, one "
                   "listener, one reader)",
                   "t.yaml:2:37: unknown key 'size' in storage.postgres"}));
  EXPECT_EQ(problems("storage:\n  backend: postgres\n  postgres: { dsn: x, lease: 10s }\n"
                     "delivery:\n  timeout: 30s\n"),
            (Lines{"t.yaml:1:1: storage.postgres.lease (10s) must be longer than "
                   "delivery.timeout (30s)"}));
}

TEST(PostgresConfig, DsnPasswordIsRedacted) {
  EXPECT_EQ(common::redact_dsn("host=db password=hunter2 dbname=r"),
            "host=db password=[redacted] dbname=r");
  EXPECT_EQ(common::redact_dsn("host=db password = 'a b\\' c' user=u"),
            "host=db password = [redacted] user=u");
  EXPECT_EQ(common::redact_dsn("postgresql://relayd:hunter2@db:5432/relayd?sslpassword=x"),
            "postgresql://[redacted]@db:5432/relayd?sslpassword=[redacted]");
  const auto config = parse_config(
      "storage:\n  backend: postgres\n  postgres: { dsn: 'host=db password=hunter2' }\n"
      "webhooks: []\n",
      "t.yaml", fake_env());
  std::ostringstream out;
  print_config_summary(*config, out);
  EXPECT_NE(out.str().find("dsn: host=db password=[redacted]"), std::string::npos) << out.str();
  EXPECT_EQ(out.str().find("hunter2"), std::string::npos) << out.str();
}

}  // namespace
}  // namespace relay::config
