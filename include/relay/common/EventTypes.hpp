#pragma once

#include <algorithm>
#include <array>
#include <string_view>

/// The event catalogue of the user guide (SPEC §2), the one list config validation, intake and
/// the admin API's test send all check against. Adding a type here adds it everywhere.
namespace relay::common {

inline constexpr std::array<std::string_view, 12> kEventTypes = {
    "ticket.created",         "ticket.updated",      "ticket.status_changed",
    "ticket.assigned",        "ticket.deleted",      "message.created",
    "message.customer_reply", "message.agent_reply", "customer.created",
    "customer.updated",       "sla.warning",         "sla.breached"};

/// Exact, case-sensitive match against the catalogue ("ticket.*" is not a type).
[[nodiscard]] constexpr bool is_known_event_type(std::string_view type) noexcept {
  return std::find(kEventTypes.begin(), kEventTypes.end(), type) != kEventTypes.end();
}

}  // namespace relay::common
