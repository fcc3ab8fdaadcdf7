// The WAL checkpoints that run beside the writer (src/store/sqlite/Checkpointer.hpp).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <random>

#include "StoreTestHelpers.hpp"
#include "relay/store/Store.hpp"

namespace relay::store {
namespace {

namespace fs = std::filesystem;
using namespace testing_support;

std::uintmax_t size_of(const fs::path& p) {
  std::error_code ec;
  const auto n = fs::file_size(p, ec);
  return ec ? 0 : n;
}

// The writer never waits for the checkpoint (events keep arriving while earlier groups
// commit), so the checkpoint beside it never quite catches up: the WAL must still stay near
// its cap (4,000 pages, ~16 MiB) instead of growing with everything written, and the pages
// must reach the database file while the store is open.
TEST(StoreCheckpoint, WalStaysBoundedWhileTheWriterNeverPauses) {
  TempDir dir;
  const auto db = dir.file("r.db");
  StoreOptions o;
  o.path = db.string();
  auto s = open_sqlite_store(o);

  constexpr int kEvents = 2000;  // ~32 MiB of payload, twice the WAL cap
  constexpr int kInFlight = 32;
  std::mutex m;
  std::condition_variable cv;
  int in_flight = 0;
  int ok = 0;
  int failed = 0;
  std::uintmax_t peak_wal = 0;
  for (int i = 0; i < kEvents; ++i) {
    {
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return in_flight < kInFlight; });
      ++in_flight;
    }
    NewEvent e = event("evt_" + std::to_string(i), {pending("crm")});
    e.payload = std::string(16 * 1024, static_cast<char>('a' + i % 26));
    ASSERT_TRUE(s->submit_events({e}, [&](WriteStatus st, std::vector<EventReceipt>) {
      std::lock_guard lock(m);
      (st == WriteStatus::kOk ? ok : failed) += 1;
      --in_flight;
      cv.notify_all();
    }));
    if (i % 50 == 0) peak_wal = std::max(peak_wal, size_of(fs::path(db.string() + "-wal")));
  }
  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return in_flight == 0; });
  }
  peak_wal = std::max(peak_wal, size_of(fs::path(db.string() + "-wal")));
  EXPECT_EQ(ok, kEvents);
  EXPECT_EQ(failed, 0);
  // The cap plus what one group commit may add past it.
  EXPECT_LE(peak_wal, 24U * 1024 * 1024);
  EXPECT_GE(size_of(db), 16U * 1024 * 1024) << "no checkpoint reached the database file";
  s->close();

  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(
      sqlite3_prepare_v2(h, "SELECT count(*), sum(length(payload)) FROM events", -1, &st, nullptr),
      SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(st, 0), kEvents);
  EXPECT_EQ(sqlite3_column_int64(st, 1), std::int64_t{kEvents} * 16 * 1024);
  sqlite3_finalize(st);
  sqlite3_close(h);
}

}  // namespace
}  // namespace relay::store
