// The store's role API against every backend (SPEC §14: the same rules on SQLite and on
// PostgreSQL). Each test runs once per backend: on a fresh SQLite file, and on a fresh
// database of the run's PostgreSQL server (tests/support/PgServer.hpp). Tests that look at
// SQLite itself (file checks, query plans, the sqlite3 CLI) stay in StoreTest.cpp; those of
// several PostgreSQL nodes on one database are in PgNodesTest.cpp.
// Pauses, resumes, retention and endpoint health are in BackendWebhooksTest.cpp.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <map>
#include <random>
#include <thread>

#include "BackendFixture.hpp"
#include "relay/common/Ids.hpp"
#include "relay/common/Time.hpp"
#include "relay/store/Store.hpp"

namespace relay::store {
namespace {

namespace fs = std::filesystem;
using common::TimePoint;
using namespace std::chrono_literals;
using namespace testing_support;
using namespace backend_test;

TEST_P(StoreBackend, StoreIntake_DuplicateIdReturnsTheFirstReceipt) {
  auto s = open();
  const auto first = submit(*s, {event("evt_same", {pending("crm"), paused("billing")})});
  ASSERT_EQ(first.size(), 1U);
  EXPECT_FALSE(first[0].duplicate);
  const auto again = submit(*s, {event("evt_same", {pending("crm")}, common::now_ms() + 5s)});
  ASSERT_EQ(again.size(), 1U);
  EXPECT_TRUE(again[0].duplicate);
  EXPECT_EQ(again[0].deliveries, first[0].deliveries);
  EXPECT_EQ(again[0].created_at, first[0].created_at);
  EXPECT_EQ(query("SELECT count(*) FROM deliveries"), "2");
  EXPECT_EQ(query("SELECT status FROM deliveries WHERE webhook_id='billing'"), "paused");
}

TEST_P(StoreBackend, StoreIntake_AVectorIsAllOrNothing) {
  auto s = open();
  auto d = pending("crm");
  auto dup = d;  // same delivery id twice: the second insert violates the primary key
  std::promise<WriteStatus> p;
  s->submit_events({event("evt_a", {d}), event("evt_b", {dup})},
                   [&](WriteStatus st, std::vector<EventReceipt>) { p.set_value(st); });
  EXPECT_EQ(p.get_future().get(), WriteStatus::kRejected);
  EXPECT_EQ(query("SELECT count(*) FROM events"), "0");
  EXPECT_EQ(s->stats().rejected, 1U);
  // The writer carries on.
  submit(*s, {event("evt_c", {pending("crm")})});
  EXPECT_EQ(query("SELECT count(*) FROM events"), "1");
}

TEST_P(StoreBackend, StoreDispatch_ClaimRespectsLimitsAndDueTimesAndReportsNextDue) {
  auto s = open();
  const auto now = common::now_ms();
  std::vector<NewEvent> events;
  for (int i = 0; i < 5; ++i)
    events.push_back(event("evt_a" + std::to_string(i), {pending("a")}, now));
  for (int i = 0; i < 3; ++i)
    events.push_back(event("evt_b" + std::to_string(i), {pending("b")}, now));
  events.push_back(event("evt_later", {pending("b")}, now + 1h));
  submit(*s, std::move(events));
  const auto r = claim(*s, {{"a", 2}, {"b", 10}}, now);
  int a = 0, b = 0;
  for (const auto& d : r.claimed) {
    (d.webhook_id == "a" ? a : b)++;
    EXPECT_EQ(d.event_type, "ticket.created");
    EXPECT_EQ(d.payload, R"({"id":")" + d.event_id + R"(","data":{}})");
  }
  EXPECT_EQ(a, 2);
  EXPECT_EQ(b, 3);
  ASSERT_TRUE(r.next_due.has_value());
  EXPECT_EQ(*r.next_due, now);  // the three of "a" left are due now
  // SQLite keeps claims as leases in memory (rows stay pending); PostgreSQL stores them, as
  // other nodes must see them. Both show them as delivering.
  EXPECT_EQ(query("SELECT count(*) FROM deliveries WHERE status='delivering'"), pg() ? "5" : "0");
  auto counts = shown_counts(*s);
  EXPECT_EQ(counts["a/delivering"], 2);
  EXPECT_EQ(counts["b/delivering"], 3);
  EXPECT_EQ(counts["a/pending"], 3);
  EXPECT_EQ(counts["b/pending"], 1);
  EXPECT_EQ(s->get_delivery(r.claimed[0].delivery_id)->status, "delivering");
  DeliveryFilter in_flight;
  in_flight.status = "delivering";
  EXPECT_EQ(s->list_deliveries(in_flight).size(), 5U);
  DeliveryFilter waiting;
  waiting.status = "pending";
  EXPECT_EQ(s->list_deliveries(waiting).size(), 4U);
  const auto r2 = claim(*s, {{"b", 10}}, now);
  EXPECT_TRUE(r2.claimed.empty());
}

TEST_P(StoreBackend, StoreDispatch_RecordAttemptRecoverAndRedeliver) {
  auto s = open();
  const auto receipts = submit(*s, {event("evt_1", {pending("crm")})});
  const auto id = receipts[0].deliveries[0].first;
  ASSERT_EQ(claim(*s, {{"crm", 1}}).claimed.size(), 1U);

  AttemptRecord rec;
  rec.delivery_id = id;
  rec.attempt_number = 1;
  rec.started_at = common::now_ms();
  rec.duration_ms = 12;
  rec.url = "https://x/hook";
  rec.request_headers = "{}";
  rec.response_status = 500;
  rec.response_body = "boom";
  rec.outcome = AttemptOutcome::kRetry;
  rec.new_status = DeliveryStatus::kPending;
  rec.next_attempt_at = common::now_ms() + 1min;
  EXPECT_EQ(wait([&](auto cb) { s->record_attempt(rec, cb); }), WriteStatus::kOk);
  EXPECT_EQ(query("SELECT status, attempt_count, last_status_code, last_error FROM deliveries"),
            "pending|1|500|HTTP 500");
  EXPECT_EQ(query("SELECT attempt_number, outcome, response_status, response_body FROM attempts"),
            "1|retry|500|boom");

  // Not due yet; redeliver makes it due now.
  EXPECT_TRUE(claim(*s, {{"crm", 1}}).claimed.empty());
  std::promise<bool> found;
  s->redeliver(id, common::now_ms(), [&](WriteStatus, bool f) { found.set_value(f); });
  EXPECT_TRUE(found.get_future().get());
  const auto c = claim(*s, {{"crm", 1}});
  ASSERT_EQ(c.claimed.size(), 1U);
  EXPECT_EQ(c.claimed[0].attempt_count, 1);

  // Claimed, so redeliver leaves it alone (it is being sent).
  std::promise<bool> busy;
  s->redeliver(id, common::now_ms() + 1h, [&](WriteStatus, bool f) { busy.set_value(f); });
  EXPECT_TRUE(busy.get_future().get());
  EXPECT_EQ(s->get_delivery(id)->status, "delivering");
  EXPECT_NE(s->get_delivery(id)->next_attempt_at,
            std::optional<std::string>(common::format_rfc3339_ms(common::now_ms() + 1h)));

  // A crash now: the row is due again as it was. SQLite's claim was a lease in memory (nothing
  // to recover); PostgreSQL's node releases the lease it stored under its own node id.
  s->close();
  s = open();
  EXPECT_EQ(s->recover_interrupted(common::now_ms()), pg() ? 1U : 0U);
  EXPECT_EQ(query("SELECT status FROM deliveries"), "pending");
  EXPECT_EQ(s->get_delivery(id)->status, "pending");
  std::promise<bool> missing;
  s->redeliver("dlv_nope", common::now_ms(), [&](WriteStatus, bool f) { missing.set_value(f); });
  EXPECT_FALSE(missing.get_future().get());

  // A delivery cancelled while in flight stays cancelled; the attempt row is still written.
  ASSERT_EQ(claim(*s, {{"crm", 1}}).claimed.size(), 1U);
  std::promise<std::size_t> cancelled;
  s->cancel_webhooks_except({}, [&](WriteStatus, std::size_t n) { cancelled.set_value(n); });
  EXPECT_EQ(cancelled.get_future().get(), 1U);
  rec.attempt_number = 2;
  rec.outcome = AttemptOutcome::kSucceeded;
  rec.new_status = DeliveryStatus::kSucceeded;
  EXPECT_EQ(wait([&](auto cb) { s->record_attempt(rec, cb); }), WriteStatus::kOk);
  EXPECT_EQ(query("SELECT status FROM deliveries"), "cancelled");
  EXPECT_EQ(query("SELECT count(*) FROM attempts"), "2");
  EXPECT_EQ(query("SELECT count(*) FROM delivery_log WHERE delivery_id='" + id + "'"), "2");
}

// The dispatcher passes the rowid the claim read; the record finds the row by it, and only if
// the id still matches.
TEST_P(StoreBackend, StoreDispatch_RecordByRowidChecksTheId) {
  auto s = open();
  submit(*s, {event("evt_1", {pending("crm"), pending("crm")})});
  const auto c = claim(*s, {{"crm", 2}});
  ASSERT_EQ(c.claimed.size(), 2U);
  for (const auto& d : c.claimed) {
    EXPECT_EQ(query("SELECT id FROM deliveries WHERE " + rowid() + " = " + std::to_string(d.rowid)),
              d.delivery_id);
  }
  AttemptRecord rec;
  rec.attempt_number = 1;
  rec.started_at = common::now_ms();
  rec.url = "https://x/hook";
  rec.request_headers = "{}";
  rec.response_status = 200;
  rec.outcome = AttemptOutcome::kSucceeded;
  rec.new_status = DeliveryStatus::kSucceeded;
  // A rowid that belongs to another delivery changes nothing.
  rec.delivery_id = c.claimed[0].delivery_id;
  rec.delivery_rowid = c.claimed[1].rowid;
  EXPECT_EQ(wait([&](auto cb) { s->record_attempt(rec, cb); }), WriteStatus::kOk);
  EXPECT_EQ(shown_counts(*s)["crm/delivering"], 2);
  rec.delivery_rowid = c.claimed[0].rowid;
  EXPECT_EQ(wait([&](auto cb) { s->record_attempt(rec, cb); }), WriteStatus::kOk);
  EXPECT_EQ(query("SELECT status FROM deliveries WHERE id = '" + c.claimed[0].delivery_id + "'"),
            "succeeded");
  EXPECT_EQ(s->get_delivery(c.claimed[1].delivery_id)->status, "delivering");
  // The record ended the first claim only: the other is still held.
  EXPECT_TRUE(claim(*s, {{"crm", 2}}).claimed.empty());
}

TEST_P(StoreBackend, StoreBackpressure_FullQueueRefusesIntakeAtOnce) {
  Opts o;
  o.max_queued_writes = 4;
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<bool> hold{true};
  std::atomic<bool> writer_held{false};
  o.before_group_for_testing = [&] {
    if (!hold) return;
    writer_held = true;
    released.wait();
  };
  auto s = open(o);
  std::atomic<int> done{0};
  // One request first, and only once the writer holds it (a group of exactly one) do the others
  // go in: otherwise a slow writer (TSan) may take two into its group and leave room for six.
  ASSERT_TRUE(s->submit_events({event("evt_first", {})},
                               [&](WriteStatus, std::vector<EventReceipt>) { ++done; }));
  int accepted = 1;
  for (int i = 0; i < 1000 && !writer_held; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!writer_held) {
    hold = false;
    release.set_value();  // never leave the writer waiting: close() would wait for it
    FAIL() << "the writer did not take the first request within 10 s";
  }
  bool refused = false;
  for (int i = 0; i < 20 && !refused; ++i) {
    if (s->submit_events({event("evt_" + std::to_string(i), {})},
                         [&](WriteStatus, std::vector<EventReceipt>) { ++done; })) {
      ++accepted;
    } else {
      refused = true;
    }
  }
  EXPECT_TRUE(refused);
  EXPECT_EQ(accepted, 5);  // the one the writer holds + max_queued_writes
  hold = false;
  release.set_value();
  s->close();
  EXPECT_EQ(done.load(), accepted);
}

TEST_P(StoreBackend, StoreGroupCommit_ARejectedRequestIsRolledBackAloneInItsGroup) {
  Opts o;
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<bool> hold{true};
  o.before_group_for_testing = [&] {
    if (hold.exchange(false)) released.wait();
  };
  auto s = open(o);
  // The writer takes a first request and is held before running it; three more queue up
  // meanwhile and then form one group.
  std::vector<std::promise<WriteStatus>> ps(4);
  const auto cb = [&](int i) {
    return [&, i](WriteStatus st, std::vector<EventReceipt>) {
      ps[static_cast<size_t>(i)].set_value(st);
    };
  };
  ASSERT_TRUE(s->submit_events({event("evt_first", {pending("crm")})}, cb(0)));
  while (hold) std::this_thread::sleep_for(1ms);
  auto d = pending("crm");
  ASSERT_TRUE(s->submit_events({event("evt_ok1", {d})}, cb(1)));
  ASSERT_TRUE(s->submit_events({event("evt_bad", {d})}, cb(2)));  // delivery id used again
  ASSERT_TRUE(s->submit_events({event("evt_ok2", {pending("crm")})}, cb(3)));
  release.set_value();
  EXPECT_EQ(ps[0].get_future().get(), WriteStatus::kOk);
  EXPECT_EQ(ps[1].get_future().get(), WriteStatus::kOk);
  EXPECT_EQ(ps[2].get_future().get(), WriteStatus::kRejected);
  EXPECT_EQ(ps[3].get_future().get(), WriteStatus::kOk);
  EXPECT_EQ(query("SELECT id FROM events ORDER BY id"), "evt_first\nevt_ok1\nevt_ok2");
  const auto st = s->stats();
  EXPECT_EQ(st.commits, 2U);
  EXPECT_EQ(st.max_group, 3U);
  EXPECT_EQ(st.rejected, 1U);
  EXPECT_TRUE(s->writable());
}

TEST_P(StoreBackend, StoreClose_LaterWritesAnswerShuttingDownAndReadsThrow) {
  auto s = open();
  std::atomic<int> done{0};
  for (int i = 0; i < 50; ++i) {
    s->submit_events({event("evt_" + std::to_string(i), {pending("crm")})},
                     [&](WriteStatus st, std::vector<EventReceipt>) {
                       if (st == WriteStatus::kOk) ++done;
                     });
  }
  s->close();  // drains the queue first
  EXPECT_EQ(done.load(), 50);
  std::optional<WriteStatus> late;
  EXPECT_TRUE(s->submit_events({event("evt_late", {})},
                               [&](WriteStatus st, std::vector<EventReceipt>) { late = st; }));
  EXPECT_EQ(late, WriteStatus::kShuttingDown);  // called back at once, on this thread
  EXPECT_FALSE(s->writable());
  EXPECT_THROW(s->list_deliveries({}), StoreError);
  s->close();  // idempotent
}

TEST_P(StoreBackend, StoreReads_GetListAndCount) {
  auto s = open();
  submit(*s, {event("evt_1", {pending("a"), paused("b")}), event("evt_2", {pending("a")})});
  auto rows = s->list_deliveries({});
  EXPECT_EQ(rows.size(), 3U);
  DeliveryFilter f;
  f.webhook_id = "a";
  f.limit = 1;
  rows = s->list_deliveries(f);
  ASSERT_EQ(rows.size(), 1U);
  f.before_id = rows[0].id;
  const auto next = s->list_deliveries(f);
  ASSERT_EQ(next.size(), 1U);
  EXPECT_LT(next[0].id, rows[0].id);
  const auto d = s->get_delivery(rows[0].id);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->event_type, "ticket.created");
  EXPECT_FALSE(s->get_delivery("dlv_missing").has_value());
  std::map<std::string, std::int64_t> counts;
  for (const auto& [k, n] : s->count_by_webhook_status()) counts[k.first + "/" + k.second] = n;
  EXPECT_EQ(counts["a/pending"], 2);
  EXPECT_EQ(counts["b/paused"], 1);
  EXPECT_TRUE(s->writable());
  const auto e = s->get_event("evt_1");
  ASSERT_TRUE(e.has_value());
  EXPECT_FALSE(e->duplicate);
  EXPECT_EQ(e->deliveries.size(), 2U);
  EXPECT_FALSE(s->get_event("evt_nope").has_value());
}

TEST_P(StoreBackend,
       StoreGroupCommit_ConcurrentWritersShareTransactionsAndCallbacksComeAfterCommit) {
  auto s = open();
  constexpr int kThreads = 8;
  constexpr int kPerThread = 500;
  std::atomic<int> ok{0};
  std::atomic<int> invisible{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::future<void>> waits;
      for (int i = 0; i < kPerThread; ++i) {
        auto p = std::make_shared<std::promise<void>>();
        waits.push_back(p->get_future());
        const auto id = "evt_" + std::to_string(t) + "_" + std::to_string(i);
        while (!s->submit_events(
            {event(id, {pending("crm")})}, [&, p, id](WriteStatus st, std::vector<EventReceipt>) {
              if (st == WriteStatus::kOk) ++ok;
              // Sampled: a fresh connection must already see the row.
              if (id.back() == '7' &&
                  query("SELECT count(*) FROM events WHERE id='" + id + "'") != "1") {
                ++invisible;
              }
              p->set_value();
            })) {
          std::this_thread::yield();
        }
      }
      for (auto& w : waits) w.get();
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_EQ(invisible.load(), 0);
  EXPECT_EQ(query("SELECT count(*) FROM events"), std::to_string(kThreads * kPerThread));
  const auto st = s->stats();
  EXPECT_EQ(st.requests, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_LT(st.commits, st.requests / 4) << "requests were not grouped";
  EXPECT_GT(st.max_group, 1U);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreBackend, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace relay::store
