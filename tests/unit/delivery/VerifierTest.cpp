#include "relay/delivery/Verifier.hpp"

#include <gtest/gtest.h>

#include "relay/delivery/Signer.hpp"

namespace relay::delivery {
namespace {

// The example of the Standard Webhooks specification (standard-webhooks/spec).
constexpr std::string_view kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr std::string_view kMsgId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr std::int64_t kTimestamp = 1614265330;
constexpr std::string_view kBody = R"({"test": 2432232314})";
constexpr std::string_view kSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

TEST(Verifier, StandardAcceptsTheSpecExample) {
  const auto v =
      verify_standard_signature(kSecret, kMsgId, "1614265330", kSignature, kBody, kTimestamp + 10);
  EXPECT_TRUE(v.ok) << v.detail;
}

TEST(Verifier, StandardAcceptsAnyOfSeveralSignatures) {
  const std::string header = "v1,bm90IHRoaXMgb25l " + std::string(kSignature) + " v2,abc";
  const auto v =
      verify_standard_signature(kSecret, kMsgId, "1614265330", header, kBody, kTimestamp);
  EXPECT_TRUE(v.ok) << v.detail;
  EXPECT_EQ(v.detail, "signature 2 of 3 matches");
}

TEST(Verifier, StandardRejects) {
  const auto other = "whsec_" + std::string(32, 'A');
  EXPECT_FALSE(
      verify_standard_signature(other, kMsgId, "1614265330", kSignature, kBody, kTimestamp).ok);
  EXPECT_FALSE(verify_standard_signature(kSecret, kMsgId, "1614265330", kSignature,
                                         R"({"test": 2432232315})", kTimestamp)
                   .ok);
  EXPECT_FALSE(
      verify_standard_signature(kSecret, "msg_other", "1614265330", kSignature, kBody, kTimestamp)
          .ok);
  // Outside the five-minute window either way: a replay, or a clock out of sync.
  const auto old =
      verify_standard_signature(kSecret, kMsgId, "1614265330", kSignature, kBody, kTimestamp + 301);
  EXPECT_FALSE(old.ok);
  EXPECT_NE(old.detail.find("301 s old"), std::string::npos) << old.detail;
  EXPECT_FALSE(
      verify_standard_signature(kSecret, kMsgId, "1614265330", kSignature, kBody, kTimestamp - 301)
          .ok);
  EXPECT_FALSE(
      verify_standard_signature(kSecret, kMsgId, "16142x5330", kSignature, kBody, kTimestamp).ok);
  EXPECT_FALSE(verify_standard_signature(kSecret, kMsgId, "", kSignature, kBody, kTimestamp).ok);
  EXPECT_FALSE(verify_standard_signature(kSecret, kMsgId, "1614265330", "", kBody, kTimestamp).ok);
  const auto not_whsec = verify_standard_signature("plain-secret", kMsgId, "1614265330", kSignature,
                                                   kBody, kTimestamp);
  EXPECT_FALSE(not_whsec.ok);
  EXPECT_EQ(not_whsec.detail.find("plain-secret"), std::string::npos) << not_whsec.detail;
}

TEST(Verifier, Relay) {
  const std::string body = R"({"id":"evt_1"})";
  const auto header = signature_header("s3cret", body);
  EXPECT_TRUE(verify_relay_signature("s3cret", body, header).ok);
  EXPECT_FALSE(verify_relay_signature("other", body, header).ok);
  EXPECT_FALSE(verify_relay_signature("s3cret", body + " ", header).ok);
  EXPECT_FALSE(verify_relay_signature("s3cret", body, "").ok);
  EXPECT_FALSE(verify_relay_signature("s3cret", body, header.substr(7)).ok);
}

}  // namespace
}  // namespace relay::delivery
