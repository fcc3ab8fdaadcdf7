#include "relay/delivery/AttemptClassifier.hpp"

#include <gtest/gtest.h>

namespace relay::delivery {
namespace {

using common::AttemptOutcome;
using namespace std::chrono_literals;

const std::vector<Duration> kSchedule = {0ms, 60000ms, 300000ms};
const common::TimePoint kNow = common::TimePoint(1'700'000'000'000ms);

HttpResult answered(int status, std::string body = "") {
  HttpResult r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResult transport_error(std::string error) {
  HttpResult r;
  r.error = std::move(error);
  return r;
}

TEST(ClassifyAttempt, A2xxSucceeds) {
  const auto v = classify_attempt(answered(204), 1, kSchedule, kNow);
  EXPECT_EQ(v.outcome, AttemptOutcome::kSucceeded);
  EXPECT_FALSE(v.next_attempt_at);
  EXPECT_EQ(v.error, "");
}

TEST(ClassifyAttempt, A5xxIsRetriedAfterTheScheduleEntryOfTheNextAttempt) {
  const auto v = classify_attempt(answered(500), 1, kSchedule, kNow);
  EXPECT_EQ(v.outcome, AttemptOutcome::kRetry);
  ASSERT_TRUE(v.next_attempt_at);
  EXPECT_EQ(*v.next_attempt_at, kNow + 60000ms);
  const auto second = classify_attempt(answered(500), 2, kSchedule, kNow);
  EXPECT_EQ(*second.next_attempt_at, kNow + 300000ms);
}

TEST(ClassifyAttempt, TheLastScheduledAttemptFailsForGood) {
  const auto v = classify_attempt(answered(502), 3, kSchedule, kNow);
  EXPECT_EQ(v.outcome, AttemptOutcome::kFailed);
  EXPECT_FALSE(v.next_attempt_at);
}

TEST(ClassifyAttempt, A4xxOtherThan429FailsAtOnce) {
  EXPECT_EQ(classify_attempt(answered(404), 1, kSchedule, kNow).outcome, AttemptOutcome::kFailed);
  EXPECT_EQ(classify_attempt(answered(429), 1, kSchedule, kNow).outcome, AttemptOutcome::kRetry);
}

TEST(ClassifyAttempt, RetryAfterOf429LengthensTheDelayWhateverTheHeaderCase) {
  auto r = answered(429);
  r.headers.emplace_back("RETRY-after", "120");
  const auto v = classify_attempt(r, 1, kSchedule, kNow);
  ASSERT_TRUE(v.next_attempt_at);
  EXPECT_EQ(*v.next_attempt_at, kNow + 120000ms);
  // A Retry-After on a 500 is not a request to wait: the schedule decides.
  auto other = answered(500);
  other.headers.emplace_back("Retry-After", "120");
  EXPECT_EQ(*classify_attempt(other, 1, kSchedule, kNow).next_attempt_at, kNow + 60000ms);
}

TEST(ClassifyAttempt, ATransportFailureIsRetriedAndKeepsItsError) {
  const auto v =
      classify_attempt(transport_error("connect: Connection refused"), 1, kSchedule, kNow);
  EXPECT_EQ(v.outcome, AttemptOutcome::kRetry);
  EXPECT_EQ(v.error, "connect: Connection refused");
}

TEST(ClassifyAttempt, ABodyThatBrokeOffKeepsTheStatusOutcomeAndSaysWhy) {
  auto r = answered(200, "{\"ok\":");
  r.body_error = "timeout";
  const auto v = classify_attempt(r, 1, kSchedule, kNow);
  EXPECT_EQ(v.outcome, AttemptOutcome::kSucceeded);
  EXPECT_EQ(v.error, "response body cut off: timeout");
}

TEST(ValidUtf8, KeepsAsciiAndWellFormedText) {
  EXPECT_EQ(valid_utf8(""), "");
  EXPECT_EQ(valid_utf8("{\"ok\":true}"), "{\"ok\":true}");
  EXPECT_EQ(valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
}

TEST(ValidUtf8, ReplacesEachMaximalIllFormedSubpart) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(valid_utf8("a\xFF"
                       "b"),
            "a" + r + "b");
  // A truncated 3-byte sequence is one subpart: one replacement, then the next character.
  EXPECT_EQ(valid_utf8("\xE2\x82"
                       "x"),
            r + "x");
  // Surrogates (ED A0..) and overlong forms (C0, E0 80) are not UTF-8.
  EXPECT_EQ(valid_utf8("\xED\xA0\x80"), r + r + r);
  EXPECT_EQ(valid_utf8("\xC0\xAF"), r + r);
  // A lone continuation byte, and a sequence cut by the end of the text.
  EXPECT_EQ(valid_utf8("\x80"), r);
  EXPECT_EQ(valid_utf8("ok\xF0\x9F\x98"), "ok" + r);
}

}  // namespace
}  // namespace relay::delivery
