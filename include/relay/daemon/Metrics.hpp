#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace relay::daemon {

/// Process-wide counters for GET /metrics and GET /v1/webhooks. Thread-safe.
class Metrics {
 public:
  /// Upper bounds (ms) of the attempt latency histogram buckets.
  static constexpr std::array<double, 12> kLatencyBucketsMs = {5,   10,   25,   50,   100,   250,
                                                               500, 1000, 2500, 5000, 10000, 30000};

  void events_received(std::uint64_t n) { events_received_ += n; }
  /// An intake answer (POST /v1/events, /v1/events/batch) with this HTTP status.
  void intake_answer(int status);
  void attempt(const std::string& webhook_id, const std::string& outcome, std::int64_t ms);

  struct WebhookActivity {
    std::map<std::string, std::uint64_t> attempts_by_outcome;
    std::optional<std::string> last_success_at;  // RFC 3339 ms, since start
    std::optional<std::string> last_failure_at;
    // The attempt latency histogram of this webhook (SPEC §10: a `webhook` label).
    std::array<std::uint64_t, kLatencyBucketsMs.size()> buckets{};
    std::uint64_t latency_count = 0;
    double latency_sum_ms = 0;
  };
  [[nodiscard]] std::map<std::string, WebhookActivity> webhook_activity() const;

  /// Prometheus text for the counters kept here (the daemon adds queue gauges).
  [[nodiscard]] std::string render() const;

 private:
  std::atomic<std::uint64_t> events_received_{0};
  mutable std::mutex mutex_;
  std::map<std::string, WebhookActivity> webhooks_;
  std::map<int, std::uint64_t> intake_answers_;  // by status code
};

}  // namespace relay::daemon
