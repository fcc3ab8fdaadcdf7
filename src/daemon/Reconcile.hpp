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

/// The same for one webhook that changed over the API: paused or resumed when `cfg` has it,
/// its unfinished deliveries cancelled when it does not. One write instead of one per webhook
/// (with 10,000 webhooks a full reconcile per API call would be 10,000 writes).
void reconcile_webhook(store::MaintenanceStore& store, const config::Config& cfg,
                       const std::string& id, const std::function<void()>& due);

}  // namespace relay::daemon
