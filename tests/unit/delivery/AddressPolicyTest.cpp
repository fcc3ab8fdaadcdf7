#include "relay/delivery/AddressPolicy.hpp"

#include <string>

#include <gtest/gtest.h>

namespace relay::delivery {
namespace {

using C = AddressClass;

TEST(AddressPolicy, Table) {
  const std::vector<std::pair<std::string, AddressClass>> cases = {
      // IPv4
      {"0.0.0.0", C::kUnspecified},
      {"0.1.2.3", C::kUnspecified},
      {"10.0.0.1", C::kPrivate},
      {"10.255.255.255", C::kPrivate},
      {"100.63.255.255", C::kPublic},
      {"100.64.0.1", C::kSharedCgnat},
      {"100.127.255.255", C::kSharedCgnat},
      {"100.128.0.0", C::kPublic},
      {"127.0.0.1", C::kLoopback},
      {"127.255.0.9", C::kLoopback},
      {"169.254.169.254", C::kLinkLocal},
      {"169.254.0.1", C::kLinkLocal},
      {"169.253.0.1", C::kPublic},
      {"172.15.255.255", C::kPublic},
      {"172.16.0.1", C::kPrivate},
      {"172.31.255.255", C::kPrivate},
      {"172.32.0.0", C::kPublic},
      {"192.0.0.8", C::kReserved},
      {"192.0.2.1", C::kDocumentation},
      {"192.88.99.1", C::kReserved},
      {"192.168.1.1", C::kPrivate},
      {"192.169.0.1", C::kPublic},
      {"198.18.0.1", C::kReserved},
      {"198.19.255.255", C::kReserved},
      {"198.20.0.1", C::kPublic},
      {"198.51.100.7", C::kDocumentation},
      {"203.0.113.9", C::kDocumentation},
      {"224.0.0.1", C::kMulticast},
      {"239.255.255.250", C::kMulticast},
      {"240.0.0.1", C::kReserved},
      {"255.255.255.255", C::kBroadcast},
      {"8.8.8.8", C::kPublic},
      {"1.1.1.1", C::kPublic},
      {"93.184.216.34", C::kPublic},
      // IPv6
      {"::", C::kUnspecified},
      {"::1", C::kLoopback},
      {"::ffff:127.0.0.1", C::kLoopback},
      {"::ffff:10.1.2.3", C::kPrivate},
      {"::ffff:169.254.169.254", C::kLinkLocal},
      {"::ffff:8.8.8.8", C::kPublic},
      {"::127.0.0.1", C::kLoopback},
      {"::10.0.0.1", C::kPrivate},
      {"64:ff9b::7f00:1", C::kLoopback},
      {"64:ff9b::a9fe:a9fe", C::kLinkLocal},
      {"64:ff9b::808:808", C::kPublic},
      {"64:ff9b:1::1", C::kPrivate},
      {"2002:7f00:1::", C::kLoopback},
      {"2002:c0a8:101::1", C::kPrivate},
      {"2002:808:808::1", C::kPublic},
      {"fe80::1", C::kLinkLocal},
      {"febf::1", C::kLinkLocal},
      {"fec0::1", C::kPrivate},
      {"fc00::1", C::kUniqueLocal},
      {"fd12:3456::1", C::kUniqueLocal},
      {"ff02::1", C::kMulticast},
      {"2001:db8::1", C::kDocumentation},
      {"2001::1", C::kReserved},
      {"100::1", C::kReserved},
      {"::2", C::kUnspecified},  // IPv4-compatible 0.0.0.2
      {"4000::1", C::kReserved},
      {"2606:4700:4700::1111", C::kPublic},
      {"2a00:1450:4001::200e", C::kPublic},
  };
  for (const auto& [text, expected] : cases) {
    const auto got = classify_address(text);
    ASSERT_TRUE(got.has_value()) << text;
    EXPECT_EQ(to_string(*got), to_string(expected)) << text;
  }
}

TEST(AddressPolicy, NotALiteral) {
  EXPECT_FALSE(classify_address("localhost"));
  EXPECT_FALSE(classify_address(""));
  EXPECT_FALSE(classify_address("1.2.3"));
  EXPECT_FALSE(classify_address("[::1]"));
}

TEST(AddressPolicy, Allowed) {
  EXPECT_TRUE(is_address_allowed(C::kPublic, false));
  EXPECT_FALSE(is_address_allowed(C::kLoopback, false));
  EXPECT_FALSE(is_address_allowed(C::kLinkLocal, false));
  EXPECT_FALSE(is_address_allowed(C::kReserved, false));
  EXPECT_TRUE(is_address_allowed(C::kLoopback, true));
  EXPECT_TRUE(is_address_allowed(C::kPrivate, true));
}

}  // namespace
}  // namespace relay::delivery
