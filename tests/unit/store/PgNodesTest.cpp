// Several relayd nodes on one PostgreSQL database (SPEC §14), seen through the store: claims
// never overlap, a lease that runs out is taken over with the same delivery, a restarting
// node releases only its own claims, intake is idempotent across nodes, idle nodes are woken,
// and a server restart costs only the writes in flight (answered kStorageUnavailable).
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <set>
#include <thread>

#include "PgServer.hpp"
#include "StoreTestHelpers.hpp"
#include "relay/common/Time.hpp"
#include "relay/store/Store.hpp"

namespace relay::store {
namespace {

using common::TimePoint;
using namespace std::chrono_literals;
using namespace testing_support;

std::unique_ptr<Store> node(const std::string& dsn, const std::string& name,
                            std::chrono::milliseconds lease = std::chrono::minutes(2)) {
  PostgresStoreOptions o;
  o.dsn = dsn;
  o.node_id = name;
  o.lease = lease;
  return open_postgres_store(o);
}

TEST(PgNodes, MigrationsRunOnceWhenNodesStartTogether) {
  const auto dsn = relay::testing::fresh_database();
  std::vector<std::future<std::unique_ptr<Store>>> starts;
  for (int i = 0; i < 3; ++i) {
    starts.push_back(
        std::async(std::launch::async, [&, i] { return node(dsn, "node-" + std::to_string(i)); }));
  }
  std::vector<std::unique_ptr<Store>> nodes;
  for (auto& s : starts) nodes.push_back(s.get());
  EXPECT_EQ(relay::testing::pg_query(dsn, "SELECT version FROM relayd_schema"), "7");
  submit(*nodes[2], {event("evt_1", {pending("crm")})});
  EXPECT_EQ(relay::testing::pg_query(dsn, "SELECT count(*) FROM delivery_log"), "0");
}

TEST(PgNodes, ConcurrentClaimsNeverTakeTheSameDelivery) {
  const auto dsn = relay::testing::fresh_database();
  auto a = node(dsn, "node-a");
  auto b = node(dsn, "node-b");
  std::vector<NewEvent> events;
  for (int i = 0; i < 300; ++i) {
    events.push_back(event("evt_" + std::to_string(i), {pending("crm"), pending("billing")}));
  }
  submit(*a, std::move(events));
  std::set<std::string> by_a;
  std::set<std::string> by_b;
  const auto drain = [](Store& s, std::set<std::string>& out) {
    for (int i = 0; i < 200; ++i) {
      const auto r = claim(s, {{"crm", 7}, {"billing", 5}});
      for (const auto& d : r.claimed) EXPECT_TRUE(out.insert(d.delivery_id).second);
      if (r.claimed.empty()) break;
    }
  };
  std::thread ta([&] { drain(*a, by_a); });
  std::thread tb([&] { drain(*b, by_b); });
  ta.join();
  tb.join();
  for (const auto& id : by_a) EXPECT_FALSE(by_b.contains(id)) << id << " claimed by both";
  EXPECT_EQ(by_a.size() + by_b.size(), 600U);
  EXPECT_EQ(relay::testing::pg_query(
                dsn, "SELECT lease_owner, count(*) FROM deliveries GROUP BY 1 ORDER BY 1"),
            "node-a|" + std::to_string(by_a.size()) + "\nnode-b|" + std::to_string(by_b.size()));
}

TEST(PgNodes, AnExpiredLeaseIsTakenOverWithTheSameDeliveryAndTheLateRecordIsIgnored) {
  const auto dsn = relay::testing::fresh_database();
  auto a = node(dsn, "node-a", 500ms);
  auto b = node(dsn, "node-b", 500ms);
  const auto now = common::now_ms();
  submit(*a, {event("evt_1", {pending("crm")}, now)});
  const auto first = claim(*a, {{"crm", 10}}, now);
  ASSERT_EQ(first.claimed.size(), 1U);
  // While the lease holds, nobody else gets it; node-b's next_due says when it runs out.
  const auto during = claim(*b, {{"crm", 10}}, now + 100ms);
  EXPECT_TRUE(during.claimed.empty());
  ASSERT_TRUE(during.next_due.has_value());
  EXPECT_EQ(*during.next_due, now + 500ms);
  // node-a "died": after the lease, node-b takes the very same delivery.
  const auto later = claim(*b, {{"crm", 10}}, now + 600ms);
  ASSERT_EQ(later.claimed.size(), 1U);
  const auto& d = later.claimed[0];
  EXPECT_EQ(d.delivery_id, first.claimed[0].delivery_id);
  EXPECT_EQ(d.payload, first.claimed[0].payload);
  EXPECT_EQ(d.attempt_count, 0);
  // node-a was only slow: its record writes the attempt, but the delivery is node-b's now.
  EXPECT_EQ(wait([&](auto cb) {
              a->record_attempt(attempt_of(first.claimed[0], AttemptOutcome::kRetry, now), cb);
            }),
            WriteStatus::kOk);
  EXPECT_EQ(relay::testing::pg_query(dsn, "SELECT status, lease_owner FROM deliveries"),
            "delivering|node-b");
  EXPECT_EQ(wait([&](auto cb) {
              b->record_attempt(attempt_of(d, AttemptOutcome::kSucceeded, now + 600ms), cb);
            }),
            WriteStatus::kOk);
  EXPECT_EQ(relay::testing::pg_query(
                dsn, "SELECT status, attempt_count, lease_owner IS NULL FROM deliveries"),
            "succeeded|1|t");
  EXPECT_EQ(relay::testing::pg_query(dsn, "SELECT count(*) FROM attempts"), "2");
}

TEST(PgNodes, ARestartingNodeReleasesOnlyItsOwnClaims) {
  const auto dsn = relay::testing::fresh_database();
  auto a = node(dsn, "node-a");
  auto b = node(dsn, "node-b");
  submit(*a, {event("evt_1", {pending("crm"), pending("crm"), pending("crm")})});
  ASSERT_EQ(claim(*a, {{"crm", 2}}).claimed.size(), 2U);
  ASSERT_EQ(claim(*b, {{"crm", 2}}).claimed.size(), 1U);
  a->close();
  a = node(dsn, "node-a");
  EXPECT_EQ(a->recover_interrupted(common::now_ms()), 2U);
  EXPECT_EQ(relay::testing::pg_query(
                dsn, "SELECT status, count(*) FROM deliveries GROUP BY 1 ORDER BY 1"),
            "delivering|1\npending|2");
}

TEST(PgNodes, IntakeIsIdempotentAcrossNodes) {
  const auto dsn = relay::testing::fresh_database();
  auto a = node(dsn, "node-a");
  auto b = node(dsn, "node-b");
  std::vector<std::future<std::vector<EventReceipt>>> f;
  for (int i = 0; i < 10; ++i) {
    f.push_back(std::async(std::launch::async, [&, i] {
      return submit(i % 2 ? *a : *b, {event("evt_same", {pending("crm")})});
    }));
  }
  int firsts = 0;
  std::set<std::string> delivery_ids;
  for (auto& x : f) {
    const auto r = x.get();
    ASSERT_EQ(r.size(), 1U);
    if (!r[0].duplicate) ++firsts;
    delivery_ids.insert(r[0].deliveries.at(0).first);
  }
  EXPECT_EQ(firsts, 1);
  EXPECT_EQ(delivery_ids.size(), 1U);  // every answer names the stored delivery
  EXPECT_EQ(relay::testing::pg_query(dsn, "SELECT count(*) FROM deliveries"), "1");
}

TEST(PgNodes, AnotherNodesIntakeWakesAnIdleNode) {
  const auto dsn = relay::testing::fresh_database();
  auto a = node(dsn, "node-a");
  auto b = node(dsn, "node-b");  // sweep: once a minute; the wake must come from NOTIFY
  std::atomic<int> woken{0};
  b->set_wake_handler([&] { ++woken; });
  // The listener wakes once when it (re)connects; wait for that, then count.
  for (int i = 0; i < 200 && woken == 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_GE(woken.load(), 1);
  woken = 0;
  submit(*a, {event("evt_1", {pending("crm")})});
  for (int i = 0; i < 300 && woken == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_GE(woken.load(), 1);
  // A write that makes nothing due (a health row) wakes nobody.
  std::this_thread::sleep_for(100ms);
  woken = 0;
  EXPECT_EQ(wait([&](auto cb) { a->set_webhook_disabled("crm", "x", common::now_ms(), cb); }),
            WriteStatus::kOk);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(woken.load(), 0);
}

TEST(PgNodes, AServerRestartAnswersUnavailableThenWritesResume) {
  relay::testing::PgServer server;  // its own: the shared one is not ours to restart
  auto s = node(server.dsn(), "node-a");
  submit(*s, {event("evt_before", {pending("crm")})});
  server.stop();
  std::promise<WriteStatus> p;
  EXPECT_TRUE(
      s->submit_events({event("evt_during", {pending("crm")})},
                       [&](WriteStatus st, std::vector<EventReceipt>) { p.set_value(st); }));
  EXPECT_EQ(p.get_future().get(), WriteStatus::kStorageUnavailable);
  EXPECT_FALSE(s->writable());
  EXPECT_THROW(s->list_deliveries({}), StoreError);
  server.start();
  bool ready = false;
  for (int i = 0; i < 200 && !ready; ++i) {
    ready = s->writable();
    if (!ready) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(ready);
  submit(*s, {event("evt_after", {pending("crm")})});
  EXPECT_EQ(relay::testing::pg_query(server.dsn(), "SELECT id FROM events ORDER BY id"),
            "evt_after\nevt_before");
  EXPECT_EQ(s->list_deliveries({}).size(), 2U);
}

TEST(PgNodes, TheDsnPasswordNeverReachesAnError) {
  PostgresStoreOptions o;
  o.dsn = "host=127.0.0.1 port=1 user=relayd password=hunter2 dbname=x connect_timeout=2";
  try {
    open_postgres_store(o);
    FAIL() << "opened a database on port 1";
  } catch (const StoreError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find("hunter2"), std::string::npos) << what;
    EXPECT_NE(what.find("password=[redacted]"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace relay::store
