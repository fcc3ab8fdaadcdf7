// Intake: events and their deliveries in one request; idempotency across nodes; the paused
// cap.
#include <spdlog/spdlog.h>

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "PgStore.hpp"
#include "relay/common/Time.hpp"

namespace relay::store {

using common::format_rfc3339_ms;
using pg::Params;

bool PgStore::submit_events(std::vector<NewEvent> events, IntakeCallback done) {
  auto receipts = std::make_shared<std::vector<EventReceipt>>();
  auto shared_events = std::make_shared<std::vector<NewEvent>>(std::move(events));
  WriteRequest req;
  req.counts_against_limit = true;
  req.apply = [this, shared_events, receipts](pg::WriterContext& ctx) {
    receipts->clear();
    for (const auto& e : *shared_events) receipts->push_back(insert_event(ctx, e));
  };
  req.complete = [receipts, done = std::move(done)](WriteStatus st) {
    done(st, st == WriteStatus::kOk ? std::move(*receipts) : std::vector<EventReceipt>{});
  };
  return writer_->enqueue(std::move(req));
}

// The event's primary key makes intake idempotent across nodes: a second node inserting the
// same id waits for the first one's transaction and then inserts nothing (ON CONFLICT DO
// NOTHING), and answers with the stored receipt.
EventReceipt PgStore::insert_event(pg::WriterContext& ctx, const NewEvent& e) {
  auto& c = *ctx.conn;
  EventReceipt r;
  r.id = e.id;
  r.event_type = e.event_type;
  r.created_at = e.created_at;
  const auto created = format_rfc3339_ms(e.created_at);
  const auto inserted = c.exec(
      "INSERT INTO events (id, event_type, created_at, payload) VALUES ($1, $2, $3, $4) "
      "ON CONFLICT (id) DO NOTHING",
      Params().add(e.id).add(e.event_type).add(created).add(e.payload));
  if (inserted.affected() == 0) return existing_receipt(c, e.id);
  for (const auto& d : e.deliveries) {
    const bool paused = d.status == DeliveryStatus::kPaused;
    const bool delivering = d.status == DeliveryStatus::kDelivering;
    const auto status = paused       ? DeliveryStatus::kPaused
                        : delivering ? DeliveryStatus::kDelivering
                                     : DeliveryStatus::kPending;
    Params p;
    p.add(d.id).add(e.id).add(d.webhook_id).add(std::string(to_string(status)));
    if (paused || delivering) {
      p.null();
    } else {
      p.add(created);
    }
    p.add(created);
    // A test send is sent by this node at once: it holds the lease like a claim would.
    if (delivering) {
      p.add(options_.node_id).add(format_rfc3339_ms(e.created_at + options_.lease));
    } else {
      p.null().null();
    }
    c.exec(
        "INSERT INTO deliveries (id, event_id, webhook_id, status, attempt_count, "
        "next_attempt_at, created_at, updated_at, lease_owner, lease_until) "
        "VALUES ($1, $2, $3, $4, 0, $5, $6, $6, $7, $8)",
        p);
    r.deliveries.emplace_back(d.id, d.webhook_id);
    if (paused) {
      enforce_paused_cap(ctx, d.webhook_id, d.max_queued, created, true);
    } else if (!delivering) {
      ctx.notify = true;
    }
  }
  return r;
}

EventReceipt PgStore::existing_receipt(Connection& c, const std::string& id) {
  EventReceipt r;
  r.id = id;
  r.duplicate = true;
  const auto ev =
      c.exec("SELECT event_type, created_at FROM events WHERE id = $1", Params().add(id));
  if (ev.rows() > 0) {
    r.event_type = ev.text(0, 0);
    r.created_at = common::parse_rfc3339(ev.text(0, 1)).value_or(common::TimePoint{});
  }
  const auto ds = c.exec("SELECT id, webhook_id FROM deliveries WHERE event_id = $1 ORDER BY seq",
                         Params().add(id));
  for (int i = 0; i < ds.rows(); ++i) r.deliveries.emplace_back(ds.text(i, 0), ds.text(i, 1));
  return r;
}

// Paused deliveries beyond max_queued: the oldest become dropped (their ids logged). Counted
// (an index range of at most max_queued + 1 entries) at the first paused event of a webhook in
// a group commit, then kept up to date in the transaction (WriterContext::paused_counts): a
// count per event cost ~750 us of server CPU per event with a large paused backlog. Nodes that
// take in paused events for the same webhook at the same moment may each keep their own
// group's events beyond the cap until their next group counts again.
void PgStore::enforce_paused_cap(pg::WriterContext& ctx, const std::string& webhook_id,
                                 std::size_t max_queued, const std::string& now, bool one_added) {
  auto& c = *ctx.conn;
  // At intake the cap held before this event: counting stops one past it, which bounds the
  // cost. After a pause, everything is counted.
  const auto limit = one_added ? static_cast<std::int64_t>(max_queued) + 1
                               : std::numeric_limits<std::int64_t>::max();
  const auto count = [&] {
    return c
        .exec(
            "SELECT count(*) FROM (SELECT 1 FROM deliveries WHERE webhook_id = $1 "
            "AND status = 'paused' LIMIT $2) p",
            Params().add(webhook_id).add(limit))
        .int64(0, 0);
  };
  std::int64_t n = 0;
  if (!one_added) {
    ctx.paused_counts.erase(webhook_id);
    n = count();
  } else if (const auto known = ctx.paused_counts.find(webhook_id);
             known != ctx.paused_counts.end()) {
    n = known->second + 1;
  } else {
    n = count();
  }
  if (one_added) ctx.paused_counts[webhook_id] = n;
  if (n <= static_cast<std::int64_t>(max_queued)) return;
  const auto dropped = c.exec(
      "UPDATE deliveries SET status = 'dropped', updated_at = $3, "
      "last_error = 'dropped: more than max_queued deliveries were paused' "
      "WHERE seq IN (SELECT seq FROM deliveries WHERE webhook_id = $1 AND status = 'paused' "
      "ORDER BY next_attempt_at NULLS FIRST, seq LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id",
      Params().add(webhook_id).add(n - static_cast<std::int64_t>(max_queued)).add(now));
  if (one_added) ctx.paused_counts[webhook_id] = n - dropped.rows();
  std::string ids;
  for (int i = 0; i < dropped.rows() && i < 100; ++i) ids += (i ? " " : "") + dropped.text(i, 0);
  spdlog::warn("webhook={}: dropped {} oldest paused deliveries (more than max_queued): {}",
               webhook_id, dropped.rows(), ids);
}

}  // namespace relay::store
