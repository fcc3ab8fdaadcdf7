#pragma once

#include <span>
#include <string_view>

namespace relay::daemon {

/// One file of console/, embedded at build time (cmake/EmbedAssets.cmake).
struct EmbeddedAsset {
  std::string_view name;  // "index.html", "console.js", …
  std::string_view bytes;
};

/// Every file of console/ (generated ConsoleAssets.cpp).
std::span<const EmbeddedAsset> console_assets();

}  // namespace relay::daemon
