#include "relay/server/BearerAuth.hpp"

#include <array>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "relay/common/Ascii.hpp"

namespace relay::server {

namespace {

using Digest = std::array<unsigned char, 32>;

bool sha256(std::string_view text, Digest& out) noexcept {
  unsigned int size = 0;
  return EVP_Digest(text.data(), text.size(), out.data(), &size, EVP_sha256(), nullptr) == 1 &&
         size == out.size();
}

bool starts_with_bearer(std::string_view header) noexcept {
  return common::istarts_with(header, "bearer ");
}

}  // namespace

bool bearer_token_matches(std::optional<std::string_view> authorization,
                          std::string_view expected) noexcept {
  if (expected.empty() || !authorization || !starts_with_bearer(*authorization)) return false;
  std::string_view given = authorization->substr(7);
  while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
  while (!given.empty() && (given.back() == ' ' || given.back() == '\t')) given.remove_suffix(1);
  Digest a{};
  Digest b{};
  if (!sha256(given, a) || !sha256(expected, b)) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace relay::server
