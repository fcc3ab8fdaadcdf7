#include "relay/delivery/Signer.hpp"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "relay/common/Base64.hpp"

namespace relay::delivery {
namespace {

std::string from_hex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::string repeat(std::string_view unit, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += unit;
  return out;
}

struct Rfc4231Case {
  std::string key_hex;
  std::string data_hex;
  std::string expected;
};

// RFC 4231 §4.2–4.7 (test case 5, truncated output, is not applicable to a full digest).
TEST(Signer, Rfc4231Vectors) {
  const std::vector<Rfc4231Case> cases = {
      {repeat("0b", 20), "4869205468657265",
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {"4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {std::string(40, 'a'), std::string(100, 'd'),
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {"0102030405060708090a0b0c0d0e0f10111213141516171819", repeat("cd", 50),
       "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      {std::string(262, 'a'),
       "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048617368"
       "204b6579204669727374",
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {std::string(262, 'a'),
       "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b2d73697a"
       "65206b657920616e642061206c6172676572207468616e20626c6f636b2d73697a6520646174612e20546865"
       "206b6579206e6565647320746f20626520686173686564206265666f7265206265696e6720757365642062"
       "792074686520484d414320616c676f726974686d2e",
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(hmac_sha256_hex(from_hex(c.key_hex), from_hex(c.data_hex)), c.expected);
  }
}

// Computed with Python: hmac.new(key, body, hashlib.sha256).hexdigest()
TEST(Signer, MatchesPythonReference) {
  const std::string body =
      R"({"id":"evt_1","event":"ticket.created","created_at":"2025-01-15T10:30:00Z",)"
      R"("data":{"ticket":{"id":"tkt_789"}}})";
  EXPECT_EQ(hmac_sha256_hex("whsec_test", body),
            "cb5c7547ab93b1c86f5f020475b1ecfad71196585aa437399d7f4bd13af446b2");
  EXPECT_EQ(signature_header("whsec_test", body),
            "sha256=cb5c7547ab93b1c86f5f020475b1ecfad71196585aa437399d7f4bd13af446b2");
  EXPECT_EQ(hmac_sha256_hex("key",
                            "h\xc3\xa9llo \xc3\xbc"
                            "n\xc3\xaf"
                            "code"),
            "36c15bc170a0c824869854c31eab2d839c3a07edcd59324937ffae1fe1dd3c59");
}

TEST(Signer, EmptyKeyAndMessage) {
  EXPECT_EQ(hmac_sha256_hex("", ""),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

// Each thread re-keys one context: no key may leak into the next message, also when the next
// key is empty, and threads do not share keys.
TEST(Signer, KeysNeverCarryOverBetweenMessagesOrThreads) {
  const std::string body = R"({"id":"evt_1"})";
  const auto expected = [&](const std::string& key) {
    std::string out;
    std::thread([&] { out = hmac_sha256_hex(key, body); }).join();  // a thread's first message
    return out;
  };
  const std::vector<std::string> keys = {"whsec_a", "",       "whsec_b", std::string(200, 'k'),
                                         "",        "whsec_a"};
  std::vector<std::string> want;
  for (const auto& k : keys) want.push_back(expected(k));
  EXPECT_NE(want[0], want[1]);
  EXPECT_NE(want[0], want[2]);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 200; ++round) {
        const auto i = static_cast<std::size_t>(round + t) % keys.size();
        if (hmac_sha256_hex(keys[i], body) != want[i]) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(hmac_sha256_hex("", ""),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(Signer, BinaryBytesAreSignedExactly) {
  const std::string with_nul("a\0b", 3);
  EXPECT_NE(hmac_sha256_hex("k", with_nul), hmac_sha256_hex("k", "a"));
  EXPECT_EQ(hmac_sha256_hex("k", with_nul).size(), 64u);
}

TEST(Signer, StandardWebhooksSpecExample) {
  // The example of the Standard Webhooks specification: key = base64 after "whsec_".
  const auto key = common::base64_decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  ASSERT_TRUE(key);
  EXPECT_EQ(standard_signature(*key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                               R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  // The pieces are signed as the one string "{id}.{timestamp}.{body}".
  EXPECT_EQ(standard_signature(*key, "msg_1", 17, "{}"),
            "v1," + common::base64_encode(from_hex(hmac_sha256_hex(*key, "msg_1.17.{}"))));
}

}  // namespace
}  // namespace relay::delivery
