#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace relay::delivery {

/// What a receiver concluded about one request's signature.
struct Verification {
  bool ok = false;
  std::string detail;  // "matched signature 2 of 2", or why not (never quotes a secret)
};

/// Checks `X-Relay-Signature: sha256=<hex>` against HMAC-SHA256(secret as written, body), the
/// way the user guide's receivers do, in constant time. Thread-safe.
Verification verify_relay_signature(std::string_view secret, std::string_view body,
                                    std::string_view signature_header);

/// Checks Standard Webhooks v1 headers the way the official libraries do: `webhook-timestamp`
/// (Unix seconds) within `tolerance_s` of `now_s` either way, and at least one `v1,<base64>`
/// entry of the space-separated `webhook-signature` matching HMAC-SHA256 keyed with the decoded
/// whsec_ `secret` over "{msg_id}.{timestamp}.{body}". Thread-safe.
Verification verify_standard_signature(std::string_view secret, std::string_view msg_id,
                                       std::string_view timestamp,
                                       std::string_view signature_header, std::string_view body,
                                       std::int64_t now_s, std::int64_t tolerance_s = 300);

}  // namespace relay::delivery
