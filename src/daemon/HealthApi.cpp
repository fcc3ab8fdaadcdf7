// Endpoint health over the admin API: enable, disable, recover, one webhook's state.
// The circuit breaker itself is the dispatcher's (scheduling); this file only stores and
// applies what an operator or the dispatcher decided.
#include "relay/daemon/HealthApi.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <map>
#include <nlohmann/json.hpp>

#include "WebhookStateJson.hpp"
#include "relay/common/Redaction.hpp"
#include "relay/common/Time.hpp"
#include "relay/daemon/ConfigReloader.hpp"
#include "relay/dispatcher/Dispatcher.hpp"
#include "relay/server/HttpServer.hpp"
#include "relay/store/Store.hpp"

#include "ApiResponses.hpp"

namespace relay::daemon {

namespace net = boost::asio;
using nlohmann::json;
using server::Request;
using server::Response;

using api::error_response;
using api::json_response;

namespace {

std::string state_of(const config::WebhookConfig& wh) {
  if (wh.disabled_reason) return "disabled";
  return wh.enabled ? "enabled" : "disabled_by_config";
}

}  // namespace

json webhook_state_json(const config::WebhookConfig& wh,
                        const std::map<std::string, dispatcher::WebhookHealthView>& health,
                        const std::map<std::string, std::int64_t>& counts,
                        const std::optional<std::string>& last_failure_at) {
  json c = json::object();
  for (const char* s :
       {"pending", "delivering", "paused", "succeeded", "failed", "cancelled", "dropped"}) {
    const auto it = counts.find(s);
    c[s] = it == counts.end() ? 0 : it->second;
  }
  const auto h = health.find(wh.id);
  const bool open = h != health.end() && h->second.open_until.has_value();
  json item = {{"id", wh.id},
               {"url", common::redact_url(wh.url)},
               {"events", wh.events},
               {"enabled", wh.enabled},
               {"state", state_of(wh)},
               {"disabled_reason", wh.disabled_reason ? json(*wh.disabled_reason) : json(nullptr)},
               {"disabled_at", wh.disabled_at ? json(*wh.disabled_at) : json(nullptr)},
               {"circuit", open ? "open" : "closed"},
               {"circuit_open_until",
                open ? json(common::format_rfc3339_ms(*h->second.open_until)) : json(nullptr)},
               {"consecutive_failures", h == health.end() ? 0 : h->second.consecutive_failures},
               {"deliveries", c}};
  item["last_success_at"] = h != health.end() && h->second.last_success_at
                                ? json(*h->second.last_success_at)
                                : json(nullptr);
  item["last_failure_at"] = last_failure_at ? json(*last_failure_at) : json(nullptr);
  return item;
}

struct HealthApi::Impl : std::enable_shared_from_this<Impl> {
  Impl(store::Store& s, dispatcher::Dispatcher& d, ConfigReloader& r)
      : store(s), dispatcher(d), reloader(r) {}

  store::Store& store;
  dispatcher::Dispatcher& dispatcher;
  ConfigReloader& reloader;
  net::thread_pool readers{1};

  void disable(const std::string& id, std::string reason, std::function<void(bool)> done) {
    const auto now = common::now_ms();
    store.set_webhook_disabled(
        id, reason, now,
        [self = shared_from_this(), id, reason, now,
         done = std::move(done)](store::WriteStatus st) {
          if (st != store::WriteStatus::kOk) {
            spdlog::error("webhook={}: cannot store its disable ({}): storage unavailable", id,
                          reason);
            if (done) done(false);
            return;
          }
          spdlog::error(
              "webhook disabled webhook={} reason=\"{}\": its deliveries are paused until "
              "`relayd enable {}`",
              id, reason, id);
          self->reloader.set_disabled(
              id, ConfigReloader::RuntimeDisable{reason, common::format_rfc3339_ms(now)});
          if (done) done(true);
        });
  }

  void enable(const std::string& id, std::function<void(bool)> done) {
    store.set_webhook_disabled(
        id, std::nullopt, common::now_ms(),
        [self = shared_from_this(), id, done = std::move(done)](store::WriteStatus st) {
          if (st != store::WriteStatus::kOk) {
            spdlog::error("webhook={}: cannot store its enable: storage unavailable", id);
            if (done) done(false);
            return;
          }
          self->dispatcher.reset_health(id);
          self->reloader.set_disabled(id, std::nullopt);
          spdlog::info("webhook enabled webhook={}: its paused deliveries resume oldest first", id);
          if (done) done(true);
        });
  }

  // Counts only this webhook's deliveries (one range of the index), not every webhook's.
  json one_state(const config::WebhookConfig& wh,
                 const std::optional<std::string>& last_failure_at = std::nullopt) {
    std::map<std::string, std::int64_t> counts;
    for (auto& [status, n] : store.count_by_status(wh.id)) counts[std::move(status)] = n;
    return webhook_state_json(wh, dispatcher.health(), counts, last_failure_at);
  }

  void answer_state(const std::string& id, int status, HealthApi::Respond respond) {
    net::post(readers, [self = shared_from_this(), id, status, respond = std::move(respond)] {
      try {
        const auto cfg = self->reloader.current();
        const auto* wh = cfg->find_webhook(id);
        if (wh == nullptr) {
          respond(error_response(404, "not_found", "no webhook '" + id + "'"));
          return;
        }
        respond(json_response(status, self->one_state(*wh)));
      } catch (const std::exception& e) {
        spdlog::error("admin API: {}", e.what());
        respond(error_response(500, "internal_error", "the request could not be served"));
      }
    });
  }

  void recover(const std::string& id, const Request& req, HealthApi::Respond respond) {
    const auto body = json::parse(req.body.empty() ? std::string("{}") : req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      respond(error_response(400, "invalid_json", "the body must be a JSON object"));
      return;
    }
    auto time_field = [&](const char* name) -> std::optional<common::TimePoint> {
      if (!body.contains(name) || !body[name].is_string()) return std::nullopt;
      return common::parse_rfc3339(body[name].get<std::string>());
    };
    for (const auto& [key, value] : body.items()) {
      if (key != "since" && key != "until") {
        respond(error_response(422, "invalid_request",
                               "unknown field '" + key + "' (expected since and until)"));
        return;
      }
    }
    const auto since = time_field("since");
    if (!since) {
      respond(
          error_response(422, "invalid_request",
                         "\"since\" (an RFC 3339 time, e.g. 2026-01-15T00:00:00Z) is required"));
      return;
    }
    const auto now = common::now_ms();
    auto until = now;
    if (body.contains("until") && !body["until"].is_null()) {
      const auto u = time_field("until");
      if (!u) {
        respond(error_response(422, "invalid_request",
                               "\"until\" must be an RFC 3339 time, e.g. 2026-01-16T00:00:00Z"));
        return;
      }
      until = *u;
    }
    if (!(*since < until)) {
      respond(error_response(422, "invalid_request", "\"since\" must be before \"until\""));
      return;
    }
    const auto cfg = reloader.current();
    const auto* wh = cfg->find_webhook(id);
    if (wh == nullptr) {
      respond(error_response(404, "not_found", "no webhook '" + id + "'"));
      return;
    }
    if (!wh->enabled) {
      respond(error_response(409, "webhook_disabled",
                             "webhook '" + id +
                                 "' is disabled: enable it first (recovered deliveries would "
                                 "only be paused)"));
      return;
    }
    const auto since_text = common::format_rfc3339_ms(*since);
    const auto until_text = common::format_rfc3339_ms(until);
    store.recover_failed(
        id, *since, until, now,
        [id, since_text, until_text, respond = std::move(respond)](store::WriteStatus st,
                                                                   std::size_t n) {
          if (st != store::WriteStatus::kOk) {
            spdlog::error("recover webhook={}: storage unavailable after {} deliveries", id, n);
            respond(error_response(503, "storage_unavailable",
                                   "the database cannot be written right now (" +
                                       std::to_string(n) + " deliveries were recovered)"));
            return;
          }
          spdlog::info("recovered webhook={} deliveries={} created in [{}, {})", id, n, since_text,
                       until_text);
          respond(json_response(
              200,
              {{"webhook", id}, {"recovered", n}, {"since", since_text}, {"until", until_text}}));
        },
        [self = shared_from_this()] { self->dispatcher.notify(); });
  }
};

HealthApi::HealthApi(store::Store& store, dispatcher::Dispatcher& dispatcher,
                     ConfigReloader& reloader)
    : impl_(std::make_shared<Impl>(store, dispatcher, reloader)) {}

HealthApi::~HealthApi() {
  stop();
}

void HealthApi::stop() {
  impl_->readers.join();
}

void HealthApi::restore() {
  auto rows = impl_->store.webhook_states();
  std::map<std::string, ConfigReloader::RuntimeDisable> disabled;
  for (const auto& r : rows) {
    if (!r.disabled_reason) continue;
    disabled[r.webhook_id] = {*r.disabled_reason, r.disabled_at.value_or("")};
    spdlog::warn("webhook={} stays disabled (since {}): {}; `relayd enable {}` resumes it",
                 r.webhook_id, r.disabled_at.value_or("?"), *r.disabled_reason, r.webhook_id);
  }
  impl_->reloader.restore_disabled(std::move(disabled));
  impl_->dispatcher.restore_health(std::move(rows));
}

void HealthApi::disable(const std::string& webhook_id, std::string reason,
                        std::function<void(bool)> done) {
  impl_->disable(webhook_id, std::move(reason), std::move(done));
}

void HealthApi::enable(const std::string& webhook_id, std::function<void(bool)> done) {
  impl_->enable(webhook_id, std::move(done));
}

bool HealthApi::handle_action(const std::string& webhook_id, const std::string& action,
                              const Request& req, Respond& respond) {
  if (action != "enable" && action != "disable" && action != "recover") return false;
  if (req.method != "POST") {
    respond(error_response(405, "method_not_allowed", "use POST"));
    return true;
  }
  if (action == "recover") {
    impl_->recover(webhook_id, req, std::move(respond));
    return true;
  }
  if (impl_->reloader.current()->find_webhook(webhook_id) == nullptr) {
    respond(error_response(404, "not_found", "no webhook '" + webhook_id + "'"));
    return true;
  }
  auto after = [impl = impl_, webhook_id, respond = std::move(respond)](bool ok) mutable {
    if (!ok) {
      respond(
          error_response(503, "storage_unavailable", "the database cannot be written right now"));
      return;
    }
    impl->answer_state(webhook_id, 200, std::move(respond));
  };
  if (action == "enable") {
    impl_->enable(webhook_id, std::move(after));
  } else {
    impl_->disable(webhook_id, "disabled by an operator", std::move(after));
  }
  return true;
}

std::optional<std::string> HealthApi::state_json(
    const std::string& webhook_id, const std::optional<std::string>& last_failure_at) {
  const auto cfg = impl_->reloader.current();
  const auto* wh = cfg->find_webhook(webhook_id);
  if (wh == nullptr) return std::nullopt;
  return impl_->one_state(*wh, last_failure_at)
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace relay::daemon
