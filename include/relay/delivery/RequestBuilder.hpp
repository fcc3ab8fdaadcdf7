#pragma once

#include <string>
#include <string_view>

#include "relay/common/Time.hpp"
#include "relay/config/Config.hpp"
#include "relay/delivery/HttpClient.hpp"

namespace relay::delivery {

/// Builds the request SPEC §4 and §9 describe for one attempt: Content-Type, User-Agent,
/// X-Relay-Event, X-Relay-Delivery, then by the webhook's `signature` scheme X-Relay-Signature
/// (relay, both) and webhook-id / webhook-timestamp (`now` in Unix seconds) /
/// webhook-signature (standard, both: the current secret first, then every previous secret
/// that has not expired at `now`), X-Relay-Test: true for a test send, then the webhook's extra
/// headers (which can never replace those). The body is `payload`, untouched.
OutgoingRequest build_request(const config::WebhookConfig& webhook,
                              const config::DeliveryConfig& delivery, std::string_view delivery_id,
                              std::string_view event_type, std::string payload,
                              common::TimePoint now = common::now_ms(), bool test = false);

/// Request headers as a JSON object text for the attempt log (common/Redaction.hpp): relayd's
/// own headers as sent (the signature is not the secret, and operators compare it with what the
/// receiver computed); every header the webhook configured as "[redacted]", whatever its name.
std::string headers_for_log(const Headers& headers);

/// Headers as a JSON object text, in order; a name sent more than once is one key with the
/// values joined by ", " (RFC 9110 §5.3); invalid UTF-8 is replaced, never thrown on. With
/// `redact_credentials`, values whose name looks secret (common::looks_secret) are hidden.
std::string headers_json(const Headers& headers, bool redact_credentials);

}  // namespace relay::delivery
