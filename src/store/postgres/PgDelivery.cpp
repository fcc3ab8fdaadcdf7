// The dispatcher's writes (claims with leases, attempt records) and the ones that make
// deliveries due again (crash recovery, redeliver).
#include <algorithm>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include "PgStore.hpp"
#include "relay/common/Time.hpp"

namespace relay::store {

using common::format_rfc3339_ms;
using common::TimePoint;
using pg::Params;

namespace {

// A subscriber's answer is arbitrary bytes (and cut at a byte limit, maybe mid-character);
// PostgreSQL's text holds valid UTF-8 without NUL only. What is not becomes U+FFFD, so the
// attempt is always recorded (SQLite keeps the bytes as they came).
std::string storable_text(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  const std::size_t n = in.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    std::size_t len = 0;
    if (c >= 0x01 && c <= 0x7F) {
      len = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
    }
    bool ok = len > 0 && i + len <= n;
    for (std::size_t k = 1; ok && k < len; ++k) ok = (p[i + k] & 0xC0) == 0x80;
    if (ok && len == 3) {
      const unsigned char d = p[i + 1];
      ok = !(c == 0xE0 && d < 0xA0) && !(c == 0xED && d >= 0xA0);  // overlong, surrogates
    } else if (ok && len == 4) {
      const unsigned char d = p[i + 1];
      ok = !(c == 0xF0 && d < 0x90) && !(c == 0xF4 && d >= 0x90);
    }
    if (ok) {
      out.append(in, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

struct Claimed {
  DueDelivery d;
  std::string due;
};

}  // namespace

// One request: leases that ran out go back to pending (their due time and attempt count
// unchanged: the next claim sends the same delivery again), then each webhook's oldest due
// rows are taken with FOR UPDATE SKIP LOCKED, so nodes claiming at the same moment take
// different rows instead of waiting for each other. next_due also counts other nodes'
// leases: when one runs out, this node is due to look.
void PgStore::claim_due(TimePoint now, std::vector<std::pair<std::string, int>> limits,
                        ClaimCallback done) {
  auto result = std::make_shared<ClaimResult>();
  WriteRequest req;
  req.apply = [this, now, limits = std::move(limits), result](pg::WriterContext& ctx) {
    auto& c = *ctx.conn;
    *result = ClaimResult{};
    const auto now_text = format_rfc3339_ms(now);
    const auto until = format_rfc3339_ms(now + options_.lease);
    c.exec(
        "UPDATE deliveries SET status = 'pending', lease_owner = NULL, lease_until = NULL "
        "WHERE seq IN (SELECT seq FROM deliveries WHERE status = 'delivering' AND "
        "lease_until < $1 FOR UPDATE SKIP LOCKED)",
        Params().add(now_text));
    std::vector<Claimed> claimed;
    for (const auto& [webhook, limit] : limits) {
      if (limit <= 0) continue;
      const auto r = c.exec(
          "UPDATE deliveries d SET status = 'delivering', updated_at = $2, lease_owner = $4, "
          "lease_until = $5 FROM (SELECT seq FROM deliveries WHERE webhook_id = $1 AND "
          "status = 'pending' AND next_attempt_at <= $2 ORDER BY next_attempt_at, seq "
          "LIMIT $3 FOR UPDATE SKIP LOCKED) c, events e "
          "WHERE d.seq = c.seq AND e.id = d.event_id "
          "RETURNING d.seq, d.id, d.event_id, d.webhook_id, e.event_type, d.attempt_count, "
          "e.payload, d.next_attempt_at",
          Params().add(webhook).add(now_text).add(limit).add(options_.node_id).add(until));
      const auto first = claimed.size();
      for (int i = 0; i < r.rows(); ++i) {
        Claimed x;
        x.d.rowid = r.int64(i, 0);
        x.d.delivery_id = r.text(i, 1);
        x.d.event_id = r.text(i, 2);
        x.d.webhook_id = r.text(i, 3);
        x.d.event_type = r.text(i, 4);
        x.d.attempt_count = static_cast<int>(r.int64(i, 5));
        x.d.payload = r.text(i, 6);
        x.due = r.text(i, 7);
        claimed.push_back(std::move(x));
      }
      // RETURNING has no order: oldest due first, then insertion order, as on SQLite.
      std::sort(claimed.begin() + static_cast<std::ptrdiff_t>(first), claimed.end(),
                [](const Claimed& a, const Claimed& b) {
                  return a.due != b.due ? a.due < b.due : a.d.rowid < b.d.rowid;
                });
    }
    for (auto& x : claimed) result->claimed.push_back(std::move(x.d));
    const auto next = c.exec(
        "SELECT LEAST((SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending'), "
        "(SELECT MIN(lease_until) FROM deliveries WHERE status = 'delivering' AND "
        "lease_owner <> $1))",
        Params().add(options_.node_id));
    if (next.rows() > 0 && !next.is_null(0, 0)) {
      result->next_due = common::parse_rfc3339(next.text(0, 0));
    }
  };
  req.complete = [result, done = std::move(done)](WriteStatus st) {
    done(st, st == WriteStatus::kOk ? std::move(*result) : ClaimResult{});
  };
  writer_->enqueue(std::move(req));
}

void PgStore::record_attempt(AttemptRecord record, WriteCallback done) {
  WriteRequest req;
  req.apply = [this, record = std::move(record)](pg::WriterContext& ctx) {
    auto& c = *ctx.conn;
    const auto now_text = format_rfc3339_ms(common::now_ms());
    // attempts.webhook (schema v7): the claim's, or, from a caller without it (a test send), the
    // delivery row's.
    c.exec(
        "INSERT INTO attempts (delivery_id, attempt_number, started_at, duration_ms, url, "
        "request_headers, response_status, response_headers, response_body, error, outcome, "
        "webhook) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
        "coalesce($12, (SELECT webhook_id FROM deliveries WHERE id = $1)))",
        Params()
            .add(record.delivery_id)
            .add(record.attempt_number)
            .add(format_rfc3339_ms(record.started_at))
            .add(record.duration_ms)
            .add(record.url)
            .add(record.request_headers)
            .add(record.response_status)
            .add(storable_text(record.response_headers))
            .add(storable_text(record.response_body))
            .add(record.error.empty() ? std::optional<std::string>()
                                      : std::optional<std::string>(storable_text(record.error)))
            .add(std::string(to_string(record.outcome)))
            .add(record.webhook_id.empty() ? std::optional<std::string>()
                                           : std::optional<std::string>(record.webhook_id)));
    std::optional<std::string> last_error;
    if (record.response_status) {
      if (*record.response_status < 200 || *record.response_status > 299) {
        last_error = "HTTP " + std::to_string(*record.response_status);
      }
    } else if (!record.error.empty()) {
      last_error = storable_text(record.error);
    }
    std::optional<std::string> next;
    if (record.new_status == DeliveryStatus::kPending) {
      next = record.next_attempt_at ? format_rfc3339_ms(*record.next_attempt_at) : now_text;
    }
    // Only while this node still holds the lease: when it ran out and another node claimed
    // the delivery again, that node's attempt decides (the attempt row above stays: it was
    // made).
    Params p;
    p.add(record.delivery_id)
        .add(std::string(to_string(record.new_status)))
        .add(record.attempt_number)
        .add(next)
        .add(now_text)
        .add(record.response_status)
        .add(last_error)
        .add(options_.node_id)
        .add(record.delivery_rowid);
    c.exec(record.delivery_rowid > 0
               ? "UPDATE deliveries SET status = $2, attempt_count = $3, next_attempt_at = $4, "
                 "updated_at = $5, last_status_code = $6, last_error = $7, lease_owner = NULL, "
                 "lease_until = NULL WHERE seq = $9 AND id = $1 AND status = 'delivering' AND "
                 "(lease_owner IS NULL OR lease_owner = $8)"
               : "UPDATE deliveries SET status = $2, attempt_count = $3, next_attempt_at = $4, "
                 "updated_at = $5, last_status_code = $6, last_error = $7, lease_owner = NULL, "
                 "lease_until = NULL WHERE id = $1 AND status = 'delivering' AND "
                 "(lease_owner IS NULL OR lease_owner = $8) AND $9::bigint IS NOT NULL",
           p);
    if (!record.webhook_id.empty()) {
      c.exec(record.outcome == AttemptOutcome::kSucceeded
                 ? "INSERT INTO webhook_state (webhook_id, last_success_at) VALUES ($1, $2) "
                   "ON CONFLICT (webhook_id) DO UPDATE SET last_success_at = $2, "
                   "first_failure_at = NULL, consecutive_failures = 0"
                 : "INSERT INTO webhook_state (webhook_id, first_failure_at, "
                   "consecutive_failures) VALUES ($1, $2, 1) ON CONFLICT (webhook_id) DO UPDATE "
                   "SET first_failure_at = coalesce(webhook_state.first_failure_at, $2), "
                   "consecutive_failures = webhook_state.consecutive_failures + 1",
             Params().add(record.webhook_id).add(format_rfc3339_ms(record.started_at)));
    }
  };
  req.complete = std::move(done);
  writer_->enqueue(std::move(req));
}

void PgStore::release_claimed(std::vector<DueDelivery> deliveries, WriteCallback done) {
  WriteRequest req;
  req.apply = [deliveries = std::move(deliveries)](pg::WriterContext& ctx) {
    for (const auto& d : deliveries) {
      ctx.conn->exec(
          "UPDATE deliveries SET status = 'pending', lease_owner = NULL, lease_until = NULL "
          "WHERE seq = $1 AND id = $2 AND status = 'delivering'",
          Params().add(d.rowid).add(d.delivery_id));
    }
  };
  req.complete = std::move(done);
  writer_->enqueue(std::move(req));
}

// Only this node's own claims: the other nodes' are in flight right now. (A node that never
// comes back loses its leases by time instead: claim_due.)
std::size_t PgStore::recover_interrupted(TimePoint now) {
  std::promise<std::size_t> count;
  auto future = count.get_future();
  auto changed = std::make_shared<std::size_t>(0);
  WriteRequest req;
  req.apply = [this, now, changed](pg::WriterContext& ctx) {
    const auto r = ctx.conn->exec(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = $1, updated_at = $1, "
        "lease_owner = NULL, lease_until = NULL "
        "WHERE status = 'delivering' AND (lease_owner = $2 OR lease_owner IS NULL)",
        Params().add(format_rfc3339_ms(now)).add(options_.node_id));
    *changed = static_cast<std::size_t>(r.affected());
    if (*changed > 0) ctx.notify = true;
  };
  auto status = std::make_shared<WriteStatus>(WriteStatus::kOk);
  req.complete = [&count, changed, status](WriteStatus st) {
    *status = st;
    count.set_value(st == WriteStatus::kOk ? *changed : 0);
  };
  writer_->enqueue(std::move(req));
  const auto n = future.get();
  if (*status != WriteStatus::kOk && *status != WriteStatus::kShuttingDown) {
    throw StoreError("cannot recover interrupted deliveries in " + where_ +
                     ": the database cannot be written");
  }
  return n;
}

void PgStore::redeliver(std::string delivery_id, TimePoint now,
                        std::function<void(WriteStatus, bool)> done) {
  auto found = std::make_shared<bool>(false);
  WriteRequest req;
  req.apply = [delivery_id = std::move(delivery_id), now, found](pg::WriterContext& ctx) {
    auto& c = *ctx.conn;
    const auto t = format_rfc3339_ms(now);
    const auto r = c.exec(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = $2, updated_at = $2 "
        "WHERE id = $1 AND status <> 'delivering'",
        Params().add(delivery_id).add(t));
    if (r.affected() > 0) {
      *found = true;
      ctx.notify = true;
      return;
    }
    *found = c.exec("SELECT 1 FROM deliveries WHERE id = $1", Params().add(delivery_id)).rows() > 0;
  };
  req.complete = [found, done = std::move(done)](WriteStatus st) { done(st, *found); };
  writer_->enqueue(std::move(req));
}

}  // namespace relay::store
