#pragma once

#include <optional>
#include <string_view>

namespace relay::server {

/// True when `authorization` is "Bearer <token>" (scheme case-insensitive) with exactly
/// `expected`. Both tokens are hashed (SHA-256) and the digests compared with CRYPTO_memcmp, so
/// the time taken reveals neither the token's content nor its length. An empty `expected`
/// never matches (callers decide whether a token is required at all). Thread-safe, no throw.
[[nodiscard]] bool bearer_token_matches(std::optional<std::string_view> authorization,
                                        std::string_view expected) noexcept;

}  // namespace relay::server
