#include "ReaderPool.hpp"

#include "Migrations.hpp"

namespace relay::store::sqlite {

void ReaderPool::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  idle_.clear();
}

ReaderPool::Lease ReaderPool::acquire() {
  {
    std::lock_guard lock(mutex_);
    if (closed_) throw StoreError("the store of " + path_ + " is closed");
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return Lease(*this, std::move(c));
    }
  }
  try {
    // Read-write open + query_only: a SQLITE_OPEN_READONLY connection cannot recover the
    // WAL index on its own, and query_only guarantees it never writes.
    auto conn = std::make_unique<Connection>(path_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX);
    configure_connection(*conn);
    conn->exec("PRAGMA query_only=ON");
    if (on_open_) on_open_(*conn);
    return Lease(*this, std::move(conn));
  } catch (const SqliteError& e) {
    throw StoreError("cannot read " + path_ + ": " + e.what());
  }
}

void ReaderPool::release(std::unique_ptr<Connection> c) {
  if (!c) return;
  if (sqlite3_get_autocommit(c->get()) == 0) {
    sqlite3_exec(c->get(), "ROLLBACK", nullptr, nullptr, nullptr);  // after an exception
  }
  std::lock_guard lock(mutex_);
  if (!closed_ && idle_.size() < kMaxIdle) idle_.push_back(std::move(c));
}

}  // namespace relay::store::sqlite
