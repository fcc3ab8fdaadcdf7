#include "relay/common/Time.hpp"

#include <gtest/gtest.h>

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

TEST(Time, DatabaseFormatSortsAsText) {
  const TimePoint early{std::chrono::milliseconds(999)};
  const TimePoint late{std::chrono::milliseconds(1000)};
  EXPECT_LT(format_rfc3339_ms(early), format_rfc3339_ms(late));
}

}  // namespace
}  // namespace relay::common
