#include "AttemptRecords.hpp"

#include <spdlog/spdlog.h>

#include "relay/common/Redaction.hpp"
#include "relay/common/Time.hpp"
#include "relay/delivery/AttemptClassifier.hpp"

namespace relay::dispatcher {

void start_record(store::AttemptRecord& r, const store::DueDelivery& d,
                  const delivery::OutgoingRequest& request) {
  r.delivery_id = d.delivery_id;
  r.delivery_rowid = d.rowid;
  r.webhook_id = d.webhook_id;
  r.event_id = d.event_id;
  r.attempt_number = d.attempt_count + 1;
  r.started_at = common::now_ms();
  r.url = common::redact_url(request.url);
  r.request_headers = delivery::headers_for_log(request.headers);
}

void finish_record(store::AttemptRecord& r, const delivery::HttpResult& res,
                   const std::vector<delivery::Duration>& schedule) {
  auto verdict = delivery::classify_attempt(res, r.attempt_number, schedule, common::now_ms());
  r.duration_ms = res.duration.count();
  r.response_status = res.status;
  // A receiver's Set-Cookie or token header is a credential too (SPEC §6: no secrets
  // stored): names that look secret keep their name, not their value.
  r.response_headers = delivery::headers_json(res.headers, true);
  r.response_body = delivery::valid_utf8(res.body);
  r.error = std::move(verdict.error);
  r.outcome = verdict.outcome;
  switch (verdict.outcome) {
    case common::AttemptOutcome::kSucceeded:
      r.new_status = store::DeliveryStatus::kSucceeded;
      break;
    case common::AttemptOutcome::kRetry:
      r.new_status = store::DeliveryStatus::kPending;
      r.next_attempt_at = verdict.next_attempt_at;
      break;
    case common::AttemptOutcome::kFailed:
      r.new_status = store::DeliveryStatus::kFailed;
      break;
  }
}

OutcomeLog::OutcomeLog(std::size_t delivered_per_second) : per_second_(delivered_per_second) {}

OutcomeLog::~OutcomeLog() {
  try {
    flush();
  } catch (...) {  // NOLINT(bugprone-empty-catch): a log line is not worth a crash at shutdown
  }
}

bool OutcomeLog::may_log_delivered(common::TimePoint now) {
  if (now - window_start_ >= std::chrono::seconds(1) || now < window_start_) {
    flush();
    window_start_ = now;
    used_ = 0;
  }
  if (used_ < per_second_) {
    ++used_;
    return true;
  }
  if (held_ == 0) first_held_ = now;
  last_held_ = now;
  ++held_;
  return false;
}

void OutcomeLog::flush() {
  if (held_ == 0) return;
  spdlog::info(
      "delivered {} more deliveries from {} to {} without a line each (at most {} such lines "
      "per second; the delivery log has every attempt)",
      held_, common::format_rfc3339_ms(first_held_), common::format_rfc3339_ms(last_held_),
      per_second_);
  held_ = 0;
}

void OutcomeLog::log(const store::AttemptRecord& r, const std::string& webhook_id,
                     common::TimePoint now) {
  // "HTTP <status>" when the receiver answered, else the error: the same text as before,
  // formatted in place (it was a string built per line, on every delivery).
  switch (r.outcome) {
    case store::AttemptOutcome::kSucceeded:
      if (!may_log_delivered(now)) break;
      if (r.response_status) {
        spdlog::info(
            "delivered delivery={} webhook={} event={} attempt={} status=HTTP {} duration_ms={}",
            r.delivery_id, webhook_id, r.event_id, r.attempt_number, *r.response_status,
            r.duration_ms);
      } else {
        spdlog::info(
            "delivered delivery={} webhook={} event={} attempt={} status={} duration_ms={}",
            r.delivery_id, webhook_id, r.event_id, r.attempt_number, r.error, r.duration_ms);
      }
      break;
    case store::AttemptOutcome::kRetry: {
      const std::string what =
          r.response_status ? "HTTP " + std::to_string(*r.response_status) : r.error;
      spdlog::warn(
          "attempt failed, will retry delivery={} webhook={} event={} attempt={} result=\"{}\" "
          "next_attempt_at={}",
          r.delivery_id, webhook_id, r.event_id, r.attempt_number, what,
          r.next_attempt_at ? common::format_rfc3339_ms(*r.next_attempt_at) : "");
      break;
    }
    case store::AttemptOutcome::kFailed: {
      const std::string what =
          r.response_status ? "HTTP " + std::to_string(*r.response_status) : r.error;
      spdlog::error(
          "delivery failed, giving up delivery={} webhook={} event={} attempt={} result=\"{}\"",
          r.delivery_id, webhook_id, r.event_id, r.attempt_number, what);
      break;
    }
  }
}

}  // namespace relay::dispatcher
