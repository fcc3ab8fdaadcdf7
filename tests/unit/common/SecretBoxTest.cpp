#include "relay/common/SecretBox.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace relay::common {
namespace {

const std::string kKey(32, 'k');

TEST(SecretBox, OpensWhatItSealedAndNothingElse) {
  const SecretBox box(kKey);
  const auto sealed = box.seal(R"({"secret":"whsec_abc"})", "crm");
  EXPECT_EQ(sealed.size(), 12 + 22 + 16U);  // nonce, ciphertext, tag
  EXPECT_EQ(sealed.find("whsec_abc"), std::string::npos);
  EXPECT_EQ(box.open(sealed, "crm"), R"({"secret":"whsec_abc"})");
  // Each seal has its own nonce: the same text never gives the same bytes.
  EXPECT_NE(box.seal("x", "crm"), box.seal("x", "crm"));
  // The tag check: another key, another row, or one changed byte opens nothing.
  EXPECT_EQ(SecretBox(std::string(32, 'o')).open(sealed, "crm"), std::nullopt);
  EXPECT_EQ(box.open(sealed, "billing"), std::nullopt);
  for (std::size_t i = 0; i < sealed.size(); i += 7) {
    auto bad = sealed;
    bad[i] = static_cast<char>(bad[i] ^ 1);
    EXPECT_EQ(box.open(bad, "crm"), std::nullopt) << i;
  }
  EXPECT_EQ(box.open(sealed.substr(0, 20), "crm"), std::nullopt);
  EXPECT_EQ(box.open(box.seal("", "crm"), "crm"), "");
}

TEST(SecretBox, KeyFilesAreBase64Of32Bytes) {
  std::string error;
  EXPECT_EQ(parse_secret_key("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n", error),
            "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(parse_secret_key("MDEyMzQ1Njc4OWFiY2RlZg==", error), std::nullopt);  // 16 bytes
  EXPECT_NE(error.find("openssl rand -base64 32"), std::string::npos);
  EXPECT_EQ(parse_secret_key("not base64 at all", error), std::nullopt);
  EXPECT_THROW(SecretBox(std::string(16, 'k')), std::invalid_argument);
}

TEST(SecretBox, NewWebhookSecretsAreStandardWebhooksSecrets) {
  const auto a = new_webhook_secret();
  EXPECT_EQ(a.rfind("whsec_", 0), 0U);
  EXPECT_EQ(a.size(), 6 + 44U);
  EXPECT_NE(a, new_webhook_secret());
}

}  // namespace
}  // namespace relay::common
