// libFuzzer target for the config loader: any bytes must give a Config or a ConfigError, never a
// crash, a hang or another exception; and what it accepts must be usable by the rest of relayd.
// Built and run by scripts/fuzz (tests/fuzz/CMakeLists.txt); seeds in corpus/config_fuzz/ are
// config/relayd.example.yaml and broken snippets like those of tests/unit/config/.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "FuzzCheck.hpp"
#include "relay/common/Url.hpp"
#include "relay/config/ConfigLoader.hpp"

namespace {

bool is_webhook_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

void check_config(const relay::config::Config& config) {
  RELAY_FUZZ_CHECK(!config.delivery.retry_schedule.empty());
  for (const auto delay : config.delivery.retry_schedule) {
    RELAY_FUZZ_CHECK(delay.count() >= 0);
  }
  RELAY_FUZZ_CHECK(config.delivery.concurrency >= 1);
  RELAY_FUZZ_CHECK(config.delivery.per_webhook_concurrency >= 1);
  RELAY_FUZZ_CHECK(config.server.max_body_bytes >= 1);
  std::set<std::string> ids;
  for (const auto& w : config.webhooks) {
    RELAY_FUZZ_CHECK(is_webhook_id(w.id));
    RELAY_FUZZ_CHECK(ids.insert(w.id).second);
    RELAY_FUZZ_CHECK(!w.events.empty());
    for (const auto& pattern : w.events) {
      RELAY_FUZZ_CHECK(pattern == "*" || pattern.ends_with(".*") ||
                       relay::config::is_known_event_type(pattern));
    }
    // The delivery client must be able to use every URL that check-config accepts.
    const auto url = relay::common::parse_url(w.url);
    RELAY_FUZZ_CHECK(url.has_value());
    RELAY_FUZZ_CHECK(url->is_https() || w.allow_insecure_http);
    RELAY_FUZZ_CHECK(!url->had_fragment && !url->empty_port);  // check-config's policy
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const relay::config::EnvLookup empty_env = [](const std::string&) -> std::optional<std::string> {
    return std::nullopt;
  };
  try {
    const auto config = relay::config::parse_config(text, "fuzz.yaml", empty_env);
    RELAY_FUZZ_CHECK(config != nullptr);
    check_config(*config);
  } catch (const relay::config::ConfigError& e) {
    // Expected for almost every input: at least one problem, each with a message and a place.
    RELAY_FUZZ_CHECK(!e.problems().empty());
    for (const auto& problem : e.problems()) {
      RELAY_FUZZ_CHECK(problem.path == "fuzz.yaml");
      RELAY_FUZZ_CHECK(!problem.message.empty());
      RELAY_FUZZ_CHECK(problem.line >= 0 && problem.column >= 0);
    }
  }
  if (const auto d = relay::config::parse_duration(text)) {
    RELAY_FUZZ_CHECK(d->count() >= 0);
    // format_duration is the inverse of parse_duration (for the value, not the spelling).
    RELAY_FUZZ_CHECK(relay::config::parse_duration(relay::config::format_duration(*d)) == d);
  }
  return 0;
}
