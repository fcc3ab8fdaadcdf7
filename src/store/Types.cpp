#include "relay/store/Types.hpp"

namespace relay::store {

std::string_view to_string(DeliveryStatus s) {
  switch (s) {
    case DeliveryStatus::kPending:
      return "pending";
    case DeliveryStatus::kDelivering:
      return "delivering";
    case DeliveryStatus::kPaused:
      return "paused";
    case DeliveryStatus::kSucceeded:
      return "succeeded";
    case DeliveryStatus::kFailed:
      return "failed";
    case DeliveryStatus::kCancelled:
      return "cancelled";
    case DeliveryStatus::kDropped:
      return "dropped";
  }
  return "pending";
}

std::optional<DeliveryStatus> parse_delivery_status(std::string_view text) {
  for (auto s : {DeliveryStatus::kPending, DeliveryStatus::kDelivering, DeliveryStatus::kPaused,
                 DeliveryStatus::kSucceeded, DeliveryStatus::kFailed, DeliveryStatus::kCancelled,
                 DeliveryStatus::kDropped}) {
    if (to_string(s) == text) return s;
  }
  return std::nullopt;
}

std::string_view to_string(AttemptOutcome o) {
  switch (o) {
    case AttemptOutcome::kSucceeded:
      return "succeeded";
    case AttemptOutcome::kRetry:
      return "retry";
    case AttemptOutcome::kFailed:
      return "failed";
  }
  return "retry";
}

}  // namespace relay::store
