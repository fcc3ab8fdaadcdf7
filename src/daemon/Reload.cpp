#include "relay/daemon/Reload.hpp"

#include <nlohmann/json.hpp>

#include "relay/server/HttpServer.hpp"

namespace relay::daemon {

void add_reload_route(server::HttpServer& server, ReloadFunction reload) {
  server.add_route(
      "POST", "/v1/reload",
      [reload = std::move(reload)](server::Request, std::function<void(server::Response)> respond) {
        // Reading a few small files: cheap enough for the I/O thread, and the
        // answer must wait for the outcome anyway (systemctl reload relies on it).
        const auto result = reload();
        server::Response r;
        nlohmann::json body;
        if (result.applied) {
          body = {{"status", "applied"}, {"webhooks", result.webhooks}};
        } else {
          r.status = 422;
          body = {{"error",
                   {{"code", "config_rejected"},
                    {"message",
                     "the new configuration was rejected; the previous one stays in "
                     "effect"},
                    {"problems", result.problems}}}};
        }
        r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        respond(std::move(r));
      });
}

}  // namespace relay::daemon
