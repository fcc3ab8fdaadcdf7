#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "Schema.hpp"
#include "SqliteFile.hpp"
#include "StoreTestHelpers.hpp"
#include "relay/common/Ids.hpp"
#include "relay/common/Time.hpp"
#include "relay/store/Store.hpp"

namespace relay::store {
namespace {

namespace fs = std::filesystem;
using common::TimePoint;
using namespace std::chrono_literals;
using namespace testing_support;

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
                .find("(next_attempt_at) WHERE status = 'pending'"),
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
  // Dropping the oldest paused deliveries, and resuming them, walks an index in id (= creation)
  // order: no sort of all the paused rows per chunk.
  const auto drop = query(db,
                          "EXPLAIN QUERY PLAN SELECT id FROM deliveries WHERE webhook_id = 'a' "
                          "AND status = 'paused' ORDER BY id LIMIT 2");
  EXPECT_NE(drop.find("deliveries_webhook_status_newest"), std::string::npos) << drop;
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

}  // namespace
}  // namespace relay::store
