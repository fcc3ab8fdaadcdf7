// The torture's comparison of receiver requests with attempt rows: what it accepts, and that it
// fails on each kind of mismatch it is there to catch.
#include "AttemptMatcher.hpp"

#include <gtest/gtest.h>

namespace relay::torture {
namespace {

AttemptRow row(int number, std::optional<int> status, std::string outcome, std::string error = "") {
  return AttemptRow{number, status, std::move(error), std::move(outcome)};
}

constexpr SeenRequest fresh(int answer) {
  return SeenRequest{answer, false};
}
constexpr SeenRequest reused(int answer) {
  return SeenRequest{answer, true};
}

TEST(AttemptMatcher, OneRowPerRequestWithTheSameAnswer) {
  const auto m = match_epoch({fresh(500), reused(0), fresh(200)},
                             {row(1, 500, "retry"), row(2, std::nullopt, "retry", "end of stream"),
                              row(3, 200, "succeeded")},
                             false, false);
  EXPECT_TRUE(m.ok) << m.explanation;
  EXPECT_EQ(m.unrecorded, 0);
}

TEST(AttemptMatcher, DifferentAnswerFails) {
  EXPECT_FALSE(match_epoch({fresh(502)}, {row(1, 500, "retry")}, false, false).ok);
  EXPECT_FALSE(match_epoch({fresh(0)}, {row(1, std::nullopt, "retry", "")}, false, false).ok);
  EXPECT_FALSE(match_epoch({fresh(200)}, {row(1, std::nullopt, "retry", "eof")}, false, false).ok);
}

TEST(AttemptMatcher, RowWithoutARequestFails) {
  EXPECT_FALSE(match_epoch({}, {row(1, 200, "succeeded")}, true, false).ok);
  EXPECT_FALSE(
      match_epoch({fresh(500)}, {row(1, 500, "retry"), row(2, 500, "retry")}, true, false).ok);
}

TEST(AttemptMatcher, UnrecordedRequestOnlyAtTheEndOfAKilledEpoch) {
  const auto m = match_epoch({fresh(500), fresh(200)}, {row(1, 500, "retry")}, true, false);
  EXPECT_TRUE(m.ok) << m.explanation;
  EXPECT_EQ(m.unrecorded, 1);
  EXPECT_EQ(m.unrecorded_2xx, 1);
  EXPECT_FALSE(match_epoch({fresh(500), fresh(200)}, {row(1, 500, "retry")}, false, false).ok);
  // Two unrecorded requests of one delivery in one epoch: one too many.
  EXPECT_FALSE(match_epoch({fresh(500), fresh(500)}, {}, true, false).ok);
  // The unrecorded one is the last; an earlier gap is a lost row.
  EXPECT_FALSE(match_epoch({fresh(503), fresh(500)}, {row(1, 500, "retry")}, true, false).ok);
}

TEST(AttemptMatcher, NothingIsSentAfterTheDeliveryFinished) {
  EXPECT_FALSE(match_epoch({fresh(200), fresh(200)}, {row(1, 200, "succeeded")}, true, false).ok);
  EXPECT_FALSE(match_epoch({fresh(200)}, {}, true, true).ok);
  EXPECT_TRUE(match_epoch({}, {}, true, true).ok);
}

TEST(AttemptMatcher, StaleConnectionResendNeedsACloseOnAReusedConnectionThenAFreshOne) {
  const auto m = match_epoch({reused(0), fresh(200)}, {row(3, 200, "succeeded")}, false, false);
  EXPECT_TRUE(m.ok) << m.explanation;
  EXPECT_EQ(m.stale_resends, 1);
  EXPECT_FALSE(match_epoch({fresh(0), fresh(200)}, {row(3, 200, "succeeded")}, false, false).ok);
  EXPECT_FALSE(match_epoch({reused(500), fresh(200)}, {row(3, 200, "succeeded")}, false, false).ok);
  EXPECT_FALSE(match_epoch({reused(0), reused(200)}, {row(3, 200, "succeeded")}, false, false).ok);
}

}  // namespace
}  // namespace relay::torture
