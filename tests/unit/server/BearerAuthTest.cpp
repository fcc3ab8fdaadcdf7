#include "relay/server/BearerAuth.hpp"

#include <gtest/gtest.h>

namespace relay::server {
namespace {

TEST(BearerAuth, MatchesOnlyTheExactToken) {
  EXPECT_TRUE(bearer_token_matches("Bearer s3cret", "s3cret"));
  EXPECT_TRUE(bearer_token_matches("bearer s3cret", "s3cret"));
  EXPECT_TRUE(bearer_token_matches("BEARER  s3cret ", "s3cret"));
  EXPECT_FALSE(bearer_token_matches("Bearer s3cre", "s3cret"));
  EXPECT_FALSE(bearer_token_matches("Bearer s3cret2", "s3cret"));
  EXPECT_FALSE(bearer_token_matches("Bearer S3CRET", "s3cret"));
  EXPECT_FALSE(bearer_token_matches("Basic s3cret", "s3cret"));
  EXPECT_FALSE(bearer_token_matches("s3cret", "s3cret"));
  EXPECT_FALSE(bearer_token_matches("Bearer ", "s3cret"));
  EXPECT_FALSE(bearer_token_matches(std::nullopt, "s3cret"));
  EXPECT_FALSE(bearer_token_matches("Bearer ", ""));  // an empty expected token never matches
}

}  // namespace
}  // namespace relay::server
