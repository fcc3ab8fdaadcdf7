#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace relay::store {
class Store;
}
namespace relay::server {
class HttpServer;
struct Request;
struct Response;
}  // namespace relay::server
namespace relay::dispatcher {
class Dispatcher;
}

namespace relay::daemon {

class ConfigReloader;

/// Endpoint health (SPEC §10): disabling and enabling webhooks (by relayd itself or an
/// operator), recovering failed deliveries, and the routes for them:
///   POST /v1/webhooks/{id}/enable | disable | recover,  GET /v1/webhooks/{id}.
/// A disable is stored (webhook_state) before it takes effect, so it survives restarts and
/// reloads; it then pauses the webhook through the ConfigReloader like `enabled: false`.
/// Thread-safe; store reads run on its own small pool, never on an I/O thread.
class HealthApi {
 public:
  HealthApi(store::Store& store, dispatcher::Dispatcher& dispatcher, ConfigReloader& reloader);
  ~HealthApi();
  HealthApi(const HealthApi&) = delete;
  HealthApi& operator=(const HealthApi&) = delete;

  /// At start-up (before the dispatcher starts): stored disables and failure streaks.
  /// Throws store::StoreError when the database cannot be read.
  void restore();

  /// Disables `webhook_id` with `reason` (logged as an error); `done(true)` once stored.
  void disable(const std::string& webhook_id, std::string reason, std::function<void(bool)> done);
  /// Clears relayd's disable and the failure streak; paused deliveries resume oldest first.
  void enable(const std::string& webhook_id, std::function<void(bool)> done);

  using Respond = std::function<void(server::Response)>;
  /// POST /v1/webhooks/{id}/{action} for enable, disable, recover; false: not one of them.
  bool handle_action(const std::string& webhook_id, const std::string& action,
                     const server::Request& req, Respond& respond);
  /// The SPEC §10 state of one webhook (state, circuit, counts, last success, …) as a JSON
  /// object text; nullopt for an unknown id. Blocking (reads the store): call it from a
  /// blocking thread. GET /v1/webhooks/{id} merges it into the webhook's view.
  /// `last_failure_at`: the webhook's last failed attempt since this start (the metrics).
  std::optional<std::string> state_json(
      const std::string& webhook_id,
      const std::optional<std::string>& last_failure_at = std::nullopt);
  /// Waits for running reads.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace relay::daemon
