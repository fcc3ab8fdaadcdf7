#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "relay/common/AttemptOutcome.hpp"
#include "relay/common/Time.hpp"

namespace relay::store {

enum class DeliveryStatus {
  kPending,
  kDelivering,
  kPaused,
  kSucceeded,
  kFailed,
  kCancelled,
  kDropped
};

/// "pending", "delivering", … as stored in deliveries.status.
std::string_view to_string(DeliveryStatus s);
std::optional<DeliveryStatus> parse_delivery_status(std::string_view text);

using common::AttemptOutcome;
/// "succeeded", "retry", "failed" as stored in attempts.outcome.
std::string_view to_string(AttemptOutcome o);

/// Result of a write request, given to its completion callback after the group commit.
enum class WriteStatus {
  kOk,
  kStorageUnavailable,  // disk full / I/O error: nothing of the request was written
  kShuttingDown,        // the store was closed before the request ran
  kRejected,  // the request itself broke a constraint (e.g. a delivery id used twice): it was
              // rolled back alone, nothing of it was written, the other requests of its group
              // committed; retrying it unchanged fails again
};

// ---- intake ----

struct NewDelivery {
  std::string id;  // dlv_…
  std::string webhook_id;
  DeliveryStatus status;   // kPending (due now), kPaused, or kDelivering (the caller sends it
                           // at once and records the attempt itself: test sends)
  std::size_t max_queued;  // for kPaused: cap on paused deliveries of this webhook
};

struct NewEvent {
  std::string id;  // evt_… or the client's idempotency key
  std::string event_type;
  common::TimePoint created_at;
  std::string payload;  // exact body bytes sent to subscribers
  std::vector<NewDelivery> deliveries;
};

/// What intake answers for one event: the stored one, or the first one with that id.
struct EventReceipt {
  std::string id;
  std::string event_type;
  common::TimePoint created_at;
  std::vector<std::pair<std::string, std::string>> deliveries;  // (delivery id, webhook id)
  bool duplicate = false;  // the id existed before this request: nothing new was stored
};

// ---- dispatcher ----

/// A delivery claimed for an attempt (its status is now `delivering`).
struct DueDelivery {
  std::string delivery_id;
  std::int64_t rowid = 0;  // the row's SQLite rowid: updates find it without the id index
  std::string event_id;
  std::string webhook_id;
  std::string event_type;
  int attempt_count = 0;  // attempts made before this one
  std::string payload;
};

struct ClaimResult {
  std::vector<DueDelivery> claimed;
  /// Earliest next_attempt_at among pending deliveries left unclaimed (for the one timer).
  std::optional<common::TimePoint> next_due;
};

/// One finished attempt plus the delivery's new state; written in one commit.
struct AttemptRecord {
  std::string delivery_id;
  std::string webhook_id;           // its webhook's health row is updated in the same commit
  std::int64_t delivery_rowid = 0;  // DueDelivery::rowid; 0 = find the row by delivery_id
  std::string event_id;             // for log lines only (the row already knows its event)
  int attempt_number = 0;           // 1-based; becomes deliveries.attempt_count
  common::TimePoint started_at;
  std::int64_t duration_ms = 0;
  std::string url;
  std::string request_headers;  // JSON object text; no secrets
  std::optional<int> response_status;
  std::string response_headers;  // JSON object text
  std::string response_body;     // already truncated by the caller
  std::string error;             // transport error text, empty when a response came
  AttemptOutcome outcome = AttemptOutcome::kRetry;
  DeliveryStatus new_status = DeliveryStatus::kPending;  // pending (retry), succeeded, failed, …
  std::optional<common::TimePoint> next_attempt_at;      // when new_status is pending
};

// ---- endpoint health (SPEC §10) ----

/// A webhook's stored health: relayd's own disable and the failure streak behind the circuit
/// breaker and auto-disable. Survives restarts and reloads (table webhook_state).
struct WebhookStateRow {
  std::string webhook_id;
  std::optional<std::string> disabled_reason;  // set: disabled by relayd or an operator
  std::optional<std::string> disabled_at;
  std::optional<std::string> last_success_at;
  std::optional<std::string> first_failure_at;  // first failure since the last success
  int consecutive_failures = 0;
};

// ---- admin reads ----

struct AttemptRow {
  std::int64_t id = 0;
  int attempt_number = 0;
  std::string started_at;
  std::int64_t duration_ms = 0;
  std::string url;
  std::string request_headers;
  std::optional<int> response_status;
  std::string response_headers;
  std::string response_body;
  std::string error;
  std::string outcome;
};

struct DeliveryRow {
  std::string id;
  std::string event_id;
  std::string webhook_id;
  std::string event_type;
  std::string status;
  int attempt_count = 0;
  std::optional<std::string> next_attempt_at;
  std::string created_at;
  std::string updated_at;
  std::optional<int> last_status_code;
  std::string last_error;
  std::vector<AttemptRow> attempts;  // filled by get_delivery only
  std::string payload;               // the event's exact body; filled by get_delivery only
};

/// A webhook created over the API (SPEC §11), as stored: `sealed` is the webhook's JSON
/// document encrypted by the daemon (common::SecretBox; the store never sees a secret).
struct StoredWebhook {
  std::string id;
  std::string sealed;      // bytes
  std::string created_at;  // RFC 3339 ms; set by the caller
  std::string updated_at;
};

struct DeliveryFilter {
  std::optional<std::string> webhook_id;
  std::optional<std::string> status;
  std::optional<std::string> event_type;
  std::optional<std::string> before_id;  // paging: deliveries with id < before_id
  int limit = 50;
};

// ---- admin aggregates (the web console, SPEC §12) ----

/// Attempts of one webhook started in a time window, by outcome, with latency percentiles.
struct WebhookAttemptStats {
  std::string webhook_id;
  std::int64_t attempts = 0;
  std::int64_t succeeded = 0;
  std::int64_t retry = 0;
  std::int64_t failed = 0;
  std::optional<std::int64_t> p50_ms;  // nearest-rank over duration_ms; none without attempts
  std::optional<std::int64_t> p99_ms;
};

/// Attempts started in one minute ("2026-05-01T12:34", UTC), by outcome.
struct AttemptMinute {
  std::string minute;
  std::int64_t succeeded = 0;
  std::int64_t retry = 0;
  std::int64_t failed = 0;
};

/// The console's figures from one pass over a window of attempts (AdminStore::attempt_summary).
struct AttemptSummary {
  std::vector<WebhookAttemptStats> whole;   // per webhook with attempts, the whole window
  std::vector<WebhookAttemptStats> recent;  // per webhook with attempts since recent_since
  std::vector<AttemptMinute> minutes;       // oldest first, minutes without attempts left out
};

}  // namespace relay::store
