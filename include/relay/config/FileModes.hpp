#pragma once

#include <string>
#include <vector>

#include "relay/config/Config.hpp"

namespace relay::config {

/// One warning line per secret file of `config` (server.token_file, each webhook's secret_file)
/// that other users can read or anyone but its owner can change: mode o+r, o+w or g+w. Group
/// read is allowed on purpose: the packaged layout is root:relayd 0640, the daemon's group. The
/// warning names the key, the file and its mode, never the contents. Empty when all is well.
std::vector<std::string> secret_file_warnings(const Config& config);

}  // namespace relay::config
