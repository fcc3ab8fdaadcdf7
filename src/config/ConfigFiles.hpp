#pragma once
// Private to the config module: reading the files a config names (the config itself, secret and
// token files, CA bundles), each with a size limit and the system's reason on failure.

#include <cstddef>
#include <optional>
#include <string>

namespace relay::config::detail {

constexpr std::size_t kMaxConfigFileBytes = 16 * 1024 * 1024;
constexpr std::size_t kMaxSecretFileBytes = 64 * 1024;

/// Reads a whole file (at most `max_bytes`). On failure returns nullopt and sets `error` to the
/// reason ("No such file or directory", "Is a directory", "larger than 65536 bytes").
std::optional<std::string> read_file(const std::string& path, std::size_t max_bytes,
                                     std::string& error);

/// Checks that `path` can be opened and read (certificates, CA bundles).
bool check_readable(const std::string& path, std::string& error);

}  // namespace relay::config::detail
