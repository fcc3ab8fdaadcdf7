#include "relay/config/Config.hpp"

#include <string>
#include <utility>
#include <vector>

#include "relay/common/Base64.hpp"

namespace relay::config {
namespace {

std::string join_problems(const std::vector<ConfigProblem>& problems) {
  std::string out;
  for (const auto& p : problems) {
    if (!out.empty()) out += '\n';
    out += p.to_string();
  }
  return out;
}

}  // namespace

std::string_view to_string(SignatureScheme scheme) {
  switch (scheme) {
    case SignatureScheme::kStandard:
      return "standard";
    case SignatureScheme::kBoth:
      return "both";
    case SignatureScheme::kRelay:
      break;
  }
  return "relay";
}

std::optional<std::string> decode_standard_secret(std::string_view secret, std::string& error) {
  constexpr std::string_view kPrefix = "whsec_";
  if (!secret.starts_with(kPrefix)) {
    error =
        "must start with 'whsec_' (the Standard Webhooks secret format; make one with "
        "'relayd gen-secret')";
    return std::nullopt;
  }
  auto key = common::base64_decode(secret.substr(kPrefix.size()));
  if (!key) {
    error = "the part after 'whsec_' is not valid base64";
    return std::nullopt;
  }
  if (key->size() < 24 || key->size() > 64) {
    error = "must decode to 24-64 bytes (it decodes to " + std::to_string(key->size()) + ")";
    return std::nullopt;
  }
  return key;
}

bool WebhookConfig::matches(std::string_view event_type) const {
  for (const auto& pattern : events) {
    if (pattern == "*") return true;
    if (pattern.size() >= 2 && pattern.ends_with(".*")) {
      // "ticket.*" matches "ticket.created" but not "ticket." or "tickets.created".
      const std::string_view prefix = std::string_view(pattern).substr(0, pattern.size() - 1);
      if (event_type.size() > prefix.size() && event_type.starts_with(prefix)) return true;
    } else if (pattern == event_type) {
      return true;
    }
  }
  return false;
}

const WebhookConfig* Config::find_webhook(std::string_view id) const {
  for (const auto& w : webhooks) {
    if (w.id == id) return &w;
  }
  return nullptr;
}

std::string ConfigProblem::to_string() const {
  if (line <= 0) return path + ": " + message;
  return path + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

ConfigError::ConfigError(std::vector<ConfigProblem> problems)
    : std::runtime_error(join_problems(problems)), problems_(std::move(problems)) {}

}  // namespace relay::config
