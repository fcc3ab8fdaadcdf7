// The writer thread's commits (src/store/sqlite/WriterQueue.hpp): which ones wait for an fsync.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "Migrations.hpp"
#include "StoreTestHelpers.hpp"
#include "WriterQueue.hpp"

namespace relay::store {
namespace {

using namespace testing_support;
using namespace std::chrono_literals;

std::unique_ptr<sqlite::WriterQueue> open_writer(const StoreOptions& options) {
  auto conn = std::make_unique<sqlite::Connection>(
      options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX);
  sqlite::configure_connection(*conn);
  sqlite::open_and_migrate(*conn, options);
  return std::make_unique<sqlite::WriterQueue>(std::move(conn), options);
}

// A request of the dispatcher's kind (no fsync) whose completion can be awaited.
struct Tracked {
  std::promise<WriteStatus> done;
  std::future<WriteStatus> result = done.get_future();
  sqlite::WriteRequest request(bool may_wait) {
    sqlite::WriteRequest req;
    req.durable = false;
    req.may_wait = may_wait;
    req.apply = [](sqlite::WriteContext&) {};
    req.complete = [this](WriteStatus st) { done.set_value(st); };
    return req;
  }
};

// PRAGMA synchronous as a write of that kind sees it inside its own transaction: 2 (FULL) for a
// durable write, whose answer says "on disk"; 1 (NORMAL) for a claim or an attempt record. The
// setting is switched only when the kind changes, so a mix in any order must still get each
// write its own.
TEST(StoreWriterQueue, EachWriteCommitsWithTheSynchronousSettingOfItsKind) {
  TempDir dir;
  StoreOptions options;
  options.path = dir.file("r.db").string();
  auto conn = std::make_unique<sqlite::Connection>(
      options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX);
  sqlite::configure_connection(*conn);
  sqlite::open_and_migrate(*conn, options);
  sqlite::WriterQueue writer(std::move(conn), options);

  const std::vector<bool> kinds = {false, true, true, false, false, true, false};
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    std::promise<std::int64_t> seen;
    sqlite::WriteRequest req;
    req.durable = kinds[i];
    req.apply = [&seen](sqlite::WriteContext& ctx) {
      seen.set_value(ctx.conn().pragma_int("synchronous"));
    };
    auto got = seen.get_future();
    ASSERT_TRUE(writer.enqueue(std::move(req)));
    EXPECT_EQ(got.get(), kinds[i] ? 2 : 1) << "write " << i << (kinds[i] ? " (durable)" : "");
  }
  writer.close();
}

// An attempt record alone waits for company (up to record_gather); the first request that
// someone waits on (a claim, intake, the API) ends the wait, and both share one commit.
TEST(StoreWriterQueue, AttemptRecordsWaitForCompanyUntilSomethingUrgentArrives) {
  TempDir dir;
  StoreOptions options;
  options.path = dir.file("r.db").string();
  options.record_gather = std::chrono::microseconds(std::chrono::minutes(10));
  auto writer = open_writer(options);
  const auto commits_before = writer->stats().commits;

  Tracked record;
  ASSERT_TRUE(writer->enqueue(record.request(true)));
  EXPECT_EQ(record.result.wait_for(300ms), std::future_status::timeout)
      << "a lone attempt record committed without waiting for others";

  Tracked urgent;
  ASSERT_TRUE(writer->enqueue(urgent.request(false)));
  ASSERT_EQ(urgent.result.wait_for(30s), std::future_status::ready);
  ASSERT_EQ(record.result.wait_for(30s), std::future_status::ready);
  EXPECT_EQ(record.result.get(), WriteStatus::kOk);
  EXPECT_EQ(urgent.result.get(), WriteStatus::kOk);
  EXPECT_EQ(writer->stats().commits - commits_before, 1U) << "both should share one commit";
  writer->close();
}

// record_group records end the wait by themselves; close() ends it too, committing what waits.
TEST(StoreWriterQueue, AFullGroupOfRecordsOrCloseEndsTheWait) {
  TempDir dir;
  StoreOptions options;
  options.path = dir.file("r.db").string();
  options.record_gather = std::chrono::microseconds(std::chrono::minutes(10));
  options.record_group = 4;
  auto writer = open_writer(options);

  std::vector<std::unique_ptr<Tracked>> full;
  for (int i = 0; i < 4; ++i) {
    full.push_back(std::make_unique<Tracked>());
    ASSERT_TRUE(writer->enqueue(full.back()->request(true)));
  }
  for (auto& t : full) {
    ASSERT_EQ(t->result.wait_for(30s), std::future_status::ready);
    EXPECT_EQ(t->result.get(), WriteStatus::kOk);
  }

  Tracked lone;
  ASSERT_TRUE(writer->enqueue(lone.request(true)));
  EXPECT_EQ(lone.result.wait_for(200ms), std::future_status::timeout);
  writer->close();  // returns at once, not after the ten minutes
  ASSERT_EQ(lone.result.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(lone.result.get(), WriteStatus::kOk);
}

// A claim (read_only) queued behind a write of the same group runs first and is answered before
// that write even starts: the dispatcher's slots wait for claims, not for the records' commit.
TEST(StoreWriterQueue, ClaimsRunAheadOfTheWritesQueuedBeforeThem) {
  TempDir dir;
  StoreOptions options;
  options.path = dir.file("r.db").string();
  options.record_gather = std::chrono::microseconds(0);
  std::promise<void> release;
  auto released = release.get_future().share();
  std::promise<void> holding;
  bool first = true;
  options.before_group_for_testing = [&] {
    if (!std::exchange(first, false)) return;
    holding.set_value();
    released.wait();
  };
  auto writer = open_writer(options);

  std::mutex m;
  std::vector<std::string> seen;
  auto note = [&](std::string what) {
    std::lock_guard lock(m);
    seen.push_back(std::move(what));
  };
  std::promise<void> all_done;
  int remaining = 3;
  auto request = [&](const std::string& name, bool read_only) {
    sqlite::WriteRequest req;
    req.durable = false;
    req.read_only = read_only;
    req.apply = [&, name](sqlite::WriteContext&) { note(name + " runs"); };
    req.complete = [&, name](WriteStatus st) {
      note(name + (st == WriteStatus::kOk ? " answered" : " failed"));
      if (--remaining == 0) all_done.set_value();
    };
    return req;
  };
  ASSERT_TRUE(writer->enqueue(request("hold", false)));  // the writer stops before its group
  holding.get_future().wait();
  ASSERT_TRUE(writer->enqueue(request("record", false)));
  ASSERT_TRUE(writer->enqueue(request("claim", true)));
  release.set_value();
  ASSERT_EQ(all_done.get_future().wait_for(30s), std::future_status::ready);
  writer->close();
  const std::vector<std::string> expected = {"hold runs",      "hold answered", "claim runs",
                                             "claim answered", "record runs",   "record answered"};
  EXPECT_EQ(seen, expected);
}

// A webhook enabled with a large backlog: its deliveries are resumed in chunks of at most 500
// whatever bulk_chunk says (a larger chunk held the writer longer than the work the dispatcher
// has claimed ahead lasts), each committed without an fsync of its own (every start re-applies
// pauses and resumes from the config, so a power cut loses nothing that is not done again).
TEST(StoreWriterQueue, AResumeRunsInChunksOfAtMost500WithoutAnFsyncOfTheirOwn) {
  TempDir dir;
  StoreOptions options;
  options.path = dir.file("r.db").string();
  ASSERT_GT(options.bulk_chunk, 500U);  // the cap, not the option, makes the chunks
  auto s = open_sqlite_store(options);
  std::vector<NewEvent> events;
  for (int i = 0; i < 1200; ++i) {
    events.push_back(event("evt_" + std::to_string(i), {paused("crm")}));
  }
  submit(*s, std::move(events));
  sqlite::Connection c(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX);
  // What each resumed row's transaction ran with: 1 = NORMAL (no fsync), 2 = FULL.
  c.exec(
      "CREATE TABLE seen (synchronous INTEGER);"
      "CREATE TRIGGER note_sync AFTER UPDATE OF status ON deliveries "
      "WHEN NEW.status = 'pending' BEGIN "
      "INSERT INTO seen SELECT synchronous FROM pragma_synchronous; END;");
  std::atomic<int> chunks{0};
  EXPECT_EQ(
      wait([&](auto cb) { s->set_webhook_paused("crm", false, 10000, cb, [&] { ++chunks; }); }),
      WriteStatus::kOk);
  EXPECT_EQ(chunks.load(), 3);  // 500 + 500 + 200
  auto& q = c.cached("SELECT count(*), min(synchronous), max(synchronous) FROM seen");
  ASSERT_TRUE(q.step());
  EXPECT_EQ(q.int64(0), 1200);
  EXPECT_EQ(q.int64(1), 1);
  EXPECT_EQ(q.int64(2), 1);
  q.reset();
  s->close();
}

}  // namespace
}  // namespace relay::store
