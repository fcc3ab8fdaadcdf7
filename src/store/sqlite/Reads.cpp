// The admin API's reads, each in one snapshot of a pooled reader connection.
#include "SqliteStore.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "relay/common/Time.hpp"

namespace relay::store {

using common::format_rfc3339_ms;
using common::TimePoint;
using sqlite::StatementScope;

namespace {
// The status a reader sees: a pending row this process holds a lease on is being delivered
// (claims live in memory, Leases.hpp).
constexpr const char* kShownStatus =
    "CASE WHEN d.status = 'pending' AND relay_leased(d.rowid) THEN 'delivering' "
    "ELSE d.status END";
}  // namespace

std::optional<DeliveryRow> SqliteStore::get_delivery(const std::string& id) {
  return readers_.read("delivery " + id, [&](Connection& c) -> std::optional<DeliveryRow> {
    auto& s = c.cached(
        "SELECT d.id, d.event_id, d.webhook_id, e.event_type, " + std::string(kShownStatus) +
        ", d.attempt_count, d.next_attempt_at, d.created_at, d.updated_at, d.last_status_code, "
        "d.last_error FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = ?1");
    StatementScope q(s);
    q->bind(1, id);
    if (!q->step()) return std::nullopt;
    auto row = delivery_row(*q);
    {
      StatementScope p(c.cached("SELECT payload FROM events WHERE id = ?1"));
      p->bind(1, row.event_id);
      if (p->step()) row.payload = p->text(0);
    }
    auto& a = c.cached(
        "SELECT id, attempt_number, started_at, duration_ms, url, request_headers, "
        "response_status, response_headers, response_body, error, outcome FROM attempts "
        "WHERE delivery_id = ?1 ORDER BY attempt_number, id");
    StatementScope qa(a);
    qa->bind(1, id);
    while (qa->step()) {
      AttemptRow r;
      r.id = qa->int64(0);
      r.attempt_number = static_cast<int>(qa->int64(1));
      r.started_at = qa->text(2);
      r.duration_ms = qa->int64(3);
      r.url = qa->text(4);
      r.request_headers = qa->text(5);
      r.response_status = qa->optional_int(6);
      r.response_headers = qa->text(7);
      r.response_body = qa->text(8);
      r.error = qa->text(9);
      r.outcome = qa->text(10);
      row.attempts.push_back(std::move(r));
    }
    return row;
  });
}

std::vector<DeliveryRow> SqliteStore::list_deliveries(const DeliveryFilter& filter) {
  // One cached statement per combination of filters, so each can use its index.
  std::string sql = "SELECT d.id, d.event_id, d.webhook_id, e.event_type, " +
                    std::string(kShownStatus) +
                    ", d.attempt_count, d.next_attempt_at, d.created_at, d.updated_at, "
                    "d.last_status_code, d.last_error "
                    "FROM deliveries d JOIN events e ON e.id = d.event_id WHERE 1";
  if (filter.webhook_id) sql += " AND d.webhook_id = ?1";
  // As shown: a leased pending row is delivering, not pending.
  if (filter.status == "pending") {
    sql += " AND d.status = ?2 AND NOT relay_leased(d.rowid)";
  } else if (filter.status == "delivering") {
    sql += " AND (d.status = ?2 OR (d.status = 'pending' AND relay_leased(d.rowid)))";
  } else if (filter.status) {
    sql += " AND d.status = ?2";
  }
  if (filter.event_type) sql += " AND e.event_type = ?3";
  if (filter.before_id) sql += " AND d.id < ?4";
  sql += " ORDER BY d.id DESC LIMIT ?5";
  return readers_.read("deliveries", [&](Connection& c) {
    StatementScope q(c.cached(sql));
    if (filter.webhook_id) q->bind(1, *filter.webhook_id);
    if (filter.status) q->bind(2, *filter.status);
    if (filter.event_type) q->bind(3, *filter.event_type);
    if (filter.before_id) q->bind(4, *filter.before_id);
    q->bind(5, std::clamp(filter.limit, 1, 1000));
    std::vector<DeliveryRow> out;
    while (q->step()) out.push_back(delivery_row(*q));
    return out;
  });
}

std::optional<EventReceipt> SqliteStore::get_event(const std::string& id) {
  return readers_.read("event " + id, [&](Connection& c) -> std::optional<EventReceipt> {
    auto r = existing_receipt(c, id);
    if (r.event_type.empty()) return std::nullopt;
    r.duplicate = false;
    return r;
  });
}

DeliveryRow SqliteStore::delivery_row(sqlite::Statement& q) {
  DeliveryRow d;
  d.id = q.text(0);
  d.event_id = q.text(1);
  d.webhook_id = q.text(2);
  d.event_type = q.text(3);
  d.status = q.text(4);
  d.attempt_count = static_cast<int>(q.int64(5));
  d.next_attempt_at = q.optional_text(6);
  d.created_at = q.text(7);
  d.updated_at = q.text(8);
  d.last_status_code = q.optional_int(9);
  d.last_error = q.text(10);
  return d;
}

namespace {

// One webhook's deliveries per status, from the covering index (webhook_id, status, id): each
// status present is found by a seek past the previous one, then counted as its own range.
// count(*) over a range with both columns fixed costs half what one GROUP BY over the same
// rows does, as no group key is compared row by row. INDEXED BY: the only index with every
// status since schema v9 (deliveries_webhook_due holds pending rows alone), named so that no
// statistics ever steer these counts onto the table.
void count_statuses(sqlite::Connection& c, std::string_view webhook_id,
                    const std::function<void(std::string, std::int64_t)>& add) {
  auto& next_status = c.cached(
      "SELECT status FROM deliveries INDEXED BY deliveries_webhook_status_newest "
      "WHERE webhook_id = ?1 AND status > ?2 ORDER BY webhook_id, status LIMIT 1");
  auto& count = c.cached(
      "SELECT count(*) FROM deliveries INDEXED BY deliveries_webhook_status_newest "
      "WHERE webhook_id = ?1 AND status = ?2");
  std::string status;  // '' sorts before every status
  for (;;) {
    {
      StatementScope q(next_status);
      q->bind(1, webhook_id);
      q->bind(2, status);
      if (!q->step()) return;
      status = q->text(0);
    }
    StatementScope n(count);
    n->bind(1, webhook_id);
    n->bind(2, status);
    add(status, n->step() ? n->int64(0) : 0);  // count(*) always answers one row
  }
}

using StatusCounts = std::map<std::pair<std::string, std::string>, std::int64_t>;

// Leased rows (in flight) are stored pending and counted as delivering: one rowid lookup per
// lease in the same snapshot, so the counts stay consistent with each other. `only`: count the
// leases of that webhook alone.
void count_leases_as_delivering(sqlite::Connection& c, const std::vector<std::int64_t>& leased,
                                const std::string* only, StatusCounts& counts) {
  auto& one = c.cached("SELECT webhook_id FROM deliveries WHERE rowid = ?1 AND status = 'pending'");
  for (const auto rowid : leased) {
    StatementScope q(one);
    q->bind(1, rowid);
    if (!q->step()) continue;
    auto webhook = q->text(0);
    if (only != nullptr && webhook != *only) continue;
    if (auto it = counts.find({webhook, "pending"}); it != counts.end() && --it->second == 0) {
      counts.erase(it);
    }
    ++counts[{std::move(webhook), "delivering"}];
  }
}

}  // namespace

std::vector<std::pair<std::pair<std::string, std::string>, std::int64_t>>
SqliteStore::count_by_webhook_status() {
  const auto leased = leases_.rowids();
  return readers_.read("delivery counts", [&leased](Connection& c) {
    // The webhooks, likewise each found by a seek past the previous one (webhook ids are
    // never empty, and '' sorts before every other text).
    auto& next_webhook = c.cached(
        "SELECT webhook_id FROM deliveries INDEXED BY deliveries_webhook_status_newest "
        "WHERE webhook_id > ?1 ORDER BY webhook_id LIMIT 1");
    StatusCounts counts;
    std::string webhook;
    for (;;) {
      {
        StatementScope q(next_webhook);
        q->bind(1, webhook);
        if (!q->step()) break;
        webhook = q->text(0);
      }
      count_statuses(c, webhook, [&](std::string status, std::int64_t n) {
        counts[{webhook, status}] += n;
      });
    }
    count_leases_as_delivering(c, leased, nullptr, counts);
    return std::vector<std::pair<std::pair<std::string, std::string>, std::int64_t>>(counts.begin(),
                                                                                     counts.end());
  });
}

std::vector<std::pair<std::string, std::int64_t>> SqliteStore::count_by_status(
    const std::string& webhook_id) {
  const auto leased = leases_.rowids();
  return readers_.read("delivery counts of " + webhook_id, [&](Connection& c) {
    StatusCounts counts;
    count_statuses(c, webhook_id, [&](std::string status, std::int64_t n) {
      counts[{webhook_id, std::move(status)}] += n;
    });
    count_leases_as_delivering(c, leased, &webhook_id, counts);
    std::vector<std::pair<std::string, std::int64_t>> out;
    for (auto& [key, n] : counts) out.emplace_back(key.second, n);
    return out;
  });
}

std::vector<WebhookStateRow> SqliteStore::webhook_states() {
  return readers_.read("webhook states", [](Connection& c) {
    StatementScope q(c.cached(
        "SELECT webhook_id, disabled_reason, disabled_at, last_success_at, first_failure_at, "
        "consecutive_failures FROM webhook_state ORDER BY webhook_id"));
    std::vector<WebhookStateRow> out;
    while (q->step()) {
      WebhookStateRow r;
      r.webhook_id = q->text(0);
      r.disabled_reason = q->optional_text(1);
      r.disabled_at = q->optional_text(2);
      r.last_success_at = q->optional_text(3);
      r.first_failure_at = q->optional_text(4);
      r.consecutive_failures = static_cast<int>(q->int64(5));
      out.push_back(std::move(r));
    }
    return out;
  });
}

std::vector<std::pair<std::string, std::optional<TimePoint>>> SqliteStore::oldest_due(
    const std::vector<std::string>& webhook_ids, TimePoint now) {
  return readers_.read("oldest due deliveries", [&](Connection& c) {
    // The first in deliveries_webhook_due's (webhook_id, next_attempt_at) order, pending rows
    // only: one seek per webhook.
    // Those in flight (leased) are not waiting: skipped in index order.
    auto& s = c.cached(
        "SELECT next_attempt_at FROM deliveries WHERE webhook_id = ?1 AND "
        "status = 'pending' AND next_attempt_at <= ?2 AND NOT relay_leased(rowid) "
        "ORDER BY next_attempt_at LIMIT 1");
    const auto now_text = format_rfc3339_ms(now);
    std::vector<std::pair<std::string, std::optional<TimePoint>>> out;
    for (const auto& id : webhook_ids) {
      StatementScope q(s);
      q->bind(1, id);
      q->bind(2, now_text);
      std::optional<TimePoint> t;
      if (q->step() && !q->is_null(0)) t = common::parse_rfc3339(q->text(0));
      out.emplace_back(id, t);
    }
    return out;
  });
}

}  // namespace relay::store
