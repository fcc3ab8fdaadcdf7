// Reading the files a config names: whole files with a size limit, and readability checks.
#include "ConfigFiles.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace relay::config::detail {
namespace {

struct FileCloser {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};

}  // namespace

std::optional<std::string> read_file(const std::string& path, std::size_t max_bytes,
                                     std::string& error) {
  errno = 0;
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) {
    error = std::strerror(errno);
    return std::nullopt;
  }
  std::string data;
  char buf[8192];
  for (;;) {
    const std::size_t n = std::fread(buf, 1, sizeof buf, f.get());
    data.append(buf, n);
    if (data.size() > max_bytes) {
      error = "larger than " + std::to_string(max_bytes) + " bytes";
      return std::nullopt;
    }
    if (n < sizeof buf) {
      if (std::ferror(f.get())) {
        error = std::strerror(errno != 0 ? errno : EIO);
        return std::nullopt;
      }
      return data;
    }
  }
}

bool check_readable(const std::string& path, std::string& error) {
  errno = 0;
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) {
    error = std::strerror(errno);
    return false;
  }
  char c;
  (void)std::fread(&c, 1, 1, f.get());  // a directory opens but fails here with EISDIR
  if (std::ferror(f.get())) {
    error = std::strerror(errno != 0 ? errno : EIO);
    return false;
  }
  return true;
}

}  // namespace relay::config::detail
