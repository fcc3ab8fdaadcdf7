// The web console's aggregates (AdminStore::attempt_stats_since, attempts_per_minute,
// attempt_summary, count_by_status) against a
// real SQLite file: windows, outcomes, percentiles, per-minute buckets, and the query plans
// that keep them cheap on a large log (docs/console.md).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <future>

#include "TempDir.hpp"
#include "relay/common/Ids.hpp"
#include "relay/common/Time.hpp"
#include "relay/store/Store.hpp"

namespace relay::store {
namespace {

namespace fs = std::filesystem;
using common::TimePoint;
using namespace std::chrono_literals;

class StatsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions o;
    o.path = dir_.file("s.db").string();
    store_ = open_sqlite_store(o);
  }
  void TearDown() override { store_->close(); }

  // One event with one delivery to `webhook`; returns the delivery id.
  std::string delivery(const std::string& webhook,
                       DeliveryStatus status = DeliveryStatus::kPending) {
    NewEvent e;
    e.id = common::new_event_id();
    e.event_type = "ticket.created";
    e.created_at = common::now_ms();
    e.payload = "{}";
    e.deliveries.push_back({common::new_delivery_id(), webhook, status, 100});
    const auto id = e.deliveries[0].id;
    std::promise<WriteStatus> p;
    EXPECT_TRUE(store_->submit_events(
        {std::move(e)}, [&](WriteStatus st, std::vector<EventReceipt>) { p.set_value(st); }));
    EXPECT_EQ(p.get_future().get(), WriteStatus::kOk);
    return id;
  }

  void attempt(const std::string& delivery_id, int number, TimePoint started,
               std::int64_t duration_ms, AttemptOutcome outcome) {
    AttemptRecord r;
    r.delivery_id = delivery_id;
    r.attempt_number = number;
    r.started_at = started;
    r.duration_ms = duration_ms;
    r.url = "https://x/hook";
    r.request_headers = "{}";
    r.response_status = outcome == AttemptOutcome::kSucceeded ? 200 : 500;
    r.outcome = outcome;
    r.new_status = DeliveryStatus::kFailed;
    std::promise<WriteStatus> p;
    store_->record_attempt(r, [&](WriteStatus st) { p.set_value(st); });
    ASSERT_EQ(p.get_future().get(), WriteStatus::kOk);
  }

  std::string plan(const std::string& sql) {
    sqlite3* h = nullptr;
    sqlite3_open_v2(dir_.file("s.db").c_str(), &h, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* s = nullptr;
    std::string out;
    EXPECT_EQ(sqlite3_prepare_v2(h, ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &s, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(h);
    while (sqlite3_step(s) == SQLITE_ROW) {
      out += reinterpret_cast<const char*>(sqlite3_column_text(s, 3));
      out += "\n";
    }
    sqlite3_finalize(s);
    sqlite3_close(h);
    return out;
  }

  relay::test::TempDir dir_;
  std::unique_ptr<Store> store_;
};

const WebhookAttemptStats* find(const std::vector<WebhookAttemptStats>& all,
                                const std::string& id) {
  for (const auto& s : all) {
    if (s.webhook_id == id) return &s;
  }
  return nullptr;
}

TEST_F(StatsTest, WindowsOutcomesAndPercentiles) {
  const auto now = common::now_ms();
  // crm: 100 successes in the last hour, 1..100 ms.
  const auto crm = delivery("crm");
  for (int i = 1; i <= 100; ++i) attempt(crm, i, now - 10min, i, AttemptOutcome::kSucceeded);
  // billing: a retry and a failure in the hour, a success 3 h ago, one 25 h ago (outside).
  const auto billing = delivery("billing");
  attempt(billing, 1, now - 25h, 7, AttemptOutcome::kSucceeded);
  attempt(billing, 2, now - 3h, 20, AttemptOutcome::kSucceeded);
  attempt(billing, 3, now - 30min, 5000, AttemptOutcome::kRetry);
  attempt(billing, 4, now - 5min, 40, AttemptOutcome::kFailed);

  const auto hour = store_->attempt_stats_since(now - 1h);
  ASSERT_EQ(hour.size(), 2U);
  const auto* c = find(hour, "crm");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->attempts, 100);
  EXPECT_EQ(c->succeeded, 100);
  EXPECT_EQ(c->p50_ms, 50);
  EXPECT_EQ(c->p99_ms, 99);
  const auto* b = find(hour, "billing");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->attempts, 2);
  EXPECT_EQ(b->succeeded, 0);
  EXPECT_EQ(b->retry, 1);
  EXPECT_EQ(b->failed, 1);
  EXPECT_EQ(b->p50_ms, 40);
  EXPECT_EQ(b->p99_ms, 5000);

  const auto day = store_->attempt_stats_since(now - 24h);
  b = find(day, "billing");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->attempts, 3);  // not the one 25 h ago
  EXPECT_EQ(b->succeeded, 1);
  EXPECT_EQ(b->p50_ms, 40);

  EXPECT_TRUE(store_->attempt_stats_since(now + 1min).empty());
}

TEST_F(StatsTest, AttemptsPerMinute) {
  const auto minute = std::chrono::floor<std::chrono::minutes>(common::now_ms()) - 10min;
  const TimePoint t0{
      std::chrono::duration_cast<std::chrono::milliseconds>(minute.time_since_epoch())};
  const auto crm = delivery("crm");
  const auto billing = delivery("billing");
  attempt(crm, 1, t0 + 1s, 5, AttemptOutcome::kSucceeded);
  attempt(billing, 1, t0 + 59s, 5, AttemptOutcome::kRetry);
  attempt(billing, 2, t0 + 2min, 5, AttemptOutcome::kFailed);
  attempt(crm, 2, t0 - 25h, 5, AttemptOutcome::kSucceeded);  // outside the window

  const auto all = store_->attempts_per_minute(common::now_ms() - 24h, std::nullopt);
  ASSERT_EQ(all.size(), 2U);
  EXPECT_EQ(all[0].minute, common::format_rfc3339_ms(t0).substr(0, 16));
  EXPECT_EQ(all[0].succeeded, 1);
  EXPECT_EQ(all[0].retry, 1);
  EXPECT_EQ(all[0].failed, 0);
  EXPECT_EQ(all[1].minute, common::format_rfc3339_ms(t0 + 2min).substr(0, 16));
  EXPECT_EQ(all[1].failed, 1);

  const auto only = store_->attempts_per_minute(common::now_ms() - 24h, std::string("crm"));
  ASSERT_EQ(only.size(), 1U);
  EXPECT_EQ(only[0].succeeded, 1);
  EXPECT_EQ(only[0].retry, 0);
  EXPECT_TRUE(store_->attempts_per_minute(common::now_ms() - 24h, std::string("nobody")).empty());
}

// The plans docs/console.md shows: a range of the started_at index, which covers every column
// the aggregates read since schema v7 (the attempt's webhook included): no attempt row and no
// delivery is read. A full scan of attempts would make the console's pages cost in proportion
// to the whole log, a lookup per attempt in proportion to the day's attempts.
TEST_F(StatsTest, QueriesUseTheStartedAtIndex) {
  // What ReadsStats.cpp runs: attempt_stats_since, attempts_per_minute (all, one webhook) and
  // attempt_summary (all, one webhook).
  for (const auto* sql :
       {"SELECT webhook, outcome, duration_ms FROM attempts WHERE started_at >= '2026-01-01'",
        "SELECT started_at, outcome FROM attempts WHERE started_at >= '2026-01-01' "
        "ORDER BY started_at",
        "SELECT started_at, outcome FROM attempts "
        "WHERE started_at >= '2026-01-01' AND webhook = 'crm' ORDER BY started_at",
        "SELECT started_at, outcome, duration_ms, webhook FROM attempts "
        "WHERE started_at >= '2026-01-01' ORDER BY started_at",
        "SELECT started_at, outcome, duration_ms, webhook FROM attempts "
        "WHERE started_at >= '2026-01-01' AND webhook = 'crm' ORDER BY started_at"}) {
    const auto p = plan(sql);
    EXPECT_NE(p.find("SEARCH attempts USING COVERING INDEX attempts_started_at (started_at>?)"),
              std::string::npos)
        << sql << "\n"
        << p;
    EXPECT_EQ(p.find("deliveries"), std::string::npos) << sql << "\n" << p;
    EXPECT_EQ(p.find("TEMP B-TREE"), std::string::npos) << sql << "\n" << p;
  }
  // A webhook's page: its newest deliveries in index order, not a sort of all of them.
  const auto newest = plan(
      "SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id "
      "WHERE 1 AND d.webhook_id = 'crm' ORDER BY d.id DESC LIMIT 50");
  EXPECT_NE(newest.find("deliveries_webhook_newest"), std::string::npos) << newest;
  EXPECT_EQ(newest.find("TEMP B-TREE"), std::string::npos) << newest;
  // Its status filter (schema v6): the newest 50 in that status straight from the index, even
  // when the webhook has none in it (through deliveries_webhook_newest that walked them all).
  const auto in_status = plan(
      "SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id "
      "WHERE 1 AND d.webhook_id = 'crm' AND d.status = 'failed' ORDER BY d.id DESC LIMIT 50");
  EXPECT_NE(in_status.find("deliveries_webhook_status_newest (webhook_id=? AND status=?)"),
            std::string::npos)
      << in_status;
  EXPECT_EQ(in_status.find("TEMP B-TREE"), std::string::npos) << in_status;
}

bool same(const WebhookAttemptStats& a, const WebhookAttemptStats& b) {
  return a.webhook_id == b.webhook_id && a.attempts == b.attempts && a.succeeded == b.succeeded &&
         a.retry == b.retry && a.failed == b.failed && a.p50_ms == b.p50_ms && a.p99_ms == b.p99_ms;
}

bool same(const std::vector<WebhookAttemptStats>& a, const std::vector<WebhookAttemptStats>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const auto& x, const auto& y) { return same(x, y); });
}

bool same(const std::vector<AttemptMinute>& a, const std::vector<AttemptMinute>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
    return x.minute == y.minute && x.succeeded == y.succeeded && x.retry == y.retry &&
           x.failed == y.failed;
  });
}

// The console pages' one pass gives what the three separate reads give, window by window, and
// its percentiles (found by selection, not sorting) are the nearest ranks of the durations.
TEST_F(StatsTest, SummaryIsTheSeparateReadsInOnePass) {
  const auto now = common::now_ms();
  std::mt19937 rng(18);
  std::vector<std::int64_t> crm_hour;
  const auto crm = delivery("crm");
  for (int i = 1; i <= 257; ++i) {
    const auto ms = static_cast<std::int64_t>(rng() % 5000);
    const auto at = now - std::chrono::minutes(rng() % (23 * 60));
    if (at >= now - 1h) crm_hour.push_back(ms);
    attempt(crm, i, at, ms, i % 7 == 0 ? AttemptOutcome::kRetry : AttemptOutcome::kSucceeded);
  }
  const auto billing = delivery("billing");
  attempt(billing, 1, now - 25h, 7, AttemptOutcome::kSucceeded);
  attempt(billing, 2, now - 3h, 20, AttemptOutcome::kSucceeded);
  attempt(billing, 3, now - 30min, 5000, AttemptOutcome::kRetry);
  attempt(billing, 4, now - 5min, 40, AttemptOutcome::kFailed);
  delivery("quiet");  // no attempt: absent from every list

  const auto all = store_->attempt_summary(now - 24h, now - 1h, std::nullopt);
  EXPECT_TRUE(same(all.whole, store_->attempt_stats_since(now - 24h)));
  EXPECT_TRUE(same(all.recent, store_->attempt_stats_since(now - 1h)));
  EXPECT_TRUE(same(all.minutes, store_->attempts_per_minute(now - 24h, std::nullopt)));
  ASSERT_EQ(all.whole.size(), 2U);
  const auto* b = find(all.whole, "billing");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->attempts, 3);
  EXPECT_EQ(b->p50_ms, 40);
  EXPECT_EQ(b->p99_ms, 5000);

  std::sort(crm_hour.begin(), crm_hour.end());
  const auto* c = find(all.recent, "crm");
  if (crm_hour.empty()) {
    EXPECT_EQ(c, nullptr);
  } else {
    ASSERT_NE(c, nullptr);
    const auto n = crm_hour.size();
    EXPECT_EQ(c->attempts, static_cast<std::int64_t>(n));
    EXPECT_EQ(c->p50_ms, crm_hour[(n * 50 + 99) / 100 - 1]);
    EXPECT_EQ(c->p99_ms, crm_hour[(n * 99 + 99) / 100 - 1]);
  }

  const auto one = store_->attempt_summary(now - 24h, now - 1h, std::string("billing"));
  ASSERT_EQ(one.whole.size(), 1U);
  EXPECT_TRUE(same(one.whole[0], *b));
  ASSERT_EQ(one.recent.size(), 1U);
  EXPECT_EQ(one.recent[0].attempts, 2);
  EXPECT_EQ(one.recent[0].retry, 1);
  EXPECT_EQ(one.recent[0].failed, 1);
  EXPECT_TRUE(same(one.minutes, store_->attempts_per_minute(now - 24h, std::string("billing"))));
  const auto nobody = store_->attempt_summary(now - 24h, now - 1h, std::string("nobody"));
  EXPECT_TRUE(nobody.whole.empty());
  EXPECT_TRUE(nobody.recent.empty());
  EXPECT_TRUE(nobody.minutes.empty());
}

// GET /v1/webhooks/{id} counts its one webhook's deliveries; the list counts all of them.
TEST_F(StatsTest, CountsByStatus) {
  for (int i = 0; i < 3; ++i) delivery("crm");
  for (int i = 0; i < 2; ++i) delivery("crm", DeliveryStatus::kPaused);
  delivery("billing");
  delivery("crm2", DeliveryStatus::kPaused);  // an id that starts with another

  using Counts = std::vector<std::pair<std::string, std::int64_t>>;
  EXPECT_EQ(store_->count_by_status("crm"), (Counts{{"paused", 2}, {"pending", 3}}));
  EXPECT_EQ(store_->count_by_status("billing"), (Counts{{"pending", 1}}));
  EXPECT_TRUE(store_->count_by_status("nobody").empty());
  using AllCounts = std::vector<std::pair<std::pair<std::string, std::string>, std::int64_t>>;
  EXPECT_EQ(store_->count_by_webhook_status(), (AllCounts{{{"billing", "pending"}, 1},
                                                          {{"crm", "paused"}, 2},
                                                          {{"crm", "pending"}, 3},
                                                          {{"crm2", "paused"}, 1}}));

  // Each count a range of the covering (webhook_id, status, id) index, each next webhook or
  // status a seek: no scan of the table, no sort.
  for (const auto* sql :
       {"SELECT count(*) FROM deliveries INDEXED BY deliveries_webhook_status_newest "
        "WHERE webhook_id = 'crm' AND status = 'pending'",
        "SELECT status FROM deliveries INDEXED BY deliveries_webhook_status_newest "
        "WHERE webhook_id = 'crm' AND status > '' ORDER BY webhook_id, status LIMIT 1",
        "SELECT webhook_id FROM deliveries INDEXED BY deliveries_webhook_status_newest "
        "WHERE webhook_id > '' ORDER BY webhook_id LIMIT 1"}) {
    const auto p = plan(sql);
    EXPECT_NE(p.find("SEARCH deliveries USING COVERING INDEX deliveries_webhook_status_newest"),
              std::string::npos)
        << p;
    EXPECT_EQ(p.find("TEMP B-TREE"), std::string::npos) << p;
  }
}

}  // namespace
}  // namespace relay::store
