#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace relay::common {

using Clock = std::chrono::system_clock;
using TimePoint = std::chrono::time_point<Clock, std::chrono::milliseconds>;

/// Current wall-clock time truncated to milliseconds (the precision stored in the database).
TimePoint now_ms();

/// "2025-01-15T10:30:00.123Z": the database's timestamp format (sorts as text).
std::string format_rfc3339_ms(TimePoint t);

/// "2025-01-15T10:30:00Z": the `created_at` format of webhook payloads.
std::string format_rfc3339_s(TimePoint t);

/// Parses either of the two formats above (UTC, trailing Z). nullopt on anything else.
std::optional<TimePoint> parse_rfc3339(std::string_view text);

}  // namespace relay::common
