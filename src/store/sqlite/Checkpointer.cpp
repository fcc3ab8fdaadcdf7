#include "Checkpointer.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <chrono>

namespace relay::store::sqlite {

Checkpointer::Checkpointer(const std::string& path, sqlite3* writer)
    : writer_(writer),
      conn_(std::make_unique<Connection>(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX)) {
  // The file is in WAL mode already (the writer migrated it); a checkpoint needs nothing else.
  // FULL as on the writer: the database file is fsynced before the WAL may start over.
  conn_->exec("PRAGMA synchronous=FULL");
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "relayd-ckpt");
    loop();
  });
  // Replaces the writer's automatic checkpoint (sqlite3_wal_autocheckpoint is a wal hook too).
  sqlite3_wal_hook(writer_, &Checkpointer::on_commit, this);
}

Checkpointer::~Checkpointer() {
  close();
}

void Checkpointer::close() {
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    closed_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // The writer's last commits (and its close, which checkpoints everything) are SQLite's again.
  sqlite3_wal_autocheckpoint(writer_, kCheckpointPages);
  conn_.reset();
}

int Checkpointer::on_commit(void* self, sqlite3* db, const char* /*name*/, int pages) {
  static_cast<Checkpointer*>(self)->after_commit(db, pages);
  return SQLITE_OK;  // the commit happened whatever a checkpoint does
}

// On the writer thread, right after a commit.
void Checkpointer::after_commit(sqlite3* db, int pages) {
  if (pages >= kWalCapPages) {
    // PASSIVE, as SQLite's automatic checkpoint: copies back what this thread has not (busy
    // when this thread is mid-run: the next commit tries again), so that the writer's next
    // transaction starts the WAL over.
    sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    return;
  }
  if (pages < kCheckpointPages) return;
  {
    std::lock_guard lock(mutex_);
    if (closed_ || wanted_ || running_) return;
    // Fewer pages than last copied back: the WAL has started over since.
    const int fresh = pages >= copied_ ? pages - copied_ : pages;
    if (fresh < kCheckpointStep) return;
    wanted_ = true;
  }
  cv_.notify_one();
}

void Checkpointer::loop() {
  auto last_warning = std::chrono::steady_clock::time_point{};
  while (true) {
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return closed_ || wanted_; });
      if (closed_) return;
      wanted_ = false;
      running_ = true;
    }
    int log = 0;
    int copied = 0;
    const int rc =
        sqlite3_wal_checkpoint_v2(conn_->get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED) {
      // E.g. a full disk: the writer reports the storage failure itself; say it here at most
      // once a minute (the WAL keeps everything meanwhile, and the cap keeps trying).
      const auto now = std::chrono::steady_clock::now();
      if (now - last_warning >= std::chrono::minutes(1)) {
        last_warning = now;
        spdlog::warn("database checkpoint failed: {}", sqlite3_errmsg(conn_->get()));
      }
    }
    std::lock_guard lock(mutex_);
    running_ = false;
    if (rc == SQLITE_OK) copied_ = copied;
  }
}

}  // namespace relay::store::sqlite
