#include "relay/common/Base64.hpp"

#include <gtest/gtest.h>

namespace relay::common {
namespace {

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_decode("Zg=="), "f");
  EXPECT_EQ(base64_decode("Zm8="), "fo");
  EXPECT_EQ(base64_decode("Zm9vYmFy"), "foobar");
  EXPECT_EQ(base64_decode(""), "");
}

TEST(Base64, RoundTripsEveryByte) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  for (std::size_t n = 0; n < bytes.size(); n += 7) {
    const auto part = bytes.substr(0, n);
    EXPECT_EQ(base64_decode(base64_encode(part)), part) << n;
  }
}

TEST(Base64, RejectsWhatIsNotBase64) {
  EXPECT_EQ(base64_decode("Zg="), std::nullopt);     // length not a multiple of 4
  EXPECT_EQ(base64_decode("Zg=a"), std::nullopt);    // padding in the middle
  EXPECT_EQ(base64_decode("Z==="), std::nullopt);    // three padding characters
  EXPECT_EQ(base64_decode(" Zm9"), std::nullopt);    // blanks
  EXPECT_EQ(base64_decode("Zm9v\n"), std::nullopt);  // newline
  EXPECT_EQ(base64_decode("Zm-_"), std::nullopt);    // URL-safe alphabet
}

}  // namespace
}  // namespace relay::common
