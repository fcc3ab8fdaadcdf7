#include "IntakeHandler.hpp"

#include <exception>
#include <utility>

#include <spdlog/spdlog.h>

#include "relay/store/Store.hpp"

namespace relay::server {

Response error_response(int status, std::string_view code, std::string_view message) {
  Response response;
  response.status = status;
  response.body = error_json(code, message);
  if (status == 503) response.headers.emplace_back("Retry-After", "1");
  return response;
}

IntakeHandler::IntakeHandler(ServerContext context,
                             std::shared_ptr<const std::atomic<bool>> shutting_down,
                             IntakeKind kind)
    : context_(std::move(context)), shutting_down_(std::move(shutting_down)), kind_(kind) {}

void IntakeHandler::operator()(Request request, std::function<void(Response)> respond) const {
  if (context_.on_intake_answer) {
    respond = [respond = std::move(respond), counted = context_.on_intake_answer](Response r) {
      counted(r.status);
      respond(std::move(r));
    };
  }
  if (shutting_down_->load()) {
    respond(error_response(503, "shutting_down", "relayd is shutting down; retry later"));
    return;
  }
  auto parsed = parse_intake(request.header("content-type"), request.body, kind_);
  request.body.clear();
  request.body.shrink_to_fit();
  if (!parsed.ok()) {
    Response response;
    response.status = parsed.error->status;
    response.body = parsed.error->to_json();
    respond(std::move(response));
    return;
  }
  if (context_.store == nullptr) {
    respond(error_response(503, "storage_unavailable", "no store is attached"));
    return;
  }
  const auto config = context_.config ? context_.config() : nullptr;
  if (!config) {
    respond(error_response(503, "overloaded", "no configuration loaded yet"));
    return;
  }
  auto events = build_new_events(std::move(parsed.events), *config, common::now_ms());
  // Which events would create pending deliveries: the dispatcher is woken only for those (and
  // only when the store did not find them already stored).
  std::vector<bool> wakes;
  wakes.reserve(events.size());
  for (const auto& event : events) {
    bool pending = false;
    for (const auto& delivery : event.deliveries) {
      pending = pending || delivery.status == store::DeliveryStatus::kPending;
    }
    wakes.push_back(pending);
  }
  const std::size_t count = events.size();
  auto done = [respond, kind = kind_, count, wakes = std::move(wakes),
               wake = context_.on_new_deliveries, accepted = context_.on_events_accepted](
                  store::WriteStatus status, std::vector<store::EventReceipt> receipts) {
    try {
      if (status == store::WriteStatus::kShuttingDown) {
        respond(error_response(503, "shutting_down", "relayd is shutting down; retry later"));
        return;
      }
      if (status != store::WriteStatus::kOk) {
        respond(error_response(503, "storage_unavailable",
                               "the event could not be stored (disk full or I/O error); nothing "
                               "was written; retry later"));
        return;
      }
      if (receipts.size() != count) {
        spdlog::error("intake: store returned {} receipts for {} events", receipts.size(), count);
        respond(error_response(500, "internal_error", "unexpected store answer"));
        return;
      }
      Response response;
      if (kind == IntakeKind::kSingle) {
        response.status = receipts.front().duplicate ? 200 : 202;
        response.body = receipt_json(receipts.front());
      } else {
        response.status = 202;
        response.body = batch_receipt_json(receipts);
      }
      bool created_pending = false;
      std::size_t created = 0;
      for (std::size_t i = 0; i < count; ++i) {
        created_pending = created_pending || (wakes[i] && !receipts[i].duplicate);
        created += receipts[i].duplicate ? 0 : 1;
      }
      if (accepted && created > 0) accepted(created);
      // Wake the dispatcher first: the client may act on the answer (e.g. query the delivery)
      // at once.
      if (created_pending && wake) {
        try {
          wake();
        } catch (const std::exception& e) {
          spdlog::error("intake: waking the dispatcher failed: {}", e.what());
        }
      }
      respond(std::move(response));
    } catch (const std::exception& e) {
      spdlog::error("intake: answering after commit failed: {}", e.what());
      respond(error_response(500, "internal_error", "internal error"));
    }
  };
  bool queued = false;
  try {
    queued = context_.store->submit_events(std::move(events), std::move(done));
  } catch (const std::exception& e) {
    spdlog::error("intake: submit_events failed: {}", e.what());
    respond(error_response(503, "storage_unavailable", "the event could not be stored"));
    return;
  }
  if (!queued) {
    respond(error_response(503, "overloaded", "the write queue is full; retry later"));
  }
}

}  // namespace relay::server
