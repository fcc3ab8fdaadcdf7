#pragma once

#include <chrono>
#include <optional>
#include <string_view>
#include <vector>

#include "relay/common/AttemptOutcome.hpp"
#include "relay/common/Time.hpp"

namespace relay::delivery {

using Duration = std::chrono::milliseconds;

/// What to do after an attempt: a pure function of its result and the schedule (SPEC §5).
struct RetryDecision {
  using Kind = common::AttemptOutcome;
  Kind kind = Kind::kFailed;
  Duration delay{0};  // for kRetry: wait this long before the next attempt
};

/// `attempt_number` is 1-based (the attempt that just ended); `status` is empty for a
/// transport failure (DNS, connect, TLS, reset, timeout); `retry_after` is the parsed
/// Retry-After of a 429 (or 503) response. Schedule entry k is the delay before attempt k.
RetryDecision decide_retry(int attempt_number, std::optional<int> status,
                           std::optional<Duration> retry_after,
                           const std::vector<Duration>& schedule);

/// Retry-After: delta-seconds or an HTTP-date (relative to `now`). nullopt when malformed.
/// Never negative; not capped here (decide_retry caps at 8h).
std::optional<Duration> parse_retry_after(std::string_view value, common::TimePoint now);

}  // namespace relay::delivery
