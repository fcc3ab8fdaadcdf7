#include "relay/config/Config.hpp"

#include <string>
#include <utility>
#include <vector>

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
