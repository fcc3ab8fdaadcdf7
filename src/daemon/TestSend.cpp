#include "TestSend.hpp"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <utility>

#include "relay/common/Ids.hpp"
#include "relay/common/Redaction.hpp"
#include "relay/common/Time.hpp"
#include "relay/delivery/AttemptClassifier.hpp"
#include "relay/delivery/HttpClient.hpp"
#include "relay/delivery/RequestBuilder.hpp"
#include "relay/store/Store.hpp"

#include "ApiResponses.hpp"

namespace relay::daemon {
namespace {

using nlohmann::json;

// Sample `data` for "Send Test", shaped like the user guide's payloads of that group.
json sample_data(const std::string& event_type) {
  const json ticket = {{"id", "tkt_test"},
                       {"subject", "Test ticket from relayd"},
                       {"status", "open"},
                       {"priority", "medium"},
                       {"customer", {{"id", "cust_test"}, {"email", "test@example.com"}}}};
  const auto group = event_type.substr(0, event_type.find('.'));
  if (group == "message") {
    return {{"message", {{"id", "msg_test"}, {"body", "Test message from relayd"}}},
            {"ticket", ticket}};
  }
  if (group == "customer") {
    return {{"customer", {{"id", "cust_test"}, {"email", "test@example.com"}}}};
  }
  if (group == "sla") {
    return {{"ticket", ticket}, {"sla", {{"policy", "first_response"}, {"due_at", "test"}}}};
  }
  return {{"ticket", ticket}};
}

}  // namespace

void send_test_event(store::Store& store, delivery::HttpSender& client,
                     std::function<void(std::function<void()>)> post,
                     std::shared_ptr<const config::Config> cfg,
                     const config::WebhookConfig& webhook, const std::string& event_type,
                     std::function<void(server::Response)> respond) {
  // "evt_test_" + ULID: test events sort by time among themselves and are easy to filter out
  // of the delivery log (WHERE event_id NOT LIKE 'evt_test_%').
  const auto now = common::now_ms();
  store::NewEvent event;
  event.id = "evt_test_" + common::new_ulid();
  event.event_type = event_type;
  event.created_at = now;
  nlohmann::ordered_json payload;
  payload["id"] = event.id;
  payload["event"] = event_type;
  payload["created_at"] = common::format_rfc3339_s(now);
  payload["data"] = sample_data(event_type);
  event.payload = payload.dump();
  const auto delivery_id = common::new_delivery_id();
  event.deliveries.push_back(store::NewDelivery{
      delivery_id, webhook.id, store::DeliveryStatus::kDelivering, webhook.max_queued});
  auto request = delivery::build_request(webhook, cfg->delivery, delivery_id, event_type,
                                         event.payload, common::now_ms(), /*test=*/true);
  auto record = std::make_shared<store::AttemptRecord>();
  record->delivery_id = delivery_id;
  record->event_id = event.id;
  record->attempt_number = 1;
  record->url = common::redact_url(request.url);
  record->request_headers = delivery::headers_for_log(request.headers);
  const auto event_id = event.id;
  const auto webhook_id = webhook.id;
  auto stored = [&store, &client, post, cfg, record, request = std::move(request), webhook_id,
                 event_type,
                 respond](store::WriteStatus st, std::vector<store::EventReceipt>) mutable {
    if (st != store::WriteStatus::kOk) {
      respond(api::json_response(503, {{"error",
                                        {{"code", "storage_unavailable"},
                                         {"message", "the test event could not be stored"}}}}));
      return;
    }
    spdlog::info("test send webhook={} event={} delivery={}", webhook_id, record->event_id,
                 record->delivery_id);
    // Off the writer thread: the send runs inline up to its first wait.
    post([&store, &client, cfg, record, request = std::move(request), webhook_id, event_type,
          respond]() mutable {
      record->started_at = common::now_ms();
      client.send(std::move(request), [&store, cfg, record, webhook_id, event_type,
                                       respond](delivery::HttpResult res) {
        auto verdict =
            delivery::classify_attempt(res, 1, cfg->delivery.retry_schedule, common::now_ms());
        record->duration_ms = res.duration.count();
        record->response_status = res.status;
        // A receiver's Set-Cookie or token header is a credential too (SPEC §6: no secrets
        // stored): names that look secret keep their name, not their value.
        record->response_headers = delivery::headers_json(res.headers, true);
        record->response_body = delivery::valid_utf8(res.body);
        record->error = std::move(verdict.error);
        // Attempted once: what would be a retry for an event is a failure for a test.
        const bool ok = verdict.outcome == common::AttemptOutcome::kSucceeded;
        record->outcome = ok ? common::AttemptOutcome::kSucceeded : common::AttemptOutcome::kFailed;
        record->new_status =
            ok ? store::DeliveryStatus::kSucceeded : store::DeliveryStatus::kFailed;
        json out = {{"webhook", webhook_id},
                    {"event", event_type},
                    {"event_id", record->event_id},
                    {"delivery_id", record->delivery_id},
                    {"outcome", ok ? "succeeded" : "failed"},
                    {"latency_ms", res.duration.count()},
                    {"status", res.status ? json(*res.status) : json(nullptr)},
                    {"body", record->response_body},
                    {"body_truncated", res.body_truncated},
                    {"error", res.error.empty() ? json(nullptr) : json(res.error)}};
        store.record_attempt(
            *record, [respond, out = std::move(out), record](store::WriteStatus written) mutable {
              if (written != store::WriteStatus::kOk) {
                spdlog::error("test send delivery={}: the attempt could not be recorded",
                              record->delivery_id);
                out["recorded"] = false;
              }
              respond(api::json_response(200, out));
            });
      });
    });
  };
  if (!store.submit_events({std::move(event)}, std::move(stored))) {
    respond(api::json_response(
        503, {{"error", {{"code", "overloaded"}, {"message", "too many writes queued"}}}}));
  }
}

}  // namespace relay::daemon
