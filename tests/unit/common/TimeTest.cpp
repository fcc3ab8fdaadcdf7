#include "relay/common/Time.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <vector>

namespace relay::common {
namespace {

TEST(Time, FormatsMillisAndSeconds) {
  const TimePoint t{std::chrono::milliseconds(1736937000123)};  // 2025-01-15T10:30:00.123Z
  EXPECT_EQ(format_rfc3339_ms(t), "2025-01-15T10:30:00.123Z");
  EXPECT_EQ(format_rfc3339_s(t), "2025-01-15T10:30:00Z");
}

TEST(Time, ParsesBothFormatsAndRoundTrips) {
  const auto a = parse_rfc3339("2025-01-15T10:30:00.123Z");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->time_since_epoch().count(), 1736937000123);
  const auto b = parse_rfc3339("2025-01-15T10:30:00Z");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->time_since_epoch().count(), 1736937000000);
  EXPECT_EQ(format_rfc3339_ms(*a), "2025-01-15T10:30:00.123Z");
}

TEST(Time, RejectsMalformed) {
  EXPECT_FALSE(parse_rfc3339(""));
  EXPECT_FALSE(parse_rfc3339("2025-01-15 10:30:00Z"));
  EXPECT_FALSE(parse_rfc3339("2025-02-30T10:30:00Z"));
  EXPECT_FALSE(parse_rfc3339("2025-01-15T10:30:00+01:00"));
  EXPECT_FALSE(parse_rfc3339("2025-01-15T10:30:00.12Z"));
}

// The formatter writes digits itself; glibc's gmtime_r and snprintf are the reference, from year
// 0001 to 9999, before and after the epoch, leap days and the last millisecond of a day.
TEST(Time, FormatsLikeGmtimeAcrossTheCalendar) {
  const auto reference = [](std::int64_t ms, bool with_millis) {
    auto secs = static_cast<std::time_t>(ms / 1000);
    auto millis = static_cast<int>(ms % 1000);
    if (millis < 0) {
      millis += 1000;
      --secs;
    }
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    std::string out = buf;
    if (with_millis) {
      std::snprintf(buf, sizeof buf, ".%03d", millis);
      out += buf;
    }
    return out + "Z";
  };
  std::vector<std::int64_t> stamps = {0,
                                      -1,
                                      1,
                                      951782400000,      // 2000-02-29
                                      4107542399999,     // 2100-02-28T23:59:59.999
                                      -62135596800000,   // 0001-01-01
                                      253402300799999};  // 9999-12-31T23:59:59.999
  std::mt19937_64 rng(20261130);
  std::uniform_int_distribution<std::int64_t> any(-62135596800000, 253402300799999);
  for (int i = 0; i < 20000; ++i) stamps.push_back(any(rng));
  for (const auto ms : stamps) {
    const TimePoint t{std::chrono::milliseconds(ms)};
    ASSERT_EQ(format_rfc3339_ms(t), reference(ms, true)) << ms;
    ASSERT_EQ(format_rfc3339_s(t), reference(ms, false)) << ms;
  }
}

TEST(Time, DatabaseFormatSortsAsText) {
  const TimePoint early{std::chrono::milliseconds(999)};
  const TimePoint late{std::chrono::milliseconds(1000)};
  EXPECT_LT(format_rfc3339_ms(early), format_rfc3339_ms(late));
}

}  // namespace
}  // namespace relay::common
