// A webhook disabled, enabled, removed or recovered (bulk status changes in chunks), its
// health row, the API-managed webhook rows, and retention.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

#include "PgStore.hpp"
#include "relay/common/Base64.hpp"
#include "relay/common/Time.hpp"

namespace relay::store {

using common::format_rfc3339_ms;
using common::TimePoint;
using pg::Params;

void PgStore::set_webhook_paused(std::string webhook_id, bool paused, std::size_t max_queued,
                                 WriteCallback done, std::function<void()> resumed_some) {
  set_paused_chunk(std::move(webhook_id), paused, max_queued, format_rfc3339_ms(common::now_ms()),
                   std::nullopt, std::move(done), std::move(resumed_some));
}

// As on SQLite (sqlite/WebhookWrites.cpp): one chunk per write request so that intake and
// claims interleave, all chunks with the same `now`, a later call supersedes the rest of an
// earlier one once its first chunk committed.
void PgStore::set_paused_chunk(std::string webhook_id, bool paused, std::size_t max_queued,
                               std::string now, std::optional<std::uint64_t> generation,
                               WriteCallback done, std::function<void()> resumed_some) {
  auto more = std::make_shared<bool>(false);
  auto resumed = std::make_shared<bool>(false);
  auto gen = std::make_shared<std::uint64_t>(generation.value_or(0));
  WriteRequest req;
  req.apply = [this, webhook_id, paused, max_queued, now, generation, more, gen,
               resumed](pg::WriterContext& ctx) {
    auto& c = *ctx.conn;
    *more = false;
    *resumed = false;
    if (!generation) {
      *gen = ctx.generation(webhook_id) + 1;
      ctx.pending_generations[webhook_id] = *gen;
    } else if (ctx.generation(webhook_id) != *generation) {
      return;  // superseded by a later call that committed
    }
    const auto n = static_cast<std::int64_t>(chunk());
    if (paused) {
      const auto r = c.exec(
          "UPDATE deliveries SET status = 'paused', next_attempt_at = NULL, updated_at = $2 "
          "WHERE seq IN (SELECT seq FROM deliveries WHERE webhook_id = $1 AND "
          "status = 'pending' LIMIT $3 FOR UPDATE SKIP LOCKED)",
          Params().add(webhook_id).add(now).add(n));
      *more = r.affected() == n;
      if (!*more) enforce_paused_cap(ctx, webhook_id, max_queued, now, false);
    } else {
      const auto r = c.exec(
          "UPDATE deliveries SET status = 'pending', next_attempt_at = $2, updated_at = $2 "
          "WHERE seq IN (SELECT seq FROM deliveries WHERE webhook_id = $1 AND "
          "status = 'paused' ORDER BY next_attempt_at NULLS FIRST, seq LIMIT $3 FOR UPDATE)",
          Params().add(webhook_id).add(now).add(n));
      *more = r.affected() == n;
      *resumed = r.affected() > 0;
      if (*resumed) ctx.notify = true;
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

void PgStore::cancel_webhooks_except(std::vector<std::string> known_ids,
                                     std::function<void(WriteStatus, std::size_t)> done) {
  auto cancelled = std::make_shared<std::size_t>(0);
  WriteRequest req;
  req.apply = [known = std::move(known_ids), cancelled](pg::WriterContext& ctx) {
    // The known ids as one array parameter: {"a","b"} with each id quoted.
    std::string array = "{";
    for (const auto& id : known) {
      if (array.size() > 1) array += ',';
      array += '"';
      for (const char ch : id) {
        if (ch == '"' || ch == '\\') array += '\\';
        array += ch;
      }
      array += '"';
    }
    array += '}';
    const auto r = ctx.conn->exec(
        "UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, updated_at = $2, "
        "lease_owner = NULL, lease_until = NULL "
        "WHERE status IN ('pending', 'paused', 'delivering') AND NOT (webhook_id = ANY "
        "($1::text[]))",
        Params().add(array).add(format_rfc3339_ms(common::now_ms())));
    *cancelled = static_cast<std::size_t>(r.affected());
  };
  req.complete = [cancelled, done = std::move(done)](WriteStatus st) { done(st, *cancelled); };
  writer_->enqueue(std::move(req));
}

void PgStore::set_webhook_disabled(std::string webhook_id, std::optional<std::string> reason,
                                   TimePoint at, std::function<void(WriteStatus)> done) {
  WriteRequest req;
  req.apply = [webhook_id = std::move(webhook_id), reason = std::move(reason),
               at = format_rfc3339_ms(at)](pg::WriterContext& ctx) {
    if (reason) {
      ctx.conn->exec(
          "INSERT INTO webhook_state (webhook_id, disabled_reason, disabled_at) "
          "VALUES ($1, $2, $3) ON CONFLICT (webhook_id) DO UPDATE SET "
          "disabled_reason = coalesce(webhook_state.disabled_reason, $2), "
          "disabled_at = coalesce(webhook_state.disabled_at, $3)",
          Params().add(webhook_id).add(*reason).add(at));
    } else {
      ctx.conn->exec(
          "INSERT INTO webhook_state (webhook_id) VALUES ($1) "
          "ON CONFLICT (webhook_id) DO UPDATE SET disabled_reason = NULL, "
          "disabled_at = NULL, first_failure_at = NULL, consecutive_failures = 0",
          Params().add(webhook_id));
    }
  };
  req.complete = std::move(done);
  writer_->enqueue(std::move(req));
}

void PgStore::recover_failed(std::string webhook_id, TimePoint since, TimePoint until,
                             TimePoint now, std::function<void(WriteStatus, std::size_t)> done,
                             std::function<void()> recovered_some) {
  recover_chunk(std::move(webhook_id), format_rfc3339_ms(since), format_rfc3339_ms(until),
                format_rfc3339_ms(now), 0, std::move(done), std::move(recovered_some));
}

void PgStore::recover_chunk(std::string webhook_id, std::string since, std::string until,
                            std::string now, std::size_t total,
                            std::function<void(WriteStatus, std::size_t)> done,
                            std::function<void()> recovered_some) {
  auto changed = std::make_shared<std::int64_t>(0);
  const auto n = static_cast<std::int64_t>(chunk());
  WriteRequest req;
  req.apply = [webhook_id, since, until, now, changed, n](pg::WriterContext& ctx) {
    const auto r = ctx.conn->exec(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = $4, updated_at = $4 "
        "WHERE seq IN (SELECT seq FROM deliveries WHERE webhook_id = $1 AND "
        "status = 'failed' AND created_at >= $2 AND created_at < $3 ORDER BY seq LIMIT $5 "
        "FOR UPDATE)",
        Params().add(webhook_id).add(since).add(until).add(now).add(n));
    *changed = r.affected();
    if (*changed > 0) ctx.notify = true;
  };
  req.complete = [this, webhook_id, since, until, now, total, changed, n, done = std::move(done),
                  recovered_some = std::move(recovered_some)](WriteStatus st) mutable {
    if (st != WriteStatus::kOk) {
      done(st, total);
      return;
    }
    total += static_cast<std::size_t>(*changed);
    if (*changed > 0 && recovered_some) recovered_some();
    if (*changed == n) {
      recover_chunk(std::move(webhook_id), std::move(since), std::move(until), std::move(now),
                    total, std::move(done), std::move(recovered_some));
      return;
    }
    done(st, total);
  };
  writer_->enqueue(std::move(req));
}

void PgStore::put_api_webhook(StoredWebhook webhook, bool create,
                              std::function<void(WriteStatus, bool)> done) {
  auto exists = std::make_shared<bool>(false);
  WriteRequest req;
  req.apply = [webhook = std::move(webhook), create, exists](pg::WriterContext& ctx) {
    auto& c = *ctx.conn;
    *exists =
        c.exec("SELECT 1 FROM api_webhooks WHERE id = $1 FOR UPDATE", Params().add(webhook.id))
            .rows() > 0;
    if (create == *exists) return;  // taken (create) or gone (replace): nothing written
    c.exec(
        "INSERT INTO api_webhooks (id, sealed, created_at, updated_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (id) DO UPDATE SET sealed = excluded.sealed, updated_at = "
        "excluded.updated_at",
        Params()
            .add(webhook.id)
            .add(common::base64_encode(webhook.sealed))
            .add(webhook.created_at)
            .add(webhook.updated_at));
  };
  req.complete = [exists, done = std::move(done)](WriteStatus st) { done(st, *exists); };
  writer_->enqueue(std::move(req));
}

void PgStore::delete_api_webhook(std::string id, std::function<void(WriteStatus, bool)> done) {
  auto found = std::make_shared<bool>(false);
  WriteRequest req;
  req.apply = [id = std::move(id), found](pg::WriterContext& ctx) {
    *found =
        ctx.conn->exec("DELETE FROM api_webhooks WHERE id = $1", Params().add(id)).affected() > 0;
  };
  req.complete = [found, done = std::move(done)](WriteStatus st) { done(st, *found); };
  writer_->enqueue(std::move(req));
}

// Retention, as on SQLite: attempts, then finished deliveries, then events left without
// deliveries, at most `batch` rows in all per request. Several nodes may prune at once:
// SKIP LOCKED lets them take different rows.
void PgStore::prune_before(TimePoint cutoff, std::size_t batch,
                           std::function<void(WriteStatus, std::size_t)> done) {
  auto removed = std::make_shared<std::size_t>(0);
  WriteRequest req;
  req.apply = [cutoff, batch, removed](pg::WriterContext& ctx) {
    auto& c = *ctx.conn;
    *removed = 0;
    const auto t = format_rfc3339_ms(cutoff);
    const auto step = [&](const char* sql) {
      if (*removed >= batch) return;
      *removed += static_cast<std::size_t>(
          c.exec(sql, Params().add(t).add(static_cast<std::int64_t>(batch - *removed))).affected());
    };
    step(
        "DELETE FROM attempts WHERE id IN (SELECT id FROM attempts WHERE started_at < $1 "
        "LIMIT $2 FOR UPDATE SKIP LOCKED)");
    step(
        "DELETE FROM deliveries WHERE seq IN (SELECT seq FROM deliveries WHERE status IN "
        "('succeeded', 'failed', 'cancelled', 'dropped') AND updated_at < $1 LIMIT $2 "
        "FOR UPDATE SKIP LOCKED)");
    step(
        "DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.created_at < $1 "
        "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) "
        "ORDER BY e.created_at LIMIT $2 FOR UPDATE SKIP LOCKED)");
  };
  req.complete = [removed, done = std::move(done)](WriteStatus st) { done(st, *removed); };
  writer_->enqueue(std::move(req));
}

}  // namespace relay::store
