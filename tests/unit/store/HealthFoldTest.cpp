// webhook_state written once per webhook per group commit (src/store/sqlite/WebhookHealth.hpp):
// the attempts of one group must leave the row exactly as one upsert per attempt did.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "StoreTestHelpers.hpp"
#include "relay/common/Time.hpp"
#include "relay/store/Store.hpp"

namespace relay::store {
namespace {

namespace fs = std::filesystem;
using common::format_rfc3339_ms;
using common::TimePoint;
using namespace std::chrono_literals;
using namespace testing_support;

std::map<std::string, WebhookStateRow> states(Store& s) {
  std::map<std::string, WebhookStateRow> out;
  for (auto& r : s.webhook_states()) out[r.webhook_id] = r;
  return out;
}

// Holds the writer on a request of its own so that the records queued behind it then run as
// one group: install() before the store opens, hold() once it is open, release() to let go.
class WriterGate {
 public:
  void install(StoreOptions& o) {
    o.before_group_for_testing = [this] {
      if (!hold_.exchange(false)) return;
      held_ = true;
      released_.wait();
    };
  }
  void hold(Store& s) {
    hold_ = true;
    ASSERT_TRUE(s.submit_events({event("evt_hold", {})}, [](WriteStatus, auto) {}));
    while (!held_) std::this_thread::sleep_for(1ms);
  }
  void release() { release_.set_value(); }

 private:
  std::promise<void> release_;
  std::shared_future<void> released_ = release_.get_future().share();
  std::atomic<bool> hold_{false};
  std::atomic<bool> held_{false};
};

TEST(StoreHealthFold, AttemptsOfOneGroupLeaveTheRowAsOneUpsertEachWould) {
  TempDir dir;
  StoreOptions o;
  o.path = dir.file("relayd.db").string();
  WriterGate gate;
  gate.install(o);
  auto s = open_sqlite_store(o);
  submit(*s, {event("evt_1", {pending("crm"), pending("crm"), pending("crm"), pending("crm"),
                              pending("b"), pending("b"), pending("b"), pending("new")})});
  const auto c = claim(*s, {{"crm", 4}, {"b", 3}, {"new", 1}});
  ASSERT_EQ(c.claimed.size(), 8U);
  std::map<std::string, std::vector<DueDelivery>> by_webhook;
  for (const auto& d : c.claimed) by_webhook[d.webhook_id].push_back(d);
  const TimePoint t0{std::chrono::milliseconds(1'700'000'000'000)};

  // Committed before the group: "b" already has a streak of one failure (at t0).
  ASSERT_EQ(wait([&](auto cb) {
              s->record_attempt(attempt_of(by_webhook["b"][0], AttemptOutcome::kRetry, t0), cb);
            }),
            WriteStatus::kOk);

  // The writer is held on a first request while the records queue up behind it; they then
  // run as one group.
  gate.hold(*s);
  std::vector<std::future<WriteStatus>> done;
  const auto record = [&](const DueDelivery& d, AttemptOutcome outcome, TimePoint at) {
    auto p = std::make_shared<std::promise<WriteStatus>>();
    done.push_back(p->get_future());
    s->record_attempt(attempt_of(d, outcome, at), [p](WriteStatus st) { p->set_value(st); });
  };
  // crm: a failure, a success, then two failures: the streak is the two after the success.
  record(by_webhook["crm"][0], AttemptOutcome::kRetry, t0 + 1s);
  record(by_webhook["crm"][1], AttemptOutcome::kSucceeded, t0 + 2s);
  record(by_webhook["crm"][2], AttemptOutcome::kRetry, t0 + 3s);
  record(by_webhook["crm"][3], AttemptOutcome::kFailed, t0 + 4s);
  // b: two more failures extend the stored streak; its first failure stays t0.
  record(by_webhook["b"][1], AttemptOutcome::kRetry, t0 + 5s);
  record(by_webhook["b"][2], AttemptOutcome::kFailed, t0 + 6s);
  // new: no row yet; one success creates it.
  record(by_webhook["new"][0], AttemptOutcome::kSucceeded, t0 + 7s);
  const auto commits_before = s->stats().commits;
  gate.release();
  for (auto& f : done) EXPECT_EQ(f.get(), WriteStatus::kOk);
  // The held request's group, then the records' (one group: they were all queued).
  EXPECT_EQ(s->stats().commits - commits_before, 2U);

  auto rows = states(*s);
  ASSERT_EQ(rows.size(), 3U);
  EXPECT_EQ(rows["crm"].last_success_at, format_rfc3339_ms(t0 + 2s));
  EXPECT_EQ(rows["crm"].first_failure_at, format_rfc3339_ms(t0 + 3s));
  EXPECT_EQ(rows["crm"].consecutive_failures, 2);
  EXPECT_FALSE(rows["b"].last_success_at);
  EXPECT_EQ(rows["b"].first_failure_at, format_rfc3339_ms(t0));
  EXPECT_EQ(rows["b"].consecutive_failures, 3);
  EXPECT_EQ(rows["new"].last_success_at, format_rfc3339_ms(t0 + 7s));
  EXPECT_FALSE(rows["new"].first_failure_at);
  EXPECT_EQ(rows["new"].consecutive_failures, 0);

  // And it is what the next start restores.
  s->close();
  StoreOptions again;
  again.path = o.path;
  s = open_sqlite_store(again);
  rows = states(*s);
  EXPECT_EQ(rows["crm"].consecutive_failures, 2);
  EXPECT_EQ(rows["b"].consecutive_failures, 3);
}

TEST(StoreHealthFold, ARecordRejectedInItsGroupLeavesNoTraceInTheRow) {
  TempDir dir;
  StoreOptions o;
  o.path = dir.file("relayd.db").string();
  WriterGate gate;
  gate.install(o);
  auto s = open_sqlite_store(o);
  submit(*s, {event("evt_1", {pending("crm"), pending("crm"), pending("crm")})});
  const auto c = claim(*s, {{"crm", 3}});
  ASSERT_EQ(c.claimed.size(), 3U);
  // The database refuses the middle record (as it would a row breaking a constraint): the
  // group is run again with one savepoint per request and that one rolled back alone.
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(o.path.c_str(), &h), SQLITE_OK);
  sqlite3_busy_timeout(h, 5000);
  const auto trigger = "CREATE TRIGGER refuse BEFORE INSERT ON attempts WHEN NEW.delivery_id = '" +
                       c.claimed[1].delivery_id +
                       "' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END";
  ASSERT_EQ(sqlite3_exec(h, trigger.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(h);
  sqlite3_close(h);

  const TimePoint t0{std::chrono::milliseconds(1'700'000'000'000)};
  gate.hold(*s);
  std::vector<std::future<WriteStatus>> done;
  for (std::size_t i = 0; i < 3; ++i) {
    auto p = std::make_shared<std::promise<WriteStatus>>();
    done.push_back(p->get_future());
    s->record_attempt(
        attempt_of(c.claimed[i], AttemptOutcome::kRetry, t0 + std::chrono::seconds(i)),
        [p](WriteStatus st) { p->set_value(st); });
  }
  gate.release();
  EXPECT_EQ(done[0].get(), WriteStatus::kOk);
  EXPECT_EQ(done[1].get(), WriteStatus::kRejected);
  EXPECT_EQ(done[2].get(), WriteStatus::kOk);
  auto rows = states(*s);
  EXPECT_EQ(rows["crm"].consecutive_failures, 2) << "the refused attempt was counted";
  EXPECT_EQ(rows["crm"].first_failure_at, format_rfc3339_ms(t0));
}

}  // namespace
}  // namespace relay::store
