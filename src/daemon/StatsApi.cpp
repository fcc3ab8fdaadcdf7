#include "StatsApi.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "relay/common/Time.hpp"
#include "relay/store/Store.hpp"

#include "ApiResponses.hpp"

namespace relay::daemon {

using nlohmann::json;
using server::Request;
using server::Response;

using api::error_response;
using api::json_response;
using api::query_value;

namespace {

json window_json(const store::WebhookAttemptStats* s) {
  if (s == nullptr) {
    return {{"attempts", 0},           {"succeeded", 0},    {"retry", 0},       {"failed", 0},
            {"success_rate", nullptr}, {"p50_ms", nullptr}, {"p99_ms", nullptr}};
  }
  const auto opt = [](const std::optional<std::int64_t>& v) { return v ? json(*v) : json(); };
  return {{"attempts", s->attempts},
          {"succeeded", s->succeeded},
          {"retry", s->retry},
          {"failed", s->failed},
          {"success_rate", s->attempts > 0 ? json(static_cast<double>(s->succeeded) /
                                                  static_cast<double>(s->attempts))
                                           : json()},
          {"p50_ms", opt(s->p50_ms)},
          {"p99_ms", opt(s->p99_ms)}};
}

// The per-webhook windows of GET /v1/stats/webhooks and GET /v1/stats/summary. Every webhook
// with an attempt in the day has its row; the hour's may be missing.
json webhooks_json(const store::AttemptSummary& s) {
  json list = json::array();
  for (const auto& d : s.whole) {
    const auto h = std::find_if(s.recent.begin(), s.recent.end(),
                                [&](const auto& x) { return x.webhook_id == d.webhook_id; });
    list.push_back({{"id", d.webhook_id},
                    {"last_hour", window_json(h != s.recent.end() ? &*h : nullptr)},
                    {"last_day", window_json(&d)}});
  }
  return list;
}

json minutes_json(const std::vector<store::AttemptMinute>& minutes) {
  json out = json::array();
  for (const auto& m : minutes) {
    out.push_back({{"minute", m.minute + ":00Z"},
                   {"succeeded", m.succeeded},
                   {"retry", m.retry},
                   {"failed", m.failed}});
  }
  return out;
}

Response webhook_stats(store::AdminStore& store) {
  const auto now = common::now_ms();
  // Both windows from one pass over the day (the hour is its tail).
  const auto s = store.attempt_summary(now - std::chrono::hours(24), now - std::chrono::hours(1),
                                       std::nullopt);
  return json_response(
      200, {{"generated_at", common::format_rfc3339_ms(now)}, {"webhooks", webhooks_json(s)}});
}

std::optional<Response> webhook_param(const Request& req, std::optional<std::string>& webhook) {
  webhook = query_value(req, "webhook");
  if (webhook && webhook->empty()) {
    return error_response(400, "invalid_request", "webhook must not be empty");
  }
  return std::nullopt;
}

// What a console page shows of the attempts, from one pass over the last day's: the
// GET /v1/stats/webhooks windows (only `webhook`'s when given) and GET /v1/stats/attempts's
// minutes over 24 hours.
Response summary(store::AdminStore& store, const Request& req) {
  std::optional<std::string> webhook;
  if (auto bad = webhook_param(req, webhook)) return std::move(*bad);
  const auto now = common::now_ms();
  const auto since = now - std::chrono::hours(24);
  const auto s = store.attempt_summary(since, now - std::chrono::hours(1), webhook);
  return json_response(200, {{"generated_at", common::format_rfc3339_ms(now)},
                             {"since", common::format_rfc3339_ms(since)},
                             {"until", common::format_rfc3339_ms(now)},
                             {"webhook", webhook ? json(*webhook) : json()},
                             {"webhooks", webhooks_json(s)},
                             {"minutes", minutes_json(s.minutes)}});
}

Response attempts_per_minute(store::AdminStore& store, const Request& req) {
  int hours = 24;
  if (const auto text = query_value(req, "hours")) {
    const auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), hours);
    if (ec != std::errc() || p != text->data() + text->size() || hours < 1 || hours > 24) {
      return error_response(400, "invalid_request", "hours must be an integer from 1 to 24");
    }
  }
  std::optional<std::string> webhook;
  if (auto bad = webhook_param(req, webhook)) return std::move(*bad);
  const auto now = common::now_ms();
  const auto since = now - std::chrono::hours(hours);
  return json_response(200, {{"since", common::format_rfc3339_ms(since)},
                             {"until", common::format_rfc3339_ms(now)},
                             {"webhook", webhook ? json(*webhook) : json()},
                             {"minutes", minutes_json(store.attempts_per_minute(since, webhook))}});
}

}  // namespace

void register_stats_routes(server::HttpServer& server, store::AdminStore& store,
                           BlockingRunner blocking) {
  server.add_route("GET", "/v1/stats/webhooks",
                   [&store, blocking](Request, std::function<void(Response)> respond) {
                     blocking(std::move(respond), [&store] { return webhook_stats(store); });
                   });
  server.add_route("GET", "/v1/stats/summary",
                   [&store, blocking](Request req, std::function<void(Response)> respond) {
                     blocking(std::move(respond),
                              [&store, req = std::move(req)] { return summary(store, req); });
                   });
  server.add_route("GET", "/v1/stats/attempts",
                   [&store, blocking](Request req, std::function<void(Response)> respond) {
                     blocking(std::move(respond), [&store, req = std::move(req)] {
                       return attempts_per_minute(store, req);
                     });
                   });
}

}  // namespace relay::daemon
