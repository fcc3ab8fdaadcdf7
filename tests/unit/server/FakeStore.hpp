// An in-memory Store for the HTTP server's tests (HttpServerTest.cpp): intake answered from a
// map, the answers delayed or failed on demand, so the server is tested without SQLite.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "relay/store/Store.hpp"

namespace relay::server::test_support {

using namespace std::chrono_literals;

class FakeStore final : public store::Store {
 public:
  ~FakeStore() override { close(); }

  bool submit_events(std::vector<store::NewEvent> events, IntakeCallback done) override {
    if (refuse) return false;
    ++submits;
    // Answer from another thread, as the real writer thread does.
    std::lock_guard lock(threads_mutex_);
    threads_.emplace_back([this, events = std::move(events), done = std::move(done)]() mutable {
      std::this_thread::sleep_for(2ms);
      if (status != store::WriteStatus::kOk) {
        done(status, {});
        return;
      }
      std::vector<store::EventReceipt> receipts;
      {
        std::lock_guard lock(mutex_);
        for (auto& event : events) {
          auto it = receipts_.find(event.id);
          if (it != receipts_.end()) {
            auto receipt = it->second;
            receipt.duplicate = true;
            receipts.push_back(receipt);
            continue;
          }
          store::EventReceipt receipt{event.id, event.event_type, event.created_at, {}, false};
          for (const auto& d : event.deliveries)
            receipt.deliveries.emplace_back(d.id, d.webhook_id);
          receipts_.emplace(event.id, receipt);
          payloads_.emplace(event.id, event.payload);
          receipts.push_back(receipt);
        }
      }
      done(store::WriteStatus::kOk, std::move(receipts));
    });
    return true;
  }

  std::size_t stored() {
    std::lock_guard lock(mutex_);
    return receipts_.size();
  }
  std::string payload(const std::string& id) {
    std::lock_guard lock(mutex_);
    return payloads_.at(id);
  }

  void claim_due(common::TimePoint, std::vector<std::pair<std::string, int>>,
                 ClaimCallback done) override {
    done(store::WriteStatus::kOk, {});
  }
  void record_attempt(store::AttemptRecord, WriteCallback done) override {
    done(store::WriteStatus::kOk);
  }
  std::size_t recover_interrupted(common::TimePoint) override { return 0; }
  void redeliver(std::string, common::TimePoint,
                 std::function<void(store::WriteStatus, bool)> done) override {
    done(store::WriteStatus::kOk, false);
  }
  void set_webhook_paused(std::string, bool, std::size_t, WriteCallback done,
                          std::function<void()>) override {
    done(store::WriteStatus::kOk);
  }
  void cancel_webhooks_except(std::vector<std::string>,
                              std::function<void(store::WriteStatus, std::size_t)> done) override {
    done(store::WriteStatus::kOk, 0);
  }
  void prune_before(common::TimePoint, std::size_t,
                    std::function<void(store::WriteStatus, std::size_t)> done) override {
    done(store::WriteStatus::kOk, 0);
  }
  [[nodiscard]] store::StoreStats stats() const override { return {}; }
  void release_claimed(std::vector<store::DueDelivery>, WriteCallback done) override {
    done(store::WriteStatus::kOk);
  }
  // HealthStore: not used by the server.
  void set_webhook_disabled(std::string, std::optional<std::string>, common::TimePoint,
                            std::function<void(store::WriteStatus)> done) override {
    done(store::WriteStatus::kOk);
  }
  void recover_failed(std::string, common::TimePoint, common::TimePoint, common::TimePoint,
                      std::function<void(store::WriteStatus, std::size_t)> done,
                      std::function<void()>) override {
    done(store::WriteStatus::kOk, 0);
  }
  std::vector<store::WebhookStateRow> webhook_states() override { return {}; }
  std::vector<std::pair<std::string, std::optional<common::TimePoint>>> oldest_due(
      const std::vector<std::string>&, common::TimePoint) override {
    return {};
  }
  std::optional<store::DeliveryRow> get_delivery(const std::string&) override {
    return std::nullopt;
  }
  std::vector<store::DeliveryRow> list_deliveries(const store::DeliveryFilter&) override {
    return {};
  }
  std::vector<std::pair<std::pair<std::string, std::string>, std::int64_t>>
  count_by_webhook_status() override {
    return {};
  }
  std::optional<store::EventReceipt> get_event(const std::string&) override { return std::nullopt; }
  bool writable() override {
    writable_calls_from = std::this_thread::get_id();
    return is_writable;
  }
  void close() override {
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(threads_mutex_);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
  }

  std::atomic<bool> refuse{false};
  std::atomic<bool> is_writable{true};
  std::atomic<store::WriteStatus> status{store::WriteStatus::kOk};
  std::atomic<int> submits{0};
  std::atomic<std::thread::id> writable_calls_from{};

 private:
  std::mutex mutex_;
  std::map<std::string, store::EventReceipt> receipts_;
  std::map<std::string, std::string> payloads_;
  std::mutex threads_mutex_;
  std::vector<std::thread> threads_;
};

// ---------------------------------------------------------------- raw client

}  // namespace relay::server::test_support
