// Scalar helpers of the config module: durations, ${VAR} expansion.
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relay/common/EventTypes.hpp"
#include "relay/config/ConfigLoader.hpp"

namespace relay::config {
namespace {

bool is_name_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9');
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

std::optional<Duration> parse_duration(std::string_view text) {
  std::size_t i = 0;
  std::int64_t n = 0;
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    const int digit = text[i] - '0';
    if (n > (kMax - digit) / 10) return std::nullopt;
    n = n * 10 + digit;
    ++i;
  }
  if (i == 0) return std::nullopt;
  const std::string_view unit = text.substr(i);
  std::int64_t factor = 0;
  if (unit == "ms") {
    factor = 1;
  } else if (unit == "s") {
    factor = 1000;
  } else if (unit == "m") {
    factor = 60 * 1000;
  } else if (unit == "h") {
    factor = 3600 * 1000;
  } else if (unit == "d") {
    factor = 24 * 3600 * 1000;
  } else {
    return std::nullopt;
  }
  if (n > kMax / factor) return std::nullopt;
  return Duration(n * factor);
}

std::string format_duration(Duration d) {
  const std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  struct Unit {
    std::int64_t factor;
    const char* suffix;
  };
  static constexpr Unit kUnits[] = {
      {24LL * 3600 * 1000, "d"}, {3600LL * 1000, "h"}, {60LL * 1000, "m"}, {1000, "s"}};
  for (const auto& u : kUnits) {
    if (ms % u.factor == 0) return std::to_string(ms / u.factor) + u.suffix;
  }
  return std::to_string(ms) + "ms";
}

std::optional<std::string> expand_env(std::string_view text, const EnvLookup& env,
                                      std::string& error) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c != '$' || i + 1 >= text.size()) {
      out += c;
      ++i;
      continue;
    }
    if (text[i + 1] == '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (text[i + 1] != '{') {
      out += c;  // "$HOME" is not expanded: only the braced form is
      ++i;
      continue;
    }
    const std::size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      error = "unterminated ${ (missing '}')";
      return std::nullopt;
    }
    const std::string_view inner = text.substr(i + 2, close - i - 2);
    std::string_view name = inner;
    std::optional<std::string_view> fallback;
    if (const auto sep = inner.find(":-"); sep != std::string_view::npos) {
      name = inner.substr(0, sep);
      fallback = inner.substr(sep + 2);
    }
    bool valid = !name.empty() && is_name_start(name.front());
    for (const char n : name) valid = valid && is_name_char(n);
    if (!valid) {
      // The reference itself is not quoted: it may sit inside a secret.
      error =
          "invalid environment variable reference (expected ${NAME} or ${NAME:-default}, NAME "
          "made of A-Z, a-z, 0-9 and _; write $$ for a literal $)";
      return std::nullopt;
    }
    const auto value = env ? env(std::string(name)) : std::nullopt;
    if (fallback) {
      out += (value && !value->empty()) ? std::string_view(*value) : *fallback;
    } else if (value) {
      out += *value;
    } else {
      error = "environment variable " + std::string(name) + " is not set";
      return std::nullopt;
    }
    i = close + 1;
  }
  return out;
}

const std::vector<std::string>& event_catalogue() {
  static const std::vector<std::string> kCatalogue(common::kEventTypes.begin(),
                                                   common::kEventTypes.end());
  return kCatalogue;
}

}  // namespace relay::config
