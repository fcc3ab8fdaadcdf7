#pragma once

// Private to the delivery module: the request line and headers of an attempt as text. Plain
// string work, kept out of HttpClient.cpp (Beast+SSL) so it compiles and reads on its own.

#include <string>

#include "relay/common/Url.hpp"
#include "relay/delivery/HttpClient.hpp"

namespace relay::delivery::detail {

/// Writes the request line and headers of `request` to `out` (cleared first). False when a
/// header name or value would break the framing.
bool serialize_head(const common::Url& url, const OutgoingRequest& request, std::string& out);

}  // namespace relay::delivery::detail
