#pragma once

// The PostgreSQL writer: like the SQLite one (sqlite/WriterQueue.hpp), every write of this
// node goes through one thread and one connection, which takes every queued request (up to
// max_group) into ONE transaction and calls the callbacks only after COMMIT returned: group
// commit, one WAL flush on the server for the whole group, and intake answers 202 only for
// committed events.
//
// Outcomes per request are those of the Store contract:
//   kOk                  committed.
//   kRejected            the request broke a constraint (SQLSTATE class 22/23): the group is
//                        rolled back and run again with a SAVEPOINT per request, and only
//                        that request's savepoint is rolled back.
//   kStorageUnavailable  connection lost, server shutting down, COMMIT failed: the whole group
//                        is rolled back (PostgreSQL does that for a lost connection) and the
//                        writer reconnects with backoff (100 ms doubling to 5 s) before the
//                        next group. Until a group commits again, writable() is false.
//   deadlock/serialization (another node's transaction collided with this one): the group is
//                        run again, up to three times, before it counts as unavailable.
// A request may run more than once: `apply` resets whatever it reports.
//
// Notifications: a group that made deliveries due (intake, retries, resumes, redeliveries)
// sends NOTIFY relayd_work inside its transaction; PostgreSQL delivers it to every listening
// node at COMMIT (PgListener), so idle nodes wake without polling.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "Pg.hpp"
#include "relay/store/Store.hpp"

namespace relay::store::pg {

/// Writer-thread state that must roll back with the rows: per-webhook pause generations
/// (a later set_webhook_paused supersedes the rest of an earlier one once it committed).
struct WriterContext {
  Connection* conn = nullptr;
  std::unordered_map<std::string, std::uint64_t> generations;          // committed
  std::unordered_map<std::string, std::uint64_t> pending_generations;  // this transaction
  std::uint64_t generation(const std::string& webhook) const {
    if (auto it = pending_generations.find(webhook); it != pending_generations.end()) {
      return it->second;
    }
    auto it = generations.find(webhook);
    return it == generations.end() ? 0 : it->second;
  }
  bool notify = false;  // this transaction made deliveries due: NOTIFY before COMMIT
  /// Paused deliveries per webhook in this transaction, counted by its first paused intake
  /// and kept up to date by the next ones (PgStore::enforce_paused_cap): one count per group
  /// and webhook instead of one per event. Only intake keeps it; it is dropped before any
  /// other request and with every rollback.
  std::unordered_map<std::string, std::int64_t> paused_counts;
};

struct WriteRequest {
  std::function<void(WriterContext&)> apply;
  std::function<void(WriteStatus)> complete;
  bool counts_against_limit = false;  // intake: refused beyond max_queued_writes
};

struct WriterOptions {
  std::string dsn;
  std::string where;  // the redacted dsn, for messages
  std::size_t max_queued_writes = 65536;
  std::size_t max_group = 4096;
  std::function<void()> before_group_for_testing;
};

class PgWriter {
 public:
  /// Takes the connected, migrated connection and starts the thread.
  PgWriter(std::unique_ptr<Connection> conn, WriterOptions options);
  ~PgWriter();
  PgWriter(const PgWriter&) = delete;
  PgWriter& operator=(const PgWriter&) = delete;

  bool enqueue(WriteRequest req);
  bool writable();
  [[nodiscard]] StoreStats stats() const;
  void close();

 private:
  enum class Run { kDone, kIsolate, kRetry };
  void loop();
  bool ensure_connected();
  void run_group(std::vector<WriteRequest>& group, std::vector<WriteStatus>& results);
  Run run_once(std::vector<WriteRequest>& group, std::vector<WriteStatus>& results, bool isolate);
  void note_failure(const std::string& what);
  void rollback();

  const WriterOptions options_;
  std::unique_ptr<Connection> conn_;  // writer thread only (null while disconnected)
  WriterContext context_;             // writer thread only
  std::chrono::milliseconds backoff_{0};
  std::chrono::steady_clock::time_point next_connect_{};

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<WriteRequest> queue_;                      // guarded by mutex_
  std::size_t queued_intake_ = 0;                       // guarded by mutex_
  bool closed_ = false;                                 // guarded by mutex_
  bool running_ = false;                                // guarded by mutex_
  bool last_commit_ok_ = true;                          // guarded by mutex_
  bool probe_queued_ = false;                           // guarded by mutex_
  std::chrono::steady_clock::time_point last_probe_{};  // guarded by mutex_
  StoreStats stats_;                                    // guarded by mutex_
  std::thread thread_;
};

}  // namespace relay::store::pg
