#include "WriterQueue.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "Schema.hpp"
#include "relay/common/HandOffBatch.hpp"

namespace relay::store::sqlite {

WriterQueue::WriterQueue(std::unique_ptr<Connection> conn, const StoreOptions& options)
    : options_(options),
      conn_(std::move(conn)),
      context_(*conn_),
      checkpointer_(options.path, conn_->get()) {
  thread_ = std::thread([this] {
    // Named so that `top -H` and profilers tell the writer from the I/O threads.
    pthread_setname_np(pthread_self(), "relayd-writer");
    loop();
  });
}

WriterQueue::~WriterQueue() {
  close();
}

void WriterQueue::close() {
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    closed_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  checkpointer_.close();
  conn_.reset();
}

StoreStats WriterQueue::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

bool WriterQueue::writable() {
  {
    std::lock_guard lock(mutex_);
    if (closed_ || !running_) return false;
    if (last_commit_ok_) return true;
    const auto now = std::chrono::steady_clock::now();
    if (probe_queued_ || now - last_probe_ < std::chrono::seconds(1)) return false;
    probe_queued_ = true;
    last_probe_ = now;
  }
  // A tiny real write (page 1 of the file) so that readiness comes back once the disk does,
  // even when nothing else is written.
  WriteRequest probe;
  probe.apply = [](WriteContext& ctx) {
    ctx.conn().exec("PRAGMA user_version=" + std::to_string(migrations().size()));
  };
  probe.complete = [this](WriteStatus) {
    std::lock_guard lock(mutex_);
    probe_queued_ = false;
  };
  enqueue(std::move(probe));
  return false;
}

bool WriterQueue::enqueue(WriteRequest req) {
  {
    std::unique_lock lock(mutex_);
    if (!closed_) {
      // Only intake counts: claims and attempt records are bounded by the dispatcher's
      // concurrency and must not crowd out (or be crowded out by) events.
      if (req.counts_against_limit) {
        if (queued_intake_ >= options_.max_queued_writes) return false;
        ++queued_intake_;
      }
      const bool urgent = !req.may_wait;
      if (urgent) ++queued_urgent_;
      queue_.push_back(std::move(req));
      // While the writer gathers records, only something urgent or a full group wakes it.
      const bool wake = !gathering_ || urgent || queue_.size() >= options_.record_group;
      lock.unlock();
      if (wake) cv_.notify_one();
      return true;
    }
  }
  // After close(): answered at once, on the caller's thread.
  req.complete(WriteStatus::kShuttingDown);
  return true;
}

void WriterQueue::loop() {
  {
    std::lock_guard lock(mutex_);
    running_ = true;
  }
  std::vector<WriteRequest> group;
  std::vector<WriteRequest> fast;
  std::vector<WriteRequest> durable;
  std::vector<WriteRequest> reads;
  std::vector<WriteStatus> results;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return closed_ || !queue_.empty(); });
      if (queue_.empty()) break;  // closed and drained
      // Only attempt records queued: give others a moment to join their commit
      // (StoreOptions::record_gather).
      if (queued_urgent_ == 0 && !closed_ && queue_.size() < options_.record_group &&
          options_.record_gather.count() > 0) {
        gathering_ = true;
        cv_.wait_for(lock, options_.record_gather, [this] {
          return closed_ || queued_urgent_ > 0 || queue_.size() >= options_.record_group;
        });
        gathering_ = false;
      }
      const auto n = std::min(queue_.size(), std::max<std::size_t>(options_.max_group, 1));
      group.clear();
      for (std::size_t i = 0; i < n; ++i) {
        if (queue_.front().counts_against_limit) --queued_intake_;
        if (!queue_.front().may_wait) --queued_urgent_;
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (options_.before_group_for_testing) options_.before_group_for_testing();
    if (options_.max_page_count_for_testing) {
      if (const auto pages = options_.max_page_count_for_testing(); pages > 0) {
        sqlite3_exec(conn_->get(), ("PRAGMA max_page_count=" + std::to_string(pages)).c_str(),
                     nullptr, nullptr, nullptr);
      }
    }
    // The dispatcher's writes (claims, attempt records, releases) go first, in a transaction
    // of their own committed without an fsync (WAL with synchronous=NORMAL; the next durable
    // commit's fsync covers it): the dispatcher waits for them, and losing them to a power
    // cut only makes deliveries due again (at-least-once). Intake and admin writes stay
    // durable: their answer says "on disk".
    fast.clear();
    durable.clear();
    reads.clear();
    // Claims first, in a transaction of their own: they write nothing, and the dispatcher's
    // slots wait for them, not for the records' commit. Running them ahead of the writes queued
    // before them is as if they had been queued first.
    for (auto& r : group) {
      (r.read_only ? reads : r.durable ? durable : fast).push_back(std::move(r));
    }
    if (!reads.empty()) process(reads, results);
    // The setting is switched only when the kind of group changes: a drain (all fast) or an
    // intake burst (all durable) runs without a PRAGMA per group.
    if (!fast.empty()) {
      set_synchronous(false);
      process(fast, results);
    }
    if (!durable.empty()) {
      set_synchronous(true);
      process(durable, results);
    }
    group.clear();  // release captured state before sleeping
    fast.clear();
    durable.clear();
    reads.clear();
  }
  std::lock_guard lock(mutex_);
  running_ = false;
}

void WriterQueue::set_synchronous(bool full) {
  if (synchronous_full_ == full) return;
  // Remembered only once set: a switch that failed is tried again before the next such group.
  if (sqlite3_exec(conn_->get(), full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                   nullptr, nullptr, nullptr) == SQLITE_OK) {
    synchronous_full_ = full;
  }
}

void WriterQueue::process(std::vector<WriteRequest>& group, std::vector<WriteStatus>& results) {
  run_group(group, results);
  for (auto& [webhook, drops] : group_drops_) {
    std::string ids;
    for (const auto& id : drops.ids) ids += (ids.empty() ? "" : " ") + id;
    const bool all = static_cast<std::int64_t>(drops.ids.size()) >= drops.count;
    spdlog::warn("webhook={}: dropped {} oldest paused deliveries (more than max_queued): {}{}",
                 webhook, drops.count, ids,
                 all ? std::string()
                     : " (the first " + std::to_string(drops.ids.size()) +
                           "; all: SELECT id FROM deliveries WHERE webhook_id = '" + webhook +
                           "' AND status = 'dropped' ORDER BY updated_at)");
  }
  group_drops_.clear();
  // The callbacks' hand-offs to other threads (intake answers to the event loop) leave as
  // one, once all have run: one wake-up per group commit instead of one per request.
  common::HandOffBatch hand_offs;
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
void WriterQueue::run_group(std::vector<WriteRequest>& group, std::vector<WriteStatus>& results) {
  if (run_group_once(group, results, false) == GroupRun::kNeedsIsolation) {
    run_group_once(group, results, true);
  }
}

WriterQueue::GroupRun WriterQueue::run_group_once(std::vector<WriteRequest>& group,
                                                  std::vector<WriteStatus>& results, bool isolate) {
  auto& c = *conn_;
  results.assign(group.size(), WriteStatus::kStorageUnavailable);
  group_drops_.clear();
  context_.health_folds_.clear();
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
    context_.request_drops_.clear();
    // A rejected request's savepoint is rolled back: so is what it did to the writer state.
    std::optional<std::optional<WriterState>> before_request;
    if (isolate) before_request = context_.working_;
    try {
      // Prepared once: at one savepoint per request, parsing the SQL every time showed up.
      if (isolate) c.cached("SAVEPOINT req").run();
      group[i].apply(context_);
      if (isolate) c.cached("RELEASE req").run();
      results[i] = WriteStatus::kOk;
      for (auto& [webhook, d] : context_.request_drops_) {
        auto& g = group_drops_[webhook];
        g.count += d.count;
        for (auto& id : d.ids) {
          if (g.ids.size() >= kLoggedDropIds) break;
          g.ids.push_back(std::move(id));
        }
      }
    } catch (const SqliteError& e) {
      if (e.is_storage_failure()) {
        storage_failure = e.what();
      } else if (!isolate) {
        needs_isolation = true;
      } else {
        reject(results[i], e.what());
        context_.working_ = std::move(*before_request);
        ++rejected;
      }
    } catch (const std::exception& e) {
      if (!isolate) {
        needs_isolation = true;
      } else {
        reject(results[i], e.what());
        context_.working_ = std::move(*before_request);
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
    context_.paused_counts_.clear();
    group_drops_.clear();
    context_.working_.reset();
    return GroupRun::kNeedsIsolation;
  }
  if (!storage_failure) {
    try {
      write_health_folds(c, context_.health_folds_);  // the group's end (WebhookHealth.hpp)
      c.exec("COMMIT");
    } catch (const SqliteError& e) {
      storage_failure = e.what();
    }
  }
  if (storage_failure) {
    if (sqlite3_get_autocommit(c.get()) == 0) {
      sqlite3_exec(c.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
    context_.paused_counts_.clear();
    group_drops_.clear();
    context_.working_.reset();
    for (auto& r : results) {
      if (r != WriteStatus::kRejected) r = WriteStatus::kStorageUnavailable;
    }
    note_failure(*storage_failure);
    return GroupRun::kDone;
  }
  if (context_.working_) {
    context_.committed_ = std::move(*context_.working_);
    context_.working_.reset();
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

void WriterQueue::reject(WriteStatus& result, const char* what) {
  auto& c = *conn_;
  spdlog::error("database write rejected (rolled back alone): {}", what);
  sqlite3_exec(c.get(), "ROLLBACK TO req; RELEASE req", nullptr, nullptr, nullptr);
  context_.paused_counts_.clear();
  result = WriteStatus::kRejected;
}

void WriterQueue::note_failure(const std::string& what) {
  std::lock_guard lock(mutex_);
  ++stats_.failed_commits;
  if (last_commit_ok_) spdlog::error("database {} cannot be written: {}", options_.path, what);
  last_commit_ok_ = false;
}

}  // namespace relay::store::sqlite
