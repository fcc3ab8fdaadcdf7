#pragma once

// THE WRITER: every change to the database goes through one thread.
//
// Requests (WriteRequest) come from any thread; the writer takes all that are queued (up to
// max_group) and runs them in ONE transaction, then commits with one fsync and only then
// calls their `complete` callbacks, in submission order. That is group commit: one fsync for
// thousands of rows (the difference between ~3,500 and ~60,000 durable events/s). When only
// attempt records are queued, the writer first waits up to StoreOptions::record_gather for
// more (anything else queued ends the wait).
//
//   queue ──take ≤ max_group──▶ split: claims │ dispatcher's (fast) │ everything else (durable)
//                                        │            │                     │
//        claims first, in a transaction of their own (they write nothing, and the dispatcher's
//        slots wait for them); then the fast ones and the durable ones, each kind in one
//        BEGIN IMMEDIATE; apply each; COMMIT  (fast: synchronous=NORMAL; durable: FULL)
//        (claims, attempt records, releases and pause/resume chunks need not survive a power
//        cut: a lost record only makes its delivery due again, a lost chunk is re-applied at
//        the next start; the next FULL commit's fsync covers them, WAL frames being written in
//        order)
//                                        │
//                          callbacks, in order ──▶ next group
//
// ONE GROUP'S TRANSACTION, and what each outcome means for the requests in it:
//   kOk                  the request's rows are committed.
//   kRejected            the request broke a constraint. The group is rolled back and run
//                        again with one SAVEPOINT per request (savepoints cost a copy of
//                        every page a request touches, so they are used only after a
//                        rejection); the rejected request's savepoint is rolled back alone.
//   kStorageUnavailable  disk full, I/O error, corruption, failed COMMIT: the whole group is
//                        rolled back; nothing is half-written; the next group tries again.
//   kShuttingDown        enqueued after close(): answered at once on the caller's thread.
// A request may therefore run more than once (first run, isolated re-run): `apply` resets
// whatever it reports before doing anything.
//
// STATE THAT LIVES WITH THE ROWS (WriteContext), owned here so that it rolls back with them:
//   state()             WriterState as of the last commit plus what the running transaction
//                       changed through changing_state(); COMMIT keeps the changes, any
//                       rollback (group or a rejected request's savepoint) discards them.
//   paused_counts()     a cache of paused deliveries per webhook (the max_queued cap costs
//                       nothing per event); cleared by every other kind of write and by any
//                       rollback, rebuilt with one indexed count.
//   note_dropped()      paused deliveries dropped by the cap; logged after the commit only.
//   health_folds()      attempt outcomes per webhook, upserted into webhook_state once per
//                       group just before its COMMIT (WebhookHealth.hpp); emptied at the start
//                       of every group run, so a rolled-back run leaves nothing behind.
//
// WHAT THE FLAGS MEAN (guarded by mutex_):
//   closed_          close() was called: nothing more is queued; the writer drains the queue,
//                    then exits.
//   running_         the writer thread is in its loop (writable() is false otherwise).
//   last_commit_ok_  the last group committed; false after a storage failure until a commit
//                    succeeds again (writable() then queues a tiny probe write at most once a
//                    second, probe_queued_/last_probe_, so readiness returns with the disk).
//   queued_intake_   intake requests in the queue; beyond max_queued_writes intake is refused
//                    (503 overloaded). Claims and attempt records never are.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "Checkpointer.hpp"
#include "Sqlite.hpp"
#include "WebhookHealth.hpp"
#include "relay/store/Store.hpp"

namespace relay::store::sqlite {

/// The writer's own state that must change together with the rows (see the note above).
/// Paused deliveries the cap dropped for one webhook: how many, and the first ids (an
/// operator looks them up; docs/operations.md has the query for the rest).
inline constexpr std::size_t kLoggedDropIds = 100;
struct Drops {
  std::int64_t count = 0;
  std::vector<std::string> ids;  // at most kLoggedDropIds
};

struct WriterState {
  /// Per webhook: the latest set_webhook_paused call that committed its first chunk; the
  /// remaining chunks of an older call are skipped.
  std::unordered_map<std::string, std::uint64_t> pause_generation;
  std::string prune_cutoff;       // the cutoff of the retention run in progress
  std::string prune_events_from;  // where its events scan resumes (created_at)
};

/// What a write request sees while it runs inside the group's transaction. Writer thread only.
class WriteContext {
 public:
  explicit WriteContext(Connection& c) : conn_(c) {}
  Connection& conn() { return conn_; }
  [[nodiscard]] const WriterState& state() const { return working_ ? *working_ : committed_; }
  /// The state to change: a copy of the committed one, made on first use in a transaction.
  WriterState& changing_state() {
    if (!working_) working_ = committed_;
    return *working_;
  }
  std::unordered_map<std::string, std::int64_t>& paused_counts() { return paused_counts_; }
  HealthFolds& health_folds() { return health_folds_; }
  /// Paused deliveries dropped by the cap for `webhook` (logged once the group commits, with
  /// the first kLoggedDropIds of their ids).
  void note_dropped(const std::string& webhook, std::int64_t n, std::vector<std::string> ids) {
    auto& d = request_drops_[webhook];
    d.count += n;
    for (auto& id : ids) {
      if (d.ids.size() >= kLoggedDropIds) break;
      d.ids.push_back(std::move(id));
    }
  }

 private:
  friend class WriterQueue;
  Connection& conn_;
  WriterState committed_;
  std::optional<WriterState> working_;  // changed by the transaction in progress
  std::unordered_map<std::string, std::int64_t> paused_counts_;
  std::unordered_map<std::string, Drops> request_drops_;  // by the running request
  HealthFolds health_folds_;                              // by the running group
};

/// One unit of work for the writer: `apply` runs inside the group transaction, `complete`
/// after the commit (on the writer thread).
struct WriteRequest {
  std::function<void(WriteContext&)> apply;
  std::function<void(WriteStatus)> complete;
  bool counts_against_limit = false;  // intake: refused beyond max_queued_writes
  // false: losing this write in a power cut is harmless (a claim, an attempt record: the
  // delivery simply is due again; a pause/resume chunk: redone at start), so it may commit
  // without waiting for an fsync.
  bool durable = true;
  // true: may wait up to StoreOptions::record_gather for others to share its commit (an attempt
  // record: only its lease waits). What someone waits on (a claim, intake, the API) never does.
  bool may_wait = false;
  // true: writes nothing (a claim). Runs ahead of the writes queued before it, in a transaction
  // of its own, so that its answer does not wait for their commit.
  bool read_only = false;
};

/// The writer thread and its queue (see the note at the top of this file). Thread-safe.
class WriterQueue {
 public:
  /// Takes the migrated write connection and starts the thread.
  WriterQueue(std::unique_ptr<Connection> conn, const StoreOptions& options);
  ~WriterQueue();
  WriterQueue(const WriterQueue&) = delete;
  WriterQueue& operator=(const WriterQueue&) = delete;

  /// False (and `complete` never called) when an intake request finds the queue full.
  bool enqueue(WriteRequest req);
  /// See IntakeStore::writable.
  bool writable();
  [[nodiscard]] StoreStats stats() const;
  /// Runs what is queued, stops the thread, closes the connection. Idempotent.
  void close();

 private:
  enum class GroupRun { kDone, kNeedsIsolation };

  void loop();
  void process(std::vector<WriteRequest>& group, std::vector<WriteStatus>& results);
  void run_group(std::vector<WriteRequest>& group, std::vector<WriteStatus>& results);
  GroupRun run_group_once(std::vector<WriteRequest>& group, std::vector<WriteStatus>& results,
                          bool isolate);
  void reject(WriteStatus& result, const char* what);
  void set_synchronous(bool full);
  void note_failure(const std::string& what);

  const StoreOptions options_;
  std::unique_ptr<Connection> conn_;
  WriteContext context_;                                // writer thread only
  bool synchronous_full_ = true;                        // writer thread only (as migrated)
  std::unordered_map<std::string, Drops> group_drops_;  // writer thread only

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<WriteRequest> queue_;                      // guarded by mutex_
  std::size_t queued_intake_ = 0;                       // guarded by mutex_
  std::size_t queued_urgent_ = 0;                       // guarded by mutex_ (!may_wait)
  bool gathering_ = false;                              // guarded by mutex_ (records wait)
  bool closed_ = false;                                 // guarded by mutex_
  bool running_ = false;                                // guarded by mutex_
  bool last_commit_ok_ = true;                          // guarded by mutex_
  bool probe_queued_ = false;                           // guarded by mutex_
  std::chrono::steady_clock::time_point last_probe_{};  // guarded by mutex_
  StoreStats stats_;                                    // guarded by mutex_

  Checkpointer checkpointer_;  // takes over conn_'s WAL checkpoints; before the thread starts
  std::thread thread_;         // last: started once everything above exists
};

}  // namespace relay::store::sqlite
