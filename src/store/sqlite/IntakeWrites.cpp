// Intake: events and their deliveries in one request; the paused cap.
#include "SqliteStore.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "relay/common/Time.hpp"

namespace relay::store {

using common::format_rfc3339_ms;
using common::TimePoint;
using sqlite::StatementScope;

namespace {

TimePoint parse_time_or_epoch(const std::string& text) {
  return common::parse_rfc3339(text).value_or(TimePoint{});
}

/// format_rfc3339_ms(t), remembered: the events of one request (a batch) share one time, and
/// only the writer thread inserts events.
const std::string& created_text(TimePoint t) {
  thread_local std::optional<TimePoint> last;
  thread_local std::string text;
  if (last != t) {
    last = t;
    text = format_rfc3339_ms(t);
  }
  return text;
}

}  // namespace

bool SqliteStore::submit_events(std::vector<NewEvent> events, IntakeCallback done) {
  auto receipts = std::make_shared<std::vector<EventReceipt>>();
  auto shared_events = std::make_shared<std::vector<NewEvent>>(std::move(events));
  WriteRequest req;
  req.counts_against_limit = true;
  req.apply = [this, shared_events, receipts](sqlite::WriteContext& ctx) {
    receipts->clear();
    for (const auto& e : *shared_events) receipts->push_back(insert_event(ctx, e));
  };
  req.complete = [receipts, done = std::move(done)](WriteStatus st) {
    done(st, st == WriteStatus::kOk ? std::move(*receipts) : std::vector<EventReceipt>{});
  };
  return writer_->enqueue(std::move(req));
}

EventReceipt SqliteStore::insert_event(sqlite::WriteContext& ctx, const NewEvent& e) {
  auto& c = ctx.conn();
  EventReceipt r;
  r.id = e.id;
  r.event_type = e.event_type;
  r.created_at = e.created_at;
  const std::string& created = created_text(e.created_at);
  auto& insert = c.cached(
      "INSERT INTO events (id, event_type, created_at, payload) VALUES (?1, ?2, ?3, ?4) "
      "ON CONFLICT (id) DO NOTHING");
  {
    StatementScope s(insert);
    s->bind(1, e.id);
    s->bind(2, e.event_type);
    s->bind(3, created);
    // The largest value of all, and it lives until the statement is reset: not copied.
    s->bind_static(4, e.payload);
    s->run();
  }
  if (c.changes() == 0) return existing_receipt(c, e.id);
  auto& add = c.cached(
      "INSERT INTO deliveries (id, event_id, webhook_id, status, attempt_count, "
      "next_attempt_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?6)");
  for (const auto& d : e.deliveries) {
    const bool paused = d.status == DeliveryStatus::kPaused;
    // kDelivering: the caller sends it itself right away (a test send) and records the attempt;
    // the dispatcher never claims it. Anything else is a pending delivery, due now.
    const bool delivering = d.status == DeliveryStatus::kDelivering;
    {
      StatementScope s(add);
      s->bind(1, d.id);
      s->bind(2, e.id);
      s->bind(3, d.webhook_id);
      s->bind(4, to_string(paused       ? DeliveryStatus::kPaused
                           : delivering ? DeliveryStatus::kDelivering
                                        : DeliveryStatus::kPending));
      if (paused || delivering) {
        s->bind_null(5);
      } else {
        s->bind(5, created);
      }
      s->bind(6, created);
      s->run();
    }
    r.deliveries.emplace_back(d.id, d.webhook_id);
    if (paused) add_paused(ctx, d.webhook_id, d.max_queued, created);
  }
  return r;
}

EventReceipt SqliteStore::existing_receipt(Connection& c, const std::string& id) {
  EventReceipt r;
  r.id = id;
  r.duplicate = true;
  auto& ev = c.cached("SELECT event_type, created_at FROM events WHERE id = ?1");
  {
    StatementScope s(ev);
    s->bind(1, id);
    if (s->step()) {
      r.event_type = s->text(0);
      r.created_at = parse_time_or_epoch(s->text(1));
    }
  }
  auto& ds = c.cached("SELECT id, webhook_id FROM deliveries WHERE event_id = ?1 ORDER BY rowid");
  StatementScope s(ds);
  s->bind(1, id);
  while (s->step()) r.deliveries.emplace_back(s->text(0), s->text(1));
  return r;
}

// Keeps a per-webhook count of paused deliveries so the cap costs nothing per event; any
// other kind of write clears it (it is rebuilt with one indexed count).
void SqliteStore::add_paused(sqlite::WriteContext& ctx, const std::string& webhook_id,
                             std::size_t max_queued, const std::string& now) {
  auto& c = ctx.conn();
  auto& paused_counts = ctx.paused_counts();
  auto it = paused_counts.find(webhook_id);
  if (it == paused_counts.end()) {
    it = paused_counts.emplace(webhook_id, count_paused(c, webhook_id)).first;
  } else {
    ++it->second;
  }
  if (it->second > static_cast<std::int64_t>(max_queued)) {
    it->second -= drop_oldest_paused(ctx, webhook_id,
                                     it->second - static_cast<std::int64_t>(max_queued), now);
  }
}

}  // namespace relay::store
