// The attempts' log lines (src/dispatcher/AttemptRecords.hpp, OutcomeLog): "delivered" lines are
// budgeted per second and the rest summed up; retries and give-ups are never held back.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <sstream>
#include <string>

#include "AttemptRecords.hpp"
#include "relay/common/Time.hpp"

namespace relay::dispatcher {
namespace {

using namespace std::chrono_literals;

// Routes spdlog's default logger into a string for the test's duration.
class OutcomeLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    previous_ = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_st>(out_));
    logger->set_pattern("%l %v");
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  void TearDown() override { spdlog::set_default_logger(previous_); }

  static store::AttemptRecord record(int n, store::AttemptOutcome outcome) {
    store::AttemptRecord r;
    r.delivery_id = "dlv_" + std::to_string(n);
    r.event_id = "evt_" + std::to_string(n);
    r.attempt_number = 1;
    r.outcome = outcome;
    r.response_status = outcome == store::AttemptOutcome::kSucceeded ? 200 : 500;
    return r;
  }

  [[nodiscard]] std::size_t count(const std::string& text) const {
    const auto all = out_.str();
    std::size_t n = 0;
    for (auto pos = all.find(text); pos != std::string::npos; pos = all.find(text, pos + 1)) ++n;
    return n;
  }

  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
  const common::TimePoint t0_ = *common::parse_rfc3339("2026-11-30T10:00:00.000Z");
};

TEST_F(OutcomeLogTest, DeliveriesBeyondTheBudgetAreCountedAndSummedUpInTheNextSecond) {
  OutcomeLog log(100);
  for (int i = 0; i < 250; ++i) {
    log.log(record(i, store::AttemptOutcome::kSucceeded), "crm", t0_ + i * 1ms);
  }
  EXPECT_EQ(count("info delivered delivery="), 100U);
  EXPECT_EQ(count("more deliveries"), 0U);  // the second is not over
  EXPECT_EQ(count("delivery=dlv_99 "), 1U);
  EXPECT_EQ(count("delivery=dlv_100 "), 0U);

  log.log(record(1000, store::AttemptOutcome::kSucceeded), "crm", t0_ + 1000ms);
  EXPECT_EQ(count("info delivered 150 more deliveries from 2026-11-30T10:00:00.100Z to "
                  "2026-11-30T10:00:00.249Z without a line each (at most 100 such lines per "
                  "second; the delivery log has every attempt)"),
            1U)
      << out_.str().substr(out_.str().size() - 400);
  EXPECT_EQ(count("delivery=dlv_1000 "), 1U);  // a new second, a new budget
  log.flush();
  EXPECT_EQ(count("more deliveries"), 1U);  // nothing left to sum up
}

TEST_F(OutcomeLogTest, RetriesAndGiveUpsAreNeverHeldBack) {
  OutcomeLog log(10);
  for (int i = 0; i < 50; ++i) {
    log.log(record(i, store::AttemptOutcome::kSucceeded), "crm", t0_);
  }
  for (int i = 0; i < 300; ++i) log.log(record(i, store::AttemptOutcome::kRetry), "crm", t0_);
  for (int i = 0; i < 40; ++i) log.log(record(i, store::AttemptOutcome::kFailed), "crm", t0_);
  EXPECT_EQ(count("info delivered delivery="), 10U);
  EXPECT_EQ(count("warning attempt failed, will retry"), 300U);
  EXPECT_EQ(count("error delivery failed, giving up"), 40U);
  log.flush();  // shutdown: the 40 held back are counted, with no later delivery to wait for
  EXPECT_EQ(count("info delivered 40 more deliveries from 2026-11-30T10:00:00.000Z to "
                  "2026-11-30T10:00:00.000Z"),
            1U)
      << out_.str();
}

TEST_F(OutcomeLogTest, AQuietServiceLogsEveryDelivery) {
  OutcomeLog log(100);
  for (int i = 0; i < 500; ++i) {  // 20 per second for 25 seconds
    log.log(record(i, store::AttemptOutcome::kSucceeded), "crm", t0_ + i * 50ms);
  }
  log.flush();
  EXPECT_EQ(count("info delivered delivery="), 500U);
  EXPECT_EQ(count("more deliveries"), 0U);
}

}  // namespace
}  // namespace relay::dispatcher
