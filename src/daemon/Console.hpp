#pragma once

#include "relay/server/HttpServer.hpp"

namespace relay::daemon {

/// The web console (SPEC §12, docs/console.md): GET /ui/ and its files, embedded in the binary.
/// The files hold no data and need no token; the page asks for the token and sends it as a
/// Bearer header to /v1. Every answer carries a strict Content-Security-Policy (no inline
/// script or style, nothing from other origins).
void register_console_routes(server::HttpServer& server);

}  // namespace relay::daemon
