#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "TempDir.hpp"
#include "relay/config/ConfigLoader.hpp"

namespace relay::config::testing_support {

/// An environment made of exactly these variables (tests never read the real one).
inline EnvLookup fake_env(std::map<std::string, std::string> vars = {}) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

using relay::test::TempDir;

/// Every problem's "path:line:col: message" for `yaml` (empty when it loads).
inline std::vector<std::string> problems(std::string_view yaml, const EnvLookup& env = fake_env()) {
  try {
    (void)parse_config(yaml, "t.yaml", env);
  } catch (const ConfigError& e) {
    std::vector<std::string> out;
    for (const auto& p : e.problems()) out.push_back(p.to_string());
    return out;
  }
  return {};
}

/// The minimal valid webhook entry, to append to a `webhooks:` list.
constexpr std::string_view kGoodWebhook =
    "  - id: crm\n"
    "    url: https://crm.example.com/hooks\n"
    "    secret: s3cr3t-value\n"
    "    events: [ticket.created]\n";

}  // namespace relay::config::testing_support
