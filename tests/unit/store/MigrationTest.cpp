// Schema migrations: files as older relayd versions left them, opened by this one.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "Schema.hpp"
#include "SqliteFile.hpp"
#include "StoreTestHelpers.hpp"
#include "relay/common/Time.hpp"
#include "relay/store/Store.hpp"

namespace relay::store {
namespace {

namespace fs = std::filesystem;
using namespace testing_support;

// A file as schema v1 left it: the tables and rows the first release wrote.
void make_v1_file(const fs::path& db) {
  exec(db, std::string(migrations()[0].sql) + "PRAGMA application_id=" +
               std::to_string(kApplicationId) + "; PRAGMA user_version=1;" +
               "INSERT INTO events VALUES ('evt_1', 'ticket.created', '2026-01-01T00:00:00.000Z', "
               "'{}');"
               "INSERT INTO deliveries (id, event_id, webhook_id, status, attempt_count, "
               "next_attempt_at, created_at, updated_at) VALUES "
               "('dlv_p', 'evt_1', 'crm', 'pending', 0, '2026-01-01T00:00:00.000Z', "
               "'2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'),"
               "('dlv_s', 'evt_1', 'erp', 'succeeded', 1, NULL, '2026-01-01T00:00:00.000Z', "
               "'2026-01-01T00:00:01.000Z');"
               "INSERT INTO attempts (delivery_id, attempt_number, started_at, duration_ms, url, "
               "request_headers, outcome) VALUES ('dlv_s', 1, '2026-01-01T00:00:00.500Z', 3, "
               "'https://erp.example/hook', '{}', 'succeeded');");
}

// More rows for the v1 file's deliveries table: `values` is the VALUES list of
// (id, event_id, webhook_id, status, attempt_count, next_attempt_at, created_at, updated_at).
void add_deliveries(const fs::path& db, const std::string& values) {
  exec(db,
       "INSERT INTO deliveries (id, event_id, webhook_id, status, attempt_count, "
       "next_attempt_at, created_at, updated_at) VALUES " +
           values);
}

// Opens (and so migrates) the file; it must come out at the latest version, intact.
std::unique_ptr<Store> open_migrated(const fs::path& db) {
  auto s = open(db);
  EXPECT_EQ(query(db, "PRAGMA user_version"), std::to_string(migrations().size()));
  EXPECT_EQ(query(db, "PRAGMA integrity_check"), "ok");
  return s;
}

// The error sqlite3_exec reports for `sql` ("" when it succeeds).
std::string exec_error(const fs::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr);
  sqlite3_busy_timeout(h, 5000);
  std::string out;
  if (sqlite3_exec(h, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) out = sqlite3_errmsg(h);
  sqlite3_close(h);
  return out;
}

// How many temporary b-trees SQLite builds to run `sql` once.
int ephemeral_tables(const fs::path& db, const std::string& sql) {
  const auto program = query(db, "EXPLAIN " + sql);
  int n = 0;
  for (std::size_t at = 0; (at = program.find("|OpenEphemeral|", at)) != std::string::npos; ++at) {
    ++n;
  }
  return n;
}

TEST(StoreOpen, AVersion1FileIsMigratedInPlaceWithItsRowsAndRules) {
  TempDir dir;
  const auto db = dir.file("relayd.db");
  make_v1_file(db);
  ASSERT_EQ(ephemeral_tables(db, "UPDATE deliveries SET status = ?2 WHERE id = ?1"), 3)
      << "the v1 fixture should have the v1 CHECK and index";

  auto s = open_migrated(db);
  EXPECT_EQ(query(db, "SELECT id, status FROM deliveries ORDER BY id"),
            "dlv_p|pending\ndlv_s|succeeded");
  EXPECT_EQ(query(db, "SELECT delivery_id, outcome FROM attempts"), "dlv_s|succeeded");
  EXPECT_EQ(query(db, "PRAGMA integrity_check"), "ok");
  // The rules are the same ...
  EXPECT_NE(exec_error(db, "UPDATE deliveries SET status = 'done' WHERE id = 'dlv_p'")
                .find("CHECK constraint failed"),
            std::string::npos);
  EXPECT_NE(exec_error(db, "UPDATE attempts SET outcome = 'maybe'").find("CHECK constraint failed"),
            std::string::npos);
  EXPECT_EQ(query(db,
                  "SELECT id FROM deliveries INDEXED BY deliveries_finished WHERE (status = "
                  "'succeeded' OR status = 'failed' OR status = 'cancelled' OR status = "
                  "'dropped') AND updated_at < '2027'"),
            "dlv_s");
  EXPECT_EQ(exec_error(db, "UPDATE deliveries SET status = 'cancelled' WHERE id = 'dlv_p'"), "");
  EXPECT_EQ(query(db,
                  "SELECT count(*) FROM deliveries INDEXED BY deliveries_finished WHERE "
                  "(status = 'succeeded' OR status = 'failed' OR status = 'cancelled' OR "
                  "status = 'dropped') AND updated_at < '2027'"),
            "2");
  // ... and the store keeps working on the migrated file.
  exec(db, "UPDATE deliveries SET status = 'pending' WHERE id = 'dlv_p'");
  auto c = claim(*s, {{"crm", 5}}, common::parse_rfc3339("2026-01-02T00:00:00Z").value());
  ASSERT_EQ(c.claimed.size(), 1U);
  EXPECT_EQ(c.claimed[0].delivery_id, "dlv_p");
}

// Schema v8: the due index holds pending deliveries only (a success deletes its entry instead
// of moving it), and the `delivering` rows an older binary or a test send left behind are found
// at start through an index of their own, not by reading the whole table.
TEST(StoreOpen, AtV8TheDueIndexHoldsThePendingOnesAndInterruptedOnesAreStillFound) {
  TempDir dir;
  const auto db = dir.file("relayd.db");
  make_v1_file(db);
  add_deliveries(db,
                 "('dlv_d', 'evt_1', 'crm', 'delivering', 1, NULL, '2026-01-01T00:00:00.000Z', "
                 "'2026-01-01T00:00:02.000Z'),"
                 "('dlv_q', 'evt_1', 'erp', 'pending', 2, '2026-01-01T00:05:00.000Z', "
                 "'2026-01-01T00:00:00.000Z', '2026-01-01T00:00:03.000Z')");
  auto s = open_migrated(db);
  EXPECT_EQ(query(db,
                  "SELECT id FROM deliveries INDEXED BY deliveries_due WHERE status = 'pending' "
                  "ORDER BY next_attempt_at"),
            "dlv_p\ndlv_q");
  const auto recover = query(
      db,
      "EXPLAIN QUERY PLAN UPDATE deliveries SET status = 'pending' WHERE status = 'delivering'");
  EXPECT_NE(recover.find("deliveries_delivering"), std::string::npos) << recover;
  EXPECT_EQ(recover.find("SCAN"), std::string::npos) << recover;

  EXPECT_EQ(s->recover_interrupted(common::parse_rfc3339("2026-01-02T00:00:00Z").value()), 1U);
  EXPECT_EQ(query(db, "SELECT status, next_attempt_at FROM deliveries WHERE id = 'dlv_d'"),
            "pending|2026-01-02T00:00:00.000Z");
  EXPECT_EQ(query(db,
                  "SELECT count(*) FROM deliveries INDEXED BY deliveries_delivering "
                  "WHERE status = 'delivering'"),
            "0");
  // Claims and the next due time read it as before: the oldest due first, the rest later.
  auto c =
      claim(*s, {{"crm", 5}, {"erp", 5}}, common::parse_rfc3339("2026-01-01T00:01:00Z").value());
  ASSERT_EQ(c.claimed.size(), 1U);
  EXPECT_EQ(c.claimed[0].delivery_id, "dlv_p");
  ASSERT_TRUE(c.next_due.has_value());
  EXPECT_EQ(common::format_rfc3339_ms(*c.next_due), "2026-01-01T00:05:00.000Z");
  // A success leaves the due index; the finished-rows index takes it.
  auto r = attempt_of(c.claimed[0], AttemptOutcome::kSucceeded,
                      common::parse_rfc3339("2026-01-01T00:01:01Z").value());
  ASSERT_EQ(wait([&](auto cb) { s->record_attempt(r, cb); }), WriteStatus::kOk);
  EXPECT_EQ(query(db,
                  "SELECT id FROM deliveries INDEXED BY deliveries_due WHERE status = "
                  "'pending' ORDER BY next_attempt_at"),
            "dlv_q\ndlv_d");
}

// Schema v9: the per-webhook due index holds pending deliveries only, like the global one. The
// counts by status, and paused deliveries (dropped and resumed oldest first), are read through
// (webhook_id, status, id) instead, so "oldest" is now id (= creation) order, not rowid order.
TEST(StoreOpen, AtV9ThePerWebhookDueIndexHoldsThePendingOnesAndPausedOnesGoInIdOrder) {
  TempDir dir;
  const auto db = dir.file("relayd.db");
  make_v1_file(db);
  // Paused rows inserted out of id order: rowid order is c3, c1, c2.
  add_deliveries(db,
                 "('dlv_c3', 'evt_1', 'crm', 'paused', 0, NULL, '2026-01-01T00:00:00.000Z', "
                 "'2026-01-01T00:00:00.000Z'),"
                 "('dlv_c1', 'evt_1', 'crm', 'paused', 0, NULL, '2026-01-01T00:00:00.000Z', "
                 "'2026-01-01T00:00:00.000Z'),"
                 "('dlv_c2', 'evt_1', 'crm', 'paused', 0, NULL, '2026-01-01T00:00:00.000Z', "
                 "'2026-01-01T00:00:00.000Z')");
  auto s = open_migrated(db);
  EXPECT_EQ(query(db, "SELECT sql FROM sqlite_master WHERE name = 'deliveries_webhook_due'"),
            "CREATE INDEX deliveries_webhook_due ON deliveries (webhook_id, next_attempt_at)\n"
            "  WHERE status = 'pending'");
  EXPECT_EQ(query(db,
                  "SELECT id FROM deliveries INDEXED BY deliveries_webhook_due "
                  "WHERE status = 'pending' ORDER BY webhook_id, next_attempt_at"),
            "dlv_p");
  using Counts = std::vector<std::pair<std::string, std::int64_t>>;
  EXPECT_EQ(s->count_by_status("crm"), (Counts{{"paused", 3}, {"pending", 1}}));
  EXPECT_EQ(s->count_by_status("erp"), (Counts{{"succeeded", 1}}));

  // Pausing crm with room for two: the two oldest by id are dropped (by rowid it would be
  // dlv_p and dlv_c3).
  ASSERT_EQ(wait([&](auto cb) { s->set_webhook_paused("crm", true, 2, cb, nullptr); }),
            WriteStatus::kOk);
  EXPECT_EQ(query(db, "SELECT id, status FROM deliveries WHERE webhook_id = 'crm' ORDER BY id"),
            "dlv_c1|dropped\ndlv_c2|dropped\ndlv_c3|paused\ndlv_p|paused");
  EXPECT_EQ(query(db,
                  "SELECT count(*) FROM deliveries INDEXED BY deliveries_webhook_due "
                  "WHERE status = 'pending'"),
            "0");
  // Resumed, they are due again and claimed through the index; a success leaves it.
  ASSERT_EQ(wait([&](auto cb) { s->set_webhook_paused("crm", false, 2, cb, nullptr); }),
            WriteStatus::kOk);
  auto c = claim(*s, {{"crm", 5}});
  ASSERT_EQ(c.claimed.size(), 2U);
  auto r = attempt_of(c.claimed[0], AttemptOutcome::kSucceeded, common::now_ms());
  ASSERT_EQ(wait([&](auto cb) { s->record_attempt(r, cb); }), WriteStatus::kOk);
  EXPECT_EQ(query(db,
                  "SELECT id FROM deliveries INDEXED BY deliveries_webhook_due "
                  "WHERE status = 'pending'"),
            c.claimed[1].delivery_id);
  EXPECT_EQ(s->count_by_status("crm"),
            (Counts{{"delivering", 1}, {"dropped", 2}, {"succeeded", 1}}));
}

// Schema v7 gives every stored attempt its delivery's webhook, in place, and the console's
// aggregates then attribute the old attempts from the attempts alone; delivery_log reads as
// before.
TEST(StoreOpen, OlderAttemptsGetTheirDeliverysWebhookAtV7) {
  TempDir dir;
  const auto db = dir.file("relayd.db");
  make_v1_file(db);
  // Two more attempts, and one whose delivery was deleted with foreign keys off (the sqlite3
  // shell's default): the migration keeps it, with no webhook, instead of failing.
  exec(db,
       "INSERT INTO attempts (delivery_id, attempt_number, started_at, duration_ms, url, "
       "request_headers, outcome) VALUES "
       "('dlv_p', 1, '2026-01-01T00:00:01.000Z', 7, 'https://crm.example/hook', '{}', 'retry'),"
       "('dlv_p', 2, '2026-01-01T00:00:02.000Z', 9, 'https://crm.example/hook', '{}', 'failed'),"
       "('dlv_gone', 1, '2026-01-01T00:00:03.000Z', 1, 'https://x.example/hook', '{}', 'failed')");
  auto s = open_migrated(db);
  EXPECT_EQ(query(db,
                  "SELECT delivery_id, attempt_number, webhook, outcome, duration_ms "
                  "FROM attempts ORDER BY id"),
            "dlv_s|1|erp|succeeded|3\ndlv_p|1|crm|retry|7\ndlv_p|2|crm|failed|9\n"
            "dlv_gone|1||failed|1");
  EXPECT_EQ(query(db, "PRAGMA integrity_check"), "ok");
  EXPECT_EQ(query(db, "SELECT sql FROM sqlite_master WHERE name = 'attempts_started_at'"),
            "CREATE INDEX attempts_started_at ON attempts (started_at, webhook, outcome, "
            "duration_ms)");
  EXPECT_EQ(query(db,
                  "SELECT delivery_id, webhook_id, attempt_number, outcome FROM delivery_log "
                  "ORDER BY started_at"),
            "dlv_s|erp|1|succeeded\ndlv_p|crm|1|retry\ndlv_p|crm|2|failed");
  // Operators' own joins that name webhook_id unqualified still work (not ambiguous).
  EXPECT_EQ(query(db,
                  "SELECT count(*) FROM attempts JOIN deliveries ON deliveries.id = "
                  "attempts.delivery_id WHERE webhook_id = 'crm'"),
            "2");
  const auto stats = s->attempt_stats_since(common::parse_rfc3339("2025-12-31T00:00:00Z").value());
  ASSERT_EQ(stats.size(), 3U);
  EXPECT_EQ(stats[0].webhook_id, "");
  EXPECT_EQ(stats[1].webhook_id, "crm");
  EXPECT_EQ(stats[1].attempts, 2);
  EXPECT_EQ(stats[1].retry, 1);
  EXPECT_EQ(stats[1].failed, 1);
  EXPECT_EQ(stats[1].p99_ms, 9);
  EXPECT_EQ(stats[2].webhook_id, "erp");
  EXPECT_EQ(stats[2].succeeded, 1);
  // New attempts get their webhook from the delivery's row.
  exec(db, "UPDATE deliveries SET status = 'pending' WHERE id = 'dlv_p'");
  auto c = claim(*s, {{"crm", 5}}, common::parse_rfc3339("2026-01-02T00:00:00Z").value());
  ASSERT_EQ(c.claimed.size(), 1U);
  auto r = attempt_of(c.claimed[0], AttemptOutcome::kSucceeded,
                      common::parse_rfc3339("2026-01-02T00:00:01Z").value());
  r.webhook_id.clear();  // as a test send records it: the row knows its webhook
  ASSERT_EQ(wait([&](auto cb) { s->record_attempt(r, cb); }), WriteStatus::kOk);
  EXPECT_EQ(query(db, "SELECT delivery_id, webhook FROM attempts ORDER BY id DESC LIMIT 1"),
            "dlv_p|crm");
  // The dispatcher's records name the claim's webhook: stored as it is.
  submit(*s, {event("evt_2", {pending("erp")})});
  c = claim(*s, {{"erp", 5}});
  ASSERT_EQ(c.claimed.size(), 1U);
  ASSERT_EQ(c.claimed[0].webhook_id, "erp");
  r = attempt_of(c.claimed[0], AttemptOutcome::kRetry, common::now_ms());
  ASSERT_EQ(wait([&](auto cb) { s->record_attempt(r, cb); }), WriteStatus::kOk);
  EXPECT_EQ(query(db, "SELECT webhook FROM attempts ORDER BY id DESC LIMIT 1"), "erp");
}

// What the writer runs for every delivery must not build a temporary b-tree per row (a
// constant `IN (...)` list in a CHECK or a partial index's WHERE does).
TEST(StoreOpen, PerDeliveryWritesBuildNoTemporaryBTrees) {
  TempDir dir;
  for (const std::string name : {"fresh.db", "from-v1.db"}) {
    const auto db = dir.file(name);
    if (name == "from-v1.db") make_v1_file(db);
    open(db)->close();
    for (const std::string sql :
         {"INSERT INTO deliveries (id, event_id, webhook_id, status, attempt_count, "
          "next_attempt_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?6)",
          "UPDATE deliveries SET status = ?2, attempt_count = ?3, next_attempt_at = ?4, "
          "updated_at = ?5, last_status_code = ?6, last_error = ?7 "
          "WHERE rowid = ?8 AND id = ?1 AND status = 'pending'",
          "INSERT INTO attempts (delivery_id, attempt_number, started_at, duration_ms, url, "
          "request_headers, response_status, response_headers, response_body, error, outcome, "
          "webhook) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
          "coalesce(?12, (SELECT webhook_id FROM deliveries WHERE id = ?1)))",
          "UPDATE deliveries SET status = ?2, attempt_count = ?3, next_attempt_at = ?4, "
          "updated_at = ?5, last_status_code = ?6, last_error = ?7 "
          "WHERE id = ?1 AND status = 'delivering'"}) {
      EXPECT_EQ(ephemeral_tables(db, sql), 0) << name << ": " << sql;
    }
  }
}

TEST(StoreOpen, AV1TableNotAsCreatedIsRefusedAndLeftAtV1) {
  TempDir dir;
  const auto db = dir.file("relayd.db");
  make_v1_file(db);
  // Someone changed the table by hand: the migration must not guess.
  exec(db,
       "PRAGMA writable_schema=ON; UPDATE sqlite_schema SET sql = replace(sql, "
       "'''cancelled'', ''dropped''', '''dropped'', ''cancelled''') WHERE name = 'deliveries';"
       "PRAGMA writable_schema=OFF;");
  try {
    open(db);
    ADD_FAILURE() << "opened";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("table deliveries is not as relayd created it"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(query(db, "PRAGMA user_version"), "1");
  EXPECT_EQ(query(db, "SELECT count(*) FROM deliveries"), "2");
  EXPECT_EQ(query(db, "PRAGMA integrity_check"), "ok");
}

}  // namespace
}  // namespace relay::store
