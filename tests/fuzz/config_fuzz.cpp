// libFuzzer target for the config loader: any bytes must give a Config or a ConfigError, never a
// crash, a hang or another exception. Build (not wired into CMake):
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude
//     tests/fuzz/config_fuzz.cpp src/config/*.cpp -lyaml-cpp -o config_fuzz
//   ./config_fuzz -max_len=4096 -dict=... corpus/
// Seeds: config/relayd.example.yaml and the snippets in tests/unit/config/ConfigErrorsTest.cpp.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "relay/config/ConfigLoader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const relay::config::EnvLookup empty_env = [](const std::string&) -> std::optional<std::string> {
    return std::nullopt;
  };
  try {
    (void)relay::config::parse_config(text, "fuzz.yaml", empty_env);
  } catch (const relay::config::ConfigError&) {
    // Expected for almost every input.
  }
  (void)relay::config::parse_duration(text);
  return 0;
}
