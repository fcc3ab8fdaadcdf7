#include "relay/common/SecretBox.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <memory>
#include <stdexcept>

#include "relay/common/Base64.hpp"

namespace relay::common {

namespace {

constexpr int kNonceBytes = 12;
constexpr int kTagBytes = 16;

struct FreeCtx {
  void operator()(EVP_CIPHER_CTX* c) const noexcept { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, FreeCtx>;

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    throw std::runtime_error("the random number generator is not available");
  }
  return out;
}

}  // namespace

SecretBox::SecretBox(std::string key) : key_(std::move(key)) {
  if (key_.size() != kKeyBytes) throw std::invalid_argument("an AES-256 key has 32 bytes");
}

std::string SecretBox::seal(std::string_view plaintext, std::string_view context) const {
  const std::string nonce = random_bytes(kNonceBytes);
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  std::string out = nonce;
  out.resize(nonce.size() + plaintext.size() + kTagBytes);
  auto* cipher = reinterpret_cast<unsigned char*>(out.data()) + kNonceBytes;
  int len = 0;
  int total = 0;
  if (!ctx ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key_), bytes(nonce)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(context),
                        static_cast<int>(context.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), cipher, &len, bytes(plaintext),
                        static_cast<int>(plaintext.size())) != 1) {
    throw std::runtime_error("AES-256-GCM encryption failed");
  }
  total = len;
  if (EVP_EncryptFinal_ex(ctx.get(), cipher + total, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, cipher + plaintext.size()) !=
          1) {
    throw std::runtime_error("AES-256-GCM encryption failed");
  }
  return out;
}

std::optional<std::string> SecretBox::open(std::string_view sealed,
                                           std::string_view context) const {
  if (sealed.size() < static_cast<std::size_t>(kNonceBytes + kTagBytes)) return std::nullopt;
  const auto nonce = sealed.substr(0, kNonceBytes);
  const auto cipher = sealed.substr(kNonceBytes, sealed.size() - kNonceBytes - kTagBytes);
  std::string tag(sealed.substr(sealed.size() - kTagBytes));
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  std::string out(cipher.size(), '\0');
  int len = 0;
  if (!ctx ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key_), bytes(nonce)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(context),
                        static_cast<int>(context.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len,
                        bytes(cipher), static_cast<int>(cipher.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) != 1) {
    return std::nullopt;
  }
  int final_len = 0;
  // The tag check: a wrong key or a changed byte fails here, never yields other plaintext.
  if (EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len,
                          &final_len) != 1) {
    return std::nullopt;
  }
  return out;
}

std::optional<std::string> parse_secret_key(std::string_view file_text, std::string& error) {
  while (!file_text.empty() &&
         (file_text.back() == '\n' || file_text.back() == '\r' || file_text.back() == ' ')) {
    file_text.remove_suffix(1);
  }
  auto key = base64_decode(file_text);
  if (!key || key->size() != SecretBox::kKeyBytes) {
    error =
        "expected base64 of exactly 32 bytes on one line (make one with 'openssl rand -base64 "
        "32')";
    return std::nullopt;
  }
  return key;
}

std::string new_webhook_secret() {
  return "whsec_" + base64_encode(random_bytes(32));
}

}  // namespace relay::common
