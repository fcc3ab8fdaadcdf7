#pragma once

#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace relay::test {

/// A fresh directory under the system's temp directory, removed with everything in it. One
/// class for every test binary: the unit tests (header only, no library to link) and the
/// integration tests alike.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    for (int i = 0; i < 100; ++i) {
      auto candidate = std::filesystem::temp_directory_path() /
                       ("relay-test-" + std::to_string(rd()) + std::to_string(rd()));
      // create_directory is false when it exists: two tests never share a directory.
      if (std::filesystem::create_directory(candidate)) {
        path_ = std::move(candidate);
        return;
      }
    }
    throw std::runtime_error("cannot create a temp dir");
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::filesystem::path file(const std::string& name) const { return path_ / name; }
  /// Writes `contents` to `name` inside the directory; returns the file's path.
  std::string write(const std::string& name, std::string_view contents) const {
    const auto p = path_ / name;
    std::ofstream(p, std::ios::binary) << contents;
    return p.string();
  }

 private:
  std::filesystem::path path_;
};

}  // namespace relay::test
