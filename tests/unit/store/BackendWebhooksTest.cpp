// The store's role API against every backend, part two: pausing and resuming a webhook's
// deliveries, cancelling, retention and endpoint health (BackendTest.cpp has the intake, claims,
// group commits and reads; BackendFixture.hpp the fixture). Instantiated there for both backends.
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

TEST_P(StoreBackend, StoreWebhooks_PausedCapDropsOldestAndResumeKeepsOrder) {
  auto s = open();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    const auto r = submit(*s, {event("evt_" + std::to_string(i), {paused("crm", 3)})});
    ids.push_back(r[0].deliveries[0].first);
  }
  EXPECT_EQ(query("SELECT status FROM deliveries WHERE id='" + ids[0] + "'"), "dropped");
  EXPECT_EQ(query("SELECT status FROM deliveries WHERE id='" + ids[1] + "'"), "dropped");
  EXPECT_EQ(query("SELECT count(*) FROM deliveries WHERE status='paused'"), "3");

  EXPECT_EQ(wait([&](auto cb) { s->set_webhook_paused("crm", false, 3, cb, nullptr); }),
            WriteStatus::kOk);
  const auto c = claim(*s, {{"crm", 10}});
  ASSERT_EQ(c.claimed.size(), 3U);
  EXPECT_EQ(c.claimed[0].delivery_id, ids[2]);
  EXPECT_EQ(c.claimed[2].delivery_id, ids[4]);

  // Pausing pending work: pending → paused, capped.
  for (int i = 0; i < 4; ++i) submit(*s, {event("evt_p" + std::to_string(i), {pending("crm")})});
  EXPECT_EQ(wait([&](auto cb) { s->set_webhook_paused("crm", true, 2, cb, nullptr); }),
            WriteStatus::kOk);
  EXPECT_EQ(query("SELECT count(*) FROM deliveries WHERE status='paused'"), "2");
  EXPECT_EQ(query("SELECT count(*) FROM deliveries WHERE status='dropped'"), "4");
  // The three in flight are not paused: their attempts' records decide them.
  EXPECT_EQ(shown_counts(*s)["crm/delivering"], 3);
}

// Several paused events in one transaction (a batch): PostgreSQL counts the paused rows once
// per group and keeps the count itself after that; the cap must hold just the same.
TEST_P(StoreBackend, StoreWebhooks_PausedCapHoldsWithinOneBatch) {
  auto s = open();
  submit(*s, {event("evt_a", {paused("crm", 3)})});
  std::vector<NewEvent> batch;
  for (int i = 0; i < 6; ++i)
    batch.push_back(event("evt_b" + std::to_string(i), {paused("crm", 3)}));
  const auto r = submit(*s, std::move(batch));
  ASSERT_EQ(r.size(), 6U);
  EXPECT_EQ(query("SELECT count(*) FROM deliveries WHERE status='paused'"), "3");
  EXPECT_EQ(query("SELECT count(*) FROM deliveries WHERE status='dropped'"), "4");
  for (std::size_t i = 3; i < 6; ++i) {
    EXPECT_EQ(query("SELECT status FROM deliveries WHERE id='" + r[i].deliveries[0].first + "'"),
              "paused");
  }
  // The next request counts again, from the rows.
  submit(*s, {event("evt_c", {paused("crm", 3)})});
  EXPECT_EQ(query("SELECT count(*) FROM deliveries WHERE status='paused'"), "3");
  EXPECT_EQ(query("SELECT status FROM deliveries WHERE id='" + r[3].deliveries[0].first + "'"),
            "dropped");
}

TEST_P(StoreBackend, StoreWebhooks_ResumeAndPauseRunInChunksThatOtherWritesInterleaveWith) {
  Opts o;
  o.bulk_chunk = 10;
  // Armed below: the writer holds the group it has taken (the first chunk) until the intake is
  // queued too, so that the intake meets the chunks however the threads are scheduled (chunks
  // commit without an fsync: four of them can be done before an unlucky test thread queues it).
  std::atomic<bool> hold{false};
  std::promise<void> intake_queued;
  auto queued = intake_queued.get_future().share();
  o.before_group_for_testing = [&] {
    if (hold.exchange(false)) queued.wait();
  };
  auto s = open(o);
  std::vector<std::string> ids;
  for (int i = 0; i < 35; ++i) {
    const auto r = submit(*s, {event("evt_" + std::to_string(i), {paused("crm", 1000)})});
    ids.push_back(r[0].deliveries[0].first);
  }
  const auto commits_before = s->stats().commits;
  // The resume and an intake request are queued together: the intake commits between two
  // chunks instead of after all of them.
  std::promise<WriteStatus> resumed;
  std::promise<std::uint64_t> intake_commit;
  std::atomic<int> progress{0};
  std::atomic<int> progress_after_done{0};
  std::atomic<bool> done_ran{false};
  hold = true;
  s->set_webhook_paused(
      "crm", false, 1000,
      [&](WriteStatus st) {
        done_ran = true;
        resumed.set_value(st);
      },
      [&] {
        ++progress;
        if (done_ran) ++progress_after_done;
      });
  s->submit_events(
      {event("evt_new", {pending("billing")})},
      [&](WriteStatus, std::vector<EventReceipt>) { intake_commit.set_value(s->stats().commits); });
  intake_queued.set_value();
  EXPECT_EQ(resumed.get_future().get(), WriteStatus::kOk);
  const auto commits_after = s->stats().commits;
  EXPECT_GE(commits_after - commits_before, 4U);  // chunks of 10+10+10+5 (the intake may share one)
  // Each chunk said so as it committed (the dispatcher starts on the first), all before `done`.
  EXPECT_EQ(progress.load(), 4);
  EXPECT_EQ(progress_after_done.load(), 0);
  EXPECT_LT(intake_commit.get_future().get(), commits_after);
  EXPECT_EQ(query("SELECT count(*) FROM deliveries WHERE webhook_id='crm' AND "
                  "status='pending'"),
            "35");
  EXPECT_EQ(query("SELECT count(DISTINCT next_attempt_at) FROM deliveries WHERE "
                  "webhook_id='crm'"),
            "1");
  const auto c = claim(*s, {{"crm", 100}});
  ASSERT_EQ(c.claimed.size(), 35U);
  for (std::size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(c.claimed[i].delivery_id, ids[i]);

  // Pause 25 pending ones in chunks, capped at 7: the cap applies once all are paused.
  for (int i = 0; i < 25; ++i) submit(*s, {event("evt_p" + std::to_string(i), {pending("crm")})});
  EXPECT_EQ(wait([&](auto cb) { s->set_webhook_paused("crm", true, 7, cb, nullptr); }),
            WriteStatus::kOk);
  EXPECT_EQ(query("SELECT count(*) FROM deliveries WHERE status='paused'"), "7");
  EXPECT_EQ(query("SELECT count(*) FROM deliveries WHERE status='dropped'"), "18");
}

TEST_P(StoreBackend, StoreWebhooks_ANewerPauseSupersedesTheRestOfAResumeInProgress) {
  Opts o;
  o.bulk_chunk = 5;
  auto s = open(o);
  for (int i = 0; i < 40; ++i)
    submit(*s, {event("evt_" + std::to_string(i), {paused("crm", 1000)})});
  // Resume, then (a reload later) pause again before the resume's chunks are done: whatever the
  // interleaving, the last word wins and every delivery ends paused.
  std::promise<WriteStatus> resumed;
  s->set_webhook_paused(
      "crm", false, 1000, [&](WriteStatus st) { resumed.set_value(st); }, nullptr);
  EXPECT_EQ(wait([&](auto cb) { s->set_webhook_paused("crm", true, 1000, cb, nullptr); }),
            WriteStatus::kOk);
  EXPECT_EQ(resumed.get_future().get(), WriteStatus::kOk);
  EXPECT_EQ(query("SELECT count(*) FROM deliveries WHERE status='paused'"), "40");
}

TEST_P(StoreBackend, StoreRetention_PruneBeforeRemovesExactlyOlderRowsInBatches) {
  auto s = open();
  const auto now = common::now_ms();
  const auto cutoff = now - 24h;
  // Exactly at the cutoff is kept; one millisecond before it goes.
  submit(*s, {event("evt_old", {pending("crm")}, cutoff - 1ms),
              event("evt_edge", {pending("crm")}, cutoff), event("evt_new", {pending("crm")}, now),
              event("evt_orphan_old", {}, cutoff - 1ms), event("evt_orphan_edge", {}, cutoff),
              event("evt_live_old", {pending("live")}, cutoff - 1h)});
  // Finished at their event's time; one attempt each started then.
  exec(
      "UPDATE deliveries SET status='succeeded', updated_at=(SELECT created_at FROM events WHERE "
      "id=event_id) WHERE webhook_id='crm'");
  exec(
      "INSERT INTO attempts(delivery_id, attempt_number, started_at, duration_ms, url, "
      "request_headers, outcome) SELECT id, 1, created_at, 1, 'u', '{}', 'succeeded' FROM "
      "deliveries");
  std::size_t total = 0;
  for (int i = 0; i < 20; ++i) {
    std::promise<std::size_t> p;
    s->prune_before(cutoff, 1, [&](WriteStatus st, std::size_t n) {
      EXPECT_EQ(st, WriteStatus::kOk);
      p.set_value(n);
    });
    const auto n = p.get_future().get();
    EXPECT_LE(n, 1U);
    total += n;
    if (n == 0) break;
  }
  // Attempts of evt_old and evt_live_old, the finished delivery of evt_old, the events
  // evt_old and evt_orphan_old. The pending delivery of evt_live_old (and so its event) stays.
  EXPECT_EQ(total, 5U);
  EXPECT_EQ(query("SELECT id FROM events ORDER BY id"),
            "evt_edge\nevt_live_old\nevt_new\nevt_orphan_edge");
  EXPECT_EQ(query("SELECT count(*) FROM deliveries"), "3");
  EXPECT_EQ(query("SELECT count(*) FROM attempts"), "2");
  EXPECT_EQ(query("SELECT count(*) FROM deliveries WHERE webhook_id='live'"), "1");
}

TEST_P(StoreBackend, StoreWebhooks_CancelWebhooksExceptKeepsKnownOnesAndFinishedRows) {
  auto s = open();
  submit(*s, {event("evt_1", {pending("keep"), pending("gone"), paused("gone"), pending("x")}),
              event("evt_2", {pending("gone")})});
  ASSERT_EQ(claim(*s, {{"gone", 1}}).claimed.size(), 1U);  // one is delivering
  exec("UPDATE deliveries SET status='succeeded' WHERE webhook_id='x'");
  std::promise<std::size_t> p;
  s->cancel_webhooks_except({"keep"}, [&](WriteStatus st, std::size_t n) {
    EXPECT_EQ(st, WriteStatus::kOk);
    p.set_value(n);
  });
  EXPECT_EQ(p.get_future().get(), 3U);
  EXPECT_EQ(query("SELECT status FROM deliveries WHERE webhook_id='keep'"), "pending");
  EXPECT_EQ(query("SELECT status FROM deliveries WHERE webhook_id='x'"), "succeeded");
  EXPECT_EQ(query("SELECT count(*) FROM deliveries WHERE webhook_id='gone' AND "
                  "status='cancelled' AND next_attempt_at IS NULL"),
            "3");
}

TEST_P(StoreBackend, StoreHealth_AttemptsKeepTheFailureStreakAndDisablesAreStored) {
  auto s = open();
  submit(*s, {event("evt_1", {pending("crm"), pending("crm"), pending("crm")})});
  const auto c = claim(*s, {{"crm", 3}});
  ASSERT_EQ(c.claimed.size(), 3U);
  const TimePoint t0{std::chrono::milliseconds(1'700'000'000'000)};
  EXPECT_EQ(wait([&](auto cb) {
              s->record_attempt(attempt_of(c.claimed[0], AttemptOutcome::kRetry, t0), cb);
            }),
            WriteStatus::kOk);
  EXPECT_EQ(wait([&](auto cb) {
              s->record_attempt(attempt_of(c.claimed[1], AttemptOutcome::kFailed, t0 + 1s), cb);
            }),
            WriteStatus::kOk);
  auto rows = s->webhook_states();
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].consecutive_failures, 2);
  EXPECT_EQ(rows[0].first_failure_at, common::format_rfc3339_ms(t0));  // the first one stays
  EXPECT_FALSE(rows[0].last_success_at);
  EXPECT_FALSE(rows[0].disabled_reason);

  // A disable is stored; a second one keeps the first reason and time.
  EXPECT_EQ(wait([&](auto cb) { s->set_webhook_disabled("crm", "gone", t0 + 2s, cb); }),
            WriteStatus::kOk);
  EXPECT_EQ(wait([&](auto cb) { s->set_webhook_disabled("crm", "later", t0 + 3s, cb); }),
            WriteStatus::kOk);
  rows = s->webhook_states();
  EXPECT_EQ(rows[0].disabled_reason, "gone");
  EXPECT_EQ(rows[0].disabled_at, common::format_rfc3339_ms(t0 + 2s));
  // It survives a restart.
  s->close();
  s = open();
  EXPECT_EQ(s->webhook_states().at(0).disabled_reason, "gone");

  // Enabling clears the disable and the streak; a success resets the streak too.
  EXPECT_EQ(wait([&](auto cb) { s->set_webhook_disabled("crm", std::nullopt, t0 + 4s, cb); }),
            WriteStatus::kOk);
  rows = s->webhook_states();
  EXPECT_FALSE(rows[0].disabled_reason);
  EXPECT_EQ(rows[0].consecutive_failures, 0);
  EXPECT_FALSE(rows[0].first_failure_at);
  s->recover_interrupted(common::now_ms());
  const auto again = claim(*s, {{"crm", 1}});
  ASSERT_EQ(again.claimed.size(), 1U);
  EXPECT_EQ(wait([&](auto cb) {
              s->record_attempt(attempt_of(again.claimed[0], AttemptOutcome::kSucceeded, t0 + 5s),
                                cb);
            }),
            WriteStatus::kOk);
  rows = s->webhook_states();
  EXPECT_EQ(rows[0].last_success_at, common::format_rfc3339_ms(t0 + 5s));
  EXPECT_EQ(rows[0].consecutive_failures, 0);
}

TEST_P(StoreBackend, StoreHealth_ReleaseClaimedPutsThemBackUncountedWithTheirDueTime) {
  auto s = open();
  submit(*s, {event("evt_1", {pending("crm"), pending("crm")})});
  const auto before = query("SELECT next_attempt_at FROM deliveries ORDER BY id");
  auto c = claim(*s, {{"crm", 2}});
  ASSERT_EQ(c.claimed.size(), 2U);
  EXPECT_EQ(wait([&](auto cb) { s->release_claimed(c.claimed, cb); }), WriteStatus::kOk);
  EXPECT_EQ(query("SELECT status, attempt_count FROM deliveries"), "pending|0\npending|0");
  EXPECT_EQ(query("SELECT next_attempt_at FROM deliveries ORDER BY id"), before);
  EXPECT_EQ(claim(*s, {{"crm", 2}}).claimed.size(), 2U);
}

TEST_P(StoreBackend, StoreHealth_RecoverFailedMakesExactlyTheWindowDueInChunks) {
  Opts o;
  o.bulk_chunk = 2;
  auto s = open(o);
  // Five failed deliveries of crm, one a second apart, plus one of another webhook and one of
  // crm that succeeded, all inside the window.
  const TimePoint t0{std::chrono::milliseconds(1'700'000'000'000)};
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    const auto r = submit(*s, {event("evt_" + std::to_string(i), {pending("crm")}, t0 + i * 1s)});
    ids.push_back(r[0].deliveries[0].first);
  }
  submit(*s, {event("evt_other", {pending("other"), pending("crm")}, t0 + 2s)});
  for (const auto& d : claim(*s, {{"crm", 10}, {"other", 10}}).claimed) {
    const bool ok = d.event_id == "evt_other" && d.webhook_id == "crm";
    EXPECT_EQ(wait([&](auto cb) {
                s->record_attempt(
                    attempt_of(d, ok ? AttemptOutcome::kSucceeded : AttemptOutcome::kFailed, t0),
                    cb);
              }),
              WriteStatus::kOk);
  }
  // created_at is the intake time of the row, not the event's: set it as the test needs.
  {
    for (int i = 0; i < 5; ++i) {
      exec("UPDATE deliveries SET created_at = '" + common::format_rfc3339_ms(t0 + i * 1s) +
           "' WHERE id = '" + ids[i] + "'");
    }
    exec("UPDATE deliveries SET created_at = '" + common::format_rfc3339_ms(t0 + 2s) +
         "' WHERE event_id = 'evt_other'");
  }
  std::promise<std::pair<WriteStatus, std::size_t>> done;
  std::atomic<int> chunks{0};
  s->recover_failed(
      "crm", t0 + 1s, t0 + 4s, common::now_ms(),
      [&](WriteStatus st, std::size_t n) {
        done.set_value({st, n});
      },
      [&] { ++chunks; });
  const auto [st, n] = done.get_future().get();
  EXPECT_EQ(st, WriteStatus::kOk);
  EXPECT_EQ(n, 3U);  // ids 1, 2, 3: [since, until) excludes 4; the succeeded one stays
  EXPECT_EQ(chunks, 2);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(query("SELECT status FROM deliveries WHERE id = '" + ids[i] + "'"),
              i >= 1 && i <= 3 ? "pending" : "failed")
        << i;
  }
  EXPECT_EQ(query("SELECT status FROM deliveries WHERE webhook_id = 'other'"), "failed");
  EXPECT_EQ(query("SELECT status FROM deliveries WHERE event_id = 'evt_other' AND "
                  "webhook_id = 'crm'"),
            "succeeded");
  // Oldest first, and attempt_count kept (the next attempt is counted).
  const auto c = claim(*s, {{"crm", 10}});
  ASSERT_EQ(c.claimed.size(), 3U);
  EXPECT_EQ(c.claimed[0].delivery_id, ids[1]);
  EXPECT_EQ(c.claimed[2].delivery_id, ids[3]);
  EXPECT_EQ(c.claimed[0].attempt_count, 1);
}

}  // namespace
}  // namespace relay::store
