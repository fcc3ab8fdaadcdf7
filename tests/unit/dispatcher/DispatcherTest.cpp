// The dispatcher alone: a fake store hands out due deliveries and takes attempt records, a fake
// client answers (or holds) requests. What is checked is the scheduling: limits, what gets
// recorded, what happens when a record is refused, and shutdown.
#include "relay/dispatcher/Dispatcher.hpp"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "relay/delivery/HttpClient.hpp"
#include "relay/store/Store.hpp"

namespace relay::dispatcher {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using store::WriteStatus;

// Waits (bounded) for `ready` under `mutex`, signalled through `cv`.
template <class Pred>
bool wait_until(std::mutex& mutex, std::condition_variable& cv, Pred ready) {
  std::unique_lock lock(mutex);
  return cv.wait_for(lock, 5s, ready);
}

class FakeStore : public store::DeliveryStore {
 public:
  void add_due(const std::string& id, const std::string& webhook, int attempt_count = 0) {
    std::lock_guard lock(mutex);
    store::DueDelivery d;
    d.delivery_id = id;
    d.event_id = "evt_" + id;
    d.webhook_id = webhook;
    d.event_type = "ticket.created";
    d.attempt_count = attempt_count;
    d.payload = "{}";
    d.rowid = static_cast<std::int64_t>(due.size()) + 1;
    due.push_back(std::move(d));
  }

  void claim_due(common::TimePoint, std::vector<std::pair<std::string, int>> limits,
                 ClaimCallback done) override {
    store::ClaimResult r;
    {
      std::lock_guard lock(mutex);
      for (const auto& [webhook, limit] : limits) {
        int taken = 0;
        for (auto it = due.begin(); it != due.end() && taken < limit;) {
          if (it->webhook_id == webhook) {
            r.claimed.push_back(std::move(*it));
            it = due.erase(it);
            ++taken;
          } else {
            ++it;
          }
        }
      }
      ++claims;
    }
    done(WriteStatus::kOk, std::move(r));
  }

  void record_attempt(store::AttemptRecord record, WriteCallback done) override {
    WriteStatus st = WriteStatus::kOk;
    {
      std::lock_guard lock(mutex);
      if (!answers.empty()) {
        st = answers.front();
        answers.pop_front();
      }
      records.push_back(std::move(record));
    }
    cv.notify_all();
    done(st);
  }

  void release_claimed(std::vector<store::DueDelivery> deliveries, WriteCallback done) override {
    {
      std::lock_guard lock(mutex);
      for (auto it = deliveries.rbegin(); it != deliveries.rend(); ++it) {
        due.push_front(std::move(*it));
      }
      released += deliveries.size();
    }
    done(WriteStatus::kOk);
  }

  std::mutex mutex;
  std::condition_variable cv;
  std::size_t released = 0;
  std::deque<store::DueDelivery> due;
  std::deque<WriteStatus> answers;  // for the next record_attempt calls (then kOk)
  std::vector<store::AttemptRecord> records;
  int claims = 0;
};

// Holds every request until the test answers it.
class FakeSender : public delivery::HttpSender {
 public:
  void send(delivery::OutgoingRequest request,
            std::function<void(delivery::HttpResult)> done) override {
    {
      std::lock_guard lock(mutex);
      held.push_back({std::move(request), std::move(done)});
      ++sent;
    }
    cv.notify_all();
  }

  /// Answers the oldest held request with `status` (or a transport error when 0).
  void answer(int status, std::string body = "") {
    std::function<void(delivery::HttpResult)> done;
    {
      std::lock_guard lock(mutex);
      ASSERT_FALSE(held.empty());
      done = std::move(held.front().second);
      held.pop_front();
    }
    delivery::HttpResult r;
    if (status > 0) {
      r.status = status;
    } else {
      r.error = "connect: Connection refused";
    }
    r.body = std::move(body);
    r.duration = 5ms;
    done(std::move(r));
  }

  std::size_t held_count() {
    std::lock_guard lock(mutex);
    return held.size();
  }

  std::mutex mutex;
  std::condition_variable cv;
  std::deque<std::pair<delivery::OutgoingRequest, std::function<void(delivery::HttpResult)>>> held;
  int sent = 0;
};

std::shared_ptr<const config::Config> make_config(int concurrency, int per_webhook) {
  auto cfg = std::make_shared<config::Config>();
  cfg->delivery.concurrency = concurrency;
  cfg->delivery.per_webhook_concurrency = per_webhook;
  cfg->delivery.retry_schedule = {0ms, 60000ms, 300000ms};
  for (const char* id : {"crm", "erp"}) {
    config::WebhookConfig wh;
    wh.id = id;
    wh.url = std::string("https://") + id + ".example.com/hook";
    wh.secret = "whsec_test";
    wh.events = {"*"};
    cfg->webhooks.push_back(wh);
  }
  return cfg;
}

class DispatcherTest : public ::testing::Test {
 protected:
  void start(int concurrency = 8, int per_webhook = 2) {
    config_ = make_config(concurrency, per_webhook);
    dispatcher_ = std::make_unique<Dispatcher>(io_, store_, sender_, [this] { return config_; });
    thread_ = std::thread([this] { io_.run(); });
    dispatcher_->start();
  }

  void TearDown() override {
    if (dispatcher_) {
      std::promise<std::size_t> stopped;
      dispatcher_->shutdown(100ms, [&](std::size_t n) { stopped.set_value(n); });
      stopped.get_future().wait();
    }
    while (sender_.held_count() > 0) sender_.answer(500);  // let held requests end
    work_.reset();
    if (thread_.joinable()) thread_.join();
  }

  bool wait_sent(int n) {
    return wait_until(sender_.mutex, sender_.cv, [&] { return sender_.sent >= n; });
  }
  bool wait_records(std::size_t n) {
    return wait_until(store_.mutex, store_.cv, [&] { return store_.records.size() >= n; });
  }

  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> work_ = net::make_work_guard(io_);
  FakeStore store_;
  FakeSender sender_;
  std::shared_ptr<const config::Config> config_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::thread thread_;
};

TEST_F(DispatcherTest, ASuccessfulAttemptIsRecordedAsSucceeded) {
  store_.add_due("dlv_1", "crm");
  start();
  ASSERT_TRUE(wait_sent(1));
  {
    std::lock_guard lock(sender_.mutex);
    EXPECT_EQ(sender_.held.front().first.url, "https://crm.example.com/hook");
  }
  sender_.answer(200, "caf\xC3");
  ASSERT_TRUE(wait_records(1));
  std::lock_guard lock(store_.mutex);
  const auto& r = store_.records[0];
  EXPECT_EQ(r.delivery_id, "dlv_1");
  EXPECT_EQ(r.delivery_rowid, 1);
  EXPECT_EQ(r.attempt_number, 1);
  EXPECT_EQ(r.outcome, common::AttemptOutcome::kSucceeded);
  EXPECT_EQ(r.new_status, store::DeliveryStatus::kSucceeded);
  EXPECT_EQ(r.response_status, 200);
  EXPECT_EQ(r.response_body, "caf\xEF\xBF\xBD");  // stored as valid UTF-8
  EXPECT_EQ(r.duration_ms, 5);
}

TEST_F(DispatcherTest, AFailedAttemptBecomesPendingAtTheScheduledTime) {
  store_.add_due("dlv_1", "crm", 1);  // its second attempt
  start();
  ASSERT_TRUE(wait_sent(1));
  const auto before = common::now_ms();
  sender_.answer(0);
  ASSERT_TRUE(wait_records(1));
  std::lock_guard lock(store_.mutex);
  const auto& r = store_.records[0];
  EXPECT_EQ(r.attempt_number, 2);
  EXPECT_EQ(r.outcome, common::AttemptOutcome::kRetry);
  EXPECT_EQ(r.new_status, store::DeliveryStatus::kPending);
  EXPECT_EQ(r.error, "connect: Connection refused");
  ASSERT_TRUE(r.next_attempt_at);
  EXPECT_GE(*r.next_attempt_at, before + 300000ms);
  EXPECT_LE(*r.next_attempt_at, common::now_ms() + 300000ms);
}

TEST_F(DispatcherTest, NoMoreThanTheLimitsAreInFlight) {
  for (int i = 0; i < 10; ++i) store_.add_due("dlv_c" + std::to_string(i), "crm");
  for (int i = 0; i < 10; ++i) store_.add_due("dlv_e" + std::to_string(i), "erp");
  start(3, 2);  // 3 in all, 2 per webhook
  ASSERT_TRUE(wait_sent(3));
  std::this_thread::sleep_for(100ms);  // more would have been sent by now
  EXPECT_EQ(sender_.held_count(), 3U);
  {
    std::lock_guard lock(sender_.mutex);
    int crm = 0;
    for (const auto& [req, done] : sender_.held) crm += req.url.find("crm") != std::string::npos;
    EXPECT_LE(crm, 2);
    EXPECT_GE(crm, 1);
  }
  // Each answer frees one slot for the next claimed delivery.
  sender_.answer(200);
  ASSERT_TRUE(wait_sent(4));
  EXPECT_EQ(sender_.held_count(), 3U);
  EXPECT_LE(dispatcher_->stats().in_flight, 3U);
}

TEST_F(DispatcherTest, ARejectedRecordIsWrittenAgainWithoutTheResponse) {
  store_.answers = {WriteStatus::kRejected};
  store_.add_due("dlv_1", "crm");
  start();
  ASSERT_TRUE(wait_sent(1));
  sender_.answer(200, "a body the database refused");
  ASSERT_TRUE(wait_records(2));
  std::lock_guard lock(store_.mutex);
  const auto& again = store_.records[1];
  EXPECT_EQ(again.delivery_id, "dlv_1");
  EXPECT_EQ(again.attempt_number, 1);
  // The outcome still moves the delivery out of `delivering`.
  EXPECT_EQ(again.new_status, store::DeliveryStatus::kSucceeded);
  EXPECT_EQ(again.response_status, 200);
  EXPECT_EQ(again.response_body, "");
  EXPECT_NE(again.error.find("rejected"), std::string::npos);
}

TEST_F(DispatcherTest, ShutdownWaitsForTheAttemptInFlightAndItsRecord) {
  store_.add_due("dlv_1", "crm");
  start();
  ASSERT_TRUE(wait_sent(1));
  std::promise<std::size_t> stopped;
  dispatcher_->shutdown(5s, [&](std::size_t n) { stopped.set_value(n); });
  auto result = stopped.get_future();
  EXPECT_EQ(result.wait_for(100ms), std::future_status::timeout);
  sender_.answer(200);
  ASSERT_EQ(result.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(result.get(), 0U);
  std::lock_guard lock(store_.mutex);
  EXPECT_EQ(store_.records.size(), 1U);
}

TEST_F(DispatcherTest, ShutdownGivesUpOnAnAttemptPastTheGrace) {
  store_.add_due("dlv_1", "crm");
  start();
  ASSERT_TRUE(wait_sent(1));
  std::promise<std::size_t> stopped;
  dispatcher_->shutdown(50ms, [&](std::size_t n) { stopped.set_value(n); });
  auto result = stopped.get_future();
  ASSERT_EQ(result.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(result.get(), 1U);  // left `delivering`: recovered at the next start
  // Nothing more is claimed once stopping.
  const int claims = [&] {
    std::lock_guard lock(store_.mutex);
    return store_.claims;
  }();
  store_.add_due("dlv_2", "crm");
  dispatcher_->notify();
  std::this_thread::sleep_for(50ms);
  std::lock_guard lock(store_.mutex);
  EXPECT_EQ(store_.claims, claims);
}

}  // namespace
}  // namespace relay::dispatcher
