#include "relay/delivery/Verifier.hpp"

#include <openssl/crypto.h>

#include <charconv>
#include <vector>

#include "relay/config/Config.hpp"
#include "relay/delivery/Signer.hpp"

namespace relay::delivery {
namespace {

bool same(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::vector<std::string_view> split_spaces(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    const auto start = s.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    s.remove_prefix(start);
    const auto end = s.find(' ');
    out.push_back(s.substr(0, end));
    if (end == std::string_view::npos) break;
    s.remove_prefix(end);
  }
  return out;
}

}  // namespace

Verification verify_relay_signature(std::string_view secret, std::string_view body,
                                    std::string_view header) {
  if (header.empty()) return {false, "no X-Relay-Signature header"};
  if (!header.starts_with("sha256=")) {
    return {false, "X-Relay-Signature does not start with sha256="};
  }
  if (same(header, signature_header(secret, body))) {
    return {true, "X-Relay-Signature matches"};
  }
  return {false, "X-Relay-Signature does not match (wrong secret, or the body was changed)"};
}

Verification verify_standard_signature(std::string_view secret, std::string_view msg_id,
                                       std::string_view timestamp, std::string_view signatures,
                                       std::string_view body, std::int64_t now_s,
                                       std::int64_t tolerance_s) {
  std::string error;
  const auto key = config::decode_standard_secret(secret, error);
  if (!key) return {false, "the receiver's secret " + error};
  if (msg_id.empty()) return {false, "no webhook-id header"};
  if (timestamp.empty()) return {false, "no webhook-timestamp header"};
  if (signatures.empty()) return {false, "no webhook-signature header"};
  std::int64_t ts = 0;
  const auto [end, ec] = std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), ts);
  if (ec != std::errc() || end != timestamp.data() + timestamp.size()) {
    return {false, "webhook-timestamp is not a whole number of seconds"};
  }
  if (ts < now_s - tolerance_s) {
    return {false, "webhook-timestamp is " + std::to_string(now_s - ts) + " s old (more than " +
                       std::to_string(tolerance_s) + " s: a replay, or a clock out of sync)"};
  }
  if (ts > now_s + tolerance_s) {
    return {false, "webhook-timestamp is " + std::to_string(ts - now_s) +
                       " s in the future (clock out of sync)"};
  }
  const auto expected = standard_signature(*key, msg_id, ts, body);
  const auto entries = split_spaces(signatures);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (same(entries[i], expected)) {
      return {true, "signature " + std::to_string(i + 1) + " of " + std::to_string(entries.size()) +
                        " matches"};
    }
  }
  return {false, "none of the " + std::to_string(entries.size()) +
                     " signatures match (wrong secret, or the body was changed)"};
}

}  // namespace relay::delivery
