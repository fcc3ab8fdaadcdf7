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
}

namespace relay::daemon {

class AdminApi;
class ConfigReloader;

/// Webhooks managed over the API (SPEC §11): `POST /v1/webhooks`, `GET`/`PATCH`/`DELETE
/// /v1/webhooks/{id}` and `POST /v1/webhooks/{id}/rotate-secret`. Each webhook is validated by
/// the config module's rules (config::parse_api_webhook), stored in the database sealed with
/// AES-256-GCM under `storage.secret_key_file` (the key in effect at start), durable before
/// the answer, and applied at once through the ConfigReloader (which serializes API changes
/// with file reloads). Thread-safe; its work runs on its own small thread pool.
class WebhookApi {
 public:
  WebhookApi(store::Store& store, ConfigReloader& reloader);
  ~WebhookApi();
  WebhookApi(const WebhookApi&) = delete;
  WebhookApi& operator=(const WebhookApi&) = delete;

  /// At start, before the server and dispatcher run: opens every stored webhook and hands them
  /// to the reloader. Throws std::runtime_error with one clear sentence when a stored webhook
  /// does not open (no key file, or a different key: the GCM tag check fails) or collides with
  /// a file webhook; relayd then refuses to start rather than sign with garbage.
  void load();

  /// Adds the routes; `rotate-secret` is a POST action under /v1/webhooks/{id}/, which the
  /// admin API routes.
  void register_routes(server::HttpServer& server, AdminApi& admin);

  /// Where GET /v1/webhooks/{id} gets the webhook's health state (a JSON object text whose
  /// fields are added to the answer), set before the server starts.
  void set_state_source(std::function<std::optional<std::string>(const std::string&)> source);

  /// Waits for requests in progress and stops the thread pool.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace relay::daemon
