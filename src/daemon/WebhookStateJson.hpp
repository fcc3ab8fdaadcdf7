#pragma once

// The per-webhook item of GET /v1/webhooks and GET /v1/webhooks/{id} (SPEC §10), shared by
// AdminApi (the list) and HealthApi (one webhook). Defined in HealthApi.cpp.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "relay/config/Config.hpp"
#include "relay/dispatcher/Dispatcher.hpp"

namespace relay::daemon {

/// `counts`: deliveries by status; `last_failure_at`: since this start (metrics).
nlohmann::json webhook_state_json(
    const config::WebhookConfig& wh,
    const std::map<std::string, dispatcher::WebhookHealthView>& health,
    const std::map<std::string, std::int64_t>& counts,
    const std::optional<std::string>& last_failure_at);

}  // namespace relay::daemon
