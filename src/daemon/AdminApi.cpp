#include "relay/daemon/AdminApi.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <charconv>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "Console.hpp"
#include "StatsApi.hpp"
#include "WebhookStateJson.hpp"
#include "relay/common/EventTypes.hpp"
#include "relay/common/Ids.hpp"
#include "relay/common/Redaction.hpp"
#include "relay/common/Time.hpp"
#include "relay/config/ConfigLoader.hpp"
#include "relay/daemon/HealthApi.hpp"
#include "relay/daemon/Metrics.hpp"
#include "relay/delivery/HttpClient.hpp"
#include "relay/delivery/RequestBuilder.hpp"
#include "relay/dispatcher/Dispatcher.hpp"
#include "relay/server/HttpServer.hpp"
#include "relay/store/Store.hpp"

#include "ApiResponses.hpp"
#include "TestSend.hpp"

namespace relay::daemon {

namespace net = boost::asio;
using nlohmann::json;
using server::Request;
using server::Response;
using Respond = std::function<void(Response)>;

using api::error_response;
using api::json_response;
using api::query_value;

namespace {

// "/v1/deliveries/dlv_x/redeliver" with prefix "/v1/deliveries/" → "dlv_x/redeliver".
std::string path_rest(const std::string& path, const std::string& prefix) {
  return path.size() > prefix.size() ? path.substr(prefix.size()) : std::string();
}

json attempt_json(const store::AttemptRow& a) {
  json j = {{"attempt_number", a.attempt_number},
            {"started_at", a.started_at},
            {"duration_ms", a.duration_ms},
            {"url", a.url},
            {"outcome", a.outcome},
            {"response_status", a.response_status ? json(*a.response_status) : json(nullptr)},
            {"error", a.error.empty() ? json(nullptr) : json(a.error)},
            {"response_body", a.response_body}};
  for (const auto& [field, text] :
       {std::pair<const char*, const std::string*>{"request_headers", &a.request_headers},
        {"response_headers", &a.response_headers}}) {
    const auto parsed = json::parse(*text, nullptr, false);
    j[field] = parsed.is_discarded() ? json(*text) : parsed;
  }
  return j;
}

json delivery_json(const store::DeliveryRow& d, bool with_attempts) {
  json j = {{"id", d.id},
            {"event_id", d.event_id},
            {"webhook", d.webhook_id},
            {"event", d.event_type},
            {"status", d.status},
            {"attempt_count", d.attempt_count},
            {"next_attempt_at", d.next_attempt_at ? json(*d.next_attempt_at) : json(nullptr)},
            {"created_at", d.created_at},
            {"updated_at", d.updated_at},
            {"last_status_code", d.last_status_code ? json(*d.last_status_code) : json(nullptr)},
            {"last_error", d.last_error.empty() ? json(nullptr) : json(d.last_error)}};
  if (with_attempts) {
    json attempts = json::array();
    for (const auto& a : d.attempts) attempts.push_back(attempt_json(a));
    j["attempts"] = std::move(attempts);
    j["payload"] = d.payload;  // the exact body, as a string (SPEC §11)
  }
  return j;
}

}  // namespace

struct AdminApi::Impl : std::enable_shared_from_this<Impl> {
  Impl(store::Store& s, delivery::HttpClientPool& c, dispatcher::Dispatcher& d, Metrics& m,
       std::function<std::shared_ptr<const config::Config>()> cfg)
      : store(s), client(c), dispatcher(d), metrics(m), config(std::move(cfg)) {}

  store::Store& store;
  delivery::HttpClientPool& client;
  dispatcher::Dispatcher& dispatcher;
  Metrics& metrics;
  std::function<std::shared_ptr<const config::Config>()> config;
  // Set by register_routes() before the server starts.
  std::function<server::ConnectionStats()> connection_stats;
  // POST /v1/webhooks/{id}/<action> handled elsewhere (add_webhook_action), set before start.
  std::map<std::string,
           std::function<void(std::string, std::string, std::function<void(int, std::string)>)>>
      webhook_actions;
  HealthApi* health = nullptr;  // set before register_routes()
  // Store reads block: they run here, never on the I/O threads.
  net::thread_pool readers{2};

  // Runs `work` on the reader pool; an exception becomes a 500 with a generic message (the
  // detail goes to the log only).
  void blocking(Respond respond, std::function<Response()> work) {
    net::post(readers, [respond = std::move(respond), work = std::move(work)] {
      try {
        respond(work());
      } catch (const std::exception& e) {
        spdlog::error("admin API: {}", e.what());
        respond(error_response(500, "internal_error", "the request could not be served"));
      }
    });
  }

  Response metrics_text() {
    std::string body = metrics.render();
    const auto stats = dispatcher.stats();
    body +=
        "# HELP relayd_attempts_in_flight Delivery attempts currently in flight.\n"
        "# TYPE relayd_attempts_in_flight gauge\n"
        "relayd_attempts_in_flight " +
        std::to_string(stats.in_flight) + "\n";
    if (connection_stats) {
      const auto c = connection_stats();
      body +=
          "# HELP relayd_http_connections Open client connections.\n"
          "# TYPE relayd_http_connections gauge\n"
          "relayd_http_connections " +
          std::to_string(c.open) +
          "\n"
          "# HELP relayd_http_connections_limit The connection cap in effect.\n"
          "# TYPE relayd_http_connections_limit gauge\n"
          "relayd_http_connections_limit " +
          std::to_string(c.limit) +
          "\n"
          "# HELP relayd_http_connections_shed_total Idle connections closed at the cap to make "
          "room.\n"
          "# TYPE relayd_http_connections_shed_total counter\n"
          "relayd_http_connections_shed_total " +
          std::to_string(c.shed) +
          "\n"
          "# HELP relayd_http_connections_refused_total New connections refused at the cap "
          "(every connection busy).\n"
          "# TYPE relayd_http_connections_refused_total counter\n"
          "relayd_http_connections_refused_total " +
          std::to_string(c.refused) + "\n";
    }
    body +=
        "# HELP relayd_deliveries Deliveries in the database by webhook and status.\n"
        "# TYPE relayd_deliveries gauge\n";
    std::int64_t queued = 0;
    for (const auto& [key, n] : store.count_by_webhook_status()) {
      body += "relayd_deliveries{webhook=\"" + key.first + "\",status=\"" + key.second + "\"} " +
              std::to_string(n) + "\n";
      if (key.second == "pending" || key.second == "delivering") queued += n;
    }
    body +=
        "# HELP relayd_queue_depth Deliveries pending or delivering.\n"
        "# TYPE relayd_queue_depth gauge\n"
        "relayd_queue_depth " +
        std::to_string(queued) + "\n";
    body +=
        "# HELP relayd_storage_writable 1 when the database accepts writes (as /readyz), else "
        "0.\n"
        "# TYPE relayd_storage_writable gauge\n"
        "relayd_storage_writable " +
        std::string(store.writable() ? "1" : "0") + "\n";
    body += webhook_health_metrics();
    Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = std::move(body);
    return r;
  }

  // SPEC §10's per-webhook series: up, seconds since the last success, oldest due delivery.
  std::string webhook_health_metrics() {
    const auto cfg = config();
    const auto health = dispatcher.health();
    const auto now = common::now_ms();
    std::vector<std::string> ids;
    for (const auto& wh : cfg->webhooks) ids.push_back(wh.id);
    const auto due = store.oldest_due(ids, now);
    std::string up =
        "# HELP relayd_webhook_up 1 when the webhook is enabled and its circuit closed, else 0.\n"
        "# TYPE relayd_webhook_up gauge\n";
    std::string since =
        "# HELP relayd_webhook_last_success_age_seconds Seconds since the webhook's last "
        "successful attempt (absent before the first).\n"
        "# TYPE relayd_webhook_last_success_age_seconds gauge\n";
    std::string oldest =
        "# HELP relayd_webhook_oldest_due_age_seconds How long the webhook's oldest due "
        "delivery has been waiting past its due time (0: nothing due).\n"
        "# TYPE relayd_webhook_oldest_due_age_seconds gauge\n";
    auto seconds = [](std::chrono::milliseconds d) {
      return std::to_string(static_cast<double>(std::max<std::int64_t>(d.count(), 0)) / 1000.0);
    };
    for (std::size_t i = 0; i < cfg->webhooks.size(); ++i) {
      const auto& wh = cfg->webhooks[i];
      const auto label = "{webhook=\"" + wh.id + "\"} ";
      const auto h = health.find(wh.id);
      const bool open = h != health.end() && h->second.open_until.has_value();
      up += "relayd_webhook_up" + label + (wh.enabled && !open ? "1" : "0") + "\n";
      if (h != health.end() && h->second.last_success_at) {
        if (const auto t = common::parse_rfc3339(*h->second.last_success_at)) {
          since += "relayd_webhook_last_success_age_seconds" + label + seconds(now - *t) + "\n";
        }
      }
      const auto& d = due[i].second;
      oldest += "relayd_webhook_oldest_due_age_seconds" + label +
                (d ? seconds(now - *d) : std::string("0")) + "\n";
    }
    return up + since + oldest;
  }

  // Pages in the order of the configuration in effect (the file's webhooks in file order, then
  // the API's by id): `after` is the last id of the previous page, `next_after` that of this
  // one (null on the last page).
  Response webhooks_json(const Request& req) {
    const auto cfg = config();
    std::size_t limit = 100;
    if (const auto v = query_value(req, "limit")) {
      std::size_t n = 0;
      const auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
      if (ec != std::errc() || p != v->data() + v->size() || n < 1 || n > 1000) {
        return error_response(400, "invalid_request", "limit must be an integer from 1 to 1000");
      }
      limit = n;
    }
    std::size_t first = 0;
    if (const auto after = query_value(req, "after")) {
      const auto& all = cfg->webhooks;
      const auto it = std::find_if(all.begin(), all.end(),
                                   [&](const config::WebhookConfig& w) { return w.id == *after; });
      if (it == all.end()) {
        return error_response(400, "invalid_cursor",
                              "no webhook '" + *after + "' to continue after (it was deleted)");
      }
      first = static_cast<std::size_t>(it - all.begin()) + 1;
    }
    const auto activity = metrics.webhook_activity();
    const auto states = dispatcher.health();
    std::map<std::string, std::map<std::string, std::int64_t>> counts;
    for (const auto& [key, n] : store.count_by_webhook_status()) counts[key.first][key.second] = n;
    json list = json::array();
    const auto last = std::min(cfg->webhooks.size(), first + limit);
    for (std::size_t i = first; i < last; ++i) {
      const auto& wh = cfg->webhooks[i];
      const auto it = activity.find(wh.id);
      auto item =
          webhook_state_json(wh, states, counts[wh.id],
                             it != activity.end() ? it->second.last_failure_at : std::nullopt);
      item["source"] = wh.managed_by_api ? "api" : "config";
      list.push_back(std::move(item));
    }
    return json_response(200, {{"webhooks", list},
                               {"next_after", last < cfg->webhooks.size() && last > first
                                                  ? json(cfg->webhooks[last - 1].id)
                                                  : json(nullptr)}});
  }

  Response list_deliveries(const Request& req) {
    store::DeliveryFilter filter;
    filter.webhook_id = query_value(req, "webhook");
    filter.status = query_value(req, "status");
    filter.event_type = query_value(req, "event");
    filter.before_id = query_value(req, "before");
    if (filter.status && !store::parse_delivery_status(*filter.status)) {
      return error_response(400, "invalid_request", "unknown status '" + *filter.status + "'");
    }
    if (const auto limit = query_value(req, "limit")) {
      int n = 0;
      const auto [p, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), n);
      if (ec != std::errc() || p != limit->data() + limit->size() || n < 1 || n > 1000) {
        return error_response(400, "invalid_request", "limit must be an integer from 1 to 1000");
      }
      filter.limit = n;
    }
    const auto rows = store.list_deliveries(filter);
    json list = json::array();
    for (const auto& d : rows) list.push_back(delivery_json(d, false));
    json body = {{"deliveries", list}};
    body["next_before"] = static_cast<int>(rows.size()) == filter.limit && !rows.empty()
                              ? json(rows.back().id)
                              : json(nullptr);
    return json_response(200, body);
  }

  void route_delivery(const Request& req, Respond respond) {
    const auto rest = path_rest(req.path, "/v1/deliveries/");
    const auto slash = rest.find('/');
    const auto id = rest.substr(0, slash);
    const auto action = slash == std::string::npos ? std::string() : rest.substr(slash + 1);
    if (id.empty()) {
      respond(error_response(404, "not_found", "no such resource"));
      return;
    }
    if (action.empty()) {
      if (req.method != "GET") {
        respond(error_response(405, "method_not_allowed", "use GET"));
        return;
      }
      blocking(std::move(respond), [self = shared_from_this(), id] {
        const auto row = self->store.get_delivery(id);
        if (!row) return error_response(404, "not_found", "no delivery '" + id + "'");
        return json_response(200, delivery_json(*row, true));
      });
      return;
    }
    if (action == "redeliver") {
      if (req.method != "POST") {
        respond(error_response(405, "method_not_allowed", "use POST"));
        return;
      }
      // A delivery of a webhook no longer configured would sit pending forever: the
      // dispatcher only claims for configured webhooks. Look it up first (a read: off the I/O
      // thread), then ask the writer.
      net::post(readers, [self = shared_from_this(), id, respond = std::move(respond)]() mutable {
        std::optional<store::DeliveryRow> row;
        try {
          row = self->store.get_delivery(id);
        } catch (const std::exception& e) {
          spdlog::error("admin API: {}", e.what());
          respond(error_response(500, "internal_error", "the request could not be served"));
          return;
        }
        if (!row) {
          respond(error_response(404, "not_found", "no delivery '" + id + "'"));
          return;
        }
        if (self->config()->find_webhook(row->webhook_id) == nullptr) {
          respond(error_response(409, "webhook_removed",
                                 "delivery '" + id + "' belongs to webhook '" + row->webhook_id +
                                     "', which is no longer in the configuration; add it back "
                                     "(and reload) to deliver it again"));
          return;
        }
        self->redeliver_now(id, std::move(respond));
      });
      return;
    }
    respond(error_response(404, "not_found", "no such resource"));
  }

  void redeliver_now(const std::string& id, Respond respond) {
    store.redeliver(id, common::now_ms(),
                    [self = shared_from_this(), id, respond = std::move(respond)](
                        store::WriteStatus st, bool found) {
                      if (st != store::WriteStatus::kOk) {
                        respond(error_response(503, "storage_unavailable",
                                               "the database cannot be written right now"));
                      } else if (!found) {
                        respond(error_response(404, "not_found", "no delivery '" + id + "'"));
                      } else {
                        self->dispatcher.notify();
                        respond(json_response(202, {{"id", id}, {"status", "pending"}}));
                      }
                    });
  }

  void route_webhook(const Request& req, Respond respond) {
    const auto rest = path_rest(req.path, "/v1/webhooks/");
    const auto slash = rest.find('/');
    const auto id = rest.substr(0, slash);
    const auto action = slash == std::string::npos ? std::string() : rest.substr(slash + 1);
    if (health != nullptr && !id.empty() && health->handle_action(id, action, req, respond)) {
      return;
    }
    if (const auto it = webhook_actions.find(action); it != webhook_actions.end() && !id.empty()) {
      it->second(id, req.body, [respond = std::move(respond)](int status, std::string body) {
        Response r;
        r.status = status;
        r.body = std::move(body);
        respond(std::move(r));
      });
      return;
    }
    if (action != "test") {
      respond(error_response(404, "not_found", "no such resource"));
      return;
    }
    if (req.method != "POST") {
      auto r = error_response(405, "method_not_allowed",
                              req.method + " is not allowed here (allowed: POST)");
      r.headers.emplace_back("Allow", "POST");
      respond(std::move(r));
      return;
    }
    const auto cfg = config();
    const auto* wh = cfg->find_webhook(id);
    if (wh == nullptr) {
      respond(error_response(404, "not_found", "no webhook '" + id + "'"));
      return;
    }
    const auto body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      respond(error_response(400, "invalid_json", "the body must be a JSON object"));
      return;
    }
    if (!body.contains("event") || !body["event"].is_string()) {
      respond(error_response(422, "invalid_event", "\"event\" (a string) is required"));
      return;
    }
    const auto event_type = body["event"].get<std::string>();
    if (!common::is_known_event_type(event_type)) {
      respond(error_response(422, "unknown_event_type", "unknown event type '" + event_type + "'"));
      return;
    }
    if (!wh->matches(event_type)) {
      respond(error_response(422, "event_not_subscribed",
                             "webhook '" + id + "' does not subscribe to '" + event_type + "'"));
      return;
    }
    send_test_event(
        store, client,
        [self = shared_from_this()](std::function<void()> f) {
          net::post(self->readers, std::move(f));
        },
        cfg, *wh, event_type, std::move(respond));
  }
};

AdminApi::AdminApi(store::Store& store, delivery::HttpClientPool& client,
                   dispatcher::Dispatcher& dispatcher, Metrics& metrics,
                   std::function<std::shared_ptr<const config::Config>()> config)
    : impl_(std::make_shared<Impl>(store, client, dispatcher, metrics, std::move(config))) {}

AdminApi::~AdminApi() {
  stop();
}

void AdminApi::stop() {
  impl_->readers.join();
}

void AdminApi::add_webhook_action(
    std::string action,
    std::function<void(std::string, std::string, std::function<void(int, std::string)>)> handler) {
  impl_->webhook_actions[std::move(action)] = std::move(handler);
}

void AdminApi::set_health_api(HealthApi& health) {
  impl_->health = &health;
}

void AdminApi::register_routes(server::HttpServer& server) {
  auto impl = impl_;
  impl->connection_stats = [&server] { return server.connection_stats(); };
  // The web console and its aggregates (SPEC §12) live in their own files.
  register_console_routes(server);
  register_stats_routes(server, impl->store,
                        [impl](Respond respond, std::function<Response()> work) {
                          impl->blocking(std::move(respond), std::move(work));
                        });
  // The server checks the bearer token of every protected route (HttpServer::add_route).
  server.add_route("GET", "/metrics", [impl](Request, Respond respond) {
    impl->blocking(std::move(respond), [impl] { return impl->metrics_text(); });
  });
  server.add_route("GET", "/v1/webhooks", [impl](Request req, Respond respond) {
    impl->blocking(std::move(respond),
                   [impl, req = std::move(req)] { return impl->webhooks_json(req); });
  });
  // GET, PATCH and DELETE under /v1/webhooks/ are WebhookApi's (it answers 404 for a path that
  // is no resource, and 405 + Allow: POST for GET on an action).
  server.add_route("POST", "/v1/webhooks/", [impl](Request req, Respond respond) {
    impl->route_webhook(req, std::move(respond));
  });
  server.add_route("GET", "/v1/deliveries", [impl](Request req, Respond respond) {
    impl->blocking(std::move(respond),
                   [impl, req = std::move(req)] { return impl->list_deliveries(req); });
  });
  for (const char* method : {"GET", "POST"}) {
    server.add_route(method, "/v1/deliveries/", [impl](Request req, Respond respond) {
      impl->route_delivery(req, std::move(respond));
    });
  }
}

}  // namespace relay::daemon
