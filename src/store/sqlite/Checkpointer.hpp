#pragma once

// WAL CHECKPOINTS OFF THE WRITER THREAD.
//
// SQLite's automatic checkpoint runs inside the COMMIT that pushes the WAL past 1,000 pages,
// on the writer thread: while it copies those pages back into the database file and fsyncs
// it, no group commits and every intake answer waits (it set intake's p99 ack latency; at
// 4,000 pages the p99 doubled, docs/performance.md "Intake CPU (issue 20)").
//
// Here the writer connection's automatic checkpoint is replaced (sqlite3_wal_hook, called
// after each commit with the WAL's page count) by:
//
//   WAL ≥ kCheckpointPages, and kCheckpointStep pages       wake this thread: a PASSIVE
//   appended since its last run                             checkpoint on its own connection,
//                                                           while the writer keeps committing
//   WAL ≥ kWalCapPages                                      the writer checkpoints itself
//                                                           (PASSIVE, as SQLite's own would)
//
// Why the cap: SQLite starts the WAL over only when a write transaction begins with every
// frame already copied back. A checkpoint running beside a busy writer never quite catches up
// (new frames arrive while it copies), so without the cap the WAL would grow for as long as
// intake does. At the cap the writer copies back only what was appended since this thread's
// last run (it has kept up until then), and its next transaction restarts the WAL. The cap,
// 4,000 pages of 4 KiB, matches journal_size_limit (16 MiB, the size the WAL is cut back to).
//
// A checkpoint never blocks a commit: both may run at once (WAL mode), and two checkpoints
// never do (PASSIVE gives up at once when another holds the checkpoint lock).

#include <sqlite3.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "Sqlite.hpp"

namespace relay::store::sqlite {

class Checkpointer {
 public:
  static constexpr int kCheckpointPages = 1000;  // SQLite's default automatic checkpoint
  static constexpr int kCheckpointStep = 500;
  static constexpr int kWalCapPages = 4000;

  /// Opens its own connection to `path` and takes over `writer`'s automatic checkpoints
  /// (`writer` must outlive close()).
  Checkpointer(const std::string& path, sqlite3* writer);
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  /// Gives the writer back SQLite's automatic checkpoint, stops the thread, closes the
  /// connection. Idempotent; called by the writer thread's owner once it has stopped.
  void close();

 private:
  static int on_commit(void* self, sqlite3* db, const char* name, int pages);
  void after_commit(sqlite3* db, int pages);
  void loop();

  sqlite3* writer_;
  std::unique_ptr<Connection> conn_;  // this thread's own

  std::mutex mutex_;
  std::condition_variable cv_;
  bool wanted_ = false;   // guarded by mutex_
  bool running_ = false;  // guarded by mutex_: a checkpoint is in progress
  bool closed_ = false;   // guarded by mutex_
  int copied_ = 0;        // guarded by mutex_: WAL frames copied back by the last run
  std::thread thread_;
};

}  // namespace relay::store::sqlite
