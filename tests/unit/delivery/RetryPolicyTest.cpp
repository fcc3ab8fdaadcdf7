#include "relay/delivery/RetryPolicy.hpp"

#include <string>

#include <gtest/gtest.h>

namespace relay::delivery {
namespace {

using namespace std::chrono_literals;
using Kind = RetryDecision::Kind;

const std::vector<Duration> kDefault = {0s, 1min, 5min, 30min, 2h, 8h};  // SPEC §2 default
const std::vector<Duration> kCompressed = {0ms, 100ms, 200ms};

struct Case {
  std::string name;
  const std::vector<Duration>* schedule;
  int attempt;
  std::optional<int> status;
  std::optional<Duration> retry_after;
  Kind kind;
  Duration delay;
};

TEST(RetryPolicy, DecisionTable) {
  const std::vector<Case> cases = {
      // 2xx: success whatever the attempt number.
      {"200", &kDefault, 1, 200, {}, Kind::kSucceeded, 0ms},
      {"201", &kDefault, 3, 201, {}, Kind::kSucceeded, 0ms},
      {"204 last attempt", &kDefault, 6, 204, {}, Kind::kSucceeded, 0ms},
      {"299", &kCompressed, 1, 299, {}, Kind::kSucceeded, 0ms},
      // 4xx except 429: final failure, no retry even on attempt 1.
      {"400", &kDefault, 1, 400, {}, Kind::kFailed, 0ms},
      {"401", &kDefault, 1, 401, {}, Kind::kFailed, 0ms},
      {"404", &kDefault, 2, 404, {}, Kind::kFailed, 0ms},
      {"410", &kCompressed, 1, 410, {}, Kind::kFailed, 0ms},
      {"499", &kDefault, 1, 499, {}, Kind::kFailed, 0ms},
      {"400 ignores retry-after", &kDefault, 1, 400, 10min, Kind::kFailed, 0ms},
      // Retried: transport failure, 5xx, 429, 1xx, 3xx, anything else.
      {"transport after 1", &kDefault, 1, std::nullopt, {}, Kind::kRetry, 1min},
      {"transport after 2", &kDefault, 2, std::nullopt, {}, Kind::kRetry, 5min},
      {"transport after 3", &kDefault, 3, std::nullopt, {}, Kind::kRetry, 30min},
      {"transport after 4", &kDefault, 4, std::nullopt, {}, Kind::kRetry, 2h},
      {"transport after 5", &kDefault, 5, std::nullopt, {}, Kind::kRetry, 8h},
      {"transport after 6 (last)", &kDefault, 6, std::nullopt, {}, Kind::kFailed, 0ms},
      {"500", &kDefault, 1, 500, {}, Kind::kRetry, 1min},
      {"502", &kDefault, 2, 502, {}, Kind::kRetry, 5min},
      {"599", &kDefault, 5, 599, {}, Kind::kRetry, 8h},
      {"500 last", &kDefault, 6, 500, {}, Kind::kFailed, 0ms},
      {"429", &kDefault, 1, 429, {}, Kind::kRetry, 1min},
      {"429 last", &kDefault, 6, 429, 1s, Kind::kFailed, 0ms},
      {"100", &kDefault, 1, 100, {}, Kind::kRetry, 1min},
      {"101", &kDefault, 1, 101, {}, Kind::kRetry, 1min},
      {"301", &kDefault, 1, 301, {}, Kind::kRetry, 1min},
      {"302", &kDefault, 3, 302, {}, Kind::kRetry, 30min},
      {"304", &kDefault, 1, 304, {}, Kind::kRetry, 1min},
      {"600 odd", &kDefault, 1, 600, {}, Kind::kRetry, 1min},
      {"99 odd", &kDefault, 1, 99, {}, Kind::kRetry, 1min},
      {"0 odd", &kDefault, 1, 0, {}, Kind::kRetry, 1min},
      {"302 last", &kDefault, 6, 302, {}, Kind::kFailed, 0ms},
      // Retry-After on 429/503: honoured when larger than the next delay, capped at 8h.
      {"429 larger RA", &kDefault, 1, 429, 10min, Kind::kRetry, 10min},
      {"429 smaller RA", &kDefault, 2, 429, 1min, Kind::kRetry, 5min},
      {"429 equal RA", &kDefault, 2, 429, 5min, Kind::kRetry, 5min},
      {"429 RA capped", &kDefault, 1, 429, 24h, Kind::kRetry, 8h},
      {"429 RA zero", &kDefault, 1, 429, 0ms, Kind::kRetry, 1min},
      {"503 larger RA", &kDefault, 1, 503, 2h, Kind::kRetry, 2h},
      {"503 RA capped", &kDefault, 3, 503, 100h, Kind::kRetry, 8h},
      {"500 RA ignored", &kDefault, 1, 500, 2h, Kind::kRetry, 1min},
      {"transport RA ignored", &kDefault, 1, std::nullopt, 2h, Kind::kRetry, 1min},
      // Compressed schedule: 3 attempts.
      {"c transport 1", &kCompressed, 1, std::nullopt, {}, Kind::kRetry, 100ms},
      {"c 500 2", &kCompressed, 2, 500, {}, Kind::kRetry, 200ms},
      {"c 500 3 last", &kCompressed, 3, 500, {}, Kind::kFailed, 0ms},
      {"c 429 RA", &kCompressed, 1, 429, 1s, Kind::kRetry, 1s},
      {"c 429 RA small", &kCompressed, 2, 429, 50ms, Kind::kRetry, 200ms},
      {"c 404", &kCompressed, 1, 404, {}, Kind::kFailed, 0ms},
      {"c 200 3", &kCompressed, 3, 200, {}, Kind::kSucceeded, 0ms},
      // Beyond the schedule (manual redeliver adds attempts): still one final try each.
      {"beyond schedule", &kCompressed, 7, 500, {}, Kind::kFailed, 0ms},
      {"beyond schedule success", &kCompressed, 7, 200, {}, Kind::kSucceeded, 0ms},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const RetryDecision d = decide_retry(c.attempt, c.status, c.retry_after, *c.schedule);
    EXPECT_EQ(d.kind, c.kind);
    if (c.kind == Kind::kRetry) {
      EXPECT_EQ(d.delay.count(), c.delay.count());
    }
  }
}

TEST(RetryPolicy, DefaultScheduleMakesSixAttempts) {
  int attempts = 0;
  for (int n = 1;; ++n) {
    ++attempts;
    if (decide_retry(n, 503, std::nullopt, kDefault).kind != Kind::kRetry) break;
  }
  EXPECT_EQ(attempts, 6);
}

TEST(RetryPolicy, EmptyScheduleNeverRetries) {
  EXPECT_EQ(decide_retry(1, 500, std::nullopt, {}).kind, Kind::kFailed);
  EXPECT_EQ(decide_retry(1, 200, std::nullopt, {}).kind, Kind::kSucceeded);
}

TEST(RetryPolicy, ScheduleEntryLargerThanCapIsKept) {
  const std::vector<Duration> schedule = {0s, 12h};
  const auto d = decide_retry(1, 429, 10h, schedule);
  EXPECT_EQ(d.kind, Kind::kRetry);
  EXPECT_EQ(d.delay, Duration(12h));
}

TEST(RetryAfter, DeltaSeconds) {
  const auto now = common::TimePoint(std::chrono::seconds(1'700'000'000));
  EXPECT_EQ(parse_retry_after("120", now), Duration(120s));
  EXPECT_EQ(parse_retry_after("0", now), Duration(0s));
  EXPECT_EQ(parse_retry_after(" 30 ", now), Duration(30s));
  EXPECT_EQ(parse_retry_after("99999999999999999999999", now), Duration(1'000'000'000s));
}

TEST(RetryAfter, HttpDate) {
  // 1994-11-06T08:49:37Z
  const auto date = common::TimePoint(std::chrono::seconds(784111777));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", date - 90s), Duration(90s));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", date - 1500ms), Duration(1500));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", date + 1h), Duration(0));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", date), Duration(0));
  // Leap year day.
  const auto leap = common::TimePoint(std::chrono::seconds(1709164800));  // 2024-02-29T00:00:00Z
  EXPECT_EQ(parse_retry_after("Thu, 29 Feb 2024 00:00:10 GMT", leap), Duration(10s));
}

TEST(RetryAfter, RejectsGarbage) {
  const auto now = common::TimePoint(std::chrono::seconds(1'700'000'000));
  for (const char* bad : {"", "  ", "-5", "1.5", "12s", "abc", "0x10", "+3",
                          "Sun, 06 Nov 1994 08:49:37 UTC", "Sunday, 06-Nov-94 08:49:37 GMT",
                          "Sun Nov  6 08:49:37 1994", "Xyz, 06 Nov 1994 08:49:37 GMT",
                          "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 31 Feb 1994 08:49:37 GMT",
                          "Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 06 Nov 1994 08:61:37 GMT",
                          "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT x"}) {
    EXPECT_FALSE(parse_retry_after(bad, now).has_value()) << bad;
  }
}

}  // namespace
}  // namespace relay::delivery
