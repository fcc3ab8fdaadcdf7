#pragma once

// What is stored and logged about one attempt: its record, filled from the claim and the
// request as it starts and from the HTTP result as it ends (what the result means is
// delivery::classify_attempt's), and the log line once the record committed (info for a
// delivery, warn for an attempt that will be retried, error for one given up; docs/operations.md
// greps them). The dispatcher only schedules; the records are filled on the I/O threads.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "relay/common/Time.hpp"
#include "relay/delivery/HttpClient.hpp"
#include "relay/delivery/RequestBuilder.hpp"
#include "relay/delivery/RetryPolicy.hpp"
#include "relay/store/Store.hpp"

namespace relay::dispatcher {

/// The record of the attempt that sends `request` for the claimed `d`, started now.
void start_record(store::AttemptRecord& r, const store::DueDelivery& d,
                  const delivery::OutgoingRequest& request);

/// Completes `r` from the receiver's answer (or the error): outcome, the delivery's next status
/// and, for a retry, its due time under `schedule`.
void finish_record(store::AttemptRecord& r, const delivery::HttpResult& res,
                   const std::vector<delivery::Duration>& schedule);

/// Logs each attempt whose record committed. The "delivered" lines (info) are budgeted: at most
/// `delivered_per_second` in any second; the ones beyond are counted and summed up in one line
/// (with the time span they cover) at the first delivery of a later second, or at flush()
/// (shutdown). Under systemd a line per delivery at ~20,000 deliveries/s cost relayd and journald
/// ~20 µs per delivery between them and a fifth of the drain rate, and journald's rate limit
/// dropped most of the lines anyway (docs/operations.md, "Logs"; bench/journal); every attempt
/// is in the delivery log. Retries (warn) and give-ups (error) are never held back. One strand.
class OutcomeLog {
 public:
  explicit OutcomeLog(std::size_t delivered_per_second = 100);
  ~OutcomeLog();
  OutcomeLog(const OutcomeLog&) = delete;
  OutcomeLog& operator=(const OutcomeLog&) = delete;

  void log(const store::AttemptRecord& r, const std::string& webhook_id,
           common::TimePoint now = common::now_ms());
  /// Logs the count of deliveries held back since the last such line, if any.
  void flush();

 private:
  [[nodiscard]] bool may_log_delivered(common::TimePoint now);

  std::size_t per_second_;
  common::TimePoint window_start_{};
  std::size_t used_ = 0;    // "delivered" lines written in the current window
  std::uint64_t held_ = 0;  // deliveries not logged one by one since the last summary
  common::TimePoint first_held_{};
  common::TimePoint last_held_{};
};

}  // namespace relay::dispatcher
