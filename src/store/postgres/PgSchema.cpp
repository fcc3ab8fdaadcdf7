// The PostgreSQL schema: the same tables, columns, statuses and delivery_log view as the
// SQLite one (src/store/sqlite/Schema.cpp, v7), so that operators' queries and docs work on
// both. Times are RFC 3339 text with milliseconds, as on SQLite: they sort as text, and the
// admin API returns them unchanged. What PostgreSQL adds:
//   deliveries.seq                 insertion order (SQLite's rowid): ties of next_attempt_at
//                                  are taken oldest first, and updates find the row by it
//   deliveries.lease_owner/_until  the node that claimed a `delivering` row and until when;
//                                  after that another node may claim it again (SPEC §14)
// Text columns use the "C" collation: ids and RFC 3339 times compare byte by byte, as on
// SQLite, whatever the database's default collation.
// Migrations run once, by whichever node starts first, under an advisory lock.
#include "PgStore.hpp"

#include <spdlog/spdlog.h>

#include <string>
#include <vector>

namespace relay::store::pg {

namespace {

// pg_advisory_lock key: "relayd" in ASCII, so that it is recognisable in pg_locks.
constexpr std::int64_t kMigrationLock = 0x72656c617964;

// A step brings a database older than its `version` to it; a database at that version or newer
// skips it. The numbers follow the SQLite schema's (src/store/sqlite/Schema.cpp): v1 here has
// the tables and columns SQLite's v1 to v6 built there (not v6's status index), and there is no
// v2 to v6, so "schema v7" means the same columns on both backends.
struct Step {
  int version;
  std::string sql;
};

const std::vector<Step>& steps() {
  static const std::vector<Step> s = {
      // v1: the delivery log of SPEC §6, API webhooks (§11), endpoint health (§10), leases.
      {1, R"sql(
CREATE TABLE events (
  id          TEXT COLLATE "C" PRIMARY KEY,
  event_type  TEXT COLLATE "C" NOT NULL,
  created_at  TEXT COLLATE "C" NOT NULL,
  payload     TEXT COLLATE "C" NOT NULL
);
CREATE INDEX events_created_at ON events (created_at);

CREATE TABLE deliveries (
  seq               BIGSERIAL UNIQUE,
  id                TEXT COLLATE "C" PRIMARY KEY,
  event_id          TEXT COLLATE "C" NOT NULL REFERENCES events (id) ON DELETE CASCADE,
  webhook_id        TEXT COLLATE "C" NOT NULL,
  status            TEXT COLLATE "C" NOT NULL CHECK (status IN ('pending', 'delivering', 'paused',
                      'succeeded', 'failed', 'cancelled', 'dropped')),
  attempt_count     INTEGER NOT NULL DEFAULT 0,
  next_attempt_at   TEXT COLLATE "C",
  created_at        TEXT COLLATE "C" NOT NULL,
  updated_at        TEXT COLLATE "C" NOT NULL,
  last_status_code  INTEGER,
  last_error        TEXT COLLATE "C",
  lease_owner       TEXT COLLATE "C",
  lease_until       TEXT COLLATE "C"
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_webhook_due ON deliveries (webhook_id, status, next_attempt_at, seq);
CREATE INDEX deliveries_event ON deliveries (event_id);
CREATE INDEX deliveries_finished ON deliveries (updated_at)
  WHERE status IN ('succeeded', 'failed', 'cancelled', 'dropped');
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE status = 'delivering';
CREATE INDEX deliveries_webhook_newest ON deliveries (webhook_id, id);

CREATE TABLE attempts (
  id                BIGSERIAL PRIMARY KEY,
  delivery_id       TEXT COLLATE "C" NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
  attempt_number    INTEGER NOT NULL,
  started_at        TEXT COLLATE "C" NOT NULL,
  duration_ms       BIGINT NOT NULL,
  url               TEXT COLLATE "C" NOT NULL,
  request_headers   TEXT COLLATE "C" NOT NULL,
  response_status   INTEGER,
  response_headers  TEXT COLLATE "C",
  response_body     TEXT COLLATE "C",
  error             TEXT COLLATE "C",
  outcome           TEXT COLLATE "C" NOT NULL CHECK (outcome IN ('succeeded', 'retry', 'failed'))
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, attempt_number);
CREATE INDEX attempts_started_at ON attempts (started_at, outcome, duration_ms, delivery_id);

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

CREATE TABLE api_webhooks (
  id         TEXT COLLATE "C" PRIMARY KEY,
  sealed     TEXT COLLATE "C" NOT NULL,
  created_at TEXT COLLATE "C" NOT NULL,
  updated_at TEXT COLLATE "C" NOT NULL
);

CREATE TABLE webhook_state (
  webhook_id            TEXT COLLATE "C" PRIMARY KEY,
  disabled_reason       TEXT COLLATE "C",
  disabled_at           TEXT COLLATE "C",
  last_success_at       TEXT COLLATE "C",
  first_failure_at      TEXT COLLATE "C",
  consecutive_failures  INTEGER NOT NULL DEFAULT 0
);
)sql"},
      // v7: each attempt carries its delivery's webhook, as on SQLite (its v7 says why): the
      // console's aggregates read attempts_started_at without joining deliveries. The default
      // '' (as on SQLite) is for a node of the previous version still running while the first
      // new one migrates: its attempts are still recorded, counted in no webhook's figures.
      {7, R"sql(
DROP INDEX attempts_started_at;
ALTER TABLE attempts ADD COLUMN webhook TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE attempts a SET webhook = d.webhook_id FROM deliveries d WHERE d.id = a.delivery_id;
CREATE INDEX attempts_started_at ON attempts (started_at, webhook, outcome, duration_ms);
)sql"},
  };
  return s;
}

}  // namespace

int schema_version_known() {
  return steps().back().version;
}

void migrate(Connection& c, const std::string& where) {
  // Every node runs this at start; the lock makes the first one do the work and the others
  // wait for it and then find nothing left to do.
  c.exec("SELECT pg_advisory_lock($1)", Params().add(kMigrationLock));
  try {
    c.exec_script(
        "CREATE TABLE IF NOT EXISTS relayd_schema (singleton BOOLEAN PRIMARY KEY DEFAULT TRUE "
        "CHECK (singleton), version INTEGER NOT NULL)");
    auto r = c.exec("SELECT version FROM relayd_schema");
    const int version = r.rows() > 0 ? static_cast<int>(r.int64(0, 0)) : 0;
    const int known = schema_version_known();
    if (version > known) {
      throw StoreError(where + " was created by a newer relayd (schema v" +
                       std::to_string(version) + ", this binary knows up to v" +
                       std::to_string(known) + ")");
    }
    for (const auto& step : steps()) {
      if (step.version <= version) continue;
      const int v = step.version;
      c.exec_script("BEGIN");
      try {
        c.exec_script(step.sql);
        c.exec(
            "INSERT INTO relayd_schema (version) VALUES ($1) ON CONFLICT (singleton) DO UPDATE "
            "SET version = excluded.version",
            Params().add(v));
        c.exec_script("COMMIT");
      } catch (...) {
        if (c.ok()) PQclear(PQexec(c.get(), "ROLLBACK"));
        throw;
      }
      spdlog::info("database {}: schema migrated to v{}", where, v);
    }
  } catch (...) {
    // The session's lock goes with the connection anyway; unlock for tidiness when we can.
    if (c.ok()) PQclear(PQexec(c.get(), "SELECT pg_advisory_unlock_all()"));
    throw;
  }
  c.exec("SELECT pg_advisory_unlock($1)", Params().add(kMigrationLock));
}

}  // namespace relay::store::pg
