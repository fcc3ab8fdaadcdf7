#pragma once

// The PostgreSQL backend of every store role (relay/store/Store.hpp, SPEC §14). One class,
// one file per seam, mirroring src/store/sqlite/:
//   PgStore.cpp          opening, readers, listener, counters
//   PgSchema.cpp         the schema and its migrations (advisory lock)
//   PgWriter.cpp         the writer thread: group commit, isolation, reconnects
//   PgIntake.cpp         events and their deliveries, the paused cap
//   PgDelivery.cpp       claims with leases, attempt records, recovery, redeliver
//   PgWebhooks.cpp       pause/resume/recover in chunks, cancelling, health rows, API webhooks,
//                        retention
//   PgReads.cpp          the admin API's reads and aggregates
// Several nodes write the same tables: every claim takes rows with FOR UPDATE SKIP LOCKED
// and stamps them with a lease (owner, until); a `delivering` row whose lease ran out is
// claimable again by anyone (at-least-once, same delivery id and body).

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "Pg.hpp"
#include "PgWriter.hpp"
#include "relay/store/Store.hpp"

namespace relay::store {

namespace pg {
int schema_version_known();
/// Creates or migrates the schema; concurrent callers on other nodes wait for the first.
void migrate(Connection& c, const std::string& where);

/// Blocking reads: a few connections, each read in one REPEATABLE READ snapshot.
class ReaderPool {
 public:
  ReaderPool(std::string dsn, std::string where, std::size_t size);
  template <typename F>
  auto read(const std::string& what, F&& fn) {
    auto lease = acquire();
    try {
      lease.conn->exec_script("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      auto out = fn(*lease.conn);
      lease.conn->exec_script("COMMIT");
      release(lease);
      return out;
    } catch (const PgError& e) {
      discard(lease);
      throw StoreError("cannot read " + what + " from " + where_ + ": " + e.what());
    } catch (...) {
      discard(lease);
      throw;
    }
  }
  void close();

 private:
  struct Lease {
    std::unique_ptr<Connection> conn;
  };
  Lease acquire();
  void release(Lease& l);
  void discard(Lease& l);

  const std::string dsn_;
  const std::string where_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mutex_
  std::size_t free_slots_;                         // guarded by mutex_
  bool closed_ = false;                            // guarded by mutex_
};

/// LISTEN relayd_work on a connection of its own; calls the wake handler on every
/// notification, and once per `sweep` without one (leases that ran out notify nobody).
class Listener {
 public:
  Listener(std::string dsn, std::string where, std::chrono::milliseconds sweep);
  ~Listener();
  void start(std::function<void()> wake);
  void stop();

 private:
  void loop();
  const std::string dsn_;
  const std::string where_;
  const std::chrono::milliseconds sweep_;
  std::function<void()> wake_;
  int stop_pipe_[2] = {-1, -1};
  std::thread thread_;
};
}  // namespace pg

class PgStore final : public Store {
 public:
  explicit PgStore(const PostgresStoreOptions& options);
  ~PgStore() override;

  // IntakeStore
  bool submit_events(std::vector<NewEvent> events, IntakeCallback done) override;
  bool writable() override;
  // DeliveryStore
  void claim_due(common::TimePoint now, std::vector<std::pair<std::string, int>> limits,
                 ClaimCallback done) override;
  void record_attempt(AttemptRecord record, WriteCallback done) override;
  void release_claimed(std::vector<DueDelivery> deliveries, WriteCallback done) override;
  void set_wake_handler(std::function<void()> wake) override;
  // AdminStore
  void redeliver(std::string delivery_id, common::TimePoint now,
                 std::function<void(WriteStatus, bool)> done) override;
  std::optional<DeliveryRow> get_delivery(const std::string& id) override;
  std::vector<DeliveryRow> list_deliveries(const DeliveryFilter& filter) override;
  std::vector<std::pair<std::pair<std::string, std::string>, std::int64_t>>
  count_by_webhook_status() override;
  std::optional<EventReceipt> get_event(const std::string& id) override;
  void put_api_webhook(StoredWebhook webhook, bool create,
                       std::function<void(WriteStatus, bool)> done) override;
  void delete_api_webhook(std::string id, std::function<void(WriteStatus, bool)> done) override;
  std::vector<StoredWebhook> list_api_webhooks() override;
  std::vector<WebhookAttemptStats> attempt_stats_since(common::TimePoint since) override;
  std::vector<AttemptMinute> attempts_per_minute(
      common::TimePoint since, const std::optional<std::string>& webhook_id) override;
  // MaintenanceStore
  std::size_t recover_interrupted(common::TimePoint now) override;
  void set_webhook_paused(std::string webhook_id, bool paused, std::size_t max_queued,
                          WriteCallback done, std::function<void()> resumed_some) override;
  void cancel_webhooks_except(std::vector<std::string> known_ids,
                              std::function<void(WriteStatus, std::size_t)> done) override;
  void prune_before(common::TimePoint cutoff, std::size_t batch,
                    std::function<void(WriteStatus, std::size_t)> done) override;
  [[nodiscard]] StoreStats stats() const override;
  void close() override;
  // HealthStore
  void set_webhook_disabled(std::string webhook_id, std::optional<std::string> reason,
                            common::TimePoint at, std::function<void(WriteStatus)> done) override;
  void recover_failed(std::string webhook_id, common::TimePoint since, common::TimePoint until,
                      common::TimePoint now, std::function<void(WriteStatus, std::size_t)> done,
                      std::function<void()> recovered_some) override;
  std::vector<WebhookStateRow> webhook_states() override;
  std::vector<std::pair<std::string, std::optional<common::TimePoint>>> oldest_due(
      const std::vector<std::string>& webhook_ids, common::TimePoint now) override;

 private:
  using Connection = pg::Connection;
  using WriteRequest = pg::WriteRequest;

  EventReceipt insert_event(pg::WriterContext& ctx, const NewEvent& e);
  static EventReceipt existing_receipt(Connection& c, const std::string& id);
  static void enforce_paused_cap(pg::WriterContext& ctx, const std::string& webhook_id,
                                 std::size_t max_queued, const std::string& now, bool one_added);
  void set_paused_chunk(std::string webhook_id, bool paused, std::size_t max_queued,
                        std::string now, std::optional<std::uint64_t> generation,
                        WriteCallback done, std::function<void()> resumed_some);
  void recover_chunk(std::string webhook_id, std::string since, std::string until, std::string now,
                     std::size_t total, std::function<void(WriteStatus, std::size_t)> done,
                     std::function<void()> recovered_some);
  std::size_t chunk() const { return std::max<std::size_t>(options_.bulk_chunk, 1); }

  const PostgresStoreOptions options_;
  const std::string where_;  // the redacted dsn
  std::unique_ptr<pg::PgWriter> writer_;
  std::unique_ptr<pg::ReaderPool> readers_;
  std::unique_ptr<pg::Listener> listener_;
  std::once_flag closed_;
};

}  // namespace relay::store
