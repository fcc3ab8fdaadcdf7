#include "relay/daemon/Reload.hpp"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "ConfigDiff.hpp"
#include "relay/server/HttpServer.hpp"
#include "relay/store/Store.hpp"

namespace relay::daemon {

namespace {

std::string rejected_body(const std::vector<std::string>& problems, bool dry_run) {
  return nlohmann::json{{"error",
                         {{"code", "config_rejected"},
                          {"message", dry_run ? "the new configuration would be rejected; the "
                                                "current one stays in effect"
                                              : "the new configuration was rejected; the "
                                                "previous one stays in effect"},
                          {"problems", problems}}}}
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool wants_dry_run(const server::Request& req) {
  for (const auto& [k, v] : req.query) {
    if (k == "dry_run") return v == "true" || v == "1";
  }
  return false;
}

}  // namespace

PreviewFunction make_reload_preview(const ConfigReloader& reloader, store::AdminStore& store,
                                    std::function<void(std::function<void()>)> run_blocking) {
  return [&reloader, &store, run_blocking = std::move(run_blocking)](PreviewRespond respond) {
    run_blocking([&reloader, &store, respond = std::move(respond)] {
      try {
        const auto p = reloader.preview();
        if (!p.problems.empty()) {
          respond(422, rejected_body(p.problems, true));
          return;
        }
        DeliveryCounts counts;
        for (const auto& [key, n] : store.count_by_webhook_status()) {
          counts[key.first][key.second] = n;
        }
        const auto diff = diff_configs(*p.current, *p.next);
        respond(200, preview_json(diff, *p.next, counts, p.warnings));
      } catch (const std::exception& e) {
        spdlog::error("reload dry run: {}", e.what());
        respond(500, nlohmann::json{{"error",
                                     {{"code", "internal_error"},
                                      {"message", "the dry run could not be completed"}}}}
                         .dump());
      }
    });
  };
}

void add_reload_route(server::HttpServer& server, ReloadFunction reload, PreviewFunction preview) {
  server.add_route(
      "POST", "/v1/reload",
      [reload = std::move(reload), preview = std::move(preview)](
          server::Request req, std::function<void(server::Response)> respond) {
        if (wants_dry_run(req)) {
          if (!preview) {
            server::Response r;
            r.status = 501;
            r.body = R"({"error":{"code":"not_supported","message":"no dry run here"}})";
            respond(std::move(r));
            return;
          }
          preview([respond](int status, std::string body) {
            server::Response r;
            r.status = status;
            r.body = std::move(body);
            respond(std::move(r));
          });
          return;
        }
        // Reading a few small files: cheap enough for the I/O thread, and the
        // answer must wait for the outcome anyway (systemctl reload relies on it).
        const auto result = reload();
        server::Response r;
        nlohmann::json body;
        if (result.applied) {
          body = {
              {"status", "applied"}, {"webhooks", result.webhooks}, {"warnings", result.warnings}};
          r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        } else {
          r.status = 422;
          r.body = rejected_body(result.problems, false);
        }
        respond(std::move(r));
      });
}

}  // namespace relay::daemon
