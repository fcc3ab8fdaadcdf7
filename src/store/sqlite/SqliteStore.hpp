#pragma once

// The SQLite backend of every store role (relay/store/Store.hpp). One class, one file per
// seam:
//   SqliteStore.cpp      opening, closing, counters, readiness
//   Migrations.cpp       file checks, pragmas, schema migrations (Schema.cpp lists them)
//   WriterQueue.cpp      the writer thread: group commit, isolation, rollback (design note)
//   IntakeWrites.cpp     events and their deliveries, the paused cap
//   DeliveryWrites.cpp   claims, attempt records, crash recovery, redeliver
//   WebhookWrites.cpp    pause/resume in chunks, cancelling removed webhooks
//   Retention.cpp        pruning old rows in batches
//   ApiWebhooks.cpp      the rows of API-managed webhooks (sealed by the daemon)
//   Reads.cpp            the admin API's reads (ReaderPool: WAL snapshots)
// Every write builds a WriteRequest whose `apply` runs on the writer thread inside the
// group's transaction; nothing here touches SQLite from the caller's thread except reads.

#include <memory>
#include <string>

#include "Leases.hpp"
#include "ReaderPool.hpp"
#include "Sqlite.hpp"
#include "WriterQueue.hpp"
#include "relay/store/Store.hpp"

namespace relay::store {

class SqliteStore final : public Store {
 public:
  /// Opens (creating and migrating when needed) and starts the writer. Throws StoreError.
  explicit SqliteStore(const StoreOptions& options);
  ~SqliteStore() override;

  // IntakeStore
  bool submit_events(std::vector<NewEvent> events, IntakeCallback done) override;
  bool writable() override;
  // DeliveryStore
  void claim_due(common::TimePoint now, std::vector<std::pair<std::string, int>> limits,
                 ClaimCallback done) override;
  void record_attempt(AttemptRecord record, WriteCallback done) override;
  void record_attempt_shared(std::shared_ptr<const AttemptRecord> record,
                             WriteCallback done) override;
  void release_claimed(std::vector<DueDelivery> deliveries, WriteCallback done) override;
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
  AttemptSummary attempt_summary(common::TimePoint since, common::TimePoint recent_since,
                                 const std::optional<std::string>& webhook_id) override;
  std::vector<std::pair<std::string, std::int64_t>> count_by_status(
      const std::string& webhook_id) override;
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
  // HealthStore (WebhookWrites.cpp, Reads.cpp)
  void set_webhook_disabled(std::string webhook_id, std::optional<std::string> reason,
                            common::TimePoint at, std::function<void(WriteStatus)> done) override;
  void recover_failed(std::string webhook_id, common::TimePoint since, common::TimePoint until,
                      common::TimePoint now, std::function<void(WriteStatus, std::size_t)> done,
                      std::function<void()> recovered_some) override;
  std::vector<WebhookStateRow> webhook_states() override;
  std::vector<std::pair<std::string, std::optional<common::TimePoint>>> oldest_due(
      const std::vector<std::string>& webhook_ids, common::TimePoint now) override;

 private:
  using Connection = sqlite::Connection;
  using WriteRequest = sqlite::WriteRequest;

  // IntakeWrites.cpp
  EventReceipt insert_event(sqlite::WriteContext& ctx, const NewEvent& e);
  static EventReceipt existing_receipt(Connection& c, const std::string& id);
  void add_paused(sqlite::WriteContext& ctx, const std::string& webhook_id, std::size_t max_queued,
                  const std::string& now);
  // WebhookWrites.cpp
  void set_paused_chunk(std::string webhook_id, bool paused, std::size_t max_queued,
                        std::string now, std::optional<std::uint64_t> generation,
                        WriteCallback done, std::function<void()> resumed_some);
  void recover_chunk(std::string webhook_id, std::string since, std::string until, std::string now,
                     std::size_t total, std::function<void(WriteStatus, std::size_t)> done,
                     std::function<void()> recovered_some);
  static std::int64_t count_paused(Connection& c, const std::string& webhook_id);
  void enforce_paused_cap(sqlite::WriteContext& ctx, const std::string& webhook_id,
                          std::size_t max_queued, const std::string& now);
  std::int64_t drop_oldest_paused(sqlite::WriteContext& ctx, const std::string& webhook_id,
                                  std::int64_t n, const std::string& now);
  // Reads.cpp
  static DeliveryRow delivery_row(sqlite::Statement& q);

  const StoreOptions options_;
  // Claims held in memory (Leases.hpp); before writer_ and readers_, whose connections call it.
  sqlite::Leases leases_;
  std::unique_ptr<sqlite::WriterQueue> writer_;
  sqlite::ReaderPool readers_;
};

}  // namespace relay::store
