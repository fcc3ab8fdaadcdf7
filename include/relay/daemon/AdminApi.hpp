#pragma once

#include <functional>
#include <memory>
#include <string>

#include "relay/config/Config.hpp"

namespace boost::asio {
class io_context;
}
namespace relay::store {
class Store;
}
namespace relay::delivery {
class HttpClientPool;
}
namespace relay::server {
class HttpServer;
}
namespace relay::dispatcher {
class Dispatcher;
}

namespace relay::daemon {

class Metrics;
class HealthApi;

/// The admin API of SPEC §3 (metrics, webhooks, deliveries, redeliver, test send), added as
/// routes to the HttpServer. Store reads run on its own small thread pool, never on I/O
/// threads. Thread-safe.
class AdminApi {
 public:
  AdminApi(store::Store& store, delivery::HttpClientPool& client,
           dispatcher::Dispatcher& dispatcher, Metrics& metrics,
           std::function<std::shared_ptr<const config::Config>()> config);
  ~AdminApi();
  AdminApi(const AdminApi&) = delete;
  AdminApi& operator=(const AdminApi&) = delete;

  /// Before register_routes: enable, disable, recover under /v1/webhooks/{id}/ go to `health`.
  void set_health_api(HealthApi& health);
  void register_routes(server::HttpServer& server);
  /// A POST action `/v1/webhooks/{id}/<action>` answered by another component (e.g.
  /// rotate-secret). Call before the server starts.
  void add_webhook_action(std::string action,
                          std::function<void(std::string id, std::string body,
                                             std::function<void(int, std::string)> respond)>
                              handler);
  /// Stops the blocking-read pool (waits for running reads).
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace relay::daemon
