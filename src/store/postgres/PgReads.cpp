// The admin API's reads and the console's aggregates, each in one snapshot of a pooled
// reader connection (REPEATABLE READ: get_delivery's row, payload and attempts agree).
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "PgStore.hpp"
#include "relay/common/Base64.hpp"
#include "relay/common/Time.hpp"

namespace relay::store {

using common::format_rfc3339_ms;
using common::TimePoint;
using pg::Params;

namespace {

constexpr const char* kDeliveryColumns =
    "SELECT d.id, d.event_id, d.webhook_id, e.event_type, d.status, d.attempt_count, "
    "d.next_attempt_at, d.created_at, d.updated_at, d.last_status_code, d.last_error "
    "FROM deliveries d JOIN events e ON e.id = d.event_id";

DeliveryRow delivery_row(const pg::Result& q, int i) {
  DeliveryRow d;
  d.id = q.text(i, 0);
  d.event_id = q.text(i, 1);
  d.webhook_id = q.text(i, 2);
  d.event_type = q.text(i, 3);
  d.status = q.text(i, 4);
  d.attempt_count = static_cast<int>(q.int64(i, 5));
  d.next_attempt_at = q.optional_text(i, 6);
  d.created_at = q.text(i, 7);
  d.updated_at = q.text(i, 8);
  d.last_status_code = q.optional_int(i, 9);
  d.last_error = q.text(i, 10);
  return d;
}

std::int64_t nearest_rank(const std::vector<std::int64_t>& sorted, int percent) {
  const auto n = sorted.size();
  auto rank = (n * static_cast<std::size_t>(percent) + 99) / 100;
  rank = std::clamp<std::size_t>(rank, 1, n);
  return sorted[rank - 1];
}

void count_outcome(const std::string& outcome, std::int64_t& succeeded, std::int64_t& retry,
                   std::int64_t& failed) {
  if (outcome == "succeeded") {
    ++succeeded;
  } else if (outcome == "retry") {
    ++retry;
  } else {
    ++failed;
  }
}

}  // namespace

std::optional<DeliveryRow> PgStore::get_delivery(const std::string& id) {
  return readers_->read("delivery " + id, [&](pg::Connection& c) -> std::optional<DeliveryRow> {
    const auto q = c.exec(std::string(kDeliveryColumns) + " WHERE d.id = $1", Params().add(id));
    if (q.rows() == 0) return std::nullopt;
    auto row = delivery_row(q, 0);
    const auto p = c.exec("SELECT payload FROM events WHERE id = $1", Params().add(row.event_id));
    if (p.rows() > 0) row.payload = p.text(0, 0);
    const auto a = c.exec(
        "SELECT id, attempt_number, started_at, duration_ms, url, request_headers, "
        "response_status, response_headers, response_body, error, outcome FROM attempts "
        "WHERE delivery_id = $1 ORDER BY attempt_number, id",
        Params().add(id));
    for (int i = 0; i < a.rows(); ++i) {
      AttemptRow r;
      r.id = a.int64(i, 0);
      r.attempt_number = static_cast<int>(a.int64(i, 1));
      r.started_at = a.text(i, 2);
      r.duration_ms = a.int64(i, 3);
      r.url = a.text(i, 4);
      r.request_headers = a.text(i, 5);
      r.response_status = a.optional_int(i, 6);
      r.response_headers = a.text(i, 7);
      r.response_body = a.text(i, 8);
      r.error = a.text(i, 9);
      r.outcome = a.text(i, 10);
      row.attempts.push_back(std::move(r));
    }
    return row;
  });
}

std::vector<DeliveryRow> PgStore::list_deliveries(const DeliveryFilter& filter) {
  std::string sql = std::string(kDeliveryColumns) + " WHERE TRUE";
  Params p;
  int n = 0;
  if (filter.webhook_id) {
    sql += " AND d.webhook_id = $" + std::to_string(++n);
    p.add(*filter.webhook_id);
  }
  if (filter.status) {
    sql += " AND d.status = $" + std::to_string(++n);
    p.add(*filter.status);
  }
  if (filter.event_type) {
    sql += " AND e.event_type = $" + std::to_string(++n);
    p.add(*filter.event_type);
  }
  if (filter.before_id) {
    sql += " AND d.id < $" + std::to_string(++n);
    p.add(*filter.before_id);
  }
  sql += " ORDER BY d.id DESC LIMIT $" + std::to_string(++n);
  p.add(std::clamp(filter.limit, 1, 1000));
  return readers_->read("deliveries", [&](pg::Connection& c) {
    const auto q = c.exec(sql, p);
    std::vector<DeliveryRow> out;
    for (int i = 0; i < q.rows(); ++i) out.push_back(delivery_row(q, i));
    return out;
  });
}

std::optional<EventReceipt> PgStore::get_event(const std::string& id) {
  return readers_->read("event " + id, [&](pg::Connection& c) -> std::optional<EventReceipt> {
    auto r = existing_receipt(c, id);
    if (r.event_type.empty()) return std::nullopt;
    r.duplicate = false;
    return r;
  });
}

std::vector<std::pair<std::pair<std::string, std::string>, std::int64_t>>
PgStore::count_by_webhook_status() {
  return readers_->read("delivery counts", [](pg::Connection& c) {
    const auto q = c.exec(
        "SELECT webhook_id, status, count(*) FROM deliveries GROUP BY webhook_id, status "
        "ORDER BY webhook_id, status");
    std::vector<std::pair<std::pair<std::string, std::string>, std::int64_t>> out;
    for (int i = 0; i < q.rows(); ++i) {
      out.push_back({{q.text(i, 0), q.text(i, 1)}, q.int64(i, 2)});
    }
    return out;
  });
}

std::vector<StoredWebhook> PgStore::list_api_webhooks() {
  return readers_->read("api webhooks", [](pg::Connection& c) {
    const auto q =
        c.exec("SELECT id, sealed, created_at, updated_at FROM api_webhooks ORDER BY id");
    std::vector<StoredWebhook> out;
    for (int i = 0; i < q.rows(); ++i) {
      StoredWebhook w;
      w.id = q.text(i, 0);
      w.sealed = common::base64_decode(q.text(i, 1)).value_or(std::string());
      w.created_at = q.text(i, 2);
      w.updated_at = q.text(i, 3);
      out.push_back(std::move(w));
    }
    return out;
  });
}

std::vector<WebhookStateRow> PgStore::webhook_states() {
  return readers_->read("webhook states", [](pg::Connection& c) {
    const auto q = c.exec(
        "SELECT webhook_id, disabled_reason, disabled_at, last_success_at, first_failure_at, "
        "consecutive_failures FROM webhook_state ORDER BY webhook_id");
    std::vector<WebhookStateRow> out;
    for (int i = 0; i < q.rows(); ++i) {
      WebhookStateRow r;
      r.webhook_id = q.text(i, 0);
      r.disabled_reason = q.optional_text(i, 1);
      r.disabled_at = q.optional_text(i, 2);
      r.last_success_at = q.optional_text(i, 3);
      r.first_failure_at = q.optional_text(i, 4);
      r.consecutive_failures = static_cast<int>(q.int64(i, 5));
      out.push_back(std::move(r));
    }
    return out;
  });
}

std::vector<std::pair<std::string, std::optional<TimePoint>>> PgStore::oldest_due(
    const std::vector<std::string>& webhook_ids, TimePoint now) {
  return readers_->read("oldest due deliveries", [&](pg::Connection& c) {
    const auto now_text = format_rfc3339_ms(now);
    std::vector<std::pair<std::string, std::optional<TimePoint>>> out;
    for (const auto& id : webhook_ids) {
      const auto q = c.exec(
          "SELECT MIN(next_attempt_at) FROM deliveries WHERE webhook_id = $1 AND "
          "status = 'pending' AND next_attempt_at <= $2",
          Params().add(id).add(now_text));
      std::optional<TimePoint> t;
      if (q.rows() > 0 && !q.is_null(0, 0)) t = common::parse_rfc3339(q.text(0, 0));
      out.emplace_back(id, t);
    }
    return out;
  });
}

std::vector<WebhookAttemptStats> PgStore::attempt_stats_since(TimePoint since) {
  return readers_->read("attempt statistics", [&](pg::Connection& c) {
    const auto q =
        c.exec("SELECT webhook, outcome, duration_ms FROM attempts WHERE started_at >= $1",
               Params().add(format_rfc3339_ms(since)));
    std::map<std::string, std::pair<WebhookAttemptStats, std::vector<std::int64_t>>> by_webhook;
    for (int i = 0; i < q.rows(); ++i) {
      auto& [stats, durations] = by_webhook[q.text(i, 0)];
      ++stats.attempts;
      count_outcome(q.text(i, 1), stats.succeeded, stats.retry, stats.failed);
      durations.push_back(q.int64(i, 2));
    }
    std::vector<WebhookAttemptStats> out;
    for (auto& [id, entry] : by_webhook) {
      auto& [stats, durations] = entry;
      stats.webhook_id = id;
      std::sort(durations.begin(), durations.end());
      if (!durations.empty()) {
        stats.p50_ms = nearest_rank(durations, 50);
        stats.p99_ms = nearest_rank(durations, 99);
      }
      out.push_back(std::move(stats));
    }
    return out;
  });
}

std::vector<AttemptMinute> PgStore::attempts_per_minute(
    TimePoint since, const std::optional<std::string>& webhook_id) {
  return readers_->read("attempts per minute", [&](pg::Connection& c) {
    Params p;
    p.add(format_rfc3339_ms(since));
    if (webhook_id) p.add(*webhook_id);
    const auto q = c.exec(webhook_id ? "SELECT started_at, outcome FROM attempts "
                                       "WHERE started_at >= $1 AND webhook = $2 "
                                       "ORDER BY started_at "
                                     : "SELECT started_at, outcome FROM attempts "
                                       "WHERE started_at >= $1 ORDER BY started_at ",
                          p);
    std::vector<AttemptMinute> out;
    for (int i = 0; i < q.rows(); ++i) {
      auto minute = q.text(i, 0).substr(0, 16);
      if (out.empty() || out.back().minute != minute) {
        out.push_back(AttemptMinute{std::move(minute), 0, 0, 0});
      }
      count_outcome(q.text(i, 1), out.back().succeeded, out.back().retry, out.back().failed);
    }
    return out;
  });
}

}  // namespace relay::store
