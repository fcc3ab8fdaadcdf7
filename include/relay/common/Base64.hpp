#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace relay::common {

/// Standard base64 (RFC 4648 §4, with padding) of `bytes`. Thread-safe.
std::string base64_encode(std::string_view bytes);

/// Decodes standard base64 with padding (whitespace is not allowed). nullopt when `text` is not
/// valid base64. Thread-safe.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace relay::common
