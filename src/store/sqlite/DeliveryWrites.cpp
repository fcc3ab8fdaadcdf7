// The dispatcher's writes (claims, attempt records) and the ones that make deliveries due
// again (crash recovery, redeliver).
#include "SqliteStore.hpp"

#include <future>
#include <memory>
#include <optional>
#include <string>

#include "relay/common/Time.hpp"

namespace relay::store {

using common::format_rfc3339_ms;
using common::TimePoint;
using sqlite::StatementScope;

void SqliteStore::claim_due(TimePoint now, std::vector<std::pair<std::string, int>> limits,
                            ClaimCallback done) {
  auto result = std::make_shared<ClaimResult>();
  WriteRequest req;
  // Nothing is written: a claim is a lease in memory (Leases.hpp), taken in `apply` so that
  // every later request of the group sees it, and given back in `complete` if the group did
  // not commit (the dispatcher then never learns of the claim).
  req.durable = false;
  req.read_only = true;
  req.apply = [this, now, limits = std::move(limits), result](sqlite::WriteContext& ctx) {
    auto& c = ctx.conn();
    for (const auto& d : result->claimed) leases_.remove(d.rowid, d.delivery_id);  // a re-run
    *result = ClaimResult{};
    const auto now_text = format_rfc3339_ms(now);
    // relay_leased runs on the index entry (the rowid is in it): a row in flight costs an
    // index step, not a table read.
    auto& select = c.cached(
        "SELECT d.id, d.event_id, d.webhook_id, e.event_type, d.attempt_count, e.payload, "
        "d.rowid "
        "FROM deliveries d JOIN events e ON e.id = d.event_id "
        "WHERE d.webhook_id = ?1 AND d.status = 'pending' AND d.next_attempt_at <= ?2 "
        "AND NOT relay_leased(d.rowid) "
        "ORDER BY d.next_attempt_at, d.rowid LIMIT ?3");
    for (const auto& [webhook, limit] : limits) {
      if (limit <= 0) continue;
      StatementScope s(select);
      s->bind(1, webhook);
      s->bind(2, now_text);
      s->bind(3, limit);
      while (s->step()) {
        DueDelivery d;
        d.delivery_id = s->text(0);
        d.event_id = s->text(1);
        d.webhook_id = s->text(2);
        d.event_type = s->text(3);
        d.attempt_count = static_cast<int>(s->int64(4));
        d.payload = s->text(5);
        d.rowid = s->int64(6);
        leases_.add(d.rowid, d.delivery_id);
        result->claimed.push_back(std::move(d));
      }
    }
    // The earliest due time not held by a lease (in index order; leased rows are skipped).
    auto& next = c.cached(
        "SELECT next_attempt_at FROM deliveries WHERE status = 'pending' "
        "AND NOT relay_leased(rowid) ORDER BY next_attempt_at LIMIT 1");
    StatementScope n(next);
    if (n->step() && !n->is_null(0)) result->next_due = common::parse_rfc3339(n->text(0));
  };
  req.complete = [this, result, done = std::move(done)](WriteStatus st) {
    if (st != WriteStatus::kOk) {
      for (const auto& d : result->claimed) leases_.remove(d.rowid, d.delivery_id);
    }
    done(st, st == WriteStatus::kOk ? std::move(*result) : ClaimResult{});
  };
  writer_->enqueue(std::move(req));
}

void SqliteStore::record_attempt(AttemptRecord record, WriteCallback done) {
  record_attempt_shared(std::make_shared<const AttemptRecord>(std::move(record)), std::move(done));
}

void SqliteStore::record_attempt_shared(std::shared_ptr<const AttemptRecord> shared,
                                        WriteCallback done) {
  WriteRequest req;
  // Without an fsync of its own (synchronous=NORMAL): a power cut may lose the last records,
  // and their deliveries are then simply due again (at-least-once). The next intake commit's
  // fsync covers them.
  req.durable = false;
  req.may_wait = true;
  // The leased row's rowid, once `apply` knows it (the claim's, or found through the id).
  auto leased_rowid = std::make_shared<std::int64_t>(0);
  const auto delivery_id = shared->delivery_id;
  req.apply = [this, shared = std::move(shared), leased_rowid](sqlite::WriteContext& ctx) {
    const AttemptRecord& record = *shared;
    auto& c = ctx.conn();
    if (record.new_status == DeliveryStatus::kPaused) ctx.paused_counts().clear();
    const auto now_text = format_rfc3339_ms(common::now_ms());
    // attempts.webhook (schema v7): the claim's, or, from a caller without it (a test send), the
    // delivery row's (coalesce evaluates the lookup only then).
    auto& insert = c.cached(
        "INSERT INTO attempts (delivery_id, attempt_number, started_at, duration_ms, url, "
        "request_headers, response_status, response_headers, response_body, error, outcome, "
        "webhook) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
        "coalesce(?12, (SELECT webhook_id FROM deliveries WHERE id = ?1)))");
    {
      StatementScope s(insert);
      s->bind(1, record.delivery_id);
      s->bind(2, record.attempt_number);
      s->bind(3, format_rfc3339_ms(record.started_at));
      s->bind(4, record.duration_ms);
      // The record outlives the statement's run: SQLite reads the texts where they are.
      s->bind_static(5, record.url);
      s->bind_static(6, record.request_headers);
      s->bind(7, record.response_status);
      s->bind_static(8, record.response_headers);
      s->bind_static(9, record.response_body);
      s->bind(10, record.error.empty() ? std::optional<std::string>()
                                       : std::optional<std::string>(record.error));
      s->bind(11, to_string(record.outcome));
      s->bind(12, record.webhook_id.empty() ? std::optional<std::string>()
                                            : std::optional<std::string>(record.webhook_id));
      s->run();
    }
    // With a status, the status is the story (an error then only says the body broke off).
    std::optional<std::string> last_error;
    if (record.response_status) {
      if (*record.response_status < 200 || *record.response_status > 299) {
        last_error = "HTTP " + std::to_string(*record.response_status);
      }
    } else if (!record.error.empty()) {
      last_error = record.error;
    }
    // A claimed delivery is pending with our lease on it (by rowid, the id must still match:
    // rowids of deleted rows can be reused); without a lease (a test send) it is `delivering`
    // in the row itself. Anything else was changed meanwhile (cancelled) and stays as it is.
    std::int64_t rowid = record.delivery_rowid;
    if (rowid <= 0) {
      // A caller without the claim's rowid: one lookup through the id index.
      StatementScope r(c.cached("SELECT rowid FROM deliveries WHERE id = ?1"));
      r->bind(1, record.delivery_id);
      if (r->step()) rowid = r->int64(0);
    }
    const bool leased = rowid > 0 && leases_.held_by_writer(rowid, record.delivery_id);
    *leased_rowid = leased ? rowid : 0;
    auto& update =
        leased ? c.cached(
                     "UPDATE deliveries SET status = ?2, attempt_count = ?3, next_attempt_at = ?4, "
                     "updated_at = ?5, last_status_code = ?6, last_error = ?7 "
                     "WHERE rowid = ?8 AND id = ?1 AND status = 'pending'")
               : c.cached(
                     "UPDATE deliveries SET status = ?2, attempt_count = ?3, next_attempt_at = ?4, "
                     "updated_at = ?5, last_status_code = ?6, last_error = ?7 "
                     "WHERE id = ?1 AND status = 'delivering'");
    StatementScope u(update);
    u->bind(1, record.delivery_id);
    if (leased) u->bind(8, rowid);
    u->bind(2, to_string(record.new_status));
    u->bind(3, record.attempt_number);
    // next_attempt_at belongs to pending deliveries only; a pending one without a time is
    // due at once rather than never.
    std::optional<std::string> next;
    if (record.new_status == DeliveryStatus::kPending) {
      next = record.next_attempt_at ? format_rfc3339_ms(*record.next_attempt_at) : now_text;
    }
    u->bind(4, next);
    u->bind(5, now_text);
    u->bind(6, record.response_status);
    u->bind(7, last_error);
    u->run();
    if (!record.webhook_id.empty()) {
      // The failure streak, in the attempt's commit: folded with the group's other records of
      // this webhook into one upsert just before the COMMIT (WebhookHealth.hpp). Last, so that
      // a record that threw above leaves no trace in the fold.
      auto& fold = ctx.health_folds()[record.webhook_id];
      if (record.outcome == AttemptOutcome::kSucceeded) {
        fold.success(format_rfc3339_ms(record.started_at));
      } else {
        fold.failure(format_rfc3339_ms(record.started_at));
      }
    }
  };
  // The lease ends with the commit that recorded the attempt (not before: until then the row
  // still looks due). On a failure it is kept: the dispatcher writes the record again.
  req.complete = [this, leased_rowid, delivery_id, done = std::move(done)](WriteStatus st) {
    if (st == WriteStatus::kOk && *leased_rowid > 0) leases_.remove(*leased_rowid, delivery_id);
    if (done) done(st);
  };
  writer_->enqueue(std::move(req));
}

void SqliteStore::release_claimed(std::vector<DueDelivery> deliveries, WriteCallback done) {
  WriteRequest req;
  req.durable = false;
  // Their rows are pending with the due time they had: dropping the leases is all there is.
  // On the writer thread, in order with the claims and records around it.
  req.apply = [this, deliveries = std::move(deliveries)](sqlite::WriteContext&) {
    for (const auto& d : deliveries) leases_.remove(d.rowid, d.delivery_id);
  };
  req.complete = std::move(done);
  writer_->enqueue(std::move(req));
}

std::size_t SqliteStore::recover_interrupted(TimePoint now) {
  std::promise<std::size_t> count;
  auto future = count.get_future();
  auto changed = std::make_shared<std::size_t>(0);
  WriteRequest req;
  req.apply = [now, changed](sqlite::WriteContext& ctx) {
    auto& c = ctx.conn();
    auto& s = c.cached(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = ?1, updated_at = ?1 "
        "WHERE status = 'delivering'");
    StatementScope scope(s);
    scope->bind(1, format_rfc3339_ms(now));
    scope->run();
    *changed = static_cast<std::size_t>(c.changes());
  };
  auto status = std::make_shared<WriteStatus>(WriteStatus::kOk);
  req.complete = [&count, changed, status](WriteStatus st) {
    *status = st;
    count.set_value(st == WriteStatus::kOk ? *changed : 0);
  };
  writer_->enqueue(std::move(req));
  const auto n = future.get();
  if (*status != WriteStatus::kOk && *status != WriteStatus::kShuttingDown) {
    throw StoreError("cannot recover interrupted deliveries in " + options_.path +
                     ": the database cannot be written");
  }
  return n;
}

void SqliteStore::redeliver(std::string delivery_id, TimePoint now,
                            std::function<void(WriteStatus, bool)> done) {
  auto found = std::make_shared<bool>(false);
  WriteRequest req;
  req.apply = [delivery_id = std::move(delivery_id), now, found](sqlite::WriteContext& ctx) {
    auto& c = ctx.conn();
    ctx.paused_counts().clear();
    const auto t = format_rfc3339_ms(now);
    auto& update = c.cached(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = ?2, updated_at = ?2 "
        "WHERE id = ?1 AND status != 'delivering' AND NOT relay_leased(rowid)");
    StatementScope u(update);
    u->bind(1, delivery_id);
    u->bind(2, t);
    u->run();
    if (c.changes() > 0) {
      *found = true;
      return;
    }
    auto& exists = c.cached("SELECT 1 FROM deliveries WHERE id = ?1");
    StatementScope e(exists);
    e->bind(1, delivery_id);
    *found = e->step();  // delivering (leased) right now: it is being sent
  };
  req.complete = [found, done = std::move(done)](WriteStatus st) { done(st, *found); };
  writer_->enqueue(std::move(req));
}

}  // namespace relay::store
