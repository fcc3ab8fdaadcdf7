#pragma once

// What is stored and logged about one attempt: its record, filled from the claim and the
// request as it starts and from the HTTP result as it ends (what the result means is
// delivery::classify_attempt's), and the log line once the record committed (info for a
// delivery, warn for an attempt that will be retried, error for one given up; docs/operations.md
// greps them). The dispatcher only schedules; these run on the I/O threads, once per attempt.

#include <string>
#include <vector>

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

/// Logs `r`, whose record committed, for `webhook_id`.
void log_outcome(const store::AttemptRecord& r, const std::string& webhook_id);

}  // namespace relay::dispatcher
