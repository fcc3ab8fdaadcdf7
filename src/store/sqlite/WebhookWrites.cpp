// A webhook disabled, enabled or removed: bulk status changes, in chunks.
#include "SqliteStore.hpp"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

#include "relay/common/Time.hpp"

namespace relay::store {

using common::format_rfc3339_ms;
using common::TimePoint;
using sqlite::StatementScope;

namespace {
// Rows per pause or resume chunk, whatever bulk_chunk says. A chunk holds the writer: 5,000
// resumed rows (each moves its entries in three indexes) took ~20 ms, longer than the ~7 ms of
// work the dispatcher then kept claimed ahead at 35k deliveries/s, so a backlog being resumed
// drained in stops and starts (bench phase 3: +2-7% deliveries/s at 500, docs/performance.md
// "Issue 20, round 8"). The first chunk of a resume is this small for a reason of its own:
// the dispatcher starts once it commits (bench phase 8: two backlogs enabled by one reload).
constexpr std::int64_t kStatusChunk = 500;
}  // namespace

void SqliteStore::set_webhook_paused(std::string webhook_id, bool paused, std::size_t max_queued,
                                     WriteCallback done, std::function<void()> resumed_some) {
  set_paused_chunk(std::move(webhook_id), paused, max_queued, format_rfc3339_ms(common::now_ms()),
                   std::nullopt, std::move(done), std::move(resumed_some));
}

// One chunk of a pause or resume: a million paused deliveries resumed by one UPDATE held the
// writer for seconds, and intake behind it. Each chunk is its own write request, so other
// requests interleave; the next chunk is queued after this one commits. All chunks use the
// same `now`, so resumed deliveries keep their order (next_attempt_at, then rowid). A newer
// call for the same webhook (a reload meanwhile) makes the rest of an older one moot.
void SqliteStore::set_paused_chunk(std::string webhook_id, bool paused, std::size_t max_queued,
                                   std::string now, std::optional<std::uint64_t> generation,
                                   WriteCallback done, std::function<void()> resumed_some) {
  auto more = std::make_shared<bool>(false);
  auto resumed = std::make_shared<bool>(false);
  auto gen = std::make_shared<std::uint64_t>(generation.value_or(0));
  WriteRequest req;
  // Without an fsync of its own: the rows' status follows from durable facts (the config,
  // webhook_state's disables, api_webhooks), and every start re-applies it (Reconcile.cpp),
  // so a power cut that loses the last chunks loses nothing that is not done again.
  req.durable = false;
  req.apply = [this, webhook_id, paused, max_queued, now, generation, more, gen,
               resumed](sqlite::WriteContext& ctx) {
    auto& c = ctx.conn();
    ctx.paused_counts().clear();
    *more = false;
    *resumed = false;
    if (!generation) {
      *gen = ++ctx.changing_state().pause_generation[webhook_id];
    } else if (const auto& g = ctx.state().pause_generation;
               !g.contains(webhook_id) || g.at(webhook_id) != *generation) {
      return;  // superseded by a later call that committed
    }
    const auto chunk = static_cast<std::int64_t>(
        std::clamp<std::size_t>(options_.bulk_chunk, 1, static_cast<std::size_t>(kStatusChunk)));
    if (paused) {
      // Not the ones in flight (leased, Leases.hpp): their attempt's record decides them.
      auto& s = c.cached(
          "UPDATE deliveries SET status = 'paused', next_attempt_at = NULL, updated_at = ?2 "
          "WHERE rowid IN (SELECT rowid FROM deliveries WHERE webhook_id = ?1 AND "
          "status = 'pending' AND NOT relay_leased(rowid) LIMIT ?3)");
      StatementScope u(s);
      u->bind(1, webhook_id);
      u->bind(2, now);
      u->bind(3, chunk);
      u->run();
      *more = c.changes() == chunk;
      if (!*more) enforce_paused_cap(ctx, webhook_id, max_queued, now);
    } else {
      auto& s = c.cached(
          "UPDATE deliveries SET status = 'pending', next_attempt_at = ?2, updated_at = ?2 "
          "WHERE rowid IN (SELECT rowid FROM deliveries WHERE webhook_id = ?1 AND "
          "status = 'paused' ORDER BY id LIMIT ?3)");
      StatementScope u(s);
      u->bind(1, webhook_id);
      u->bind(2, now);
      u->bind(3, chunk);
      u->run();
      *more = c.changes() == chunk;
      *resumed = c.changes() > 0;
    }
  };
  req.complete = [this, webhook_id, paused, max_queued, now, more, gen, resumed,
                  done = std::move(done),
                  resumed_some = std::move(resumed_some)](WriteStatus st) mutable {
    if (st == WriteStatus::kOk && *resumed && resumed_some) resumed_some();
    if (st == WriteStatus::kOk && *more) {
      set_paused_chunk(std::move(webhook_id), paused, max_queued, std::move(now), *gen,
                       std::move(done), std::move(resumed_some));
      return;
    }
    if (done) done(st);
  };
  writer_->enqueue(std::move(req));
}

void SqliteStore::cancel_webhooks_except(std::vector<std::string> known_ids,
                                         std::function<void(WriteStatus, std::size_t)> done) {
  auto cancelled = std::make_shared<std::size_t>(0);
  WriteRequest req;
  req.apply = [known = std::unordered_set<std::string>(known_ids.begin(), known_ids.end()),
               cancelled](sqlite::WriteContext& ctx) {
    auto& c = ctx.conn();
    ctx.paused_counts().clear();
    *cancelled = 0;
    // Walk the distinct webhook ids through the index (one seek each) instead of scanning
    // every unfinished delivery.
    auto& next_id = c.cached("SELECT MIN(webhook_id) FROM deliveries WHERE webhook_id > ?1");
    auto& cancel = c.cached(
        "UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, updated_at = ?2 "
        "WHERE webhook_id = ?1 AND status IN ('pending', 'paused', 'delivering')");
    const auto now = format_rfc3339_ms(common::now_ms());
    std::string cursor;
    while (true) {
      std::optional<std::string> id;
      {
        StatementScope s(next_id);
        s->bind(1, cursor);
        if (s->step() && !s->is_null(0)) id = s->text(0);
      }
      if (!id) break;
      cursor = *id;
      if (known.count(*id) != 0) continue;
      StatementScope u(cancel);
      u->bind(1, *id);
      u->bind(2, now);
      u->run();
      *cancelled += static_cast<std::size_t>(c.changes());
    }
  };
  req.complete = [cancelled, done = std::move(done)](WriteStatus st) { done(st, *cancelled); };
  writer_->enqueue(std::move(req));
}

void SqliteStore::set_webhook_disabled(std::string webhook_id, std::optional<std::string> reason,
                                       TimePoint at, std::function<void(WriteStatus)> done) {
  WriteRequest req;
  req.apply = [webhook_id = std::move(webhook_id), reason = std::move(reason),
               at = format_rfc3339_ms(at)](sqlite::WriteContext& ctx) {
    auto& c = ctx.conn();
    auto& s = reason ? c.cached(
                           "INSERT INTO webhook_state (webhook_id, disabled_reason, disabled_at) "
                           "VALUES (?1, ?2, ?3) ON CONFLICT (webhook_id) DO UPDATE SET "
                           "disabled_reason = coalesce(disabled_reason, ?2), "
                           "disabled_at = coalesce(disabled_at, ?3)")
                     : c.cached(
                           "INSERT INTO webhook_state (webhook_id) VALUES (?1) "
                           "ON CONFLICT (webhook_id) DO UPDATE SET disabled_reason = NULL, "
                           "disabled_at = NULL, first_failure_at = NULL, consecutive_failures = 0");
    StatementScope u(s);
    u->bind(1, webhook_id);
    if (reason) {
      u->bind(2, *reason);
      u->bind(3, at);
    }
    u->run();
  };
  req.complete = std::move(done);
  writer_->enqueue(std::move(req));
}

void SqliteStore::recover_failed(std::string webhook_id, TimePoint since, TimePoint until,
                                 TimePoint now, std::function<void(WriteStatus, std::size_t)> done,
                                 std::function<void()> recovered_some) {
  recover_chunk(std::move(webhook_id), format_rfc3339_ms(since), format_rfc3339_ms(until),
                format_rfc3339_ms(now), 0, std::move(done), std::move(recovered_some));
}

// Like set_paused_chunk: one short write per chunk so intake never waits behind a recovery of
// a large backlog. Recovered rows leave `failed`, so the next chunk's query skips them, and all
// chunks share `now`, so the dispatcher takes them in rowid (= insertion) order.
// At most 1,000 rows per chunk, whatever bulk_chunk says: a recovered row rewrites four index
// entries, and 5,000 held the writer (and intake's acknowledgements with it) for about 20 ms
// of CPU per chunk, 60 ms under load; bench/recover, docs/performance.md "Bulk recovery".
// Chunks are taken in id (= creation time) order through deliveries_webhook_status_newest
// (schema v6), which stops after the chunk; in rowid order every chunk sorted all the
// remaining failed rows first.
void SqliteStore::recover_chunk(std::string webhook_id, std::string since, std::string until,
                                std::string now, std::size_t total,
                                std::function<void(WriteStatus, std::size_t)> done,
                                std::function<void()> recovered_some) {
  auto changed = std::make_shared<std::int64_t>(0);
  const auto chunk =
      static_cast<std::int64_t>(std::clamp<std::size_t>(options_.bulk_chunk, 1, 1000));
  WriteRequest req;
  req.apply = [webhook_id, since, until, now, changed, chunk](sqlite::WriteContext& ctx) {
    auto& c = ctx.conn();
    ctx.paused_counts().clear();
    auto& s = c.cached(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = ?4, updated_at = ?4 "
        "WHERE rowid IN (SELECT rowid FROM deliveries WHERE webhook_id = ?1 AND "
        "status = 'failed' AND created_at >= ?2 AND created_at < ?3 ORDER BY id LIMIT ?5)");
    StatementScope u(s);
    u->bind(1, webhook_id);
    u->bind(2, since);
    u->bind(3, until);
    u->bind(4, now);
    u->bind(5, chunk);
    u->run();
    *changed = c.changes();
  };
  req.complete = [this, webhook_id, since, until, now, total, changed, chunk,
                  done = std::move(done),
                  recovered_some = std::move(recovered_some)](WriteStatus st) mutable {
    if (st != WriteStatus::kOk) {
      done(st, total);
      return;
    }
    total += static_cast<std::size_t>(*changed);
    if (*changed > 0 && recovered_some) recovered_some();
    if (*changed == chunk) {
      recover_chunk(std::move(webhook_id), std::move(since), std::move(until), std::move(now),
                    total, std::move(done), std::move(recovered_some));
      return;
    }
    done(st, total);
  };
  writer_->enqueue(std::move(req));
}

std::int64_t SqliteStore::count_paused(Connection& c, const std::string& webhook_id) {
  auto& s = c.cached("SELECT count(*) FROM deliveries WHERE webhook_id = ?1 AND status = 'paused'");
  StatementScope q(s);
  q->bind(1, webhook_id);
  return q->step() ? q->int64(0) : 0;
}

void SqliteStore::enforce_paused_cap(sqlite::WriteContext& ctx, const std::string& webhook_id,
                                     std::size_t max_queued, const std::string& now) {
  auto& c = ctx.conn();
  const auto n = count_paused(c, webhook_id);
  if (n > static_cast<std::int64_t>(max_queued)) {
    drop_oldest_paused(ctx, webhook_id, n - static_cast<std::int64_t>(max_queued), now);
  }
}

std::int64_t SqliteStore::drop_oldest_paused(sqlite::WriteContext& ctx,
                                             const std::string& webhook_id, std::int64_t n,
                                             const std::string& now) {
  auto& c = ctx.conn();
  auto& s = c.cached(
      "UPDATE deliveries SET status = 'dropped', updated_at = ?3, "
      "last_error = 'dropped: more than max_queued deliveries were paused' "
      "WHERE id IN (SELECT id FROM deliveries WHERE webhook_id = ?1 AND status = 'paused' "
      "ORDER BY id LIMIT ?2) RETURNING id");
  StatementScope q(s);
  q->bind(1, webhook_id);
  q->bind(2, n);
  q->bind(3, now);
  // The ids are logged: an operator can look up what was lost, not only how much.
  std::vector<std::string> ids;
  std::int64_t dropped = 0;
  while (q->step()) {
    if (ids.size() < sqlite::kLoggedDropIds) ids.push_back(q->text(0));
    ++dropped;
  }
  ctx.note_dropped(webhook_id, dropped, std::move(ids));  // logged once the group has committed
  return dropped;
}

}  // namespace relay::store
