// The writer thread's commits (src/store/sqlite/WriterQueue.hpp): which ones wait for an fsync.
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <vector>

#include "Migrations.hpp"
#include "StoreTestHelpers.hpp"
#include "WriterQueue.hpp"

namespace relay::store {
namespace {

using namespace testing_support;

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

}  // namespace
}  // namespace relay::store
