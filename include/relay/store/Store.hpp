#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "relay/store/Types.hpp"

namespace relay::store {

/// Opening or migrating the database failed (foreign file, newer schema, corrupt, I/O).
/// The message is one clear sentence that names the file; nothing was overwritten.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct StoreOptions {
  std::string path;
  /// Intake requests (submit_events) waiting for the writer beyond this are refused (intake
  /// answers 503). Dispatcher and admin requests are never refused: they are bounded by the
  /// delivery concurrency, and losing an attempt record would be worse than a longer queue.
  std::size_t max_queued_writes = 65536;
  /// Upper bound on requests folded into one transaction.
  std::size_t max_group = 4096;
  /// Attempt records wait up to record_gather (or until record_group are queued) for others to
  /// share their commit: fewer, larger commits rewrite the same hot pages less often. Only
  /// their leases wait; claims, intake and the API never do (0: no wait).
  std::chrono::microseconds record_gather{1000};
  std::size_t record_group = 64;
  /// Rows changed per write request when a webhook is paused or resumed (bulk status changes
  /// are split so that intake and delivery writes interleave with them). SQLite caps pause and
  /// resume chunks at 500 (WebhookWrites.cpp says why).
  std::size_t bulk_chunk = 5000;
  /// `PRAGMA quick_check` at open reads the whole file, so it runs only when the file is at
  /// most this size (0: never). Larger files get the cheap checks only (header, application
  /// id, schema version, schema parse); corruption found later fails the affected writes with
  /// kStorageUnavailable and is logged.
  std::uint64_t quick_check_max_bytes = std::uint64_t{256} << 20;
  /// Tests only: called on the writer thread before each group (e.g. to hold the writer).
  std::function<void()> before_group_for_testing;
  /// Tests only: called on the writer thread before each group; a value > 0 is applied as
  /// `PRAGMA max_page_count` on the write connection (simulates a full disk; return a larger
  /// value later to let the disk "recover").
  std::function<std::int64_t()> max_page_count_for_testing;
};

/// Group-commit counters (for tests and metrics).
struct StoreStats {
  std::uint64_t commits = 0;         // successful group transactions
  std::uint64_t requests = 0;        // requests committed with kOk
  std::uint64_t max_group = 0;       // largest group committed in one transaction
  std::uint64_t failed_commits = 0;  // groups rolled back for a storage failure
  std::uint64_t rejected = 0;        // requests rolled back alone (kRejected)
};

/// The durable queue and delivery log, seen through the role each caller plays: intake
/// (IntakeStore), the dispatcher (DeliveryStore), the admin API (AdminStore) and the daemon's
/// own jobs (MaintenanceStore). A backend implements `Store` (all four); callers take the one
/// role they need, so a test double implements only that and a second backend (PostgreSQL)
/// touches no caller.
///
/// Threading, for every backend: writes are asynchronous and never throw; they may be called
/// from any thread, including I/O threads. Their callbacks may run on a thread of the store
/// (the SQLite writer): post to your own executor and never block in them, never call a
/// synchronous Store method from them (recover_interrupted would deadlock); exceptions they
/// throw are logged and swallowed.
/// Outcomes: kOk; kRejected (this request broke a constraint, rolled back alone);
/// kStorageUnavailable (disk full, I/O error, failed commit: the whole group was rolled back,
/// nothing half-written; the store keeps serving, so writes succeed again once the disk
/// recovers); kShuttingDown (submitted after close(): the callback runs at once on the
/// caller's thread).
/// Reads are synchronous and thread-safe; call them from a blocking thread, never from an I/O
/// thread. They throw StoreError on a database error or after close().
///
/// The SQLite backend (src/store/sqlite/) runs every write on one writer thread that takes
/// all queued requests (up to max_group), runs them in one `BEGIN IMMEDIATE` transaction,
/// commits (one fsync for the group: WAL, synchronous=FULL; the dispatcher's claims and
/// attempt records go in a transaction of their own without an fsync, synchronous=NORMAL) and
/// only then calls the callbacks, in submission order; reads use a small pool of reader connections
/// (WAL: they never block the writer nor wait for it).

/// What intake needs: store accepted events, and say whether that is possible right now.
class IntakeStore {
 public:
  virtual ~IntakeStore() = default;

  using IntakeCallback = std::function<void(WriteStatus, std::vector<EventReceipt>)>;

  /// Stores events and their deliveries all-or-nothing. An event whose id exists already is
  /// not stored again: its receipt is the first one, with duplicate=true (also within one
  /// vector). Paused deliveries are capped per webhook at NewDelivery::max_queued: the oldest
  /// paused ones beyond it become `dropped` (logged). Returns false at once (callback never
  /// called) when the write queue is full; after close() it returns true and calls back with
  /// kShuttingDown at once.
  virtual bool submit_events(std::vector<NewEvent> events, IntakeCallback done) = 0;

  /// True when the writer runs and the last group committed (for /readyz). Cheap: no I/O on
  /// the caller's thread. After a storage failure it is false; each call then (at most once a
  /// second) queues a tiny probe write, so it turns true again once the disk recovers even
  /// when no other write comes.
  virtual bool writable() = 0;
};

/// What the dispatcher needs: claim due deliveries, record what each attempt did.
class DeliveryStore {
 public:
  virtual ~DeliveryStore() = default;

  using ClaimCallback = std::function<void(WriteStatus, ClaimResult)>;
  using WriteCallback = std::function<void(WriteStatus)>;

  /// Claims up to `limit` due pending deliveries per listed webhook (oldest due first) and
  /// marks them delivering: they are now the caller's, never claimed again until their
  /// attempt is recorded or they are released, shown as delivering by the reads, and due
  /// again after a crash. (SQLite holds the claim in memory, Leases.hpp, and writes nothing.)
  /// next_due is the earliest next_attempt_at of all pending deliveries left unclaimed (any
  /// webhook, listed or not), so it can be <= now when limits held work back. Cost: one index
  /// seek per webhook plus one for next_due, whatever the backlog; on SQLite each also steps
  /// over the deliveries already claimed (in flight or waiting), inside the index (~13 steps
  /// per delivery at the bench's 64 in flight, eight windows ahead).
  virtual void claim_due(common::TimePoint now, std::vector<std::pair<std::string, int>> limits,
                         ClaimCallback done) = 0;

  /// Writes the attempt row and the delivery's new state in one commit. The attempt row is
  /// always written; the delivery changes only if it is still `delivering` (it may have been
  /// cancelled meanwhile). updated_at is the time of the write. next_attempt_at is stored for
  /// new_status pending only (pending without a time: due now); last_error is the transport
  /// error, or "HTTP <status>" for a non-2xx answer.
  virtual void record_attempt(AttemptRecord record, WriteCallback done) = 0;
  /// The same for a caller that keeps the record afterwards (the dispatcher logs it and may
  /// write it again): the backend reads it where it is instead of copying its texts.
  virtual void record_attempt_shared(std::shared_ptr<const AttemptRecord> record,
                                     WriteCallback done) {
    record_attempt(*record, std::move(done));
  }

  /// Claimed deliveries that will not be attempted after all (their webhook's circuit opened
  /// while they waited for a slot) become pending again with their due time unchanged and no
  /// attempt counted. Only rows still `delivering` change.
  virtual void release_claimed(std::vector<DueDelivery> deliveries, WriteCallback done) = 0;

  /// A store shared by several nodes (PostgreSQL) calls `wake`, on a thread of its own, when
  /// another node may have made deliveries due (new events, retries, expired leases), so that
  /// an idle dispatcher claims again. Call once, before work starts. The default (a store
  /// only this process writes) never calls it.
  virtual void set_wake_handler(std::function<void()> wake) { (void)wake; }
};

/// What the admin API reads, and the one write it asks for (redeliver).
class AdminStore {
 public:
  virtual ~AdminStore() = default;

  /// Makes a delivery due now (any status but delivering; attempt_count keeps counting).
  /// found=false: no such delivery. A `delivering` one is left alone (it is being sent right
  /// now) and reports found=true.
  virtual void redeliver(std::string delivery_id, common::TimePoint now,
                         std::function<void(WriteStatus, bool found)> done) = 0;

  // ---- reads (blocking; any thread but an I/O thread) ----
  /// One delivery with its attempts (ordered by attempt_number), read in one snapshot.
  virtual std::optional<DeliveryRow> get_delivery(const std::string& id) = 0;
  /// Newest first (by id), `before_id` pages, limit clamped to 1..1000.
  virtual std::vector<DeliveryRow> list_deliveries(const DeliveryFilter& filter) = 0;
  /// Deliveries per (webhook, status).
  virtual std::vector<std::pair<std::pair<std::string, std::string>, std::int64_t>>
  count_by_webhook_status() = 0;
  /// The stored event with its deliveries (duplicate=false), as intake answered it.
  /// Not pure so that test doubles need not provide it; this default throws StoreError.
  virtual std::optional<EventReceipt> get_event(const std::string& id) {
    throw StoreError("get_event(" + id + ") is not supported by this store");
  }

  /// Per webhook, the attempts started at or after `since` (webhooks without any are absent).
  /// Cost grows with the attempts in the window, not with the table (a range of the
  /// started_at index). Not pure, like get_event; this default throws StoreError.
  virtual std::vector<WebhookAttemptStats> attempt_stats_since(common::TimePoint since) {
    (void)since;
    throw StoreError("attempt_stats_since is not supported by this store");
  }
  /// Attempts per minute by outcome from `since` on, oldest first, minutes without attempts
  /// left out; only `webhook_id`'s when given. Not pure; this default throws StoreError.
  virtual std::vector<AttemptMinute> attempts_per_minute(
      common::TimePoint since, const std::optional<std::string>& webhook_id) {
    (void)since;
    (void)webhook_id;
    throw StoreError("attempts_per_minute is not supported by this store");
  }
  /// attempt_stats_since(since), attempt_stats_since(recent_since) (recent_since >= since)
  /// and attempts_per_minute(since, webhook_id) in one pass over the window, in one snapshot;
  /// the stats only of `webhook_id` when given. Not pure; this default makes the three reads
  /// (three passes, three snapshots), for a backend without a one-pass version.
  virtual AttemptSummary attempt_summary(common::TimePoint since, common::TimePoint recent_since,
                                         const std::optional<std::string>& webhook_id) {
    auto only = [&](std::vector<WebhookAttemptStats> all) {
      if (!webhook_id) return all;
      std::erase_if(all, [&](const WebhookAttemptStats& w) { return w.webhook_id != *webhook_id; });
      return all;
    };
    AttemptSummary out;
    out.whole = only(attempt_stats_since(since));
    out.recent = only(attempt_stats_since(recent_since));
    out.minutes = attempts_per_minute(since, webhook_id);
    return out;
  }
  /// One webhook's deliveries per status (statuses without any absent). This default filters
  /// count_by_webhook_status(); a store can count only that webhook's.
  virtual std::vector<std::pair<std::string, std::int64_t>> count_by_status(
      const std::string& webhook_id) {
    std::vector<std::pair<std::string, std::int64_t>> out;
    for (auto& [key, n] : count_by_webhook_status()) {
      if (key.first == webhook_id) out.emplace_back(key.second, n);
    }
    return out;
  }

  // ---- API-managed webhooks (SPEC §11) ----
  // Not pure, so that test doubles need not provide them; the defaults refuse.
  /// Inserts (create=true; `exists` when the id is taken) or replaces (create=false; `exists`
  /// false when there is no such row) one webhook. Durable when `done` runs with kOk.
  virtual void put_api_webhook(StoredWebhook webhook, bool create,
                               std::function<void(WriteStatus, bool exists)> done) {
    done(WriteStatus::kRejected, false);
    (void)webhook;
    (void)create;
  }
  /// Deletes one webhook's row; found=false when there was none. Its deliveries are left to
  /// the caller (reconcile cancels them).
  virtual void delete_api_webhook(std::string id,
                                  std::function<void(WriteStatus, bool found)> done) {
    done(WriteStatus::kRejected, false);
    (void)id;
  }
  /// Every stored webhook, by id (blocking read).
  virtual std::vector<StoredWebhook> list_api_webhooks() { return {}; }
};

/// Endpoint health (SPEC §10): relayd's own disables, the failure streak of each webhook
/// (written by record_attempt with the attempt), bulk recovery of failed deliveries.
class HealthStore {
 public:
  virtual ~HealthStore() = default;

  /// Disables the webhook with `reason` at `at` (the first disable's time is kept while it
  /// stays disabled), or clears the disable (reason nullopt) and with it the failure streak,
  /// so that an enabled webhook starts with a closed circuit and a fresh auto-disable clock.
  /// Does not touch its deliveries: pausing is set_webhook_paused's job.
  virtual void set_webhook_disabled(std::string webhook_id, std::optional<std::string> reason,
                                    common::TimePoint at,
                                    std::function<void(WriteStatus)> done) = 0;

  /// Every `failed` delivery of the webhook created in [since, until) becomes pending, due
  /// `now` (their order is their insertion order: oldest first). In chunks of
  /// StoreOptions::bulk_chunk rows, each its own commit (intake interleaves); `recovered_some`
  /// runs after each chunk that changed rows, `done` once at the end with the total (on a
  /// failure, the rows of the chunks committed before it count).
  virtual void recover_failed(std::string webhook_id, common::TimePoint since,
                              common::TimePoint until, common::TimePoint now,
                              std::function<void(WriteStatus, std::size_t)> done,
                              std::function<void()> recovered_some) = 0;

  // ---- reads (blocking; any thread but an I/O thread) ----
  /// Every stored health row.
  virtual std::vector<WebhookStateRow> webhook_states() = 0;
  /// For each id: the next_attempt_at of its earliest pending delivery that is due at `now`
  /// (nullopt: nothing due). One index seek per webhook.
  virtual std::vector<std::pair<std::string, std::optional<common::TimePoint>>> oldest_due(
      const std::vector<std::string>& webhook_ids, common::TimePoint now) = 0;
};

/// What the daemon's own jobs need: crash recovery, reconciling with the config, retention,
/// counters and shutdown.
class MaintenanceStore {
 public:
  virtual ~MaintenanceStore() = default;

  using WriteCallback = std::function<void(WriteStatus)>;

  /// At start-up: deliveries left `delivering` by a crash become pending and due now.
  /// Returns how many. Synchronous (runs through the writer and waits for its commit; never
  /// call it from a callback). Throws StoreError when the write fails; 0 after close().
  virtual std::size_t recover_interrupted(common::TimePoint now) = 0;

  /// Webhook disabled (paused=true): its pending deliveries become paused, capped at `max_queued`
  /// (the oldest beyond it become dropped). Enabled (paused=false): its paused deliveries become
  /// pending, due now, oldest first (insertion order). "now" is the wall clock at the call. Done in
  /// chunks of at most `StoreOptions::bulk_chunk` rows, each its own commit (SQLite: without an
  /// fsync of its own, being redone at start); `done` runs once, after the last. `resumed_some`
  /// (may be empty) runs after each committed chunk that made deliveries pending: they are due from
  /// then on, so the dispatcher can start on them while the rest of a large backlog is resumed. A
  /// later call for the same webhook supersedes this one: its remaining chunks are skipped and
  /// `done` reports kOk (the later call decides the outcome). A call that fails supersedes nothing.
  virtual void set_webhook_paused(std::string webhook_id, bool paused, std::size_t max_queued,
                                  WriteCallback done, std::function<void()> resumed_some) = 0;

  /// Unfinished (pending, paused, delivering) deliveries of every webhook not in `known_ids`
  /// become cancelled.
  virtual void cancel_webhooks_except(std::vector<std::string> known_ids,
                                      std::function<void(WriteStatus, std::size_t)> done) = 0;

  /// Deletes at most `batch` rows older than `cutoff`: attempts, then finished deliveries
  /// (succeeded, failed, cancelled, dropped; by updated_at), then events left without
  /// deliveries (a pruned delivery takes its remaining attempts with it, uncounted).
  /// `removed == batch` means there may be more: call again (each call is one short write
  /// request, so intake and delivery requests interleave with it).
  virtual void prune_before(common::TimePoint cutoff, std::size_t batch,
                            std::function<void(WriteStatus, std::size_t removed)> done) = 0;

  /// Group-commit counters. Thread-safe.
  [[nodiscard]] virtual StoreStats stats() const = 0;

  /// Finishes queued writes, stops the writer, closes connections. Idempotent.
  virtual void close() = 0;
};

/// Every role: what a storage backend implements.
class Store : public IntakeStore,
              public DeliveryStore,
              public AdminStore,
              public MaintenanceStore,
              public HealthStore {
 public:
  using WriteCallback = DeliveryStore::WriteCallback;
  ~Store() override = default;
};

/// Opens (creating and migrating when needed) the SQLite database. Throws StoreError.
std::unique_ptr<Store> open_sqlite_store(const StoreOptions& options);

/// The PostgreSQL backend (SPEC §14): several nodes share one database.
struct PostgresStoreOptions {
  std::string dsn;  // libpq conninfo; messages show it redacted
  /// Connections: one writer, one listener, the rest readers (at least 3).
  std::size_t pool_size = 4;
  /// How long a claim holds a delivery; then another node may claim it (> delivery timeout).
  std::chrono::milliseconds lease{std::chrono::minutes(2)};
  /// This node's name in lease_owner. Nodes sharing a database need distinct names;
  /// recover_interrupted releases the leases of this name only (a restart of this node).
  std::string node_id;
  std::size_t max_queued_writes = 65536;
  std::size_t max_group = 4096;
  std::size_t bulk_chunk = 5000;
  /// Tests only: called on the writer thread before each group.
  std::function<void()> before_group_for_testing;
};

/// Connects, creates or migrates the schema (once, under an advisory lock) and starts the
/// writer and the listener. Throws StoreError (with the dsn redacted).
std::unique_ptr<Store> open_postgres_store(const PostgresStoreOptions& options);

}  // namespace relay::store
