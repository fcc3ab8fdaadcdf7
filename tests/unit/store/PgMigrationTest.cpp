// The PostgreSQL schema's migrations (src/store/postgres/PgSchema.cpp) on a real server: a
// database as schema v1 left it, with rows, becomes v7 in place when a node opens it, and its
// data stays as it was.
#include <gtest/gtest.h>

#include "PgServer.hpp"
#include "StoreTestHelpers.hpp"
#include "relay/common/Time.hpp"
#include "relay/store/Store.hpp"

namespace relay::store {
namespace {

using relay::testing::pg_exec;
using relay::testing::pg_query;

std::unique_ptr<Store> open_pg(const std::string& dsn) {
  PostgresStoreOptions o;
  o.dsn = dsn;
  o.node_id = "node-a";
  return open_postgres_store(o);
}

// v7 gives every stored attempt its delivery's webhook; the console's aggregates then read the
// attempts alone, and delivery_log reads as before.
TEST(PgMigration, AVersion1DatabaseGetsEachAttemptsWebhookAtV7) {
  const auto dsn = relay::testing::fresh_database();
  open_pg(dsn)->close();
  // Back to what v1 created (its attempts_started_at, no webhook column), with v1's rows.
  pg_exec(dsn,
          "DROP INDEX attempts_started_at; ALTER TABLE attempts DROP COLUMN webhook; "
          "CREATE INDEX attempts_started_at ON attempts (started_at, outcome, duration_ms, "
          "delivery_id); UPDATE relayd_schema SET version = 1;"
          "INSERT INTO events VALUES ('evt_1', 'ticket.created', '2026-01-01T00:00:00.000Z', "
          "'{}');"
          "INSERT INTO deliveries (id, event_id, webhook_id, status, attempt_count, "
          "next_attempt_at, created_at, updated_at) VALUES "
          "('dlv_p', 'evt_1', 'crm', 'pending', 2, '2026-01-01T00:01:00.000Z', "
          "'2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'),"
          "('dlv_s', 'evt_1', 'erp', 'succeeded', 1, NULL, '2026-01-01T00:00:00.000Z', "
          "'2026-01-01T00:00:01.000Z');"
          "INSERT INTO attempts (delivery_id, attempt_number, started_at, duration_ms, url, "
          "request_headers, outcome) VALUES "
          "('dlv_s', 1, '2026-01-01T00:00:00.500Z', 3, 'https://erp.example/hook', '{}', "
          "'succeeded'),"
          "('dlv_p', 1, '2026-01-01T00:00:01.000Z', 7, 'https://crm.example/hook', '{}', 'retry'),"
          "('dlv_p', 2, '2026-01-01T00:00:02.000Z', 9, 'https://crm.example/hook', '{}', "
          "'retry');");
  ASSERT_EQ(pg_query(dsn,
                     "SELECT count(*) FROM information_schema.columns WHERE "
                     "table_name = 'attempts' AND column_name = 'webhook'"),
            "0");

  auto s = open_pg(dsn);
  EXPECT_EQ(pg_query(dsn, "SELECT version FROM relayd_schema"), "7");
  EXPECT_EQ(pg_query(dsn,
                     "SELECT delivery_id, attempt_number, webhook, outcome, duration_ms "
                     "FROM attempts ORDER BY id"),
            "dlv_s|1|erp|succeeded|3\ndlv_p|1|crm|retry|7\ndlv_p|2|crm|retry|9");
  EXPECT_EQ(pg_query(dsn,
                     "SELECT is_nullable FROM information_schema.columns WHERE "
                     "table_name = 'attempts' AND column_name = 'webhook'"),
            "NO");
  EXPECT_EQ(pg_query(dsn,
                     "SELECT indexdef FROM pg_indexes WHERE indexname = "
                     "'attempts_started_at'"),
            "CREATE INDEX attempts_started_at ON public.attempts USING btree (started_at, "
            "webhook, outcome, duration_ms)");
  EXPECT_EQ(pg_query(dsn,
                     "SELECT delivery_id, webhook_id, attempt_number, delivery_status "
                     "FROM delivery_log ORDER BY started_at"),
            "dlv_s|erp|1|succeeded\ndlv_p|crm|1|pending\ndlv_p|crm|2|pending");
  const auto stats = s->attempt_stats_since(common::parse_rfc3339("2025-12-31T00:00:00Z").value());
  ASSERT_EQ(stats.size(), 2U);
  EXPECT_EQ(stats[0].webhook_id, "crm");
  EXPECT_EQ(stats[0].attempts, 2);
  EXPECT_EQ(stats[0].retry, 2);
  EXPECT_EQ(stats[1].webhook_id, "erp");
  EXPECT_EQ(stats[1].succeeded, 1);

  // New attempts take their webhook from the delivery's row, also without one in the record
  // (a test send's).
  auto c = testing_support::claim(*s, {{"crm", 5}},
                                  common::parse_rfc3339("2026-01-02T00:00:00Z").value());
  ASSERT_EQ(c.claimed.size(), 1U);
  auto r = testing_support::attempt_of(c.claimed[0], AttemptOutcome::kSucceeded,
                                       common::parse_rfc3339("2026-01-02T00:00:01Z").value());
  r.webhook_id.clear();
  ASSERT_EQ(testing_support::wait([&](auto cb) { s->record_attempt(r, cb); }), WriteStatus::kOk);
  EXPECT_EQ(pg_query(dsn, "SELECT delivery_id, webhook FROM attempts ORDER BY id DESC LIMIT 1"),
            "dlv_p|crm");
  s->close();

  // Opened again: nothing left to migrate, nothing changed.
  open_pg(dsn)->close();
  EXPECT_EQ(pg_query(dsn, "SELECT version FROM relayd_schema"), "7");
  EXPECT_EQ(pg_query(dsn, "SELECT count(*) FROM attempts"), "4");
}

}  // namespace
}  // namespace relay::store
