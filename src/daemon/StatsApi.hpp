#pragma once

#include <functional>

#include "relay/server/HttpServer.hpp"

namespace relay::store {
class AdminStore;
}

namespace relay::daemon {

/// Runs a blocking store read off the I/O threads and answers with its result (AdminApi's
/// reader pool).
using BlockingRunner = std::function<void(std::function<void(server::Response)> respond,
                                          std::function<server::Response()> work)>;

/// The admin API's aggregates (SPEC §12, docs/api.md): GET /v1/stats/webhooks (per webhook:
/// attempts by outcome, success rate, p50/p99 latency over the last hour and day) and
/// GET /v1/stats/attempts (attempts per minute by outcome). Bearer-protected like all of /v1.
void register_stats_routes(server::HttpServer& server, store::AdminStore& store,
                           BlockingRunner blocking);

}  // namespace relay::daemon
