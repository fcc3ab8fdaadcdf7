#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "AttemptMatcher.hpp"
#include "EventLedger.hpp"

namespace relay::testing {
class Db;
}

namespace relay::torture {

/// A delivery as the file last showed it.
struct DeliveryState {
  std::string event_id;
  std::string webhook;
  std::string status;
  int rows = 0;           // attempt rows so far
  bool finished = false;  // its last row is succeeded or failed
};

/// What one look at the file found.
struct AuditResult {
  bool file_exists = false;
  bool schema_exists = false;
  std::string integrity;  // PRAGMA integrity_check; on PostgreSQL amcheck's, "ok" alike
  std::size_t events = 0;
  std::size_t deliveries = 0;
  std::size_t attempts = 0;
  std::size_t unfinished = 0;  // pending or delivering
  /// Attempt rows committed since the previous look, per delivery, in attempt order.
  std::map<std::string, std::vector<AttemptRow>> new_rows;
  /// Deliveries that were finished at the previous look.
  std::set<std::string> finished_before;
};

/// Reads the daemon's SQLite file after each kill (and at the end), as an operator would with
/// the sqlite3 CLI — or with RELAYD_TEST_BACKEND=postgres its PostgreSQL database (Db, dsn_for),
/// as psql would, after relayd's sessions are gone — and checks it against what the clients were
/// told and against what it held before: every acked event with one delivery per webhook and the
/// delivery ids of its answer; payloads with exactly the posted data, never changing; nothing the
/// clients never posted; batches all or nothing; attempt rows numbered 1..n, never lost, consistent
/// with the delivery's status and attempt_count (they commit together). Problems go to the ledger.
/// Not thread-safe; call it while no client runs.
class DbAudit {
 public:
  DbAudit(std::filesystem::path db, EventLedger& ledger, int schedule_length);

  AuditResult audit();

  [[nodiscard]] const std::map<std::string, DeliveryState>& deliveries() const {
    return deliveries_;
  }
  /// Event id -> stored payload (the exact body bytes every attempt must carry).
  [[nodiscard]] const std::map<std::string, std::string>& payloads() const { return payloads_; }
  [[nodiscard]] const std::map<std::string, std::string>& event_types() const { return types_; }

 private:
  AuditResult look();
  void wait_for_dead_sessions(relay::testing::Db& db);
  static std::string pg_integrity(relay::testing::Db& db);
  void check_events(relay::testing::Db& db, AuditResult& result);
  void check_deliveries(relay::testing::Db& db, AuditResult& result);
  void check_attempts(relay::testing::Db& db, AuditResult& result);
  void check_batches();
  // Collected and handed to the ledger at the end: some are found under the ledger's lock.
  void problem(std::string text) { problems_.push_back(std::move(text)); }

  std::filesystem::path path_;
  EventLedger& ledger_;
  int schedule_length_;
  std::map<std::string, std::string> payloads_;
  std::map<std::string, std::string> types_;
  std::map<std::string, std::string> created_at_;  // from the payload, parsed once
  std::map<std::string, DeliveryState> deliveries_;
  std::vector<std::string> problems_;
};

}  // namespace relay::torture
