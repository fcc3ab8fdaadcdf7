#include <gtest/gtest.h>
#include <syslog.h>

#include <nlohmann/json.hpp>

#include "relay/daemon/Logging.hpp"

namespace relay::daemon {
namespace {

using nlohmann::json;

TEST(JournalPriority, MapsEveryLevelToItsSyslogPriority) {
  EXPECT_EQ(journal_priority(spdlog::level::trace), LOG_DEBUG);
  EXPECT_EQ(journal_priority(spdlog::level::debug), LOG_DEBUG);
  EXPECT_EQ(journal_priority(spdlog::level::info), LOG_INFO);
  EXPECT_EQ(journal_priority(spdlog::level::warn), LOG_WARNING);
  EXPECT_EQ(journal_priority(spdlog::level::err), LOG_ERR);
  EXPECT_EQ(journal_priority(spdlog::level::critical), LOG_CRIT);
}

TEST(LogFields, LiftsTheFourKeysInOrderAndNothingElse) {
  const auto f = log_fields(
      "attempt failed, will retry delivery=dlv_1 webhook=crm attempt=2 result=\"HTTP 500\" "
      "next_attempt_at=2026-01-01T00:00:00Z");
  ASSERT_EQ(f.size(), 3U);
  EXPECT_EQ(f[0], (std::pair<std::string, std::string>{"delivery", "dlv_1"}));
  EXPECT_EQ(f[1], (std::pair<std::string, std::string>{"webhook", "crm"}));
  EXPECT_EQ(f[2], (std::pair<std::string, std::string>{"attempt", "2"}));
}

TEST(LogFields, IgnoresLookalikesEmptyValuesAndRepeats) {
  EXPECT_TRUE(log_fields("").empty());
  EXPECT_TRUE(log_fields("xdelivery=a subwebhook=b event= =x").empty());
  const auto f = log_fields("event=evt_1 event=evt_2 webhook=a");
  ASSERT_EQ(f.size(), 2U);
  EXPECT_EQ(f[0].second, "evt_1");
  EXPECT_EQ(f[1].first, "webhook");
}

TEST(JsonLogLine, HasTheFieldsAsKeysAndStaysValidJson) {
  const auto line =
      json_log_line("2026-01-01T00:00:00.000Z", "warning",
                    "attempt failed delivery=dlv_9 webhook=crm event=evt_\"q attempt=3 x=1");
  const auto j = json::parse(line);
  EXPECT_EQ(j["ts"], "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(j["level"], "warning");
  EXPECT_EQ(j["msg"], "attempt failed delivery=dlv_9 webhook=crm event=evt_\"q attempt=3 x=1");
  EXPECT_EQ(j["delivery"], "dlv_9");
  EXPECT_EQ(j["webhook"], "crm");
  EXPECT_EQ(j["event"], "evt_\"q");
  EXPECT_EQ(j["attempt"], 3);  // a number, not a string
  EXPECT_FALSE(j.contains("x"));
}

TEST(JsonLogLine, NonNumericAttemptStaysAString) {
  const auto j = json::parse(json_log_line("t", "info", "attempt=first"));
  EXPECT_EQ(j["attempt"], "first");
}

TEST(JsonLogLine, InvalidUtf8IsReplacedNotFatal) {
  const auto j = json::parse(json_log_line("t", "info", "webhook=\xff\xfe"));
  EXPECT_TRUE(j["webhook"].is_string());
}

TEST(StderrIsJournal, FalseWithoutOrWithAMismatchingJournalStream) {
  ::unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(stderr_is_journal());
  ::setenv("JOURNAL_STREAM", "0:0", 1);
  EXPECT_FALSE(stderr_is_journal());
  ::setenv("JOURNAL_STREAM", "garbage", 1);
  EXPECT_FALSE(stderr_is_journal());
  ::unsetenv("JOURNAL_STREAM");
}

}  // namespace
}  // namespace relay::daemon
