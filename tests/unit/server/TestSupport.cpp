// Test-only stand-ins for code owned by other modules.
#include <string_view>

#include "relay/config/Config.hpp"

namespace relay::config {

// WebhookConfig::matches belongs to the config module, which may not be linked in yet. A weak
// definition lets this test binary link either way: the real (strong) one wins when present.
__attribute__((weak)) bool WebhookConfig::matches(std::string_view event_type) const {
  for (const auto& pattern : events) {
    if (pattern == "*" || pattern == event_type) return true;
    if (pattern.size() > 2 && pattern.ends_with(".*") &&
        event_type.starts_with(std::string_view(pattern).substr(0, pattern.size() - 1))) {
      return true;
    }
  }
  return false;
}

}  // namespace relay::config
