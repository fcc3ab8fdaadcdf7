#include "relay/delivery/AddressPolicy.hpp"

#include <arpa/inet.h>

#include <string>

namespace relay::delivery {
namespace {

using V4 = std::array<std::uint8_t, 4>;
using V6 = std::array<std::uint8_t, 16>;

bool all_zero(const V6& b, std::size_t from, std::size_t to) {
  for (std::size_t i = from; i < to; ++i) {
    if (b[i] != 0) return false;
  }
  return true;
}

V4 v4_at(const V6& b, std::size_t offset) {
  return {b[offset], b[offset + 1], b[offset + 2], b[offset + 3]};
}

}  // namespace

AddressClass classify_ipv4(const V4& b) {
  const auto in = [&](std::uint8_t a0, int prefix_bits_of_b1, std::uint8_t b1) {
    // a0 exact; the top `prefix_bits_of_b1` bits of b[1] equal those of b1.
    if (b[0] != a0) return false;
    const auto mask = static_cast<std::uint8_t>(0xff << (8 - prefix_bits_of_b1));
    return (b[1] & mask) == (b1 & mask);
  };
  if (b == V4{255, 255, 255, 255}) return AddressClass::kBroadcast;
  if (b[0] == 0) return AddressClass::kUnspecified;
  if (b[0] == 127) return AddressClass::kLoopback;
  if (b[0] == 10 || in(172, 4, 16) || in(192, 8, 168)) return AddressClass::kPrivate;
  if (in(100, 2, 64)) return AddressClass::kSharedCgnat;
  if (in(169, 8, 254)) return AddressClass::kLinkLocal;
  if (b[0] >= 224 && b[0] <= 239) return AddressClass::kMulticast;
  if (b[0] >= 240) return AddressClass::kReserved;
  if ((b[0] == 192 && b[1] == 0 && b[2] == 2) || (b[0] == 198 && b[1] == 51 && b[2] == 100) ||
      (b[0] == 203 && b[1] == 0 && b[2] == 113)) {
    return AddressClass::kDocumentation;
  }
  if ((b[0] == 192 && b[1] == 0 && b[2] == 0) ||    // IETF protocol assignments
      (b[0] == 192 && b[1] == 88 && b[2] == 99) ||  // 6to4 relay anycast
      in(198, 7, 18)) {                             // benchmarking 198.18/15
    return AddressClass::kReserved;
  }
  return AddressClass::kPublic;
}

AddressClass classify_ipv6(const V6& b) {
  if (all_zero(b, 0, 16)) return AddressClass::kUnspecified;
  if (all_zero(b, 0, 15) && b[15] == 1) return AddressClass::kLoopback;
  // IPv4-mapped ::ffff:a.b.c.d
  if (all_zero(b, 0, 10) && b[10] == 0xff && b[11] == 0xff) return classify_ipv4(v4_at(b, 12));
  // IPv4-compatible ::a.b.c.d (deprecated, but a kernel may still route it)
  if (all_zero(b, 0, 12)) return classify_ipv4(v4_at(b, 12));
  // NAT64 well-known prefix 64:ff9b::/96
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && all_zero(b, 4, 12)) {
    return classify_ipv4(v4_at(b, 12));
  }
  // Local-use NAT64 64:ff9b:1::/48: translated to whatever the local network chooses.
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0 && b[5] == 1) {
    return AddressClass::kPrivate;
  }
  // 6to4 2002::/16 embeds an IPv4 address in bytes 2..5.
  if (b[0] == 0x20 && b[1] == 0x02) return classify_ipv4(v4_at(b, 2));
  if (b[0] == 0xff) return AddressClass::kMulticast;
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return AddressClass::kLinkLocal;
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return AddressClass::kPrivate;  // site-local
  if ((b[0] & 0xfe) == 0xfc) return AddressClass::kUniqueLocal;
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) {
    return AddressClass::kDocumentation;
  }
  // 2001::/23 IETF protocol assignments (Teredo, ORCHID, benchmarking, ...).
  if (b[0] == 0x20 && b[1] == 0x01 && (b[2] & 0xfe) == 0x00) return AddressClass::kReserved;
  // 100::/64 discard-only.
  if (b[0] == 0x01 && b[1] == 0x00 && all_zero(b, 2, 8)) return AddressClass::kReserved;
  // Only 2000::/3 is allocated global unicast; anything else is reserved by IANA.
  if ((b[0] & 0xe0) != 0x20) return AddressClass::kReserved;
  return AddressClass::kPublic;
}

std::optional<AddressClass> classify_address(std::string_view literal) {
  const std::string text(literal);
  V4 v4{};
  if (inet_pton(AF_INET, text.c_str(), v4.data()) == 1) return classify_ipv4(v4);
  V6 v6{};
  if (inet_pton(AF_INET6, text.c_str(), v6.data()) == 1) return classify_ipv6(v6);
  return std::nullopt;
}

std::string_view to_string(AddressClass c) {
  switch (c) {
    case AddressClass::kPublic:
      return "public";
    case AddressClass::kUnspecified:
      return "unspecified";
    case AddressClass::kLoopback:
      return "loopback";
    case AddressClass::kPrivate:
      return "private";
    case AddressClass::kSharedCgnat:
      return "shared (CGNAT)";
    case AddressClass::kLinkLocal:
      return "link-local";
    case AddressClass::kUniqueLocal:
      return "unique-local";
    case AddressClass::kMulticast:
      return "multicast";
    case AddressClass::kBroadcast:
      return "broadcast";
    case AddressClass::kDocumentation:
      return "documentation";
    case AddressClass::kReserved:
      return "reserved";
  }
  return "unknown";
}

}  // namespace relay::delivery
