#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "Schema.hpp"
#include "relay/common/Ids.hpp"
#include "relay/common/Time.hpp"
#include "relay/store/Store.hpp"

namespace relay::store {
namespace {

namespace fs = std::filesystem;
using common::TimePoint;
using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ =
        fs::temp_directory_path() / ("relay-store-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  [[nodiscard]] fs::path file(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Direct SQL on the file, outside the store (what an operator's sqlite3 session sees).
std::string query(const fs::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr);
  sqlite3_busy_timeout(h, 5000);
  sqlite3_stmt* s = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(h, sql.c_str(), -1, &s, nullptr) == SQLITE_OK) {
    while (sqlite3_step(s) == SQLITE_ROW) {
      if (!out.empty()) out += "\n";
      for (int i = 0; i < sqlite3_column_count(s); ++i) {
        if (i) out += "|";
        const auto* t = sqlite3_column_text(s, i);
        out += t ? reinterpret_cast<const char*>(t) : "NULL";
      }
    }
  } else {
    out = std::string("error: ") + sqlite3_errmsg(h);
  }
  sqlite3_finalize(s);
  sqlite3_close(h);
  return out;
}

void exec(const fs::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  ASSERT_EQ(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(h);
  sqlite3_close(h);
}

std::unique_ptr<Store> open(const fs::path& path, StoreOptions o = {}) {
  o.path = path.string();
  return open_sqlite_store(o);
}

NewEvent event(const std::string& id, std::vector<NewDelivery> deliveries,
               TimePoint at = common::now_ms()) {
  NewEvent e;
  e.id = id;
  e.event_type = "ticket.created";
  e.created_at = at;
  e.payload = R"({"id":")" + id + R"(","data":{}})";
  e.deliveries = std::move(deliveries);
  return e;
}

NewDelivery pending(const std::string& webhook) {
  return {common::new_delivery_id(), webhook, DeliveryStatus::kPending, 10000};
}

NewDelivery paused(const std::string& webhook, std::size_t max_queued = 10000) {
  return {common::new_delivery_id(), webhook, DeliveryStatus::kPaused, max_queued};
}

std::vector<EventReceipt> submit(Store& s, std::vector<NewEvent> events) {
  std::promise<std::pair<WriteStatus, std::vector<EventReceipt>>> p;
  EXPECT_TRUE(s.submit_events(std::move(events), [&](WriteStatus st, std::vector<EventReceipt> r) {
    p.set_value({st, std::move(r)});
  }));
  auto [st, r] = p.get_future().get();
  EXPECT_EQ(st, WriteStatus::kOk);
  return r;
}

ClaimResult claim(Store& s, std::vector<std::pair<std::string, int>> limits,
                  TimePoint now = common::now_ms()) {
  std::promise<ClaimResult> p;
  s.claim_due(now, std::move(limits), [&](WriteStatus st, ClaimResult r) {
    EXPECT_EQ(st, WriteStatus::kOk);
    p.set_value(std::move(r));
  });
  return p.get_future().get();
}

// count_by_webhook_status as "webhook/status" -> n (what the API and /metrics show).
std::map<std::string, std::int64_t> shown_counts(Store& s) {
  std::map<std::string, std::int64_t> out;
  for (const auto& [k, n] : s.count_by_webhook_status()) out[k.first + "/" + k.second] = n;
  return out;
}

WriteStatus wait(const std::function<void(Store::WriteCallback)>& op) {
  std::promise<WriteStatus> p;
  op([&](WriteStatus st) { p.set_value(st); });
  return p.get_future().get();
}

TEST(StoreOpen, FreshFileGetsSchemaVersionAndWal) {
  TempDir dir;
  const auto db = dir.file("relayd.db");
  open(db)->close();
  EXPECT_EQ(query(db, "PRAGMA user_version"), std::to_string(migrations().size()));
  EXPECT_EQ(query(db, "PRAGMA application_id"), std::to_string(0x524C4159));
  EXPECT_EQ(query(db, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(query(db,
                  "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master "
                  "WHERE type IN ('table','view') ORDER BY name)"),
            "api_webhooks,attempts,deliveries,delivery_log,events,webhook_state");
  EXPECT_NE(query(db, "SELECT sql FROM sqlite_master WHERE name='deliveries_due'")
                .find("status, next_attempt_at"),
            std::string::npos);
}

TEST(StoreOpen, ExistingFileKeepsItsDataAndIsNotMigratedAgain) {
  TempDir dir;
  const auto db = dir.file("relayd.db");
  {
    auto s = open(db);
    submit(*s, {event("evt_keep", {pending("crm")})});
    s->close();
  }
  // Re-running migration v1 would fail on the existing tables and refuse the file.
  auto s = open(db);
  EXPECT_EQ(query(db, "SELECT count(*) FROM events WHERE id='evt_keep'"), "1");
  EXPECT_EQ(query(db, "PRAGMA user_version"), std::to_string(migrations().size()));
}

// A file as schema v1 left it: the tables and rows the first release wrote.
void make_v1_file(const fs::path& db) {
  exec(db, std::string(migrations()[0].sql) + "PRAGMA application_id=" +
               std::to_string(kApplicationId) + "; PRAGMA user_version=1;" +
               "INSERT INTO events VALUES ('evt_1', 'ticket.created', '2026-01-01T00:00:00.000Z', "
               "'{}');"
               "INSERT INTO deliveries (id, event_id, webhook_id, status, attempt_count, "
               "next_attempt_at, created_at, updated_at) VALUES "
               "('dlv_p', 'evt_1', 'crm', 'pending', 0, '2026-01-01T00:00:00.000Z', "
               "'2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'),"
               "('dlv_s', 'evt_1', 'erp', 'succeeded', 1, NULL, '2026-01-01T00:00:00.000Z', "
               "'2026-01-01T00:00:01.000Z');"
               "INSERT INTO attempts (delivery_id, attempt_number, started_at, duration_ms, url, "
               "request_headers, outcome) VALUES ('dlv_s', 1, '2026-01-01T00:00:00.500Z', 3, "
               "'https://erp.example/hook', '{}', 'succeeded');");
}

// The error sqlite3_exec reports for `sql` ("" when it succeeds).
std::string exec_error(const fs::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr);
  sqlite3_busy_timeout(h, 5000);
  std::string out;
  if (sqlite3_exec(h, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) out = sqlite3_errmsg(h);
  sqlite3_close(h);
  return out;
}

// How many temporary b-trees SQLite builds to run `sql` once.
int ephemeral_tables(const fs::path& db, const std::string& sql) {
  const auto program = query(db, "EXPLAIN " + sql);
  int n = 0;
  for (std::size_t at = 0; (at = program.find("|OpenEphemeral|", at)) != std::string::npos; ++at) {
    ++n;
  }
  return n;
}

TEST(StoreOpen, AVersion1FileIsMigratedInPlaceWithItsRowsAndRules) {
  TempDir dir;
  const auto db = dir.file("relayd.db");
  make_v1_file(db);
  ASSERT_EQ(ephemeral_tables(db, "UPDATE deliveries SET status = ?2 WHERE id = ?1"), 3)
      << "the v1 fixture should have the v1 CHECK and index";

  auto s = open(db);
  EXPECT_EQ(query(db, "PRAGMA user_version"), std::to_string(migrations().size()));
  EXPECT_EQ(query(db, "SELECT id, status FROM deliveries ORDER BY id"),
            "dlv_p|pending\ndlv_s|succeeded");
  EXPECT_EQ(query(db, "SELECT delivery_id, outcome FROM attempts"), "dlv_s|succeeded");
  EXPECT_EQ(query(db, "PRAGMA integrity_check"), "ok");
  // The rules are the same ...
  EXPECT_NE(exec_error(db, "UPDATE deliveries SET status = 'done' WHERE id = 'dlv_p'")
                .find("CHECK constraint failed"),
            std::string::npos);
  EXPECT_NE(exec_error(db, "UPDATE attempts SET outcome = 'maybe'").find("CHECK constraint failed"),
            std::string::npos);
  EXPECT_EQ(query(db,
                  "SELECT id FROM deliveries INDEXED BY deliveries_finished WHERE (status = "
                  "'succeeded' OR status = 'failed' OR status = 'cancelled' OR status = "
                  "'dropped') AND updated_at < '2027'"),
            "dlv_s");
  EXPECT_EQ(exec_error(db, "UPDATE deliveries SET status = 'cancelled' WHERE id = 'dlv_p'"), "");
  EXPECT_EQ(query(db,
                  "SELECT count(*) FROM deliveries INDEXED BY deliveries_finished WHERE "
                  "(status = 'succeeded' OR status = 'failed' OR status = 'cancelled' OR "
                  "status = 'dropped') AND updated_at < '2027'"),
            "2");
  // ... and the store keeps working on the migrated file.
  exec(db, "UPDATE deliveries SET status = 'pending' WHERE id = 'dlv_p'");
  auto c = claim(*s, {{"crm", 5}}, common::parse_rfc3339("2026-01-02T00:00:00Z").value());
  ASSERT_EQ(c.claimed.size(), 1U);
  EXPECT_EQ(c.claimed[0].delivery_id, "dlv_p");
}

// What the writer runs for every delivery must not build a temporary b-tree per row (a
// constant `IN (...)` list in a CHECK or a partial index's WHERE does).
TEST(StoreOpen, PerDeliveryWritesBuildNoTemporaryBTrees) {
  TempDir dir;
  for (const std::string name : {"fresh.db", "from-v1.db"}) {
    const auto db = dir.file(name);
    if (name == "from-v1.db") make_v1_file(db);
    open(db)->close();
    for (const std::string sql :
         {"INSERT INTO deliveries (id, event_id, webhook_id, status, attempt_count, "
          "next_attempt_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?6)",
          "UPDATE deliveries SET status = ?2, attempt_count = ?3, next_attempt_at = ?4, "
          "updated_at = ?5, last_status_code = ?6, last_error = ?7 "
          "WHERE rowid = ?8 AND id = ?1 AND status = 'pending'",
          "INSERT INTO attempts (delivery_id, attempt_number, started_at, duration_ms, url, "
          "request_headers, response_status, response_headers, response_body, error, outcome) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
          "UPDATE deliveries SET status = ?2, attempt_count = ?3, next_attempt_at = ?4, "
          "updated_at = ?5, last_status_code = ?6, last_error = ?7 "
          "WHERE id = ?1 AND status = 'delivering'"}) {
      EXPECT_EQ(ephemeral_tables(db, sql), 0) << name << ": " << sql;
    }
  }
}

TEST(StoreOpen, AV1TableNotAsCreatedIsRefusedAndLeftAtV1) {
  TempDir dir;
  const auto db = dir.file("relayd.db");
  make_v1_file(db);
  // Someone changed the table by hand: the migration must not guess.
  exec(db,
       "PRAGMA writable_schema=ON; UPDATE sqlite_schema SET sql = replace(sql, "
       "'''cancelled'', ''dropped''', '''dropped'', ''cancelled''') WHERE name = 'deliveries';"
       "PRAGMA writable_schema=OFF;");
  try {
    open(db);
    ADD_FAILURE() << "opened";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("table deliveries is not as relayd created it"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(query(db, "PRAGMA user_version"), "1");
  EXPECT_EQ(query(db, "SELECT count(*) FROM deliveries"), "2");
  EXPECT_EQ(query(db, "PRAGMA integrity_check"), "ok");
}

TEST(StoreOpen, MissingDirectoryIsAClearError) {
  TempDir dir;
  try {
    open(dir.file("nope/relayd.db"));
    FAIL();
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
}

struct RefusedCase {
  std::string name;
  std::function<void(const fs::path&)> make;
  std::string expected;
};

TEST(StoreOpen, RefusesForeignNewerAndCorruptFilesWithoutTouchingThem) {
  const std::vector<RefusedCase> cases = {
      {"text file", [](const fs::path& p) { std::ofstream(p) << "hello, not a database\n"; },
       "is not a SQLite database"},
      {"other app",
       [](const fs::path& p) { exec(p, "CREATE TABLE customers(id INTEGER PRIMARY KEY, name)"); },
       "is not a relayd database"},
      {"other app id",
       [](const fs::path& p) { exec(p, "PRAGMA application_id=42; CREATE TABLE t(x)"); },
       "is not a relayd database"},
      {"newer",
       [](const fs::path& p) {
         open(p)->close();
         exec(p, "PRAGMA user_version=99");
       },
       "newer relayd (schema v99, this binary knows up to v" + std::to_string(migrations().size()) +
           ")"},
      {"corrupt",
       [](const fs::path& p) {
         {
           auto s = open(p);
           std::vector<NewEvent> many;
           for (int i = 0; i < 300; ++i)
             many.push_back(event("evt_" + std::to_string(i), {pending("crm")}));
           submit(*s, std::move(many));
           s->close();
         }
         exec(p, "PRAGMA wal_checkpoint(TRUNCATE)");
         std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
         f.seekp(4096 * 3);
         const std::string junk(4096 * 4, '\x5A');
         f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
       },
       "is corrupt"},
  };
  for (const auto& c : cases) {
    TempDir dir;
    const auto db = dir.file("x.db");
    c.make(db);
    const auto before = slurp(db);
    try {
      open(db);
      ADD_FAILURE() << c.name << ": opened";
    } catch (const StoreError& e) {
      EXPECT_NE(std::string(e.what()).find(c.expected), std::string::npos)
          << c.name << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find(db.string()), std::string::npos) << c.name;
    }
    EXPECT_EQ(slurp(db), before) << c.name << ": file changed";
  }
}

TEST(StoreGroupCommit, ConcurrentWritersShareTransactionsAndCallbacksComeAfterCommit) {
  TempDir dir;
  const auto db = dir.file("relayd.db");
  auto s = open(db);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 500;
  std::atomic<int> ok{0};
  std::atomic<int> invisible{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::future<void>> waits;
      for (int i = 0; i < kPerThread; ++i) {
        auto p = std::make_shared<std::promise<void>>();
        waits.push_back(p->get_future());
        const auto id = "evt_" + std::to_string(t) + "_" + std::to_string(i);
        while (!s->submit_events(
            {event(id, {pending("crm")})}, [&, p, id](WriteStatus st, std::vector<EventReceipt>) {
              if (st == WriteStatus::kOk) ++ok;
              // Sampled: a fresh connection must already see the row.
              if (id.back() == '7' &&
                  query(db, "SELECT count(*) FROM events WHERE id='" + id + "'") != "1") {
                ++invisible;
              }
              p->set_value();
            })) {
          std::this_thread::yield();
        }
      }
      for (auto& w : waits) w.get();
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_EQ(invisible.load(), 0);
  EXPECT_EQ(query(db, "SELECT count(*) FROM events"), std::to_string(kThreads * kPerThread));
  const auto st = s->stats();
  EXPECT_EQ(st.requests, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_LT(st.commits, st.requests / 4) << "requests were not grouped";
  EXPECT_GT(st.max_group, 1U);
}

TEST(StoreIntake, DuplicateIdReturnsTheFirstReceipt) {
  TempDir dir;
  auto s = open(dir.file("r.db"));
  const auto first = submit(*s, {event("evt_same", {pending("crm"), paused("billing")})});
  ASSERT_EQ(first.size(), 1U);
  EXPECT_FALSE(first[0].duplicate);
  const auto again = submit(*s, {event("evt_same", {pending("crm")}, common::now_ms() + 5s)});
  ASSERT_EQ(again.size(), 1U);
  EXPECT_TRUE(again[0].duplicate);
  EXPECT_EQ(again[0].deliveries, first[0].deliveries);
  EXPECT_EQ(again[0].created_at, first[0].created_at);
  EXPECT_EQ(query(dir.file("r.db"), "SELECT count(*) FROM deliveries"), "2");
  EXPECT_EQ(query(dir.file("r.db"), "SELECT status FROM deliveries WHERE webhook_id='billing'"),
            "paused");
}

TEST(StoreIntake, AVectorIsAllOrNothing) {
  TempDir dir;
  auto s = open(dir.file("r.db"));
  auto d = pending("crm");
  auto dup = d;  // same delivery id twice: the second insert violates the primary key
  std::promise<WriteStatus> p;
  s->submit_events({event("evt_a", {d}), event("evt_b", {dup})},
                   [&](WriteStatus st, std::vector<EventReceipt>) { p.set_value(st); });
  EXPECT_EQ(p.get_future().get(), WriteStatus::kRejected);
  EXPECT_EQ(query(dir.file("r.db"), "SELECT count(*) FROM events"), "0");
  EXPECT_EQ(s->stats().rejected, 1U);
  // The writer carries on.
  submit(*s, {event("evt_c", {pending("crm")})});
  EXPECT_EQ(query(dir.file("r.db"), "SELECT count(*) FROM events"), "1");
}

TEST(StoreDispatch, ClaimRespectsLimitsAndDueTimesAndReportsNextDue) {
  TempDir dir;
  auto s = open(dir.file("r.db"));
  const auto now = common::now_ms();
  std::vector<NewEvent> events;
  for (int i = 0; i < 5; ++i)
    events.push_back(event("evt_a" + std::to_string(i), {pending("a")}, now));
  for (int i = 0; i < 3; ++i)
    events.push_back(event("evt_b" + std::to_string(i), {pending("b")}, now));
  events.push_back(event("evt_later", {pending("b")}, now + 1h));
  submit(*s, std::move(events));
  const auto r = claim(*s, {{"a", 2}, {"b", 10}}, now);
  int a = 0, b = 0;
  for (const auto& d : r.claimed) {
    (d.webhook_id == "a" ? a : b)++;
    EXPECT_EQ(d.event_type, "ticket.created");
    EXPECT_EQ(d.payload, R"({"id":")" + d.event_id + R"(","data":{}})");
  }
  EXPECT_EQ(a, 2);
  EXPECT_EQ(b, 3);
  ASSERT_TRUE(r.next_due.has_value());
  EXPECT_EQ(*r.next_due, now);  // the three of "a" left are due now
  // Claims live in memory: the rows stay pending, the store's reads show them delivering.
  EXPECT_EQ(query(dir.file("r.db"), "SELECT count(*) FROM deliveries WHERE status='delivering'"),
            "0");
  auto counts = shown_counts(*s);
  EXPECT_EQ(counts["a/delivering"], 2);
  EXPECT_EQ(counts["b/delivering"], 3);
  EXPECT_EQ(counts["a/pending"], 3);
  EXPECT_EQ(counts["b/pending"], 1);
  EXPECT_EQ(s->get_delivery(r.claimed[0].delivery_id)->status, "delivering");
  DeliveryFilter in_flight;
  in_flight.status = "delivering";
  EXPECT_EQ(s->list_deliveries(in_flight).size(), 5U);
  DeliveryFilter waiting;
  waiting.status = "pending";
  EXPECT_EQ(s->list_deliveries(waiting).size(), 4U);
  const auto r2 = claim(*s, {{"b", 10}}, now);
  EXPECT_TRUE(r2.claimed.empty());
}

TEST(StoreDispatch, RecordAttemptRecoverAndRedeliver) {
  TempDir dir;
  const auto db = dir.file("r.db");
  auto s = open(db);
  const auto receipts = submit(*s, {event("evt_1", {pending("crm")})});
  const auto id = receipts[0].deliveries[0].first;
  ASSERT_EQ(claim(*s, {{"crm", 1}}).claimed.size(), 1U);

  AttemptRecord rec;
  rec.delivery_id = id;
  rec.attempt_number = 1;
  rec.started_at = common::now_ms();
  rec.duration_ms = 12;
  rec.url = "https://x/hook";
  rec.request_headers = "{}";
  rec.response_status = 500;
  rec.response_body = "boom";
  rec.outcome = AttemptOutcome::kRetry;
  rec.new_status = DeliveryStatus::kPending;
  rec.next_attempt_at = common::now_ms() + 1min;
  EXPECT_EQ(wait([&](auto cb) { s->record_attempt(rec, cb); }), WriteStatus::kOk);
  EXPECT_EQ(query(db, "SELECT status, attempt_count, last_status_code, last_error FROM deliveries"),
            "pending|1|500|HTTP 500");
  EXPECT_EQ(
      query(db, "SELECT attempt_number, outcome, response_status, response_body FROM attempts"),
      "1|retry|500|boom");

  // Not due yet; redeliver makes it due now.
  EXPECT_TRUE(claim(*s, {{"crm", 1}}).claimed.empty());
  std::promise<bool> found;
  s->redeliver(id, common::now_ms(), [&](WriteStatus, bool f) { found.set_value(f); });
  EXPECT_TRUE(found.get_future().get());
  const auto c = claim(*s, {{"crm", 1}});
  ASSERT_EQ(c.claimed.size(), 1U);
  EXPECT_EQ(c.claimed[0].attempt_count, 1);

  // Claimed, so redeliver leaves it alone (it is being sent).
  std::promise<bool> busy;
  s->redeliver(id, common::now_ms() + 1h, [&](WriteStatus, bool f) { busy.set_value(f); });
  EXPECT_TRUE(busy.get_future().get());
  EXPECT_EQ(s->get_delivery(id)->status, "delivering");
  EXPECT_NE(s->get_delivery(id)->next_attempt_at,
            std::optional<std::string>(common::format_rfc3339_ms(common::now_ms() + 1h)));

  // A crash now: the claim was only a lease in memory, so the row is due as it was, without
  // a recovery step.
  s->close();
  s = open(db);
  EXPECT_EQ(s->recover_interrupted(common::now_ms()), 0U);
  EXPECT_EQ(query(db, "SELECT status FROM deliveries"), "pending");
  EXPECT_EQ(s->get_delivery(id)->status, "pending");
  std::promise<bool> missing;
  s->redeliver("dlv_nope", common::now_ms(), [&](WriteStatus, bool f) { missing.set_value(f); });
  EXPECT_FALSE(missing.get_future().get());

  // A delivery cancelled while in flight stays cancelled; the attempt row is still written.
  ASSERT_EQ(claim(*s, {{"crm", 1}}).claimed.size(), 1U);
  std::promise<std::size_t> cancelled;
  s->cancel_webhooks_except({}, [&](WriteStatus, std::size_t n) { cancelled.set_value(n); });
  EXPECT_EQ(cancelled.get_future().get(), 1U);
  rec.attempt_number = 2;
  rec.outcome = AttemptOutcome::kSucceeded;
  rec.new_status = DeliveryStatus::kSucceeded;
  EXPECT_EQ(wait([&](auto cb) { s->record_attempt(rec, cb); }), WriteStatus::kOk);
  EXPECT_EQ(query(db, "SELECT status FROM deliveries"), "cancelled");
  EXPECT_EQ(query(db, "SELECT count(*) FROM attempts"), "2");
  EXPECT_EQ(query(db, "SELECT count(*) FROM delivery_log WHERE delivery_id='" + id + "'"), "2");
}

// The dispatcher passes the rowid the claim read; the record finds the row by it, and only if
// the id still matches.
TEST(StoreDispatch, RecordByRowidChecksTheId) {
  TempDir dir;
  const auto db = dir.file("r.db");
  auto s = open(db);
  submit(*s, {event("evt_1", {pending("crm"), pending("crm")})});
  const auto c = claim(*s, {{"crm", 2}});
  ASSERT_EQ(c.claimed.size(), 2U);
  for (const auto& d : c.claimed) {
    EXPECT_EQ(query(db, "SELECT id FROM deliveries WHERE rowid = " + std::to_string(d.rowid)),
              d.delivery_id);
  }
  AttemptRecord rec;
  rec.attempt_number = 1;
  rec.started_at = common::now_ms();
  rec.url = "https://x/hook";
  rec.request_headers = "{}";
  rec.response_status = 200;
  rec.outcome = AttemptOutcome::kSucceeded;
  rec.new_status = DeliveryStatus::kSucceeded;
  // A rowid that belongs to another delivery changes nothing.
  rec.delivery_id = c.claimed[0].delivery_id;
  rec.delivery_rowid = c.claimed[1].rowid;
  EXPECT_EQ(wait([&](auto cb) { s->record_attempt(rec, cb); }), WriteStatus::kOk);
  EXPECT_EQ(query(db, "SELECT count(*) FROM deliveries WHERE status = 'pending'"), "2");
  EXPECT_EQ(shown_counts(*s)["crm/delivering"], 2);
  rec.delivery_rowid = c.claimed[0].rowid;
  EXPECT_EQ(wait([&](auto cb) { s->record_attempt(rec, cb); }), WriteStatus::kOk);
  EXPECT_EQ(
      query(db, "SELECT status FROM deliveries WHERE id = '" + c.claimed[0].delivery_id + "'"),
      "succeeded");
  EXPECT_EQ(s->get_delivery(c.claimed[1].delivery_id)->status, "delivering");
  // The record ended the first claim only: the other is still held.
  EXPECT_TRUE(claim(*s, {{"crm", 2}}).claimed.empty());
}

TEST(StoreWebhooks, PausedCapDropsOldestAndResumeKeepsOrder) {
  TempDir dir;
  const auto db = dir.file("r.db");
  auto s = open(db);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    const auto r = submit(*s, {event("evt_" + std::to_string(i), {paused("crm", 3)})});
    ids.push_back(r[0].deliveries[0].first);
  }
  EXPECT_EQ(query(db, "SELECT status FROM deliveries WHERE id='" + ids[0] + "'"), "dropped");
  EXPECT_EQ(query(db, "SELECT status FROM deliveries WHERE id='" + ids[1] + "'"), "dropped");
  EXPECT_EQ(query(db, "SELECT count(*) FROM deliveries WHERE status='paused'"), "3");

  EXPECT_EQ(wait([&](auto cb) { s->set_webhook_paused("crm", false, 3, cb, nullptr); }),
            WriteStatus::kOk);
  const auto c = claim(*s, {{"crm", 10}});
  ASSERT_EQ(c.claimed.size(), 3U);
  EXPECT_EQ(c.claimed[0].delivery_id, ids[2]);
  EXPECT_EQ(c.claimed[2].delivery_id, ids[4]);

  // Pausing pending work: pending → paused, capped.
  for (int i = 0; i < 4; ++i) submit(*s, {event("evt_p" + std::to_string(i), {pending("crm")})});
  EXPECT_EQ(wait([&](auto cb) { s->set_webhook_paused("crm", true, 2, cb, nullptr); }),
            WriteStatus::kOk);
  EXPECT_EQ(query(db, "SELECT count(*) FROM deliveries WHERE status='paused'"), "2");
  EXPECT_EQ(query(db, "SELECT count(*) FROM deliveries WHERE status='dropped'"), "4");
  // The three in flight are not paused: their attempts' records decide them.
  EXPECT_EQ(shown_counts(*s)["crm/delivering"], 3);
}

TEST(StoreWebhooks, ResumeAndPauseRunInChunksThatOtherWritesInterleaveWith) {
  TempDir dir;
  const auto db = dir.file("r.db");
  StoreOptions o;
  o.bulk_chunk = 10;
  auto s = open(db, o);
  std::vector<std::string> ids;
  for (int i = 0; i < 35; ++i) {
    const auto r = submit(*s, {event("evt_" + std::to_string(i), {paused("crm", 1000)})});
    ids.push_back(r[0].deliveries[0].first);
  }
  const auto commits_before = s->stats().commits;
  // The resume and an intake request are queued together: the intake commits between two
  // chunks instead of after all of them.
  std::promise<WriteStatus> resumed;
  std::promise<std::uint64_t> intake_commit;
  std::atomic<int> progress{0};
  std::atomic<int> progress_after_done{0};
  std::atomic<bool> done_ran{false};
  s->set_webhook_paused(
      "crm", false, 1000,
      [&](WriteStatus st) {
        done_ran = true;
        resumed.set_value(st);
      },
      [&] {
        ++progress;
        if (done_ran) ++progress_after_done;
      });
  s->submit_events(
      {event("evt_new", {pending("billing")})},
      [&](WriteStatus, std::vector<EventReceipt>) { intake_commit.set_value(s->stats().commits); });
  EXPECT_EQ(resumed.get_future().get(), WriteStatus::kOk);
  const auto commits_after = s->stats().commits;
  EXPECT_GE(commits_after - commits_before, 4U);  // chunks of 10+10+10+5 (the intake may share one)
  // Each chunk said so as it committed (the dispatcher starts on the first), all before `done`.
  EXPECT_EQ(progress.load(), 4);
  EXPECT_EQ(progress_after_done.load(), 0);
  EXPECT_LT(intake_commit.get_future().get(), commits_after);
  EXPECT_EQ(query(db,
                  "SELECT count(*) FROM deliveries WHERE webhook_id='crm' AND "
                  "status='pending'"),
            "35");
  EXPECT_EQ(query(db,
                  "SELECT count(DISTINCT next_attempt_at) FROM deliveries WHERE "
                  "webhook_id='crm'"),
            "1");
  const auto c = claim(*s, {{"crm", 100}});
  ASSERT_EQ(c.claimed.size(), 35U);
  for (std::size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(c.claimed[i].delivery_id, ids[i]);

  // Pause 25 pending ones in chunks, capped at 7: the cap applies once all are paused.
  for (int i = 0; i < 25; ++i) submit(*s, {event("evt_p" + std::to_string(i), {pending("crm")})});
  EXPECT_EQ(wait([&](auto cb) { s->set_webhook_paused("crm", true, 7, cb, nullptr); }),
            WriteStatus::kOk);
  EXPECT_EQ(query(db, "SELECT count(*) FROM deliveries WHERE status='paused'"), "7");
  EXPECT_EQ(query(db, "SELECT count(*) FROM deliveries WHERE status='dropped'"), "18");
}

TEST(StoreWebhooks, ANewerPauseSupersedesTheRestOfAResumeInProgress) {
  TempDir dir;
  const auto db = dir.file("r.db");
  StoreOptions o;
  o.bulk_chunk = 5;
  auto s = open(db, o);
  for (int i = 0; i < 40; ++i)
    submit(*s, {event("evt_" + std::to_string(i), {paused("crm", 1000)})});
  // Resume, then (a reload later) pause again before the resume's chunks are done: whatever the
  // interleaving, the last word wins and every delivery ends paused.
  std::promise<WriteStatus> resumed;
  s->set_webhook_paused(
      "crm", false, 1000, [&](WriteStatus st) { resumed.set_value(st); }, nullptr);
  EXPECT_EQ(wait([&](auto cb) { s->set_webhook_paused("crm", true, 1000, cb, nullptr); }),
            WriteStatus::kOk);
  EXPECT_EQ(resumed.get_future().get(), WriteStatus::kOk);
  EXPECT_EQ(query(db, "SELECT count(*) FROM deliveries WHERE status='paused'"), "40");
}

TEST(StoreRetention, PruneBeforeRemovesExactlyOlderRowsInBatches) {
  TempDir dir;
  const auto db = dir.file("r.db");
  auto s = open(db);
  const auto now = common::now_ms();
  const auto cutoff = now - 24h;
  // Exactly at the cutoff is kept; one millisecond before it goes.
  submit(*s, {event("evt_old", {pending("crm")}, cutoff - 1ms),
              event("evt_edge", {pending("crm")}, cutoff), event("evt_new", {pending("crm")}, now),
              event("evt_orphan_old", {}, cutoff - 1ms), event("evt_orphan_edge", {}, cutoff),
              event("evt_live_old", {pending("live")}, cutoff - 1h)});
  // Finished at their event's time; one attempt each started then.
  exec(db,
       "UPDATE deliveries SET status='succeeded', updated_at=(SELECT created_at FROM events WHERE "
       "id=event_id) WHERE webhook_id='crm'");
  exec(db,
       "INSERT INTO attempts(delivery_id, attempt_number, started_at, duration_ms, url, "
       "request_headers, outcome) SELECT id, 1, created_at, 1, 'u', '{}', 'succeeded' FROM "
       "deliveries");
  std::size_t total = 0;
  for (int i = 0; i < 20; ++i) {
    std::promise<std::size_t> p;
    s->prune_before(cutoff, 1, [&](WriteStatus st, std::size_t n) {
      EXPECT_EQ(st, WriteStatus::kOk);
      p.set_value(n);
    });
    const auto n = p.get_future().get();
    EXPECT_LE(n, 1U);
    total += n;
    if (n == 0) break;
  }
  // Attempts of evt_old and evt_live_old, the finished delivery of evt_old, the events
  // evt_old and evt_orphan_old. The pending delivery of evt_live_old (and so its event) stays.
  EXPECT_EQ(total, 5U);
  EXPECT_EQ(query(db, "SELECT group_concat(id) FROM (SELECT id FROM events ORDER BY id)"),
            "evt_edge,evt_live_old,evt_new,evt_orphan_edge");
  EXPECT_EQ(query(db, "SELECT count(*) FROM deliveries"), "3");
  EXPECT_EQ(query(db, "SELECT count(*) FROM attempts"), "2");
  EXPECT_EQ(query(db, "SELECT count(*) FROM deliveries WHERE webhook_id='live'"), "1");
}

TEST(StoreWebhooks, CancelWebhooksExceptKeepsKnownOnesAndFinishedRows) {
  TempDir dir;
  const auto db = dir.file("r.db");
  auto s = open(db);
  submit(*s, {event("evt_1", {pending("keep"), pending("gone"), paused("gone"), pending("x")}),
              event("evt_2", {pending("gone")})});
  ASSERT_EQ(claim(*s, {{"gone", 1}}).claimed.size(), 1U);  // one is delivering
  exec(db, "UPDATE deliveries SET status='succeeded' WHERE webhook_id='x'");
  std::promise<std::size_t> p;
  s->cancel_webhooks_except({"keep"}, [&](WriteStatus st, std::size_t n) {
    EXPECT_EQ(st, WriteStatus::kOk);
    p.set_value(n);
  });
  EXPECT_EQ(p.get_future().get(), 3U);
  EXPECT_EQ(query(db, "SELECT status FROM deliveries WHERE webhook_id='keep'"), "pending");
  EXPECT_EQ(query(db, "SELECT status FROM deliveries WHERE webhook_id='x'"), "succeeded");
  EXPECT_EQ(query(db,
                  "SELECT count(*) FROM deliveries WHERE webhook_id='gone' AND "
                  "status='cancelled' AND next_attempt_at IS NULL"),
            "3");
}

TEST(StoreBackpressure, FullQueueRefusesIntakeAtOnce) {
  TempDir dir;
  StoreOptions o;
  o.max_queued_writes = 4;
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<bool> hold{true};
  std::atomic<bool> writer_held{false};
  o.before_group_for_testing = [&] {
    if (!hold) return;
    writer_held = true;
    released.wait();
  };
  auto s = open(dir.file("r.db"), o);
  std::atomic<int> done{0};
  // One request first, and only once the writer holds it (a group of exactly one) do the others
  // go in: otherwise a slow writer (TSan) may take two into its group and leave room for six.
  ASSERT_TRUE(s->submit_events({event("evt_first", {})},
                               [&](WriteStatus, std::vector<EventReceipt>) { ++done; }));
  int accepted = 1;
  for (int i = 0; i < 1000 && !writer_held; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!writer_held) {
    hold = false;
    release.set_value();  // never leave the writer waiting: close() would wait for it
    FAIL() << "the writer did not take the first request within 10 s";
  }
  bool refused = false;
  for (int i = 0; i < 20 && !refused; ++i) {
    if (s->submit_events({event("evt_" + std::to_string(i), {})},
                         [&](WriteStatus, std::vector<EventReceipt>) { ++done; })) {
      ++accepted;
    } else {
      refused = true;
    }
  }
  EXPECT_TRUE(refused);
  EXPECT_EQ(accepted, 5);  // the one the writer holds + max_queued_writes
  hold = false;
  release.set_value();
  s->close();
  EXPECT_EQ(done.load(), accepted);
}

TEST(StoreDiskFull, WritesFailCleanlyAndResumeWhenSpaceReturns) {
  TempDir dir;
  const auto db = dir.file("r.db");
  open(db)->close();
  const auto pages = std::stoll(query(db, "PRAGMA page_count"));
  std::atomic<std::int64_t> limit{pages + 2};
  StoreOptions o;
  o.max_page_count_for_testing = [&] { return limit.load(); };
  auto s = open(db, o);
  WriteStatus last = WriteStatus::kOk;
  int stored = 0;
  for (int i = 0; i < 200 && last == WriteStatus::kOk; ++i) {
    NewEvent e = event("evt_" + std::to_string(i), {pending("crm")});
    e.payload = std::string(3000, 'p');
    std::promise<WriteStatus> p;
    s->submit_events({e}, [&](WriteStatus st, std::vector<EventReceipt>) { p.set_value(st); });
    last = p.get_future().get();
    if (last == WriteStatus::kOk) ++stored;
  }
  EXPECT_EQ(last, WriteStatus::kStorageUnavailable);
  EXPECT_GT(stored, 0);
  EXPECT_FALSE(s->writable());
  EXPECT_GE(s->stats().failed_commits, 1U);
  // Nothing half-written: the failed event has no row, and no delivery without its event.
  EXPECT_EQ(query(db, "SELECT count(*) FROM events"), std::to_string(stored));
  EXPECT_EQ(query(db, "SELECT count(*) FROM deliveries"), std::to_string(stored));
  EXPECT_EQ(query(db, "PRAGMA integrity_check"), "ok");

  // Space comes back: the same store, without a restart, takes writes again and becomes
  // writable (through its probe write even when nothing else is written).
  limit = 1'000'000;
  bool ready = false;
  for (int i = 0; i < 50 && !ready; ++i) {
    ready = s->writable();
    if (!ready) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(ready);
  NewEvent big = event("evt_after", {pending("crm")});
  big.payload = std::string(3000, 'p');
  submit(*s, {big});
  EXPECT_EQ(query(db, "SELECT count(*) FROM events"), std::to_string(stored + 1));
}

TEST(StoreGroupCommit, ARejectedRequestIsRolledBackAloneInItsGroup) {
  TempDir dir;
  const auto db = dir.file("r.db");
  StoreOptions o;
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<bool> hold{true};
  o.before_group_for_testing = [&] {
    if (hold.exchange(false)) released.wait();
  };
  auto s = open(db, o);
  // The writer takes a first request and is held before running it; three more queue up
  // meanwhile and then form one group.
  std::vector<std::promise<WriteStatus>> ps(4);
  const auto cb = [&](int i) {
    return [&, i](WriteStatus st, std::vector<EventReceipt>) {
      ps[static_cast<size_t>(i)].set_value(st);
    };
  };
  ASSERT_TRUE(s->submit_events({event("evt_first", {pending("crm")})}, cb(0)));
  while (hold) std::this_thread::sleep_for(1ms);
  auto d = pending("crm");
  ASSERT_TRUE(s->submit_events({event("evt_ok1", {d})}, cb(1)));
  ASSERT_TRUE(s->submit_events({event("evt_bad", {d})}, cb(2)));  // delivery id used again
  ASSERT_TRUE(s->submit_events({event("evt_ok2", {pending("crm")})}, cb(3)));
  release.set_value();
  EXPECT_EQ(ps[0].get_future().get(), WriteStatus::kOk);
  EXPECT_EQ(ps[1].get_future().get(), WriteStatus::kOk);
  EXPECT_EQ(ps[2].get_future().get(), WriteStatus::kRejected);
  EXPECT_EQ(ps[3].get_future().get(), WriteStatus::kOk);
  EXPECT_EQ(query(db, "SELECT group_concat(id) FROM (SELECT id FROM events ORDER BY id)"),
            "evt_first,evt_ok1,evt_ok2");
  const auto st = s->stats();
  EXPECT_EQ(st.commits, 2U);
  EXPECT_EQ(st.max_group, 3U);
  EXPECT_EQ(st.rejected, 1U);
  EXPECT_TRUE(s->writable());
}

// The writer's pause generation changes inside the transaction: a pause that is rolled back
// must not supersede the resume under way (which then reported success with most of the
// backlog still paused).
TEST(StoreGroupCommit, ARejectedPauseDoesNotSupersedeAResumeUnderWay) {
  TempDir dir;
  const auto db = dir.file("r.db");
  StoreOptions o;
  o.max_group = 1;  // one request per group: the pause gets a group of its own
  o.bulk_chunk = 2;
  std::atomic<int> groups{0};
  std::function<void()> during_first_group;
  o.before_group_for_testing = [&] {
    if (++groups == 1 && during_first_group) during_first_group();
  };
  auto s = open(db, o);
  for (int i = 0; i < 6; ++i) submit(*s, {event("evt_" + std::to_string(i), {paused("crm")})});
  // Pausing fails (as a constraint would) whenever it has a pending delivery to pause.
  exec(db,
       "CREATE TRIGGER refuse_pause BEFORE UPDATE OF status ON deliveries "
       "WHEN NEW.status = 'paused' BEGIN SELECT RAISE(ABORT, 'no pausing today'); END;");

  std::promise<WriteStatus> paused_done;
  std::promise<WriteStatus> resumed_done;
  groups = 0;
  // Queued while the resume's first chunk runs: it runs between that chunk and the next.
  during_first_group = [&] {
    s->set_webhook_paused(
        "crm", true, 100, [&](WriteStatus st) { paused_done.set_value(st); }, nullptr);
  };
  s->set_webhook_paused(
      "crm", false, 100, [&](WriteStatus st) { resumed_done.set_value(st); }, nullptr);
  EXPECT_EQ(paused_done.get_future().get(), WriteStatus::kRejected);
  EXPECT_EQ(resumed_done.get_future().get(), WriteStatus::kOk);
  EXPECT_EQ(query(db, "SELECT count(*) FROM deliveries WHERE status = 'pending'"), "6");
  EXPECT_GE(groups.load(), 4);  // resume chunk 1, the pause, chunks 2 and 3
}

TEST(StoreClose, LaterWritesAnswerShuttingDownAndReadsThrow) {
  TempDir dir;
  auto s = open(dir.file("r.db"));
  std::atomic<int> done{0};
  for (int i = 0; i < 50; ++i) {
    s->submit_events({event("evt_" + std::to_string(i), {pending("crm")})},
                     [&](WriteStatus st, std::vector<EventReceipt>) {
                       if (st == WriteStatus::kOk) ++done;
                     });
  }
  s->close();  // drains the queue first
  EXPECT_EQ(done.load(), 50);
  std::optional<WriteStatus> late;
  EXPECT_TRUE(s->submit_events({event("evt_late", {})},
                               [&](WriteStatus st, std::vector<EventReceipt>) { late = st; }));
  EXPECT_EQ(late, WriteStatus::kShuttingDown);  // called back at once, on this thread
  EXPECT_FALSE(s->writable());
  EXPECT_THROW(s->list_deliveries({}), StoreError);
  s->close();  // idempotent
}

TEST(StoreReads, GetListAndCount) {
  TempDir dir;
  auto s = open(dir.file("r.db"));
  submit(*s, {event("evt_1", {pending("a"), paused("b")}), event("evt_2", {pending("a")})});
  auto rows = s->list_deliveries({});
  EXPECT_EQ(rows.size(), 3U);
  DeliveryFilter f;
  f.webhook_id = "a";
  f.limit = 1;
  rows = s->list_deliveries(f);
  ASSERT_EQ(rows.size(), 1U);
  f.before_id = rows[0].id;
  const auto next = s->list_deliveries(f);
  ASSERT_EQ(next.size(), 1U);
  EXPECT_LT(next[0].id, rows[0].id);
  const auto d = s->get_delivery(rows[0].id);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->event_type, "ticket.created");
  EXPECT_FALSE(s->get_delivery("dlv_missing").has_value());
  std::map<std::string, std::int64_t> counts;
  for (const auto& [k, n] : s->count_by_webhook_status()) counts[k.first + "/" + k.second] = n;
  EXPECT_EQ(counts["a/pending"], 2);
  EXPECT_EQ(counts["b/paused"], 1);
  EXPECT_TRUE(s->writable());
  const auto e = s->get_event("evt_1");
  ASSERT_TRUE(e.has_value());
  EXPECT_FALSE(e->duplicate);
  EXPECT_EQ(e->deliveries.size(), 2U);
  EXPECT_FALSE(s->get_event("evt_nope").has_value());
}

TEST(StoreQueryPlan, ClaimAndNextDueUseIndexes) {
  TempDir dir;
  const auto db = dir.file("r.db");
  open(db)->close();
  const auto plan =
      query(db,
            "EXPLAIN QUERY PLAN SELECT d.id FROM deliveries d JOIN events e ON "
            "e.id = d.event_id WHERE d.webhook_id = 'a' AND d.status = 'pending' "
            "AND d.next_attempt_at <= 'x' ORDER BY d.next_attempt_at, d.rowid LIMIT 5");
  EXPECT_NE(plan.find("deliveries_webhook_due"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << plan;
  // (The claim adds `NOT relay_leased(rowid)` to both, a filter on the index entry that this
  // connection does not have; it changes no plan.)
  const auto next = query(db,
                          "EXPLAIN QUERY PLAN SELECT next_attempt_at FROM deliveries WHERE "
                          "status = 'pending' ORDER BY next_attempt_at LIMIT 1");
  EXPECT_NE(next.find("deliveries_due"), std::string::npos) << next;
  EXPECT_EQ(next.find("TEMP B-TREE"), std::string::npos) << next;
  // Dropping the oldest paused deliveries walks the index in rowid order (no sort).
  const auto drop = query(db,
                          "EXPLAIN QUERY PLAN SELECT id FROM deliveries WHERE webhook_id = 'a' "
                          "AND status = 'paused' ORDER BY next_attempt_at, rowid LIMIT 2");
  EXPECT_EQ(drop.find("TEMP B-TREE"), std::string::npos) << drop;
  const auto prune = query(db,
                           "EXPLAIN QUERY PLAN SELECT id FROM deliveries INDEXED BY "
                           "deliveries_finished WHERE (status = 'succeeded' OR status = "
                           "'failed' OR status = 'cancelled' OR status = 'dropped') AND "
                           "updated_at < 'x' LIMIT 5");
  EXPECT_NE(prune.find("deliveries_finished"), std::string::npos) << prune;
  // The attempt record finds its row by rowid, not through the text id index.
  const auto record = query(db,
                            "EXPLAIN QUERY PLAN UPDATE deliveries SET status = ?2 WHERE rowid = "
                            "?8 AND id = ?1 AND status = 'pending'");
  EXPECT_NE(record.find("INTEGER PRIMARY KEY (rowid=?)"), std::string::npos) << record;
}

// Every ```sh recipe of docs/delivery-log.md runs with the sqlite3 CLI against a log written
// by the store (while the store is open, as an operator would).
TEST(StoreDocs, DeliveryLogRecipesRunWithTheSqlite3Cli) {
  if (std::system("command -v sqlite3 >/dev/null 2>&1") != 0) GTEST_SKIP() << "no sqlite3 CLI";
  TempDir dir;
  const auto db = dir.file("relayd.db");
  auto s = open(db);
  const auto now = common::now_ms();
  std::vector<NewEvent> events;
  for (int i = 0; i < 20; ++i) {
    events.push_back(
        event("evt_" + std::to_string(i), {pending("crm"), pending("billing")}, now - 1min));
  }
  submit(*s, std::move(events));
  const auto claimed = claim(*s, {{"crm", 20}, {"billing", 20}}).claimed;
  int n = 0;
  for (const auto& d : claimed) {
    AttemptRecord r;
    r.delivery_id = d.delivery_id;
    r.attempt_number = 1;
    r.started_at = now - 30s;
    r.duration_ms = 10 + 7 * (n % 13);
    r.url = "https://" + d.webhook_id + ".example/hook";
    r.request_headers = "{}";
    if (n % 3 == 0) {
      r.error = "connect: Connection refused";
      r.outcome = AttemptOutcome::kRetry;
      r.new_status = DeliveryStatus::kPending;
      r.next_attempt_at = now + 1min;
    } else if (n % 3 == 1) {
      r.response_status = 400;
      r.response_body = "bad";
      r.outcome = AttemptOutcome::kFailed;
      r.new_status = DeliveryStatus::kFailed;
    } else {
      r.response_status = 200;
      r.outcome = AttemptOutcome::kSucceeded;
      r.new_status = DeliveryStatus::kSucceeded;
    }
    ++n;
    ASSERT_EQ(wait([&](auto cb) { s->record_attempt(r, cb); }), WriteStatus::kOk);
  }
  const auto doc = slurp(fs::path(RELAY_SOURCE_DIR) / "docs/delivery-log.md");
  // std::regex would be shorter, but GCC 12 warns inside it under the sanitizers (-Werror).
  int recipes = 0;
  for (std::size_t at = doc.find("```sh\n"); at != std::string::npos;
       at = doc.find("```sh\n", at)) {
    at += 6;
    const auto end = doc.find("```", at);
    ASSERT_NE(end, std::string::npos);
    const std::string body = doc.substr(at, end - at);
    at = end + 3;
    if (body.find("sqlite3") == std::string::npos) continue;
    ++recipes;
    const auto script = dir.file("recipe.sh");
    std::ofstream(script) << "set -e\nDB='" << db.string() << "'\n" << body;
    const auto out = dir.file("out.txt");
    const auto cmd = "sh " + script.string() + " >" + out.string() + " 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << body << "\n" << slurp(out);
    const auto text = slurp(out);
    EXPECT_EQ(text.find("Error"), std::string::npos) << body << "\n" << text;
    if (std::getenv("RELAY_SHOW_RECIPES")) std::printf("%s\n%s\n", body.c_str(), text.c_str());
  }
  EXPECT_GE(recipes, 6);
  // Spot checks on the data behind the recipes.
  EXPECT_EQ(query(db, "SELECT count(*) FROM delivery_log"), std::to_string(claimed.size()));
  EXPECT_NE(query(db, "SELECT count(*) FROM deliveries WHERE status='failed'"), "0");
}

// ---- endpoint health (SPEC §10) ----

AttemptRecord attempt_of(const DueDelivery& d, AttemptOutcome outcome, TimePoint at) {
  AttemptRecord rec;
  rec.delivery_id = d.delivery_id;
  rec.delivery_rowid = d.rowid;
  rec.webhook_id = d.webhook_id;
  rec.attempt_number = d.attempt_count + 1;
  rec.started_at = at;
  rec.url = "https://x/hook";
  rec.request_headers = "{}";
  rec.response_status = outcome == AttemptOutcome::kSucceeded ? 200 : 500;
  rec.outcome = outcome;
  rec.new_status = outcome == AttemptOutcome::kSucceeded ? DeliveryStatus::kSucceeded
                   : outcome == AttemptOutcome::kFailed  ? DeliveryStatus::kFailed
                                                         : DeliveryStatus::kPending;
  return rec;
}

TEST(StoreHealth, AttemptsKeepTheFailureStreakAndDisablesAreStored) {
  TempDir dir;
  const auto db = dir.file("h.db");
  auto s = open(db);
  submit(*s, {event("evt_1", {pending("crm"), pending("crm"), pending("crm")})});
  const auto c = claim(*s, {{"crm", 3}});
  ASSERT_EQ(c.claimed.size(), 3U);
  const TimePoint t0{std::chrono::milliseconds(1'700'000'000'000)};
  EXPECT_EQ(wait([&](auto cb) {
              s->record_attempt(attempt_of(c.claimed[0], AttemptOutcome::kRetry, t0), cb);
            }),
            WriteStatus::kOk);
  EXPECT_EQ(wait([&](auto cb) {
              s->record_attempt(attempt_of(c.claimed[1], AttemptOutcome::kFailed, t0 + 1s), cb);
            }),
            WriteStatus::kOk);
  auto rows = s->webhook_states();
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].consecutive_failures, 2);
  EXPECT_EQ(rows[0].first_failure_at, common::format_rfc3339_ms(t0));  // the first one stays
  EXPECT_FALSE(rows[0].last_success_at);
  EXPECT_FALSE(rows[0].disabled_reason);

  // A disable is stored; a second one keeps the first reason and time.
  EXPECT_EQ(wait([&](auto cb) { s->set_webhook_disabled("crm", "gone", t0 + 2s, cb); }),
            WriteStatus::kOk);
  EXPECT_EQ(wait([&](auto cb) { s->set_webhook_disabled("crm", "later", t0 + 3s, cb); }),
            WriteStatus::kOk);
  rows = s->webhook_states();
  EXPECT_EQ(rows[0].disabled_reason, "gone");
  EXPECT_EQ(rows[0].disabled_at, common::format_rfc3339_ms(t0 + 2s));
  // It survives a restart.
  s->close();
  s = open(db);
  EXPECT_EQ(s->webhook_states().at(0).disabled_reason, "gone");

  // Enabling clears the disable and the streak; a success resets the streak too.
  EXPECT_EQ(wait([&](auto cb) { s->set_webhook_disabled("crm", std::nullopt, t0 + 4s, cb); }),
            WriteStatus::kOk);
  rows = s->webhook_states();
  EXPECT_FALSE(rows[0].disabled_reason);
  EXPECT_EQ(rows[0].consecutive_failures, 0);
  EXPECT_FALSE(rows[0].first_failure_at);
  s->recover_interrupted(common::now_ms());
  const auto again = claim(*s, {{"crm", 1}});
  ASSERT_EQ(again.claimed.size(), 1U);
  EXPECT_EQ(wait([&](auto cb) {
              s->record_attempt(attempt_of(again.claimed[0], AttemptOutcome::kSucceeded, t0 + 5s),
                                cb);
            }),
            WriteStatus::kOk);
  rows = s->webhook_states();
  EXPECT_EQ(rows[0].last_success_at, common::format_rfc3339_ms(t0 + 5s));
  EXPECT_EQ(rows[0].consecutive_failures, 0);
}

TEST(StoreHealth, ReleaseClaimedPutsThemBackUncountedWithTheirDueTime) {
  TempDir dir;
  const auto db = dir.file("h.db");
  auto s = open(db);
  submit(*s, {event("evt_1", {pending("crm"), pending("crm")})});
  const auto before = query(db, "SELECT group_concat(next_attempt_at) FROM deliveries");
  auto c = claim(*s, {{"crm", 2}});
  ASSERT_EQ(c.claimed.size(), 2U);
  EXPECT_EQ(wait([&](auto cb) { s->release_claimed(c.claimed, cb); }), WriteStatus::kOk);
  EXPECT_EQ(query(db, "SELECT group_concat(status || ':' || attempt_count) FROM deliveries"),
            "pending:0,pending:0");
  EXPECT_EQ(query(db, "SELECT group_concat(next_attempt_at) FROM deliveries"), before);
  EXPECT_EQ(claim(*s, {{"crm", 2}}).claimed.size(), 2U);
}

TEST(StoreHealth, RecoverFailedMakesExactlyTheWindowDueInChunks) {
  TempDir dir;
  const auto db = dir.file("h.db");
  StoreOptions o;
  o.bulk_chunk = 2;
  auto s = open(db, o);
  // Five failed deliveries of crm, one a second apart, plus one of another webhook and one of
  // crm that succeeded, all inside the window.
  const TimePoint t0{std::chrono::milliseconds(1'700'000'000'000)};
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    const auto r = submit(*s, {event("evt_" + std::to_string(i), {pending("crm")}, t0 + i * 1s)});
    ids.push_back(r[0].deliveries[0].first);
  }
  submit(*s, {event("evt_other", {pending("other"), pending("crm")}, t0 + 2s)});
  for (const auto& d : claim(*s, {{"crm", 10}, {"other", 10}}).claimed) {
    const bool ok = d.event_id == "evt_other" && d.webhook_id == "crm";
    EXPECT_EQ(wait([&](auto cb) {
                s->record_attempt(
                    attempt_of(d, ok ? AttemptOutcome::kSucceeded : AttemptOutcome::kFailed, t0),
                    cb);
              }),
              WriteStatus::kOk);
  }
  // created_at is the intake time of the row, not the event's: set it as the test needs.
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
    for (int i = 0; i < 5; ++i) {
      const auto sql = "UPDATE deliveries SET created_at = '" +
                       common::format_rfc3339_ms(t0 + i * 1s) + "' WHERE id = '" + ids[i] + "'";
      ASSERT_EQ(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    }
    ASSERT_EQ(sqlite3_exec(raw,
                           ("UPDATE deliveries SET created_at = '" +
                            common::format_rfc3339_ms(t0 + 2s) + "' WHERE event_id = 'evt_other'")
                               .c_str(),
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(raw);
  }
  std::promise<std::pair<WriteStatus, std::size_t>> done;
  std::atomic<int> chunks{0};
  s->recover_failed(
      "crm", t0 + 1s, t0 + 4s, common::now_ms(),
      [&](WriteStatus st, std::size_t n) {
        done.set_value({st, n});
      },
      [&] { ++chunks; });
  const auto [st, n] = done.get_future().get();
  EXPECT_EQ(st, WriteStatus::kOk);
  EXPECT_EQ(n, 3U);  // ids 1, 2, 3: [since, until) excludes 4; the succeeded one stays
  EXPECT_EQ(chunks, 2);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(query(db, "SELECT status FROM deliveries WHERE id = '" + ids[i] + "'"),
              i >= 1 && i <= 3 ? "pending" : "failed")
        << i;
  }
  EXPECT_EQ(query(db, "SELECT status FROM deliveries WHERE webhook_id = 'other'"), "failed");
  EXPECT_EQ(query(db,
                  "SELECT status FROM deliveries WHERE event_id = 'evt_other' AND "
                  "webhook_id = 'crm'"),
            "succeeded");
  // Oldest first, and attempt_count kept (the next attempt is counted).
  const auto c = claim(*s, {{"crm", 10}});
  ASSERT_EQ(c.claimed.size(), 3U);
  EXPECT_EQ(c.claimed[0].delivery_id, ids[1]);
  EXPECT_EQ(c.claimed[2].delivery_id, ids[3]);
  EXPECT_EQ(c.claimed[0].attempt_count, 1);
}

}  // namespace
}  // namespace relay::store
