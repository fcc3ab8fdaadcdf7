#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "relay/daemon/ConfigReloader.hpp"

namespace relay::server {
class HttpServer;
}
namespace relay::store {
class AdminStore;
}

namespace relay::daemon {

/// Re-reads and applies the config file; SIGHUP and POST /v1/reload share it so both behave
/// the same. Must be safe to call from any thread.
using ReloadFunction = std::function<ReloadOutcome()>;

/// Answers a dry run: (HTTP status, JSON body). Called off the I/O threads.
using PreviewRespond = std::function<void(int, std::string)>;
/// Starts a dry run (`relayd reload --dry-run`) and answers through `respond`, off the I/O
/// thread (it reads the file and counts deliveries).
using PreviewFunction = std::function<void(PreviewRespond)>;

/// POST /v1/reload (SPEC §1 `relayd reload`; bearer token like every /v1 route): runs `reload`
/// and answers once the outcome is known: 200 {"status":"applied","webhooks":N}, or 422 with
/// error.code "config_rejected" and error.problems listing every problem.
/// With `?dry_run=true` (and a `preview`), nothing is applied: 200 with what the file would
/// change (docs/api.md), or the same 422.
void add_reload_route(server::HttpServer& server, ReloadFunction reload,
                      PreviewFunction preview = {});

/// The dry run of the daemon: `reloader.preview()` compared with the configuration in effect,
/// with the store's counts of the deliveries it would cancel, pause, drop or resume. Runs
/// each request on `run_blocking` (e.g. a post to a thread pool joined before the store
/// closes).
PreviewFunction make_reload_preview(const ConfigReloader& reloader, store::AdminStore& store,
                                    std::function<void(std::function<void()>)> run_blocking);

}  // namespace relay::daemon
