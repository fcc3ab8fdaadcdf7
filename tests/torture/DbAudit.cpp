#include "DbAudit.hpp"

#include <nlohmann/json.hpp>

#include "Db.hpp"
#include "PgServer.hpp"
#include "Waiting.hpp"

namespace relay::torture {

using relay::testing::Db;

DbAudit::DbAudit(std::filesystem::path db, EventLedger& ledger, int schedule_length)
    : path_(std::move(db)), ledger_(ledger), schedule_length_(schedule_length) {}

AuditResult DbAudit::audit() {
  AuditResult result = look();
  for (auto& p : problems_) ledger_.add_problem(std::move(p));
  problems_.clear();
  return result;
}

AuditResult DbAudit::look() {
  AuditResult result;
  const bool pg = relay::testing::postgres_backend();
  // On PostgreSQL the database (dsn_for) exists from the first look on; relayd makes the schema.
  result.file_exists = pg || std::filesystem::exists(path_);
  if (!result.file_exists) {
    if (ledger_.acked_count() > 0) problem("the database file is gone");
    return result;
  }
  Db db(path_);
  if (pg) wait_for_dead_sessions(db);
  result.schema_exists =
      db.count(pg ? "SELECT count(*) FROM information_schema.tables WHERE table_schema = "
                    "current_schema() AND table_name IN ('events', 'deliveries', 'attempts')"
                  : "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                    "('events', 'deliveries', 'attempts')") == 3;
  result.integrity = pg ? pg_integrity(db) : db.value("PRAGMA integrity_check");
  if (!result.schema_exists) {
    // Killed while creating the file: fine as long as nothing was acked yet.
    if (ledger_.acked_count() > 0) problem("the schema is gone from the database");
    return result;
  }
  check_events(db, result);
  check_deliveries(db, result);
  check_attempts(db, result);
  check_batches();
  return result;
}

// A SIGKILLed relayd's server sessions end only when each notices its client is gone, after
// the statement it is running: a COMMIT sent just before the kill still lands. Looking before
// they are gone would see rows appear later and blame them on the next life of relayd.
void DbAudit::wait_for_dead_sessions(Db& db) {
  const auto others =
      "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
      "backend_type = 'client backend' AND pid <> pg_backend_pid()";
  const bool gone =
      relay::testing::wait_until([&] { return db.count(others) == 0; }, std::chrono::seconds(10));
  if (!gone) problem("relayd's database sessions were still there 10 s after the kill");
}

// PostgreSQL's counterpart of PRAGMA integrity_check: amcheck's verify_heapam on every table
// and bt_index_check (with heapallindexed: every row is in every index) on every B-tree index
// of relayd's schema. A check that finds a broken page raises an error; that text is the result.
std::string DbAudit::pg_integrity(Db& db) {
  try {
    if (db.count("SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'") == 0) {
      db.rows("CREATE EXTENSION amcheck");
    }
    const auto schema = "c.relnamespace = current_schema()::regnamespace";
    const auto heap = db.count(
        std::string("SELECT count(*) FROM pg_class c, verify_heapam(c.oid) v WHERE c.relkind = "
                    "'r' AND ") +
        schema);
    if (heap != 0) return std::to_string(heap) + " heap problems (verify_heapam)";
    db.rows(std::string("SELECT bt_index_check(c.oid, true) FROM pg_index i JOIN pg_class c ON "
                        "c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam WHERE a.amname = "
                        "'btree' AND ") +
            schema);
    return "ok";
  } catch (const std::exception& e) {
    return e.what();
  }
}

void DbAudit::check_events(Db& db, AuditResult& result) {
  std::set<std::string> present;
  ledger_.with_events([&](std::map<std::string, PostedEvent>& events) {
    for (const auto& row : db.rows("SELECT id, event_type, payload FROM events")) {
      const auto& id = row[0];
      present.insert(id);
      const auto posted = events.find(id);
      if (posted == events.end()) {
        problem("event " + id + " is in the file but no client ever posted it");
        continue;
      }
      PostedEvent& e = posted->second;
      e.in_db = true;
      if (const auto known = payloads_.find(id); known != payloads_.end()) {
        if (known->second != row[2]) problem("payload of " + id + " changed: " + row[2]);
        continue;
      }
      payloads_[id] = row[2];
      types_[id] = row[1];
      if (row[1] != e.type) problem("event " + id + " stored as type " + row[1]);
      // SPEC §4: exactly id, event, created_at, data, in this order, with what was posted.
      const auto payload = nlohmann::ordered_json::parse(row[2], nullptr, false);
      std::vector<std::string> keys;
      if (payload.is_object()) {
        for (const auto& [k, v] : payload.items()) keys.push_back(k);
      }
      if (keys != std::vector<std::string>{"id", "event", "created_at", "data"} ||
          payload["id"] != id || payload["event"] != e.type || !payload["created_at"].is_string() ||
          nlohmann::json::parse(payload["data"].dump()) != e.data) {
        problem("payload of " + id + " is not what was posted: " + row[2]);
        continue;
      }
      const auto created_at = payload["created_at"].get<std::string>();
      created_at_[id] = created_at;
      // UTC RFC 3339 with seconds precision: 2025-01-15T10:30:00Z
      if (created_at.size() != 20 || created_at[10] != 'T' || created_at.back() != 'Z') {
        problem("payload of " + id + " has created_at " + created_at);
      }
      if (e.receipt && e.receipt->created_at != created_at) {
        problem("event " + id + " was answered with created_at " + e.receipt->created_at +
                " but stored with " + created_at);
      }
    }
    for (const auto& [id, e] : events) {
      if (e.acked && !present.contains(id)) {
        problem("acked event " + id + " is not in the file");
      }
    }
  });
  for (const auto& [id, payload] : payloads_) {
    if (!present.contains(id)) problem("event " + id + " vanished from the file");
  }
  result.events = present.size();
}

void DbAudit::check_deliveries(Db& db, AuditResult& result) {
  std::map<std::string, std::map<std::string, std::string>> by_event;  // event -> webhook -> id
  std::set<std::string> present;
  for (const auto& row :
       db.rows("SELECT id, event_id, webhook_id, status, attempt_count FROM deliveries")) {
    const auto& id = row[0];
    present.insert(id);
    if (!by_event[row[1]].emplace(row[2], id).second) {
      problem("event " + row[1] + " has two deliveries to " + row[2]);
    }
    auto [it, added] = deliveries_.try_emplace(id);
    DeliveryState& d = it->second;
    if (!added && (d.event_id != row[1] || d.webhook != row[2])) {
      problem("delivery " + id + " changed its event or webhook");
    }
    d.event_id = row[1];
    d.webhook = row[2];
    d.status = row[3];
    if (d.status == "pending" || d.status == "delivering") ++result.unfinished;
    if (!payloads_.contains(row[1])) problem("delivery " + id + " of a missing event " + row[1]);
  }
  for (const auto& [id, d] : deliveries_) {
    if (!present.contains(id)) problem("delivery " + id + " vanished from the file");
  }
  result.deliveries = present.size();

  ledger_.with_events([&](std::map<std::string, PostedEvent>& events) {
    for (const auto& [event_id, payload] : payloads_) {
      const auto posted = events.find(event_id);
      if (posted == events.end()) continue;  // reported above
      PostedEvent& e = posted->second;
      Receipt stored;
      stored.created_at = created_at_[event_id];
      stored.deliveries = by_event[event_id];
      if (stored.deliveries.size() != 2) {
        problem("event " + event_id + " has " + std::to_string(stored.deliveries.size()) +
                " deliveries, expected one per webhook (2)");
      }
      if (e.receipt && e.receipt->deliveries != stored.deliveries) {
        problem("event " + event_id + ": the answer's delivery ids differ from the file's");
      }
      // An event whose answer was lost: any later answer must name what the file holds.
      if (!e.receipt) e.receipt = stored;
    }
  });
}

void DbAudit::check_attempts(Db& db, AuditResult& result) {
  std::map<std::string, std::vector<AttemptRow>> rows;
  for (const auto& row :
       db.rows("SELECT delivery_id, attempt_number, response_status, COALESCE(error, ''), "
               "outcome FROM attempts ORDER BY delivery_id, attempt_number")) {
    AttemptRow r;
    r.number = std::stoi(row[1]);
    if (row[2] != "NULL") r.response_status = std::stoi(row[2]);
    r.error = row[3];
    r.outcome = row[4];
    rows[row[0]].push_back(std::move(r));
    ++result.attempts;
  }
  const auto counts = db.rows("SELECT id, attempt_count FROM deliveries");
  std::map<std::string, int> attempt_count;
  for (const auto& row : counts) attempt_count[row[0]] = std::stoi(row[1]);

  for (const auto& [id, list] : rows) {
    if (!deliveries_.contains(id)) problem("attempt rows for an unknown delivery " + id);
  }
  for (auto& [id, d] : deliveries_) {
    const auto& list = rows[id];
    const int n = static_cast<int>(list.size());
    if (d.finished) result.finished_before.insert(id);
    if (n < d.rows)
      problem("delivery " + id + " lost attempt rows: " + std::to_string(d.rows) + " before, " +
              std::to_string(n) + " now");
    if (attempt_count[id] != n) {
      problem("delivery " + id + " has attempt_count " + std::to_string(attempt_count[id]) +
              " but " + std::to_string(n) + " attempt rows");
    }
    for (int i = 0; i < n; ++i) {
      const auto& r = list[static_cast<std::size_t>(i)];
      const bool ok_status =
          r.response_status && *r.response_status >= 200 && *r.response_status <= 299;
      const bool last = i + 1 == n;
      std::string wrong;
      if (r.number != i + 1) wrong = "attempt numbers are not 1..n";
      if (r.outcome == "succeeded" && (!ok_status || !last)) wrong = "bad succeeded row";
      if (r.outcome == "retry" && (ok_status || r.number >= schedule_length_)) {
        wrong = "bad retry row";
      }
      if (r.outcome == "failed" && (ok_status || !last || r.number != schedule_length_)) {
        wrong = "bad failed row (nothing here is a final 4xx)";
      }
      if (r.outcome != "succeeded" && r.outcome != "retry" && r.outcome != "failed") {
        wrong = "unknown outcome";
      }
      if (!wrong.empty()) {
        problem("delivery " + id + " attempt " + std::to_string(r.number) + ": " + wrong + " (" +
                r.outcome + ", status " +
                (r.response_status ? std::to_string(*r.response_status) : "NULL") + ")");
      }
    }
    const std::string last_outcome = n > 0 ? list.back().outcome : "";
    const std::string expected_status = last_outcome == "succeeded" ? "succeeded"
                                        : last_outcome == "failed"  ? "failed"
                                                                    : "";
    if (!expected_status.empty() ? d.status != expected_status
                                 : d.status != "pending" && d.status != "delivering") {
      problem("delivery " + id + " is " + d.status + " after " + std::to_string(n) +
              " attempts ending with '" + last_outcome + "'");
    }
    if (n > d.rows) {
      result.new_rows[id].assign(list.begin() + d.rows, list.end());
    }
    d.rows = std::max(d.rows, n);
    d.finished = !expected_status.empty();
  }
}

void DbAudit::check_batches() {
  for (const auto& ids : ledger_.batches()) {
    std::size_t stored = 0;
    for (const auto& id : ids) stored += payloads_.contains(id) ? 1 : 0;
    if (stored != 0 && stored != ids.size()) {
      problem("batch starting with " + ids.front() + " is half stored: " + std::to_string(stored) +
              " of " + std::to_string(ids.size()) + " events");
    }
  }
}

}  // namespace relay::torture
