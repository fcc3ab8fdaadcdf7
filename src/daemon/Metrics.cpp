#include "relay/daemon/Metrics.hpp"

#include <sstream>

#include "relay/common/Time.hpp"

namespace relay::daemon {

void Metrics::attempt(const std::string& webhook_id, const std::string& outcome, std::int64_t ms) {
  std::lock_guard lock(mutex_);
  auto& wh = webhooks_[webhook_id];
  ++wh.attempts_by_outcome[outcome];
  const auto now = common::format_rfc3339_ms(common::now_ms());
  if (outcome == "succeeded") {
    wh.last_success_at = now;
  } else {
    wh.last_failure_at = now;
  }
  for (std::size_t i = 0; i < kLatencyBucketsMs.size(); ++i) {
    if (static_cast<double>(ms) <= kLatencyBucketsMs[i]) ++wh.buckets[i];
  }
  ++wh.latency_count;
  wh.latency_sum_ms += static_cast<double>(ms);
}

void Metrics::intake_answer(int status) {
  std::lock_guard lock(mutex_);
  ++intake_answers_[status];
}

std::map<std::string, Metrics::WebhookActivity> Metrics::webhook_activity() const {
  std::lock_guard lock(mutex_);
  return webhooks_;
}

std::string Metrics::render() const {
  std::ostringstream out;
  out << "# HELP relayd_events_received_total Events accepted by the intake API (committed).\n"
      << "# TYPE relayd_events_received_total counter\n"
      << "relayd_events_received_total " << events_received_.load() << "\n";
  std::lock_guard lock(mutex_);
  out << "# HELP relayd_intake_responses_total Intake answers by HTTP status code.\n"
      << "# TYPE relayd_intake_responses_total counter\n";
  for (const auto& [code, n] : intake_answers_) {
    out << "relayd_intake_responses_total{code=\"" << code << "\"} " << n << "\n";
  }
  out << "# HELP relayd_attempts_total Delivery attempts by webhook and outcome.\n"
      << "# TYPE relayd_attempts_total counter\n";
  for (const auto& [id, wh] : webhooks_) {
    for (const auto& [outcome, n] : wh.attempts_by_outcome) {
      out << "relayd_attempts_total{webhook=\"" << id << "\",outcome=\"" << outcome << "\"} " << n
          << "\n";
    }
  }
  out << "# HELP relayd_attempt_duration_seconds Duration of delivery attempts by webhook.\n"
      << "# TYPE relayd_attempt_duration_seconds histogram\n";
  for (const auto& [id, wh] : webhooks_) {
    const std::string label = "webhook=\"" + id + "\"";
    for (std::size_t i = 0; i < kLatencyBucketsMs.size(); ++i) {
      out << "relayd_attempt_duration_seconds_bucket{" << label << ",le=\""
          << kLatencyBucketsMs[i] / 1000.0 << "\"} " << wh.buckets[i] << "\n";
    }
    out << "relayd_attempt_duration_seconds_bucket{" << label << ",le=\"+Inf\"} "
        << wh.latency_count << "\n"
        << "relayd_attempt_duration_seconds_sum{" << label << "} " << wh.latency_sum_ms / 1000.0
        << "\n"
        << "relayd_attempt_duration_seconds_count{" << label << "} " << wh.latency_count << "\n";
  }
  return out.str();
}

}  // namespace relay::daemon
