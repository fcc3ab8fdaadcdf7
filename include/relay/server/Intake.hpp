#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relay/common/EventTypes.hpp"
#include "relay/common/Time.hpp"
#include "relay/config/Config.hpp"
#include "relay/store/Types.hpp"

/// Intake parsing and validation (SPEC §3) as pure functions: bytes in, either an error or
/// validated events out. No networking here, so unit tests and fuzz targets can call it.
/// Everything is thread-safe (no shared state); nothing throws except std::bad_alloc.
namespace relay::server {

/// The event catalogue lives in common/EventTypes.hpp (one list for config, intake and tests).
using common::is_known_event_type;
using common::kEventTypes;

inline constexpr std::size_t kMaxBatchEvents = 1000;
inline constexpr std::size_t kMaxEventIdLength = 128;
/// Deeper JSON nesting is refused (400 invalid_json) before parsing, so no recursive code
/// (serialisation, a subscriber's parser) ever sees a stack-exhausting document.
inline constexpr std::size_t kMaxJsonDepth = 256;

/// 1–128 characters of [A-Za-z0-9_.:-].
[[nodiscard]] bool is_valid_event_id(std::string_view id);

/// "application/json", any case, optionally followed by parameters ("; charset=utf-8").
[[nodiscard]] bool is_json_content_type(std::string_view content_type);

/// An answer other than success: HTTP status, error code, message, and for a batch the index
/// of the first invalid item.
struct IntakeError {
  int status = 400;
  std::string code;
  std::string message;
  std::optional<std::size_t> index;

  /// {"error":{"code":"…","message":"…"[,"index":i]}}
  [[nodiscard]] std::string to_json() const;
};

/// One valid event as the client sent it.
struct ValidatedEvent {
  std::string id;  // the client's id; empty when none was given
  std::string event_type;
  std::string data;  // compact JSON of `data`, object keys in the client's order
};

enum class IntakeKind { kSingle, kBatch };

struct IntakeParseResult {
  std::optional<IntakeError> error;
  std::vector<ValidatedEvent> events;  // empty when error is set

  [[nodiscard]] bool ok() const { return !error.has_value(); }
};

/// Checks the Content-Type, parses and validates a POST /v1/events (kSingle) or
/// /v1/events/batch (kBatch) body. A batch is all or nothing: the first invalid item's error,
/// with its index, and no events.
[[nodiscard]] IntakeParseResult parse_intake(std::optional<std::string_view> content_type,
                                             std::string_view body, IntakeKind kind);

/// The exact bytes subscribers receive:
/// {"id":"…","event":"…","created_at":"2025-01-15T10:30:00Z","data":…}
[[nodiscard]] std::string build_payload(std::string_view id, std::string_view event_type,
                                        common::TimePoint created_at, std::string_view data_json);

/// Validated events → what the store writes: id (the client's, else a new evt_ id), payload
/// built once, one delivery per matching webhook (paused when the webhook is disabled).
[[nodiscard]] std::vector<store::NewEvent> build_new_events(std::vector<ValidatedEvent> events,
                                                            const config::Config& config,
                                                            common::TimePoint now);

/// {"id":"…","event":"…","created_at":"…","deliveries":[{"id":"dlv_…","webhook":"…"}]}
/// (created_at with seconds precision, like the payload). Equal receipts → equal bytes.
[[nodiscard]] std::string receipt_json(const store::EventReceipt& receipt);

/// {"events":[receipt, …]}
[[nodiscard]] std::string batch_receipt_json(const std::vector<store::EventReceipt>& receipts);

/// {"error":{"code":"…","message":"…"[,"index":i]}}
[[nodiscard]] std::string error_json(std::string_view code, std::string_view message,
                                     std::optional<std::size_t> index = std::nullopt);

}  // namespace relay::server
