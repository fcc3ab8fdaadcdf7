#pragma once

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
  /// Write requests waiting for the writer beyond this are refused (intake answers 503).
  std::size_t max_queued_writes = 65536;
  /// Upper bound on requests folded into one transaction.
  std::size_t max_group = 4096;
  /// Run `PRAGMA quick_check` at open (reads the whole file once; refuses a corrupt one).
  bool quick_check_on_open = true;
  /// Tests only: called on the writer thread before each group (e.g. to hold the writer).
  std::function<void()> before_group_for_testing;
  /// Tests only: PRAGMA max_page_count on the write connection (0 = SQLite's default), to
  /// simulate a full disk.
  std::int64_t max_page_count_for_testing = 0;
};

/// Group-commit counters (for tests and metrics).
struct StoreStats {
  std::uint64_t commits = 0;
  std::uint64_t requests = 0;
  std::uint64_t max_group = 0;
  std::uint64_t failed_commits = 0;
};

/// The durable queue and delivery log. All writes go through one writer thread that folds
/// queued requests into one transaction (group commit: one fsync for many requests), then
/// calls each request's callback. Callbacks run on the writer thread: post to your own
/// executor and never block in them. Read methods are synchronous and thread-safe (own reader
/// connections); call them from a blocking thread, never from an I/O thread.
class Store {
 public:
  virtual ~Store() = default;

  using IntakeCallback = std::function<void(WriteStatus, std::vector<EventReceipt>)>;
  using ClaimCallback = std::function<void(WriteStatus, ClaimResult)>;
  using WriteCallback = std::function<void(WriteStatus)>;

  /// Stores events and their deliveries all-or-nothing. An event whose id exists already is
  /// not stored again: its receipt is the first one, with duplicate=true. Returns false at
  /// once (callback never called) when the write queue is full.
  virtual bool submit_events(std::vector<NewEvent> events, IntakeCallback done) = 0;

  /// Claims up to `limit` due pending deliveries per listed webhook (oldest due first) and
  /// marks them delivering.
  virtual void claim_due(common::TimePoint now, std::vector<std::pair<std::string, int>> limits,
                         ClaimCallback done) = 0;

  /// Writes the attempt row and the delivery's new state in one commit.
  virtual void record_attempt(AttemptRecord record, WriteCallback done) = 0;

  /// At start-up: deliveries left `delivering` by a crash become pending and due now.
  /// Returns how many. Synchronous.
  virtual std::size_t recover_interrupted(common::TimePoint now) = 0;

  /// Makes a delivery due now (any status but delivering). False: no such delivery.
  virtual void redeliver(std::string delivery_id, common::TimePoint now,
                         std::function<void(WriteStatus, bool found)> done) = 0;

  /// Webhook disabled (paused=true): its pending deliveries become paused, capped at
  /// `max_queued` (the oldest beyond it become dropped). Enabled (paused=false): its paused
  /// deliveries become pending, due now, oldest first.
  virtual void set_webhook_paused(std::string webhook_id, bool paused, std::size_t max_queued,
                                  WriteCallback done) = 0;

  /// Unfinished (pending, paused, delivering) deliveries of every webhook not in `known_ids`
  /// become cancelled.
  virtual void cancel_webhooks_except(std::vector<std::string> known_ids,
                                      std::function<void(WriteStatus, std::size_t)> done) = 0;

  /// Deletes at most `batch` rows older than `cutoff`: attempts, then finished deliveries
  /// (succeeded, failed, cancelled, dropped; by updated_at), then events left without
  /// deliveries. `removed == batch` means there may be more.
  virtual void prune_before(common::TimePoint cutoff, std::size_t batch,
                            std::function<void(WriteStatus, std::size_t removed)> done) = 0;

  [[nodiscard]] virtual StoreStats stats() const = 0;

  // ---- reads (blocking; any thread but an I/O thread) ----
  virtual std::optional<DeliveryRow> get_delivery(const std::string& id) = 0;
  virtual std::vector<DeliveryRow> list_deliveries(const DeliveryFilter& filter) = 0;
  /// Deliveries per (webhook, status).
  virtual std::vector<std::pair<std::pair<std::string, std::string>, std::int64_t>>
  count_by_webhook_status() = 0;
  /// True when the database is open and accepts a write (for /readyz).
  virtual bool writable() = 0;

  /// Finishes queued writes, stops the writer, closes connections. Idempotent.
  virtual void close() = 0;
};

/// Opens (creating and migrating when needed) the SQLite database. Throws StoreError.
std::unique_ptr<Store> open_sqlite_store(const StoreOptions& options);

}  // namespace relay::store
