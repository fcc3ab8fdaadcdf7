// The fixture of the store's role-API tests (BackendTest.cpp, BackendWebhooksTest.cpp): each test
// runs once per backend, on a fresh SQLite file and on a fresh database of the run's PostgreSQL
// server (tests/support/PgServer.hpp).
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "PgServer.hpp"
#include "SqliteFile.hpp"
#include "StoreTestHelpers.hpp"
#include "relay/common/Time.hpp"
#include "relay/store/Store.hpp"

namespace relay::store::backend_test {

namespace fs = std::filesystem;
using common::TimePoint;
using namespace std::chrono_literals;
using namespace testing_support;

/// The options both backends share.
struct Opts {
  std::size_t max_queued_writes = 65536;
  std::size_t max_group = 4096;
  std::size_t bulk_chunk = 5000;
  std::function<void()> before_group_for_testing;
};

class StoreBackend : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (pg()) dsn_ = relay::testing::fresh_database();
  }
  [[nodiscard]] bool pg() const { return GetParam() == "postgres"; }

  /// Opens the test's database (the same one each time: a reopen is a restart).
  std::unique_ptr<Store> open(const Opts& o = {}) {
    if (pg()) {
      PostgresStoreOptions p;
      p.dsn = dsn_;
      p.node_id = "node-a";
      p.max_queued_writes = o.max_queued_writes;
      p.max_group = o.max_group;
      p.bulk_chunk = o.bulk_chunk;
      p.before_group_for_testing = o.before_group_for_testing;
      return open_postgres_store(p);
    }
    StoreOptions s;
    s.path = dir_.file("r.db").string();
    s.max_queued_writes = o.max_queued_writes;
    s.max_group = o.max_group;
    s.bulk_chunk = o.bulk_chunk;
    s.before_group_for_testing = o.before_group_for_testing;
    return open_sqlite_store(s);
  }
  /// Rows as "a|b\nc|d" (NULL for SQL NULL), read outside the store.
  std::string query(const std::string& sql) {
    return pg() ? relay::testing::pg_query(dsn_, sql)
                : testing_support::query(dir_.file("r.db"), sql);
  }
  void exec(const std::string& sql) {
    const auto r = query(sql);
    ASSERT_FALSE(r.starts_with("error: ")) << sql << ": " << r;
  }
  /// The column DueDelivery::rowid names.
  [[nodiscard]] std::string rowid() const { return pg() ? "seq" : "rowid"; }

  std::string dsn_;
  relay::test::TempDir dir_;  // SQLite only
};

}  // namespace relay::store::backend_test
