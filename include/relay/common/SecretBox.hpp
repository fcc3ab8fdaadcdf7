#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace relay::common {

/// Seals and opens small secrets with AES-256-GCM (OpenSSL EVP) under one 32-byte key, for the
/// secrets of API-managed webhooks at rest (SPEC §11). A sealed value is
/// nonce (12 random bytes) || ciphertext || tag (16 bytes); `context` is authenticated but not
/// stored (the row's id), so a sealed value moved to another row does not open either.
/// Holds the key: never log it. Thread-safe (const; each call uses its own cipher context).
class SecretBox {
 public:
  static constexpr std::size_t kKeyBytes = 32;

  /// `key` must be exactly kKeyBytes bytes; throws std::invalid_argument otherwise.
  explicit SecretBox(std::string key);

  /// Throws std::runtime_error only when OpenSSL itself fails (no randomness).
  [[nodiscard]] std::string seal(std::string_view plaintext, std::string_view context) const;
  /// nullopt when the tag does not verify: a different key, or altered bytes.
  [[nodiscard]] std::optional<std::string> open(std::string_view sealed,
                                                std::string_view context) const;

 private:
  std::string key_;
};

/// The bytes of a key file (`storage.secret_key_file`): base64 of exactly 32 bytes, one line
/// (`openssl rand -base64 32`). nullopt and `error` (never quoting the file) otherwise.
std::optional<std::string> parse_secret_key(std::string_view file_text, std::string& error);

/// A new webhook secret: `whsec_` + base64 of 32 random bytes (valid for every signature
/// scheme). Throws std::runtime_error when the random number generator fails.
std::string new_webhook_secret();

}  // namespace relay::common
