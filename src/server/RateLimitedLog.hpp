#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace relay::server {

/// Lets through at most one log line per `interval` and counts the ones it held back, so a
/// client hammering with a wrong token cannot flood the journal. Thread-safe (lock-free).
class RateLimitedLog {
 public:
  explicit RateLimitedLog(std::chrono::milliseconds interval) : interval_ms_(interval.count()) {}

  /// True when this occurrence may be logged; `suppressed` is then how many were held back
  /// since the last logged one.
  bool allow(std::uint64_t& suppressed) {
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now().time_since_epoch())
                         .count();
    auto last = last_ms_.load(std::memory_order_relaxed);
    if (last != kNever && now - last < interval_ms_) {
      held_back_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    if (!last_ms_.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
      held_back_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    suppressed = held_back_.exchange(0, std::memory_order_relaxed);
    return true;
  }

 private:
  static constexpr std::int64_t kNever = INT64_MIN;
  std::int64_t interval_ms_;
  std::atomic<std::int64_t> last_ms_{kNever};
  std::atomic<std::uint64_t> held_back_{0};
};

}  // namespace relay::server
