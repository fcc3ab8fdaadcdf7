#pragma once

#include <functional>

#include "relay/config/Config.hpp"
#include "relay/store/Store.hpp"

namespace relay::daemon {

/// Brings the stored deliveries in line with the webhooks of `cfg`: removed webhooks'
/// unfinished deliveries are cancelled, disabled ones' pending deliveries paused, enabled
/// ones' paused deliveries resumed. Idempotent, so it runs at every start and reload.
/// `due` runs whenever a chunk of resumed deliveries is committed (a large backlog is resumed
/// in chunks: delivery starts on the first instead of after the last), `then` once at the end.
/// Both run on the store's thread (see Store): they must only post. Failures are logged here.
void reconcile(store::MaintenanceStore& store, const config::Config& cfg,
               const std::function<void()>& due, std::function<void()> then);

}  // namespace relay::daemon
