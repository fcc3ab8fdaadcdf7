#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>

#include "Schema.hpp"
#include "Sqlite.hpp"
#include "relay/common/Time.hpp"
#include "relay/store/Store.hpp"

namespace relay::store {

namespace fs = std::filesystem;
using common::format_rfc3339_ms;
using common::TimePoint;
using sqlite::Connection;
using sqlite::SqliteError;
using sqlite::StatementScope;

std::string_view to_string(DeliveryStatus s) {
  switch (s) {
    case DeliveryStatus::kPending:
      return "pending";
    case DeliveryStatus::kDelivering:
      return "delivering";
    case DeliveryStatus::kPaused:
      return "paused";
    case DeliveryStatus::kSucceeded:
      return "succeeded";
    case DeliveryStatus::kFailed:
      return "failed";
    case DeliveryStatus::kCancelled:
      return "cancelled";
    case DeliveryStatus::kDropped:
      return "dropped";
  }
  return "pending";
}

std::optional<DeliveryStatus> parse_delivery_status(std::string_view text) {
  for (auto s : {DeliveryStatus::kPending, DeliveryStatus::kDelivering, DeliveryStatus::kPaused,
                 DeliveryStatus::kSucceeded, DeliveryStatus::kFailed, DeliveryStatus::kCancelled,
                 DeliveryStatus::kDropped}) {
    if (to_string(s) == text) return s;
  }
  return std::nullopt;
}

std::string_view to_string(AttemptOutcome o) {
  switch (o) {
    case AttemptOutcome::kSucceeded:
      return "succeeded";
    case AttemptOutcome::kRetry:
      return "retry";
    case AttemptOutcome::kFailed:
      return "failed";
  }
  return "retry";
}

namespace {

constexpr int kBusyTimeoutMs = 5000;
constexpr std::size_t kMaxReaders = 4;

TimePoint parse_time_or_epoch(const std::string& text) {
  return common::parse_rfc3339(text).value_or(TimePoint{});
}

// One unit of work for the writer: `apply` runs inside the group transaction (in its own
// savepoint), `complete` after the commit.
struct WriteRequest {
  std::function<void(Connection&)> apply;
  std::function<void(WriteStatus)> complete;
  bool counts_against_limit = false;
  // false: losing this write in a power cut is harmless (a claim: the delivery simply stays
  // pending), so it may commit without waiting for an fsync.
  bool durable = true;
};

void configure_connection(Connection& c) {
  sqlite3_busy_timeout(c.get(), kBusyTimeoutMs);
  c.exec("PRAGMA foreign_keys=ON");
}

// Reads the first bytes to tell "not SQLite at all" from everything else before SQLite gets
// a chance to touch the file.
void check_file_header(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    const auto parent = fs::path(path).parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ec)) {
      throw StoreError("cannot create database " + path + ": directory " + parent.string() +
                       " does not exist");
    }
    return;
  }
  if (fs::is_directory(path, ec)) throw StoreError(path + " is a directory, not a database file");
  const auto size = fs::file_size(path, ec);
  if (ec || size == 0) return;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw StoreError("cannot read database " + path);
  char header[16] = {};
  in.read(header, sizeof header);
  if (in.gcount() < 16 || std::memcmp(header, "SQLite format 3\0", 16) != 0) {
    throw StoreError(path + " is not a SQLite database (refusing to touch it)");
  }
}

}  // namespace

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(const StoreOptions& options) : options_(options) {
    check_file_header(options_.path);
    try {
      writer_conn_ = std::make_unique<Connection>(
          options_.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX);
      configure_connection(*writer_conn_);
      open_and_migrate(*writer_conn_);
    } catch (const SqliteError& e) {
      const int p = e.primary();
      if (p == SQLITE_CORRUPT || p == SQLITE_NOTADB) {
        throw StoreError(options_.path + " is corrupt: " + e.what());
      }
      throw StoreError("cannot open database " + options_.path + ": " + e.what());
    }
    writer_ = std::thread([this] {
      // Named so that `top -H` and profilers tell the writer from the I/O threads.
      pthread_setname_np(pthread_self(), "relayd-writer");
      writer_loop();
    });
  }

  ~SqliteStore() override { close(); }

  // ---------------------------------------------------------------- writes

  bool submit_events(std::vector<NewEvent> events, IntakeCallback done) override {
    auto receipts = std::make_shared<std::vector<EventReceipt>>();
    auto shared_events = std::make_shared<std::vector<NewEvent>>(std::move(events));
    WriteRequest req;
    req.counts_against_limit = true;
    req.apply = [this, shared_events, receipts](Connection& c) {
      receipts->clear();
      for (const auto& e : *shared_events) receipts->push_back(insert_event(c, e));
    };
    req.complete = [receipts, done = std::move(done)](WriteStatus st) {
      done(st, st == WriteStatus::kOk ? std::move(*receipts) : std::vector<EventReceipt>{});
    };
    return enqueue(std::move(req));
  }

  void claim_due(TimePoint now, std::vector<std::pair<std::string, int>> limits,
                 ClaimCallback done) override {
    auto result = std::make_shared<ClaimResult>();
    WriteRequest req;
    req.durable = false;
    req.apply = [this, now, limits = std::move(limits), result](Connection& c) {
      *result = ClaimResult{};
      const auto now_text = format_rfc3339_ms(now);
      auto& select = c.cached(
          "SELECT d.id, d.event_id, d.webhook_id, e.event_type, d.attempt_count, e.payload, "
          "d.rowid "
          "FROM deliveries d JOIN events e ON e.id = d.event_id "
          "WHERE d.webhook_id = ?1 AND d.status = 'pending' AND d.next_attempt_at <= ?2 "
          "ORDER BY d.next_attempt_at, d.rowid LIMIT ?3");
      // By rowid: the row was just read, and a lookup through the text id index cost as much
      // as the update itself.
      auto& mark =
          c.cached("UPDATE deliveries SET status = 'delivering', updated_at = ?2 WHERE rowid = ?1");
      for (const auto& [webhook, limit] : limits) {
        if (limit <= 0) continue;
        StatementScope s(select);
        s->bind(1, webhook);
        s->bind(2, now_text);
        s->bind(3, limit);
        while (s->step()) {
          DueDelivery d;
          d.delivery_id = s->text(0);
          d.event_id = s->text(1);
          d.webhook_id = s->text(2);
          d.event_type = s->text(3);
          d.attempt_count = static_cast<int>(s->int64(4));
          d.payload = s->text(5);
          d.rowid = s->int64(6);
          result->claimed.push_back(std::move(d));
        }
      }
      for (const auto& d : result->claimed) {
        StatementScope m(mark);
        m->bind(1, d.rowid);
        m->bind(2, now_text);
        m->run();
      }
      auto& next = c.cached("SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending'");
      StatementScope n(next);
      if (n->step() && !n->is_null(0)) result->next_due = common::parse_rfc3339(n->text(0));
    };
    req.complete = [result, done = std::move(done)](WriteStatus st) {
      done(st, st == WriteStatus::kOk ? std::move(*result) : ClaimResult{});
    };
    enqueue(std::move(req));
  }

  void record_attempt(AttemptRecord record, WriteCallback done) override {
    WriteRequest req;
    req.apply = [this, record = std::move(record)](Connection& c) {
      if (record.new_status == DeliveryStatus::kPaused) paused_counts_.clear();
      const auto now_text = format_rfc3339_ms(common::now_ms());
      auto& insert = c.cached(
          "INSERT INTO attempts (delivery_id, attempt_number, started_at, duration_ms, url, "
          "request_headers, response_status, response_headers, response_body, error, outcome) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
      {
        StatementScope s(insert);
        s->bind(1, record.delivery_id);
        s->bind(2, record.attempt_number);
        s->bind(3, format_rfc3339_ms(record.started_at));
        s->bind(4, record.duration_ms);
        s->bind(5, record.url);
        s->bind(6, record.request_headers);
        s->bind(7, record.response_status);
        s->bind(8, record.response_headers);
        s->bind(9, record.response_body);
        s->bind(10, record.error.empty() ? std::optional<std::string>()
                                         : std::optional<std::string>(record.error));
        s->bind(11, to_string(record.outcome));
        s->run();
      }
      // With a status, the status is the story (an error then only says the body broke off).
      std::optional<std::string> last_error;
      if (record.response_status) {
        if (*record.response_status < 200 || *record.response_status > 299) {
          last_error = "HTTP " + std::to_string(*record.response_status);
        }
      } else if (!record.error.empty()) {
        last_error = record.error;
      }
      // By rowid when the claim gave it (the id must still match: rowids of deleted rows can
      // be reused), else through the id index.
      auto& update =
          record.delivery_rowid > 0
              ? c.cached(
                    "UPDATE deliveries SET status = ?2, attempt_count = ?3, next_attempt_at = ?4, "
                    "updated_at = ?5, last_status_code = ?6, last_error = ?7 "
                    "WHERE rowid = ?8 AND id = ?1 AND status = 'delivering'")
              : c.cached(
                    "UPDATE deliveries SET status = ?2, attempt_count = ?3, next_attempt_at = ?4, "
                    "updated_at = ?5, last_status_code = ?6, last_error = ?7 "
                    "WHERE id = ?1 AND status = 'delivering'");
      StatementScope u(update);
      u->bind(1, record.delivery_id);
      if (record.delivery_rowid > 0) u->bind(8, record.delivery_rowid);
      u->bind(2, to_string(record.new_status));
      u->bind(3, record.attempt_number);
      // next_attempt_at belongs to pending deliveries only; a pending one without a time is
      // due at once rather than never.
      std::optional<std::string> next;
      if (record.new_status == DeliveryStatus::kPending) {
        next = record.next_attempt_at ? format_rfc3339_ms(*record.next_attempt_at) : now_text;
      }
      u->bind(4, next);
      u->bind(5, now_text);
      u->bind(6, record.response_status);
      u->bind(7, last_error);
      u->run();
    };
    req.complete = std::move(done);
    enqueue(std::move(req));
  }

  std::size_t recover_interrupted(TimePoint now) override {
    std::promise<std::size_t> count;
    auto future = count.get_future();
    auto changed = std::make_shared<std::size_t>(0);
    WriteRequest req;
    req.apply = [now, changed](Connection& c) {
      auto& s = c.cached(
          "UPDATE deliveries SET status = 'pending', next_attempt_at = ?1, updated_at = ?1 "
          "WHERE status = 'delivering'");
      StatementScope scope(s);
      scope->bind(1, format_rfc3339_ms(now));
      scope->run();
      *changed = static_cast<std::size_t>(c.changes());
    };
    auto status = std::make_shared<WriteStatus>(WriteStatus::kOk);
    req.complete = [&count, changed, status](WriteStatus st) {
      *status = st;
      count.set_value(st == WriteStatus::kOk ? *changed : 0);
    };
    enqueue(std::move(req));
    const auto n = future.get();
    if (*status != WriteStatus::kOk && *status != WriteStatus::kShuttingDown) {
      throw StoreError("cannot recover interrupted deliveries in " + options_.path +
                       ": the database cannot be written");
    }
    return n;
  }

  void redeliver(std::string delivery_id, TimePoint now,
                 std::function<void(WriteStatus, bool)> done) override {
    auto found = std::make_shared<bool>(false);
    WriteRequest req;
    req.apply = [this, delivery_id = std::move(delivery_id), now, found](Connection& c) {
      paused_counts_.clear();
      const auto t = format_rfc3339_ms(now);
      auto& update = c.cached(
          "UPDATE deliveries SET status = 'pending', next_attempt_at = ?2, updated_at = ?2 "
          "WHERE id = ?1 AND status != 'delivering'");
      StatementScope u(update);
      u->bind(1, delivery_id);
      u->bind(2, t);
      u->run();
      if (c.changes() > 0) {
        *found = true;
        return;
      }
      auto& exists = c.cached("SELECT 1 FROM deliveries WHERE id = ?1");
      StatementScope e(exists);
      e->bind(1, delivery_id);
      *found = e->step();  // delivering right now: it is being sent
    };
    req.complete = [found, done = std::move(done)](WriteStatus st) { done(st, *found); };
    enqueue(std::move(req));
  }

  void set_webhook_paused(std::string webhook_id, bool paused, std::size_t max_queued,
                          WriteCallback done, std::function<void()> resumed_some) override {
    set_paused_chunk(std::move(webhook_id), paused, max_queued, format_rfc3339_ms(common::now_ms()),
                     std::nullopt, std::move(done), std::move(resumed_some));
  }

  // One chunk of a pause or resume: a million paused deliveries resumed by one UPDATE held the
  // writer for seconds, and intake behind it. Each chunk is its own write request, so other
  // requests interleave; the next chunk is queued after this one commits. All chunks use the
  // same `now`, so resumed deliveries keep their order (next_attempt_at, then rowid). A newer
  // call for the same webhook (a reload meanwhile) makes the rest of an older one moot.
  void set_paused_chunk(std::string webhook_id, bool paused, std::size_t max_queued,
                        std::string now, std::optional<std::uint64_t> generation,
                        WriteCallback done, std::function<void()> resumed_some) {
    auto more = std::make_shared<bool>(false);
    auto resumed = std::make_shared<bool>(false);
    auto gen = std::make_shared<std::uint64_t>(generation.value_or(0));
    WriteRequest req;
    req.apply = [this, webhook_id, paused, max_queued, now, generation, more, gen,
                 resumed](Connection& c) {
      paused_counts_.clear();
      *more = false;
      *resumed = false;
      if (!generation) {
        *gen = ++pause_generation_[webhook_id];
      } else if (pause_generation_[webhook_id] != *generation) {
        return;  // superseded
      }
      const auto chunk = static_cast<std::int64_t>(std::max<std::size_t>(options_.bulk_chunk, 1));
      if (paused) {
        auto& s = c.cached(
            "UPDATE deliveries SET status = 'paused', next_attempt_at = NULL, updated_at = ?2 "
            "WHERE rowid IN (SELECT rowid FROM deliveries WHERE webhook_id = ?1 AND "
            "status = 'pending' LIMIT ?3)");
        StatementScope u(s);
        u->bind(1, webhook_id);
        u->bind(2, now);
        u->bind(3, chunk);
        u->run();
        *more = c.changes() == chunk;
        if (!*more) enforce_paused_cap(c, webhook_id, max_queued, now);
      } else {
        auto& s = c.cached(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = ?2, updated_at = ?2 "
            "WHERE rowid IN (SELECT rowid FROM deliveries WHERE webhook_id = ?1 AND "
            "status = 'paused' ORDER BY next_attempt_at, rowid LIMIT ?3)");
        StatementScope u(s);
        u->bind(1, webhook_id);
        u->bind(2, now);
        u->bind(3, chunk);
        u->run();
        *more = c.changes() == chunk;
        *resumed = c.changes() > 0;
      }
    };
    req.complete = [this, webhook_id, paused, max_queued, now, more, gen, resumed,
                    done = std::move(done),
                    resumed_some = std::move(resumed_some)](WriteStatus st) mutable {
      if (st == WriteStatus::kOk && *resumed && resumed_some) resumed_some();
      if (st == WriteStatus::kOk && *more) {
        set_paused_chunk(std::move(webhook_id), paused, max_queued, std::move(now), *gen,
                         std::move(done), std::move(resumed_some));
        return;
      }
      if (done) done(st);
    };
    enqueue(std::move(req));
  }

  void cancel_webhooks_except(std::vector<std::string> known_ids,
                              std::function<void(WriteStatus, std::size_t)> done) override {
    auto cancelled = std::make_shared<std::size_t>(0);
    WriteRequest req;
    req.apply = [this, known = std::unordered_set<std::string>(known_ids.begin(), known_ids.end()),
                 cancelled](Connection& c) {
      paused_counts_.clear();
      *cancelled = 0;
      // Walk the distinct webhook ids through the index (one seek each) instead of scanning
      // every unfinished delivery.
      auto& next_id = c.cached("SELECT MIN(webhook_id) FROM deliveries WHERE webhook_id > ?1");
      auto& cancel = c.cached(
          "UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, updated_at = ?2 "
          "WHERE webhook_id = ?1 AND status IN ('pending', 'paused', 'delivering')");
      const auto now = format_rfc3339_ms(common::now_ms());
      std::string cursor;
      while (true) {
        std::optional<std::string> id;
        {
          StatementScope s(next_id);
          s->bind(1, cursor);
          if (s->step() && !s->is_null(0)) id = s->text(0);
        }
        if (!id) break;
        cursor = *id;
        if (known.count(*id) != 0) continue;
        StatementScope u(cancel);
        u->bind(1, *id);
        u->bind(2, now);
        u->run();
        *cancelled += static_cast<std::size_t>(c.changes());
      }
    };
    req.complete = [cancelled, done = std::move(done)](WriteStatus st) { done(st, *cancelled); };
    enqueue(std::move(req));
  }

  void prune_before(TimePoint cutoff, std::size_t batch,
                    std::function<void(WriteStatus, std::size_t)> done) override {
    auto removed = std::make_shared<std::size_t>(0);
    WriteRequest req;
    req.apply = [this, cutoff, batch, removed](Connection& c) {
      paused_counts_.clear();
      *removed = 0;
      const auto t = format_rfc3339_ms(cutoff);
      const auto step = [&](const std::string& sql) {
        if (*removed >= batch) return;
        auto& s = c.cached(sql);
        StatementScope scope(s);
        scope->bind(1, t);
        scope->bind(2, static_cast<std::int64_t>(batch - *removed));
        scope->run();
        *removed += static_cast<std::size_t>(c.changes());
      };
      step(
          "DELETE FROM attempts WHERE id IN "
          "(SELECT id FROM attempts WHERE started_at < ?1 LIMIT ?2)");
      step(
          "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries INDEXED BY "
          "deliveries_finished WHERE (status = 'succeeded' OR status = 'failed' OR "
          "status = 'cancelled' OR status = 'dropped') AND updated_at < ?1 "
          "LIMIT ?2)");
      // Events go once none of their deliveries is left. Old events that still have deliveries
      // would be walked again by every batch (tens of ms each with thousands of them), so the
      // scan resumes where the previous batch of the same run (same cutoff) stopped; what it
      // passed over is looked at again by the next run.
      if (t != prune_cutoff_) {
        prune_cutoff_ = t;
        prune_events_from_.clear();
      }
      if (*removed < batch) {
        auto& pick = c.cached(
            "SELECT e.id, e.created_at FROM events e WHERE e.created_at >= ?3 AND "
            "e.created_at < ?1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = "
            "e.id) ORDER BY e.created_at LIMIT ?2");
        auto& del = c.cached("DELETE FROM events WHERE id = ?1");
        std::vector<std::string> ids;
        std::string last;
        {
          StatementScope q(pick);
          q->bind(1, t);
          q->bind(2, static_cast<std::int64_t>(batch - *removed));
          q->bind(3, prune_events_from_);
          while (q->step()) {
            ids.push_back(q->text(0));
            last = q->text(1);
          }
        }
        for (const auto& id : ids) {
          StatementScope d(del);
          d->bind(1, id);
          d->run();
          *removed += static_cast<std::size_t>(c.changes());
        }
        if (!last.empty()) prune_events_from_ = last;
      }
      // A few pages back to the file system per batch (moving pages is what costs); freed pages
      // are reused by new rows anyway.
      if (*removed > 0) c.exec("PRAGMA incremental_vacuum(256)");
    };
    req.complete = [removed, done = std::move(done)](WriteStatus st) { done(st, *removed); };
    enqueue(std::move(req));
  }

  StoreStats stats() const override {
    std::lock_guard lock(mutex_);
    return stats_;
  }

  // ---------------------------------------------------------------- reads

  std::optional<DeliveryRow> get_delivery(const std::string& id) override {
    return read("delivery " + id, [&](Connection& c) -> std::optional<DeliveryRow> {
      auto& s = c.cached(
          "SELECT d.id, d.event_id, d.webhook_id, e.event_type, d.status, d.attempt_count, "
          "d.next_attempt_at, d.created_at, d.updated_at, d.last_status_code, d.last_error "
          "FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = ?1");
      StatementScope q(s);
      q->bind(1, id);
      if (!q->step()) return std::nullopt;
      auto row = delivery_row(*q);
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

  std::vector<DeliveryRow> list_deliveries(const DeliveryFilter& filter) override {
    // One cached statement per combination of filters, so each can use its index.
    std::string sql =
        "SELECT d.id, d.event_id, d.webhook_id, e.event_type, d.status, d.attempt_count, "
        "d.next_attempt_at, d.created_at, d.updated_at, d.last_status_code, d.last_error "
        "FROM deliveries d JOIN events e ON e.id = d.event_id WHERE 1";
    if (filter.webhook_id) sql += " AND d.webhook_id = ?1";
    if (filter.status) sql += " AND d.status = ?2";
    if (filter.event_type) sql += " AND e.event_type = ?3";
    if (filter.before_id) sql += " AND d.id < ?4";
    sql += " ORDER BY d.id DESC LIMIT ?5";
    return read("deliveries", [&](Connection& c) {
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

  std::vector<std::pair<std::pair<std::string, std::string>, std::int64_t>>
  count_by_webhook_status() override {
    // A scan of the covering index (webhook_id, status, …): ~0.1 s per million deliveries.
    return read("delivery counts", [](Connection& c) {
      StatementScope q(c.cached(
          "SELECT webhook_id, status, count(*) FROM deliveries GROUP BY webhook_id, status"));
      std::vector<std::pair<std::pair<std::string, std::string>, std::int64_t>> out;
      while (q->step()) out.push_back({{q->text(0), q->text(1)}, q->int64(2)});
      return out;
    });
  }

  std::optional<EventReceipt> get_event(const std::string& id) override {
    return read("event " + id, [&](Connection& c) -> std::optional<EventReceipt> {
      auto r = existing_receipt(c, id);
      if (r.event_type.empty()) return std::nullopt;
      r.duplicate = false;
      return r;
    });
  }

  bool writable() override {
    {
      std::lock_guard lock(mutex_);
      if (closed_ || !writer_running_) return false;
      if (last_commit_ok_) return true;
      const auto now = std::chrono::steady_clock::now();
      if (probe_queued_ || now - last_probe_ < std::chrono::seconds(1)) return false;
      probe_queued_ = true;
      last_probe_ = now;
    }
    // A tiny real write (page 1 of the file) so that readiness comes back once the disk does,
    // even when nothing else is written.
    WriteRequest probe;
    probe.apply = [](Connection& c) {
      c.exec("PRAGMA user_version=" + std::to_string(migrations().size()));
    };
    probe.complete = [this](WriteStatus) {
      std::lock_guard lock(mutex_);
      probe_queued_ = false;
    };
    enqueue(std::move(probe));
    return false;
  }

  void close() override {
    {
      std::lock_guard lock(mutex_);
      if (closed_) return;
      closed_ = true;
    }
    cv_.notify_all();
    if (writer_.joinable()) writer_.join();
    std::lock_guard lock(readers_mutex_);
    readers_closed_ = true;
    idle_readers_.clear();  // leased ones close when their read ends
    writer_conn_.reset();
  }

 private:
  // ---- open / migrate ----

  void open_and_migrate(Connection& c) {
    const auto app_id = c.pragma_int("application_id");
    const auto version = c.pragma_int("user_version");
    std::int64_t tables = 0;
    {
      sqlite::Statement s(c.get(), "SELECT count(*) FROM sqlite_master");
      if (s.step()) tables = s.int64(0);
    }
    const auto known = static_cast<std::int64_t>(migrations().size());
    if (app_id != kApplicationId && !(app_id == 0 && tables == 0)) {
      throw StoreError(options_.path + " is not a relayd database (refusing to touch it)");
    }
    if (version > known) {
      throw StoreError(options_.path + " was created by a newer relayd (schema v" +
                       std::to_string(version) + ", this binary knows up to v" +
                       std::to_string(known) + ")");
    }
    if (tables > 0) {
      std::error_code ec;
      const auto size = fs::file_size(options_.path, ec);
      if (!ec && options_.quick_check_max_bytes > 0 && size <= options_.quick_check_max_bytes) {
        sqlite::Statement s(c.get(), "PRAGMA quick_check");
        std::string first;
        if (s.step()) first = s.text(0);
        if (first != "ok") throw StoreError(options_.path + " is corrupt: " + first);
      } else {
        spdlog::info("database {}: {} bytes, quick_check skipped (limit {} bytes)", options_.path,
                     size, options_.quick_check_max_bytes);
      }
    }
    if (tables == 0) {
      // Only possible before the first table exists: lets retention return freed pages.
      c.exec("PRAGMA auto_vacuum=INCREMENTAL");
    }
    {
      sqlite::Statement s(c.get(), "PRAGMA journal_mode=WAL");
      if (!s.step() || s.text(0) != "wal") {
        throw StoreError("cannot switch " + options_.path + " to WAL mode");
      }
    }
    c.exec("PRAGMA synchronous=FULL");
    // The writer walks the due/webhook indexes all the time: keep them in SQLite's cache rather
    // than re-reading pages from the OS (16 MiB; the default is 2 MiB).
    c.exec("PRAGMA cache_size=-16384");
    // Savepoints keep a sub-journal of the pages they touch; in a temp file that cost one
    // pwrite per page (13 syscalls, 30 KB per event at intake). In memory it is a memcpy.
    c.exec("PRAGMA temp_store=MEMORY");
    // A long read transaction lets the WAL grow; after the next checkpoint resets it, give the
    // space back instead of keeping the high-water mark forever.
    c.exec("PRAGMA journal_size_limit=16777216");
    for (auto v = version + 1; v <= known; ++v) {
      c.exec("BEGIN IMMEDIATE");
      try {
        const auto& step = migrations()[static_cast<std::size_t>(v - 1)];
        if (!step.edits.empty()) edit_table_text(c, step.edits);
        c.exec(step.sql);
        c.exec("PRAGMA application_id=" + std::to_string(kApplicationId));
        c.exec("PRAGMA user_version=" + std::to_string(v));
        c.exec("COMMIT");
      } catch (...) {
        sqlite3_exec(c.get(), "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
      }
      spdlog::info("database {}: schema migrated to v{}", options_.path, v);
    }
  }

  // SQLite's procedure for schema changes that leave stored rows untouched: edit the text in
  // sqlite_schema and bump schema_version, so that every connection, this one included,
  // re-reads the schema before its next statement.
  void edit_table_text(Connection& c, const std::vector<TableTextEdit>& edits) {
    const auto version = c.pragma_int("schema_version");
    c.exec("PRAGMA writable_schema=ON");
    try {
      for (const auto& e : edits) {
        sqlite::Statement s(c.get(),
                            "UPDATE sqlite_schema SET sql = replace(sql, ?2, ?3) "
                            "WHERE type = 'table' AND name = ?1 AND instr(sql, ?2) > 0");
        s.bind(1, e.table);
        s.bind(2, e.from);
        s.bind(3, e.to);
        s.run();
        if (c.changes() != 1) {
          throw StoreError(options_.path + ": table " + std::string(e.table) +
                           " is not as relayd created it (cannot migrate it)");
        }
      }
    } catch (...) {
      sqlite3_exec(c.get(), "PRAGMA writable_schema=OFF", nullptr, nullptr, nullptr);
      throw;
    }
    c.exec("PRAGMA writable_schema=OFF");
    c.exec("PRAGMA schema_version=" + std::to_string(version + 1));
  }

  // ---- intake ----

  EventReceipt insert_event(Connection& c, const NewEvent& e) {
    EventReceipt r;
    r.id = e.id;
    r.event_type = e.event_type;
    r.created_at = e.created_at;
    const auto created = format_rfc3339_ms(e.created_at);
    auto& insert = c.cached(
        "INSERT INTO events (id, event_type, created_at, payload) VALUES (?1, ?2, ?3, ?4) "
        "ON CONFLICT (id) DO NOTHING");
    {
      StatementScope s(insert);
      s->bind(1, e.id);
      s->bind(2, e.event_type);
      s->bind(3, created);
      s->bind(4, e.payload);
      s->run();
    }
    if (c.changes() == 0) return existing_receipt(c, e.id);
    auto& add = c.cached(
        "INSERT INTO deliveries (id, event_id, webhook_id, status, attempt_count, "
        "next_attempt_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?6)");
    for (const auto& d : e.deliveries) {
      const bool paused = d.status == DeliveryStatus::kPaused;
      {
        StatementScope s(add);
        s->bind(1, d.id);
        s->bind(2, e.id);
        s->bind(3, d.webhook_id);
        s->bind(4, to_string(paused ? DeliveryStatus::kPaused : DeliveryStatus::kPending));
        if (paused) {
          s->bind_null(5);
        } else {
          s->bind(5, created);
        }
        s->bind(6, created);
        s->run();
      }
      r.deliveries.emplace_back(d.id, d.webhook_id);
      if (paused) add_paused(c, d.webhook_id, d.max_queued, created);
    }
    return r;
  }

  EventReceipt existing_receipt(Connection& c, const std::string& id) {
    EventReceipt r;
    r.id = id;
    r.duplicate = true;
    auto& ev = c.cached("SELECT event_type, created_at FROM events WHERE id = ?1");
    {
      StatementScope s(ev);
      s->bind(1, id);
      if (s->step()) {
        r.event_type = s->text(0);
        r.created_at = parse_time_or_epoch(s->text(1));
      }
    }
    auto& ds = c.cached("SELECT id, webhook_id FROM deliveries WHERE event_id = ?1 ORDER BY rowid");
    StatementScope s(ds);
    s->bind(1, id);
    while (s->step()) r.deliveries.emplace_back(s->text(0), s->text(1));
    return r;
  }

  // Keeps a per-webhook count of paused deliveries so the cap costs nothing per event; any
  // other kind of write clears it (it is rebuilt with one indexed count).
  void add_paused(Connection& c, const std::string& webhook_id, std::size_t max_queued,
                  const std::string& now) {
    auto it = paused_counts_.find(webhook_id);
    if (it == paused_counts_.end()) {
      it = paused_counts_.emplace(webhook_id, count_paused(c, webhook_id)).first;
    } else {
      ++it->second;
    }
    if (it->second > static_cast<std::int64_t>(max_queued)) {
      it->second -= drop_oldest_paused(c, webhook_id,
                                       it->second - static_cast<std::int64_t>(max_queued), now);
    }
  }

  static std::int64_t count_paused(Connection& c, const std::string& webhook_id) {
    auto& s =
        c.cached("SELECT count(*) FROM deliveries WHERE webhook_id = ?1 AND status = 'paused'");
    StatementScope q(s);
    q->bind(1, webhook_id);
    return q->step() ? q->int64(0) : 0;
  }

  void enforce_paused_cap(Connection& c, const std::string& webhook_id, std::size_t max_queued,
                          const std::string& now) {
    const auto n = count_paused(c, webhook_id);
    if (n > static_cast<std::int64_t>(max_queued)) {
      drop_oldest_paused(c, webhook_id, n - static_cast<std::int64_t>(max_queued), now);
    }
  }

  std::int64_t drop_oldest_paused(Connection& c, const std::string& webhook_id, std::int64_t n,
                                  const std::string& now) {
    auto& s = c.cached(
        "UPDATE deliveries SET status = 'dropped', updated_at = ?3, "
        "last_error = 'dropped: more than max_queued deliveries were paused' "
        "WHERE id IN (SELECT id FROM deliveries WHERE webhook_id = ?1 AND status = 'paused' "
        "ORDER BY next_attempt_at, rowid LIMIT ?2)");
    StatementScope q(s);
    q->bind(1, webhook_id);
    q->bind(2, n);
    q->bind(3, now);
    q->run();
    const auto dropped = c.changes();
    request_drops_[webhook_id] += dropped;  // logged once the group has committed
    return dropped;
  }

  static DeliveryRow delivery_row(sqlite::Statement& q) {
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

  // ---- writer ----

  bool enqueue(WriteRequest req) {
    {
      std::unique_lock lock(mutex_);
      if (!closed_) {
        // Only intake counts: claims and attempt records are bounded by the dispatcher's
        // concurrency and must not crowd out (or be crowded out by) events.
        if (req.counts_against_limit) {
          if (queued_intake_ >= options_.max_queued_writes) return false;
          ++queued_intake_;
        }
        queue_.push_back(std::move(req));
        lock.unlock();
        cv_.notify_one();
        return true;
      }
    }
    // After close(): answered at once, on the caller's thread.
    req.complete(WriteStatus::kShuttingDown);
    return true;
  }

  void writer_loop() {
    {
      std::lock_guard lock(mutex_);
      writer_running_ = true;
    }
    std::vector<WriteRequest> group;
    std::vector<WriteRequest> fast;
    std::vector<WriteRequest> durable;
    std::vector<WriteStatus> results;
    while (true) {
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [this] { return closed_ || !queue_.empty(); });
        if (queue_.empty()) break;  // closed and drained
        const auto n = std::min(queue_.size(), std::max<std::size_t>(options_.max_group, 1));
        group.clear();
        for (std::size_t i = 0; i < n; ++i) {
          if (queue_.front().counts_against_limit) --queued_intake_;
          group.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      if (options_.before_group_for_testing) options_.before_group_for_testing();
      if (options_.max_page_count_for_testing) {
        if (const auto pages = options_.max_page_count_for_testing(); pages > 0) {
          sqlite3_exec(writer_conn_->get(),
                       ("PRAGMA max_page_count=" + std::to_string(pages)).c_str(), nullptr, nullptr,
                       nullptr);
        }
      }
      // Claims go first, in a transaction of their own committed without an fsync (WAL with
      // synchronous=NORMAL; the next durable commit's fsync covers it): the dispatcher waits for
      // claims, and they need not survive a power cut. Everything else stays durable.
      fast.clear();
      durable.clear();
      for (auto& r : group) (r.durable ? durable : fast).push_back(std::move(r));
      if (!fast.empty()) {
        sqlite3_exec(writer_conn_->get(), "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr);
        process(fast, results);
        sqlite3_exec(writer_conn_->get(), "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
      }
      if (!durable.empty()) process(durable, results);
      group.clear();  // release captured state before sleeping
      fast.clear();
      durable.clear();
    }
    std::lock_guard lock(mutex_);
    writer_running_ = false;
  }

  void process(std::vector<WriteRequest>& group, std::vector<WriteStatus>& results) {
    run_group(group, results);
    for (auto& [webhook, n] : group_drops_) {
      spdlog::warn("webhook={}: dropped {} oldest paused deliveries (more than max_queued)",
                   webhook, n);
    }
    group_drops_.clear();
    for (std::size_t i = 0; i < group.size(); ++i) {
      if (!group[i].complete) continue;
      try {
        group[i].complete(results[i]);
      } catch (const std::exception& e) {
        spdlog::error("store write callback threw: {}", e.what());
      } catch (...) {
        spdlog::error("store write callback threw");
      }
    }
  }

  // One transaction for the whole group. A request that breaks a constraint is rolled back
  // alone (kRejected); a storage failure (disk full, I/O, corruption) or a failed COMMIT rolls
  // back everything (kStorageUnavailable) so nothing is half-written, and the next group simply
  // tries again.
  //
  // Isolating each request in a savepoint costs a copy of every page it touches that the group
  // already touched (a quarter of the writer's time at intake), and rejections are rare. So the
  // group runs without savepoints first; only when a request is rejected is the whole group
  // rolled back and run again with one savepoint per request. Requests may run more than once:
  // `apply` resets whatever it reports.
  void run_group(std::vector<WriteRequest>& group, std::vector<WriteStatus>& results) {
    if (run_group_once(group, results, false) == GroupRun::kNeedsIsolation) {
      run_group_once(group, results, true);
    }
  }

  enum class GroupRun { kDone, kNeedsIsolation };

  GroupRun run_group_once(std::vector<WriteRequest>& group, std::vector<WriteStatus>& results,
                          bool isolate) {
    auto& c = *writer_conn_;
    results.assign(group.size(), WriteStatus::kStorageUnavailable);
    group_drops_.clear();
    try {
      c.exec("BEGIN IMMEDIATE");
    } catch (const SqliteError& e) {
      note_failure(e.what());
      return GroupRun::kDone;
    }
    std::optional<std::string> storage_failure;
    std::uint64_t rejected = 0;
    bool needs_isolation = false;
    for (std::size_t i = 0; i < group.size() && !storage_failure && !needs_isolation; ++i) {
      request_drops_.clear();
      try {
        // Prepared once: at one savepoint per request, parsing the SQL every time showed up.
        if (isolate) c.cached("SAVEPOINT req").run();
        group[i].apply(c);
        if (isolate) c.cached("RELEASE req").run();
        results[i] = WriteStatus::kOk;
        for (auto& [webhook, n] : request_drops_) group_drops_[webhook] += n;
      } catch (const SqliteError& e) {
        if (e.is_storage_failure()) {
          storage_failure = e.what();
        } else if (!isolate) {
          needs_isolation = true;
        } else {
          reject(c, results[i], e.what());
          ++rejected;
        }
      } catch (const std::exception& e) {
        if (!isolate) {
          needs_isolation = true;
        } else {
          reject(c, results[i], e.what());
          ++rejected;
        }
      }
      if (!storage_failure && !needs_isolation && sqlite3_get_autocommit(c.get()) != 0) {
        storage_failure = "transaction rolled back by SQLite";
      }
    }
    if (needs_isolation) {
      if (sqlite3_get_autocommit(c.get()) == 0) {
        sqlite3_exec(c.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      }
      paused_counts_.clear();
      group_drops_.clear();
      return GroupRun::kNeedsIsolation;
    }
    if (!storage_failure) {
      try {
        c.exec("COMMIT");
      } catch (const SqliteError& e) {
        storage_failure = e.what();
      }
    }
    if (storage_failure) {
      if (sqlite3_get_autocommit(c.get()) == 0) {
        sqlite3_exec(c.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      }
      paused_counts_.clear();
      group_drops_.clear();
      for (auto& r : results) {
        if (r != WriteStatus::kRejected) r = WriteStatus::kStorageUnavailable;
      }
      note_failure(*storage_failure);
      return GroupRun::kDone;
    }
    std::lock_guard lock(mutex_);
    ++stats_.commits;
    stats_.requests += group.size() - rejected;
    stats_.rejected += rejected;
    stats_.max_group = std::max<std::uint64_t>(stats_.max_group, group.size());
    if (!last_commit_ok_) spdlog::info("database {} is writable again", options_.path);
    last_commit_ok_ = true;
    return GroupRun::kDone;
  }

  void reject(Connection& c, WriteStatus& result, const char* what) {
    spdlog::error("database write rejected (rolled back alone): {}", what);
    sqlite3_exec(c.get(), "ROLLBACK TO req; RELEASE req", nullptr, nullptr, nullptr);
    paused_counts_.clear();
    result = WriteStatus::kRejected;
  }

  void note_failure(const std::string& what) {
    std::lock_guard lock(mutex_);
    ++stats_.failed_commits;
    if (last_commit_ok_) spdlog::error("database {} cannot be written: {}", options_.path, what);
    last_commit_ok_ = false;
  }

  // ---- readers ----

  // Runs `f` on a pooled reader connection inside one read transaction (one WAL snapshot).
  template <class F>
  std::invoke_result_t<F&, Connection&> read(const std::string& what, F&& f) {
    auto reader = acquire_reader();
    try {
      reader->exec("BEGIN");
      auto result = f(*reader);
      reader->exec("COMMIT");
      return result;
    } catch (const SqliteError& e) {
      throw StoreError("cannot read " + what + " from " + options_.path + ": " + e.what());
    }
  }

  // A reader connection borrowed from the pool; goes back (or is closed) when released.
  class ReaderLease {
   public:
    ReaderLease(SqliteStore& store, std::unique_ptr<Connection> c)
        : store_(store), c_(std::move(c)) {}
    ~ReaderLease() { store_.release_reader(std::move(c_)); }
    ReaderLease(const ReaderLease&) = delete;
    ReaderLease& operator=(const ReaderLease&) = delete;
    Connection* operator->() const { return c_.get(); }
    Connection& operator*() const { return *c_; }

   private:
    SqliteStore& store_;
    std::unique_ptr<Connection> c_;
  };

  ReaderLease acquire_reader() {
    {
      std::lock_guard lock(mutex_);
      if (closed_) throw StoreError("the store of " + options_.path + " is closed");
    }
    {
      std::lock_guard lock(readers_mutex_);
      if (!idle_readers_.empty()) {
        auto c = std::move(idle_readers_.back());
        idle_readers_.pop_back();
        return ReaderLease(*this, std::move(c));
      }
    }
    try {
      // Read-write open + query_only: a SQLITE_OPEN_READONLY connection cannot recover the
      // WAL index on its own, and query_only guarantees it never writes.
      auto conn =
          std::make_unique<Connection>(options_.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX);
      configure_connection(*conn);
      conn->exec("PRAGMA query_only=ON");
      return ReaderLease(*this, std::move(conn));
    } catch (const SqliteError& e) {
      throw StoreError("cannot read " + options_.path + ": " + e.what());
    }
  }

  void release_reader(std::unique_ptr<Connection> c) {
    if (!c) return;
    if (sqlite3_get_autocommit(c->get()) == 0) {
      sqlite3_exec(c->get(), "ROLLBACK", nullptr, nullptr, nullptr);  // after an exception
    }
    std::lock_guard lock(readers_mutex_);
    if (!readers_closed_ && idle_readers_.size() < kMaxReaders) {
      idle_readers_.push_back(std::move(c));
    }
  }

  StoreOptions options_;
  std::unique_ptr<Connection> writer_conn_;
  std::thread writer_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<WriteRequest> queue_;
  std::size_t queued_intake_ = 0;  // requests in queue_ that count against max_queued_writes
  bool closed_ = false;
  bool writer_running_ = false;
  bool last_commit_ok_ = true;
  bool probe_queued_ = false;
  std::chrono::steady_clock::time_point last_probe_{};
  StoreStats stats_;

  // Writer thread only.
  std::unordered_map<std::string, std::int64_t> paused_counts_;
  std::unordered_map<std::string, std::int64_t> request_drops_;      // by the running request
  std::unordered_map<std::string, std::int64_t> group_drops_;        // by committed requests
  std::unordered_map<std::string, std::uint64_t> pause_generation_;  // see set_paused_chunk
  std::string prune_cutoff_;       // the cutoff of the retention run in progress
  std::string prune_events_from_;  // where its events scan resumes (created_at)

  std::mutex readers_mutex_;
  std::vector<std::unique_ptr<Connection>> idle_readers_;
  bool readers_closed_ = false;
};

std::unique_ptr<Store> open_sqlite_store(const StoreOptions& options) {
  return std::make_unique<SqliteStore>(options);
}

}  // namespace relay::store
