#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

#include "relay/config/Config.hpp"

namespace boost::asio {
class io_context;
}

namespace relay::store {
class DeliveryStore;
}

namespace relay::delivery {
class HttpSender;
}

namespace relay::dispatcher {

/// Counters the dispatcher keeps for /metrics (read without locking; monotonic).
struct DispatcherStats {
  std::uint64_t attempts_succeeded = 0;
  std::uint64_t attempts_retry = 0;
  std::uint64_t attempts_failed = 0;
  std::size_t in_flight = 0;
};

/// Moves due deliveries from the store to the HTTP client pool and records every attempt.
/// Claims work in batches within delivery.concurrency and per_webhook_concurrency, wakes on
/// notify() (new intake) and on one timer set to the earliest due time — no polling. All state
/// lives on a strand: every public method is thread-safe.
class Dispatcher {
 public:
  using ConfigSource = std::function<std::shared_ptr<const config::Config>()>;
  /// Called after each recorded attempt (metrics): webhook id, outcome, latency.
  using AttemptObserver =
      std::function<void(const std::string& webhook_id, const char* outcome, std::int64_t ms)>;

  Dispatcher(boost::asio::io_context& io, store::DeliveryStore& store, delivery::HttpSender& client,
             ConfigSource config);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  void set_attempt_observer(AttemptObserver observer);

  /// Starts claiming due work.
  void start();
  /// New pending deliveries may be due now (intake, redeliver, resume, reload).
  void notify();
  /// Stops claiming; calls `done` once no attempt is in flight, or when `grace` has passed
  /// (attempts still running then stay `delivering` in the store and are recovered at the
  /// next start). `done` runs on an io thread.
  void shutdown(std::chrono::milliseconds grace, std::function<void(std::size_t unfinished)> done);

  [[nodiscard]] DispatcherStats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace relay::dispatcher
