#pragma once

#include <functional>
#include <memory>
#include <string>

#include "relay/config/Config.hpp"
#include "relay/server/HttpServer.hpp"

namespace relay::delivery {
class HttpSender;
}
namespace relay::store {
class Store;
}

namespace relay::daemon {

/// `POST /v1/webhooks/{id}/test` (SPEC §9): a real delivery of a sample payload of
/// `event_type`, recorded in the delivery log like any other. The event (id `evt_test_…`) and
/// its one delivery are committed first, as `delivering` so that the dispatcher never takes
/// it; then it is sent once, with `X-Relay-Test: true`, and the attempt is recorded as
/// succeeded or failed (a test is never retried). `respond` gets 200 with the attempt (status,
/// latency, body, error) once the record is committed, or 503 when the store refuses the
/// event. The caller has checked that the webhook subscribes to `event_type`. Store callbacks
/// run on the store's writer thread, so the send is handed to `post` (an executor of the
/// caller's).
void send_test_event(store::Store& store, delivery::HttpSender& client,
                     std::function<void(std::function<void()>)> post,
                     std::shared_ptr<const config::Config> cfg,
                     const config::WebhookConfig& webhook, const std::string& event_type,
                     std::function<void(server::Response)> respond);

}  // namespace relay::daemon
