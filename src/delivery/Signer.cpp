#include "relay/delivery/Signer.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>

#include "relay/common/Base64.hpp"

namespace relay::delivery {
namespace {

struct MacFree {
  void operator()(EVP_MAC* mac) const noexcept { EVP_MAC_free(mac); }
};
struct MacCtxFree {
  void operator()(EVP_MAC_CTX* ctx) const noexcept { EVP_MAC_CTX_free(ctx); }
};
using MacPtr = std::unique_ptr<EVP_MAC, MacFree>;
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, MacCtxFree>;

// Fetching an algorithm walks the provider tables, so it is done once; an EVP_MAC is immutable
// and may be shared by threads (each call gets its own EVP_MAC_CTX).
const EVP_MAC& hmac_algorithm() {
  static const MacPtr mac = [] {
    MacPtr fetched(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
    if (!fetched) throw std::runtime_error("OpenSSL: HMAC is not available (EVP_MAC_fetch failed)");
    return fetched;
  }();
  return *mac;
}

// A context with the digest already set, one per thread, re-keyed for every message. Creating
// a context and setting its digest looks the digest up in the provider tables (locks and
// allocations): that was most of the cost of signing a 1 KiB body.
EVP_MAC_CTX& thread_context() {
  thread_local const MacCtxPtr ctx = [] {
    MacCtxPtr c(EVP_MAC_CTX_new(const_cast<EVP_MAC*>(&hmac_algorithm())));
    if (!c) throw std::runtime_error("OpenSSL: EVP_MAC_CTX_new failed");
    char digest_name[] = "SHA256";
    const std::array<OSSL_PARAM, 2> params = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
        OSSL_PARAM_construct_end()};
    if (EVP_MAC_CTX_set_params(c.get(), params.data()) != 1) {
      throw std::runtime_error("OpenSSL: cannot select SHA-256 for HMAC");
    }
    return c;
  }();
  return *ctx;
}

struct Digest {
  std::array<unsigned char, EVP_MAX_MD_SIZE> bytes{};
  std::size_t size = 0;
};

// HMAC-SHA256 of the concatenation of `parts`, fed to the MAC one after another so that a
// signed string made of pieces (Standard Webhooks signs "id.timestamp.body") never copies the
// body.
Digest hmac_parts(std::string_view key, std::initializer_list<std::string_view> parts) {
  EVP_MAC_CTX* ctx = &thread_context();
  // An empty key is legal for HMAC, but a null pointer would mean "keep the previous key" (the
  // previous message's, with a shared context).
  static const unsigned char kEmpty = 0;
  const auto* key_bytes =
      key.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(key.data());
  if (EVP_MAC_init(ctx, key_bytes, key.size(), nullptr) != 1) {
    throw std::runtime_error("OpenSSL: HMAC-SHA256 computation failed");
  }
  for (const auto part : parts) {
    if (EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(part.data()), part.size()) !=
        1) {
      throw std::runtime_error("OpenSSL: HMAC-SHA256 computation failed");
    }
  }
  Digest d;
  if (EVP_MAC_final(ctx, d.bytes.data(), &d.size, d.bytes.size()) != 1) {
    throw std::runtime_error("OpenSSL: HMAC-SHA256 computation failed");
  }
  return d;
}

}  // namespace

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
  const auto digest = hmac_parts(key, {message});
  const auto& out = digest.bytes;
  const auto out_len = digest.size;

  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(out_len * 2);
  for (std::size_t i = 0; i < out_len; ++i) {
    hex.push_back(kHex[out[i] >> 4]);
    hex.push_back(kHex[out[i] & 0x0f]);
  }
  return hex;
}

std::string signature_header(std::string_view secret, std::string_view body) {
  return "sha256=" + hmac_sha256_hex(secret, body);
}

std::string standard_signature(std::string_view key, std::string_view msg_id,
                               std::int64_t timestamp, std::string_view body) {
  const auto ts = std::to_string(timestamp);
  const auto digest = hmac_parts(key, {msg_id, ".", ts, ".", body});
  return "v1," + common::base64_encode(std::string_view(
                     reinterpret_cast<const char*>(digest.bytes.data()), digest.size));
}

}  // namespace relay::delivery
