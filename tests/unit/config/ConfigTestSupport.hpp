#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

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

/// A fresh directory under the test temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("relay_config_test_" + std::to_string(::getpid()) + "_" +
             std::to_string(counter.fetch_add(1)));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  /// Writes `contents` to `name` inside the directory; returns the full path.
  std::string write(const std::string& name, std::string_view contents) const {
    const auto p = path_ / name;
    std::ofstream(p, std::ios::binary) << contents;
    return p.string();
  }
  [[nodiscard]] std::string path(const std::string& name = "") const {
    return (path_ / name).string();
  }

 private:
  std::filesystem::path path_;
};

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
