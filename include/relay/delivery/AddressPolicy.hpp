#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace relay::delivery {

/// What an IP address is, for the SSRF guard (SPEC §8). Everything except kPublic is refused
/// unless `allow_private_networks` is set.
enum class AddressClass {
  kPublic,
  kUnspecified,    // 0.0.0.0, 0/8 ("this network"), ::
  kLoopback,       // 127/8, ::1
  kPrivate,        // RFC 1918, fec0::/10 (old site-local)
  kSharedCgnat,    // 100.64/10
  kLinkLocal,      // 169.254/16 (incl. cloud metadata 169.254.169.254), fe80::/10
  kUniqueLocal,    // fc00::/7
  kMulticast,      // 224/4, ff00::/8
  kBroadcast,      // 255.255.255.255
  kDocumentation,  // 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32
  kReserved,       // 192.0.0/24, 192.88.99/24, 198.18/15, 240/4, 100::/64, 2001::/23, ...
};

/// Classifies an IPv4 address given in network byte order.
AddressClass classify_ipv4(const std::array<std::uint8_t, 4>& bytes);

/// Classifies an IPv6 address given in network byte order. Addresses that embed an IPv4
/// address (IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96, NAT64 64:ff9b::/96, 6to4
/// 2002::/16) get the class of the embedded IPv4 address.
AddressClass classify_ipv6(const std::array<std::uint8_t, 16>& bytes);

/// Classifies an IPv4 or IPv6 literal ("10.0.0.1", "::1"); nullopt when it is not one.
std::optional<AddressClass> classify_address(std::string_view literal);

/// True when a connection to an address of class `c` may be made.
inline bool is_address_allowed(AddressClass c, bool allow_private_networks) {
  return c == AddressClass::kPublic || allow_private_networks;
}

/// "loopback", "private", "link-local", ... for messages.
std::string_view to_string(AddressClass c);

}  // namespace relay::delivery
