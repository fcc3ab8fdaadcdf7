#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace relay::delivery {

/// Lower-case hex HMAC-SHA256 of `message` keyed with `key` (OpenSSL EVP_MAC). Thread-safe.
std::string hmac_sha256_hex(std::string_view key, std::string_view message);

/// The X-Relay-Signature header value: "sha256=" + hmac_sha256_hex(secret, body).
std::string signature_header(std::string_view secret, std::string_view body);

/// One Standard Webhooks v1 signature: "v1," + base64 of HMAC-SHA256 keyed with `key` (the
/// decoded bytes of a whsec_ secret) over "{msg_id}.{timestamp}.{body}". Thread-safe.
std::string standard_signature(std::string_view key, std::string_view msg_id,
                               std::int64_t timestamp, std::string_view body);

}  // namespace relay::delivery
