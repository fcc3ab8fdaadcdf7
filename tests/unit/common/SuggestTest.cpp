// "Did you mean" for unknown config keys and event types (issue #21).
#include "relay/common/Suggest.hpp"

#include <gtest/gtest.h>

#include "relay/common/EventTypes.hpp"

namespace relay::common {
namespace {

TEST(Suggest, EditDistanceCountsSwapsOnce) {
  EXPECT_EQ(edit_distance("retension", "retention"), 1U);
  EXPECT_EQ(edit_distance("ticket.creatd", "ticket.created"), 1U);
  EXPECT_EQ(edit_distance("enabeld", "enabled"), 1U);  // a swap of neighbours
  EXPECT_EQ(edit_distance("", "abc"), 3U);
  EXPECT_EQ(edit_distance("same", "same"), 0U);
}

TEST(Suggest, ClosestWithinTheLimitOnly) {
  const std::vector<std::string_view> keys = {"path", "retention"};
  EXPECT_EQ(did_you_mean("retension", keys), " (did you mean 'retention'?)");
  EXPECT_EQ(did_you_mean("colour", keys), "");
  EXPECT_EQ(did_you_mean("pth", keys), " (did you mean 'path'?)");
  EXPECT_EQ(did_you_mean("xyz", keys), "");
  EXPECT_EQ(did_you_mean(std::string(200, 'a'), keys), "");  // not a typo; never n*m on junk
  const std::vector<std::string_view> types(kEventTypes.begin(), kEventTypes.end());
  EXPECT_EQ(closest_match("ticket.creatd", types), "ticket.created");
  EXPECT_EQ(closest_match("sla.breach", types), "sla.breached");
  EXPECT_EQ(closest_match("invoice.paid", types), std::nullopt);
}

}  // namespace
}  // namespace relay::common
