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

inline std::string sqlite_query(const fs::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr);
  sqlite3_busy_timeout(h, 5000);
  sqlite3_stmt* s = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(h, sql.c_str(), -1, &s, nullptr) == SQLITE_OK) {
    while (sqlite3_step(s) == SQLITE_ROW) {
      if (!out.empty()) out += "\n";
      for (int i = 0; i < sqlite3_column_count(s); ++i) {
        if (i) out += "|";
        const auto* t = sqlite3_column_text(s, i);
        out += t ? reinterpret_cast<const char*>(t) : "NULL";
      }
    }
    if (sqlite3_errcode(h) != SQLITE_OK && sqlite3_errcode(h) != SQLITE_DONE &&
        sqlite3_errcode(h) != SQLITE_ROW) {
      out = std::string("error: ") + sqlite3_errmsg(h);
    }
  } else {
    out = std::string("error: ") + sqlite3_errmsg(h);
  }
  sqlite3_finalize(s);
  sqlite3_close(h);
  return out;
}

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
    return pg() ? relay::testing::pg_query(dsn_, sql) : sqlite_query(dir_.file("r.db"), sql);
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
