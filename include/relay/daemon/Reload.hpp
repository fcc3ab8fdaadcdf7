#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "relay/daemon/ConfigReloader.hpp"

namespace relay::server {
class HttpServer;
}

namespace relay::daemon {

/// Re-reads and applies the config file; SIGHUP and POST /v1/reload share it so both behave
/// the same. Must be safe to call from any thread.
using ReloadFunction = std::function<ReloadOutcome()>;

/// POST /v1/reload (SPEC §1 `relayd reload`; bearer token like every /v1 route): runs `reload`
/// and answers once the outcome is known: 200 {"status":"applied","webhooks":N}, or 422 with
/// error.code "config_rejected" and error.problems listing every problem.
void add_reload_route(server::HttpServer& server, ReloadFunction reload);

}  // namespace relay::daemon
