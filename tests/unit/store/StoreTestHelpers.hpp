#pragma once

// Helpers shared by the store tests: events, deliveries, and blocking wrappers around the
// asynchronous role API (any backend).
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "TempDir.hpp"
#include "relay/common/Ids.hpp"
#include "relay/common/Time.hpp"
#include "relay/store/Store.hpp"

namespace relay::store::testing_support {

using common::TimePoint;

using relay::test::TempDir;

inline NewEvent event(const std::string& id, std::vector<NewDelivery> deliveries,
                      TimePoint at = common::now_ms()) {
  NewEvent e;
  e.id = id;
  e.event_type = "ticket.created";
  e.created_at = at;
  e.payload = R"({"id":")" + id + R"(","data":{}})";
  e.deliveries = std::move(deliveries);
  return e;
}

inline NewDelivery pending(const std::string& webhook) {
  return {common::new_delivery_id(), webhook, DeliveryStatus::kPending, 10000};
}

inline NewDelivery paused(const std::string& webhook, std::size_t max_queued = 10000) {
  return {common::new_delivery_id(), webhook, DeliveryStatus::kPaused, max_queued};
}

inline std::vector<EventReceipt> submit(Store& s, std::vector<NewEvent> events) {
  std::promise<std::pair<WriteStatus, std::vector<EventReceipt>>> p;
  EXPECT_TRUE(s.submit_events(std::move(events), [&](WriteStatus st, std::vector<EventReceipt> r) {
    p.set_value({st, std::move(r)});
  }));
  auto [st, r] = p.get_future().get();
  EXPECT_EQ(st, WriteStatus::kOk);
  return r;
}

inline ClaimResult claim(Store& s, std::vector<std::pair<std::string, int>> limits,
                         TimePoint now = common::now_ms()) {
  std::promise<ClaimResult> p;
  s.claim_due(now, std::move(limits), [&](WriteStatus st, ClaimResult r) {
    EXPECT_EQ(st, WriteStatus::kOk);
    p.set_value(std::move(r));
  });
  return p.get_future().get();
}

inline WriteStatus wait(const std::function<void(Store::WriteCallback)>& op) {
  std::promise<WriteStatus> p;
  op([&](WriteStatus st) { p.set_value(st); });
  return p.get_future().get();
}

inline AttemptRecord attempt_of(const DueDelivery& d, AttemptOutcome outcome, TimePoint at) {
  AttemptRecord rec;
  rec.delivery_id = d.delivery_id;
  rec.delivery_rowid = d.rowid;
  rec.webhook_id = d.webhook_id;
  rec.attempt_number = d.attempt_count + 1;
  rec.started_at = at;
  rec.url = "https://x/hook";
  rec.request_headers = "{}";
  rec.response_status = outcome == AttemptOutcome::kSucceeded ? 200 : 500;
  rec.outcome = outcome;
  rec.new_status = outcome == AttemptOutcome::kSucceeded ? DeliveryStatus::kSucceeded
                   : outcome == AttemptOutcome::kFailed  ? DeliveryStatus::kFailed
                                                         : DeliveryStatus::kPending;
  return rec;
}

// count_by_webhook_status as "webhook/status" -> n (what the API and /metrics show).
inline std::map<std::string, std::int64_t> shown_counts(relay::store::Store& s) {
  std::map<std::string, std::int64_t> out;
  for (const auto& [k, n] : s.count_by_webhook_status()) out[k.first + "/" + k.second] = n;
  return out;
}

}  // namespace relay::store::testing_support
