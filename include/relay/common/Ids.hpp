#pragma once

#include <string>

namespace relay::common {

/// A ULID (26 Crockford base32 characters): 48-bit millisecond time + 80 random bits,
/// monotonic within one process so ids created in the same millisecond still sort in order.
/// Thread-safe.
std::string new_ulid();

/// "evt_" + ULID.
std::string new_event_id();

/// "dlv_" + ULID.
std::string new_delivery_id();

}  // namespace relay::common
