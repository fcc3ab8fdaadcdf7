// Retention: old rows deleted in small batches.
#include "SqliteStore.hpp"

#include <memory>
#include <string>
#include <vector>

#include "relay/common/Time.hpp"

namespace relay::store {

using common::format_rfc3339_ms;
using common::TimePoint;
using sqlite::StatementScope;

void SqliteStore::prune_before(TimePoint cutoff, std::size_t batch,
                               std::function<void(WriteStatus, std::size_t)> done) {
  auto removed = std::make_shared<std::size_t>(0);
  WriteRequest req;
  req.apply = [cutoff, batch, removed](sqlite::WriteContext& ctx) {
    auto& c = ctx.conn();
    ctx.paused_counts().clear();
    *removed = 0;
    const auto t = format_rfc3339_ms(cutoff);
    const auto step = [&](const std::string& sql) {
      if (*removed >= batch) return;
      auto& s = c.cached(sql);
      StatementScope scope(s);
      scope->bind(1, t);
      scope->bind(2, static_cast<std::int64_t>(batch - *removed));
      scope->run();
      *removed += static_cast<std::size_t>(c.changes());
    };
    step(
        "DELETE FROM attempts WHERE id IN "
        "(SELECT id FROM attempts WHERE started_at < ?1 LIMIT ?2)");
    step(
        "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries INDEXED BY "
        "deliveries_finished WHERE (status = 'succeeded' OR status = 'failed' OR "
        "status = 'cancelled' OR status = 'dropped') AND updated_at < ?1 "
        "LIMIT ?2)");
    // Events go once none of their deliveries is left. Old events that still have deliveries
    // would be walked again by every batch (tens of ms each with thousands of them), so the
    // scan resumes where the previous batch of the same run (same cutoff) stopped; what it
    // passed over is looked at again by the next run.
    if (t != ctx.state().prune_cutoff) {
      ctx.changing_state().prune_cutoff = t;
      ctx.changing_state().prune_events_from.clear();
    }
    if (*removed < batch) {
      auto& pick = c.cached(
          "SELECT e.id, e.created_at FROM events e WHERE e.created_at >= ?3 AND "
          "e.created_at < ?1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = "
          "e.id) ORDER BY e.created_at LIMIT ?2");
      auto& del = c.cached("DELETE FROM events WHERE id = ?1");
      std::vector<std::string> ids;
      std::string last;
      {
        StatementScope q(pick);
        q->bind(1, t);
        q->bind(2, static_cast<std::int64_t>(batch - *removed));
        q->bind(3, ctx.state().prune_events_from);
        while (q->step()) {
          ids.push_back(q->text(0));
          last = q->text(1);
        }
      }
      for (const auto& id : ids) {
        StatementScope d(del);
        d->bind(1, id);
        d->run();
        *removed += static_cast<std::size_t>(c.changes());
      }
      if (!last.empty()) ctx.changing_state().prune_events_from = last;
    }
    // A few pages back to the file system per batch (moving pages is what costs); freed pages
    // are reused by new rows anyway.
    if (*removed > 0) c.exec("PRAGMA incremental_vacuum(256)");
  };
  req.complete = [removed, done = std::move(done)](WriteStatus st) { done(st, *removed); };
  writer_->enqueue(std::move(req));
}

}  // namespace relay::store
