#include "Schema.hpp"

namespace relay::store {

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> steps = {
      // v1: the delivery log of SPEC §6.
      {R"sql(
CREATE TABLE events (
  id          TEXT PRIMARY KEY,
  event_type  TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  payload     TEXT NOT NULL
);
CREATE INDEX events_created_at ON events (created_at);

CREATE TABLE deliveries (
  id                TEXT PRIMARY KEY,
  event_id          TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
  webhook_id        TEXT NOT NULL,
  status            TEXT NOT NULL CHECK (status IN ('pending', 'delivering', 'paused',
                      'succeeded', 'failed', 'cancelled', 'dropped')),
  attempt_count     INTEGER NOT NULL DEFAULT 0,
  next_attempt_at   TEXT,
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL,
  last_status_code  INTEGER,
  last_error        TEXT
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_webhook_due ON deliveries (webhook_id, status, next_attempt_at);
CREATE INDEX deliveries_event ON deliveries (event_id);
CREATE INDEX deliveries_finished ON deliveries (updated_at)
  WHERE status IN ('succeeded', 'failed', 'cancelled', 'dropped');

CREATE TABLE attempts (
  id                INTEGER PRIMARY KEY,
  delivery_id       TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
  attempt_number    INTEGER NOT NULL,
  started_at        TEXT NOT NULL,
  duration_ms       INTEGER NOT NULL,
  url               TEXT NOT NULL,
  request_headers   TEXT NOT NULL,
  response_status   INTEGER,
  response_headers  TEXT,
  response_body     TEXT,
  error             TEXT,
  outcome           TEXT NOT NULL CHECK (outcome IN ('succeeded', 'retry', 'failed'))
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, attempt_number);
CREATE INDEX attempts_started_at ON attempts (started_at);

CREATE VIEW delivery_log AS
SELECT a.started_at       AS started_at,
       a.delivery_id      AS delivery_id,
       d.event_id         AS event_id,
       e.event_type       AS event_type,
       d.webhook_id       AS webhook_id,
       a.attempt_number   AS attempt_number,
       a.outcome          AS outcome,
       a.response_status  AS response_status,
       a.error            AS error,
       a.duration_ms      AS duration_ms,
       a.url              AS url,
       d.status           AS delivery_status,
       d.next_attempt_at  AS next_attempt_at
FROM attempts a
JOIN deliveries d ON d.id = a.delivery_id
JOIN events e ON e.id = d.event_id;
)sql",
       {}},
      // v2: the same rules, written so that SQLite checks them with plain comparisons. A
      // constant list `x IN ('a', 'b', 'c')` in a CHECK or an index's WHERE is evaluated by
      // building a temporary b-tree, on every row written: three of them per attempt record,
      // about a fifth of the writer thread's time while draining a backlog.
      {R"sql(
DROP INDEX deliveries_finished;
CREATE INDEX deliveries_finished ON deliveries (updated_at)
  WHERE status = 'succeeded' OR status = 'failed' OR status = 'cancelled' OR status = 'dropped';
)sql",
       {{"deliveries",
         "CHECK (status IN ('pending', 'delivering', 'paused',\n"
         "                      'succeeded', 'failed', 'cancelled', 'dropped'))",
         "CHECK (status = 'pending' OR status = 'delivering' OR status = 'paused' OR\n"
         "                      status = 'succeeded' OR status = 'failed' OR\n"
         "                      status = 'cancelled' OR status = 'dropped')"},
        {"attempts", "CHECK (outcome IN ('succeeded', 'retry', 'failed'))",
         "CHECK (outcome = 'succeeded' OR outcome = 'retry' OR outcome = 'failed')"}}},
      // v3: webhooks created over the API (SPEC §11). `sealed` is base64 of the webhook's JSON
      // document, AES-256-GCM under storage.secret_key_file: its secrets (and header values,
      // URL query) are never in clear in this file.
      {R"sql(
CREATE TABLE api_webhooks (
  id         TEXT PRIMARY KEY,
  sealed     TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
)sql",
       {}},
      // v4: endpoint health (SPEC §10). One row per webhook that has had an attempt or a
      // disable; a disable must outlive restarts and reloads, and the failure streak the
      // auto-disable clock (first_failure_at) and the circuit breaker start from after one.
      {R"sql(
CREATE TABLE webhook_state (
  webhook_id            TEXT PRIMARY KEY,
  disabled_reason       TEXT,
  disabled_at           TEXT,
  last_success_at       TEXT,
  first_failure_at      TEXT,
  consecutive_failures  INTEGER NOT NULL DEFAULT 0
);
)sql",
       {}},
      // v5: the web console (SPEC §12). Its aggregates (attempts by outcome, latency
      // percentiles, attempts per minute; ReadsStats.cpp) read a time range of attempts:
      // covering those columns in the started_at index keeps them from reading the wide
      // attempt rows (headers and bodies); retention's range on started_at uses the same index
      // as before. A webhook's newest deliveries (its page; GET /v1/deliveries?webhook=) were a
      // sort of all its deliveries, 0.7 s for 200,000: (webhook_id, id) reads the newest 50
      // in order. It costs one more index entry per delivery written.
      {R"sql(
DROP INDEX attempts_started_at;
CREATE INDEX attempts_started_at ON attempts (started_at, outcome, duration_ms, delivery_id);
CREATE INDEX deliveries_webhook_newest ON deliveries (webhook_id, id);
)sql",
       {}},
      // v6: a webhook's newest deliveries in one status (the console's status filter; GET
      // /v1/deliveries?webhook=&status=). Through (webhook_id, id) a status the webhook has few
      // or none of walked all its deliveries (174 ms for 200,000); this reads the 50 in order.
      // It costs one more index entry rewritten on each status change (docs/console.md has
      // the intake and drain CPU with and without it).
      {R"sql(
CREATE INDEX deliveries_webhook_status_newest ON deliveries (webhook_id, status, id);
)sql",
       {}},
      // v7: each attempt carries its delivery's webhook (a delivery never changes webhook), so
      // that the console's aggregates per webhook and per minute read attempts_started_at alone
      // instead of looking up each attempt's delivery by its text primary key: that lookup was
      // ~55 ms of CPU for a day of 140,000 attempts, the index range alone ~10 ms. The index
      // covers what those aggregates read; delivery_id left it (only their join used it).
      // Named `webhook`, not `webhook_id`: deliveries has webhook_id, and an operator's query
      // joining the two tables that names it unqualified would become ambiguous.
      // NOT NULL needs a default for ADD COLUMN; the backfill and every insert set the real one.
      // An attempt without its delivery (possible only if someone deleted deliveries with
      // foreign keys off, as the sqlite3 shell has them) keeps '' rather than failing the
      // migration.
      // The old index goes first so that the backfill does not maintain it; the new one is
      // built once, from the filled rows (4.5 s for a million attempts on our 2-core machine at
      // load 6).
      {R"sql(
DROP INDEX attempts_started_at;
ALTER TABLE attempts ADD COLUMN webhook TEXT NOT NULL DEFAULT '';
UPDATE attempts
SET webhook = coalesce((SELECT d.webhook_id FROM deliveries d WHERE d.id = attempts.delivery_id), '');
CREATE INDEX attempts_started_at ON attempts (started_at, webhook, outcome, duration_ms);
)sql",
       {}},
      // v8: the due index holds the backlog only. On (status, next_attempt_at) every delivery
      // had an entry, and each success moved it (a delete and an insert; ~1.4 µs of the
      // writer's time per delivery, docs/performance.md); partial on pending, a success only
      // deletes one. What it served besides the due time: `delivering` rows (left by a test
      // send or an older binary, found at start) get their own index, empty in normal running.
      // Other statuses without a webhook were already read through other indexes.
      {R"sql(
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_delivering ON deliveries (status) WHERE status = 'delivering';
)sql",
       {}},
      // v9: the same for the per-webhook due index. On (webhook_id, status, next_attempt_at)
      // each success moved its entry and each resume of a paused row too; partial on pending,
      // a success deletes one entry and a resume inserts one (~1.4 µs of the writer's time per
      // delivery of a resumed backlog, docs/performance.md "round 9"). What else read it: the
      // counts by status (the console's overview) and the walk over webhook ids read
      // deliveries_webhook_status_newest instead, paused rows are taken in id (= creation)
      // order from it.
      {R"sql(
DROP INDEX deliveries_webhook_due;
CREATE INDEX deliveries_webhook_due ON deliveries (webhook_id, next_attempt_at)
  WHERE status = 'pending';
)sql",
       {}},
  };
  return steps;
}

}  // namespace relay::store
