#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "relay/common/Time.hpp"

#include "relay/config/Config.hpp"

namespace boost::asio {
class io_context;
}

namespace relay::store {
class DeliveryStore;
struct WebhookStateRow;
}  // namespace relay::store

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

/// One webhook's health as the dispatcher sees it (for the API and /metrics).
struct WebhookHealthView {
  int consecutive_failures = 0;
  std::optional<common::TimePoint> open_until;  // set: the circuit is open until then
  std::optional<std::string> last_success_at;   // RFC 3339 ms (stored: survives restarts)
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
  /// Called (on the dispatcher's strand; it must only post or enqueue) when a webhook must be
  /// disabled: it answered 410 Gone, or had no success for delivery.auto_disable_after.
  using DisableRequest = std::function<void(const std::string& webhook_id, std::string reason)>;
  /// Called (on the dispatcher's strand; it must only post or enqueue) when an attempt of a
  /// webhook that is disabled now was recorded as a retry: the pause skips deliveries in
  /// flight (their record decides them), so one in flight while the webhook was disabled came
  /// back pending and must be paused by another pass.
  using PauseRequest = std::function<void(const std::string& webhook_id)>;
  void set_webhook_handlers(DisableRequest disable, PauseRequest pause);

  /// The failure streaks stored before this start (call before start()): a circuit whose
  /// streak reached the threshold starts open with a probe due at once.
  void restore_health(std::vector<store::WebhookStateRow> rows);
  /// The webhook was enabled by an operator: closed circuit, fresh auto-disable clock.
  void reset_health(const std::string& webhook_id);
  /// Thread-safe snapshot, by webhook id (only webhooks with an attempt or a stored row).
  [[nodiscard]] std::map<std::string, WebhookHealthView> health() const;

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
