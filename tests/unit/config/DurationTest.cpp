#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>

#include "relay/config/ConfigLoader.hpp"

namespace relay::config {
namespace {

using std::chrono::milliseconds;

TEST(ConfigDuration, ParsesEveryUnit) {
  const struct {
    const char* text;
    std::int64_t ms;
  } cases[] = {
      {"0s", 0},
      {"0ms", 0},
      {"250ms", 250},
      {"30s", 30'000},
      {"5m", 300'000},
      {"2h", 7'200'000},
      {"30d", 2'592'000'000},
      {"007s", 7'000},
      {"1000000d", 86'400'000'000'000},
  };
  for (const auto& c : cases) {
    const auto d = parse_duration(c.text);
    ASSERT_TRUE(d.has_value()) << c.text;
    EXPECT_EQ(d->count(), c.ms) << c.text;
  }
}

TEST(ConfigDuration, RejectsEverythingElse) {
  const char* cases[] = {
      "",
      "s",
      "30",
      "30 s",
      " 30s",
      "30s ",
      "-5s",
      "+5s",
      "1.5s",
      "1h30m",
      "30S",
      "30sec",
      "5M",
      "2w",
      "30y",
      "ms",
      "9223372036854775807s",
      "99999999999999999999ms",
  };
  for (const char* c : cases) EXPECT_FALSE(parse_duration(c).has_value()) << "'" << c << "'";
}

TEST(ConfigDuration, FormatsInTheLargestExactUnit) {
  EXPECT_EQ(format_duration(milliseconds(0)), "0s");
  EXPECT_EQ(format_duration(milliseconds(250)), "250ms");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(format_duration(milliseconds(90'000)), "90s");
  EXPECT_EQ(format_duration(std::chrono::minutes(5)), "5m");
  EXPECT_EQ(format_duration(std::chrono::hours(8)), "8h");
  EXPECT_EQ(format_duration(std::chrono::hours(24 * 30)), "30d");
  for (const char* text : {"250ms", "30s", "5m", "2h", "30d"}) {
    EXPECT_EQ(format_duration(*parse_duration(text)), text);
  }
}

}  // namespace
}  // namespace relay::config
