#include "relay/delivery/RetryPolicy.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

namespace relay::delivery {
namespace {

constexpr Duration kMaxRetryAfter = std::chrono::hours(8);

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Exactly `n` digits at s[pos..]; -1 when anything else is there.
int fixed_digits(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) return -1;
  int value = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (!is_digit(s[i])) return -1;
    value = value * 10 + (s[i] - '0');
  }
  return value;
}

// IMF-fixdate (RFC 9110 §5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT", exactly 29 characters.
std::optional<common::TimePoint> parse_imf_fixdate(std::string_view s) {
  static constexpr std::array<std::string_view, 7> kDays = {"Mon", "Tue", "Wed", "Thu",
                                                            "Fri", "Sat", "Sun"};
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (s.size() != 29) return std::nullopt;
  if (std::find(kDays.begin(), kDays.end(), s.substr(0, 3)) == kDays.end()) return std::nullopt;
  if (s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[19] != ':' ||
      s[22] != ':' || s.substr(25) != " GMT") {
    return std::nullopt;
  }
  const auto month_it = std::find(kMonths.begin(), kMonths.end(), s.substr(8, 3));
  if (month_it == kMonths.end()) return std::nullopt;
  const int day = fixed_digits(s, 5, 2);
  const int year = fixed_digits(s, 12, 4);
  const int hour = fixed_digits(s, 17, 2);
  const int minute = fixed_digits(s, 20, 2);
  const int second = fixed_digits(s, 23, 2);
  if (day < 1 || year < 0 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 ||
      second > 60) {
    return std::nullopt;
  }
  const std::chrono::year_month_day ymd{
      std::chrono::year{year},
      std::chrono::month{static_cast<unsigned>(month_it - kMonths.begin() + 1)},
      std::chrono::day{static_cast<unsigned>(day)}};
  if (!ymd.ok()) return std::nullopt;
  const auto t = std::chrono::sys_days{ymd} + std::chrono::hours(hour) +
                 std::chrono::minutes(minute) + std::chrono::seconds(second);
  return std::chrono::time_point_cast<std::chrono::milliseconds>(t);
}

}  // namespace

RetryDecision decide_retry(int attempt_number, std::optional<int> status,
                           std::optional<Duration> retry_after,
                           const std::vector<Duration>& schedule) {
  if (status && *status >= 200 && *status <= 299) return {RetryDecision::Kind::kSucceeded, {}};
  if (status && *status >= 400 && *status <= 499 && *status != 429) {
    return {RetryDecision::Kind::kFailed, {}};
  }
  // Everything else is retried: transport failures, 5xx, 429, 1xx, 3xx and odd codes.
  // schedule[k] is the delay before attempt k+1, so after attempt n the next delay is
  // schedule[n]; there is none after the attempt of the last entry.
  const auto next = static_cast<std::size_t>(std::max(attempt_number, 0));
  if (next >= schedule.size()) return {RetryDecision::Kind::kFailed, {}};
  Duration delay = schedule[next];
  if (status && (*status == 429 || *status == 503) && retry_after) {
    delay = std::max(delay, std::min(*retry_after, kMaxRetryAfter));
  }
  return {RetryDecision::Kind::kRetry, delay};
}

std::optional<Duration> parse_retry_after(std::string_view value, common::TimePoint now) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), is_digit)) {
    // Saturate instead of overflowing: anything beyond ~31 years is "very long" anyway.
    constexpr std::int64_t kMaxSeconds = 1'000'000'000;
    std::int64_t seconds = 0;
    for (char c : value) {
      seconds = std::min<std::int64_t>(seconds * 10 + (c - '0'), kMaxSeconds);
    }
    return std::chrono::duration_cast<Duration>(std::chrono::seconds(seconds));
  }
  const auto when = parse_imf_fixdate(value);
  if (!when) return std::nullopt;
  return std::max(Duration{0}, std::chrono::duration_cast<Duration>(*when - now));
}

}  // namespace relay::delivery
