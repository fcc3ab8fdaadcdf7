#include "relay/config/FileModes.hpp"

#include <sys/stat.h>

#include <cstdio>

namespace relay::config {

namespace {

void check(const std::string& key, const std::string& path, std::vector<std::string>& out) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;  // the loader already read it; gone since
  const auto mode = st.st_mode & 07777;
  if ((mode & (S_IROTH | S_IWOTH | S_IWGRP)) == 0) return;
  char octal[8];
  std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
  out.push_back(key + ": '" + path + "' has mode " + octal +
                ((mode & S_IROTH) != 0 ? ": every user on this host can read this secret"
                                       : ": users other than its owner can change this secret") +
                "; chmod 0600 (or 0640 with the relayd group)");
}

}  // namespace

std::vector<std::string> secret_file_warnings(const Config& config) {
  std::vector<std::string> out;
  if (config.server.token_file) check("server.token_file", *config.server.token_file, out);
  for (const auto& w : config.webhooks) {
    if (w.secret_file) check("webhooks." + w.id + ".secret_file", *w.secret_file, out);
  }
  return out;
}

}  // namespace relay::config
