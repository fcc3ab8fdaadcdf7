#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relay/common/AttemptOutcome.hpp"
#include "relay/common/Time.hpp"
#include "relay/delivery/HttpClient.hpp"
#include "relay/delivery/RetryPolicy.hpp"

namespace relay::delivery {

/// What an attempt's result means, in the terms the attempt row and the delivery store.
struct AttemptVerdict {
  common::AttemptOutcome outcome = common::AttemptOutcome::kFailed;
  /// For kRetry: when the next attempt is due (the schedule's delay, or a 429/503's
  /// Retry-After, capped; see decide_retry).
  std::optional<common::TimePoint> next_attempt_at;
  /// For the attempt row's `error`: the transport error, or for an answer whose body broke off
  /// "response body cut off: <why>" (the status still decides the outcome). Empty otherwise.
  std::string error;
};

/// Classifies the result of attempt `attempt_number` (1-based) that ended at `now`, following
/// SPEC §5 and the retry `schedule`. Pure: no clock, no I/O; unit-tested.
AttemptVerdict classify_attempt(const HttpResult& result, int attempt_number,
                                const std::vector<Duration>& schedule, common::TimePoint now);

/// `text` with every ill-formed UTF-8 sequence replaced by U+FFFD (maximal subparts, as the
/// Unicode standard recommends): response bodies go to a TEXT column and into the admin API's
/// JSON. ASCII and valid UTF-8 come back unchanged.
std::string valid_utf8(std::string_view text);

}  // namespace relay::delivery
