#include "PgWriter.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace relay::store::pg {

namespace {
constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(5000);
constexpr int kTransientRetries = 3;
}  // namespace

PgWriter::PgWriter(std::unique_ptr<Connection> conn, WriterOptions options)
    : options_(std::move(options)), conn_(std::move(conn)) {
  context_.conn = conn_.get();
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "relayd-pgwriter");
    loop();
  });
}

PgWriter::~PgWriter() {
  close();
}

void PgWriter::close() {
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    closed_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  conn_.reset();
}

StoreStats PgWriter::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

bool PgWriter::writable() {
  {
    std::lock_guard lock(mutex_);
    if (closed_ || !running_) return false;
    if (last_commit_ok_) return true;
    const auto now = std::chrono::steady_clock::now();
    if (probe_queued_ || now - last_probe_ < std::chrono::seconds(1)) return false;
    probe_queued_ = true;
    last_probe_ = now;
  }
  // An empty request: its group's BEGIN/COMMIT is the probe (and the reconnect before it).
  WriteRequest probe;
  probe.apply = [](WriterContext&) {};
  probe.complete = [this](WriteStatus) {
    std::lock_guard lock(mutex_);
    probe_queued_ = false;
  };
  enqueue(std::move(probe));
  return false;
}

bool PgWriter::enqueue(WriteRequest req) {
  {
    std::unique_lock lock(mutex_);
    if (!closed_) {
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
  req.complete(WriteStatus::kShuttingDown);
  return true;
}

void PgWriter::loop() {
  {
    std::lock_guard lock(mutex_);
    running_ = true;
  }
  std::vector<WriteRequest> group;
  std::vector<WriteStatus> results;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return closed_ || !queue_.empty(); });
      if (queue_.empty()) break;
      const auto n = std::min(queue_.size(), std::max<std::size_t>(options_.max_group, 1));
      group.clear();
      for (std::size_t i = 0; i < n; ++i) {
        if (queue_.front().counts_against_limit) --queued_intake_;
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (options_.before_group_for_testing) options_.before_group_for_testing();
    run_group(group, results);
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
    group.clear();
  }
  std::lock_guard lock(mutex_);
  running_ = false;
}

// A lost connection is replaced before the next group, but not more often than the backoff
// allows: meanwhile groups fail at once (intake answers 503 storage_unavailable) instead of
// piling up behind a server that is down.
bool PgWriter::ensure_connected() {
  if (conn_ && conn_->ok()) return true;
  conn_.reset();
  context_.conn = nullptr;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_connect_) return false;
  try {
    conn_ = std::make_unique<Connection>(options_.dsn);
    context_.conn = conn_.get();
    backoff_ = std::chrono::milliseconds(0);
    spdlog::info("database {}: writer reconnected", options_.where);
    return true;
  } catch (const PgError& e) {
    backoff_ = std::min(kMaxBackoff, backoff_.count() == 0 ? kFirstBackoff : backoff_ * 2);
    next_connect_ = now + backoff_;
    note_failure(e.what());
    return false;
  }
}

void PgWriter::run_group(std::vector<WriteRequest>& group, std::vector<WriteStatus>& results) {
  bool isolate = false;
  int collisions = 0;
  while (true) {
    if (!ensure_connected()) {
      results.assign(group.size(), WriteStatus::kStorageUnavailable);
      return;
    }
    const auto r = run_once(group, results, isolate);
    if (r == Run::kDone) return;
    if (r == Run::kIsolate) {
      isolate = true;
      continue;
    }
    if (++collisions > kTransientRetries) {
      note_failure("transactions kept colliding with other nodes' (deadlock or serialization)");
      results.assign(group.size(), WriteStatus::kStorageUnavailable);
      return;
    }
  }
}

void PgWriter::rollback() {
  if (conn_ && conn_->ok() && conn_->in_transaction()) PQclear(PQexec(conn_->get(), "ROLLBACK"));
  context_.pending_generations.clear();
  context_.notify = false;
  context_.paused_counts.clear();
}

PgWriter::Run PgWriter::run_once(std::vector<WriteRequest>& group,
                                 std::vector<WriteStatus>& results, bool isolate) {
  auto& c = *conn_;
  results.assign(group.size(), WriteStatus::kStorageUnavailable);
  context_.pending_generations.clear();
  context_.notify = false;
  context_.paused_counts.clear();
  std::uint64_t rejected = 0;
  try {
    c.exec_script("BEGIN");
    for (std::size_t i = 0; i < group.size(); ++i) {
      auto before = context_.pending_generations;
      const bool notify_before = context_.notify;
      try {
        // Other writes (a resume, a cancel, retention) change paused rows behind the count.
        if (!group[i].counts_against_limit) context_.paused_counts.clear();
        if (isolate) c.exec_script("SAVEPOINT req");
        group[i].apply(context_);
        if (isolate) c.exec_script("RELEASE req");
        results[i] = WriteStatus::kOk;
      } catch (const PgError& e) {
        if (e.connection_lost() || e.is_transient() || !e.is_rejection()) throw;
        if (!isolate) {
          rollback();
          return Run::kIsolate;
        }  // (isolated runs never ask for isolation again)
        spdlog::error("database write rejected (rolled back alone): {}", e.what());
        c.exec_script("ROLLBACK TO req; RELEASE req");
        context_.paused_counts.clear();
        context_.pending_generations = std::move(before);
        context_.notify = notify_before;
        results[i] = WriteStatus::kRejected;
        ++rejected;
      } catch (const StoreError& e) {
        // A request's own refusal (e.g. a rule checked in C++): rejected like a constraint.
        if (!isolate) {
          rollback();
          return Run::kIsolate;
        }
        spdlog::error("database write rejected (rolled back alone): {}", e.what());
        c.exec_script("ROLLBACK TO req; RELEASE req");
        context_.paused_counts.clear();
        context_.pending_generations = std::move(before);
        context_.notify = notify_before;
        results[i] = WriteStatus::kRejected;
        ++rejected;
      }
    }
    if (context_.notify) c.exec_script("NOTIFY relayd_work");
    c.exec_script("COMMIT");
  } catch (const PgError& e) {
    rollback();
    for (auto& r : results) {
      if (r != WriteStatus::kRejected) r = WriteStatus::kStorageUnavailable;
    }
    if (e.is_transient() && !e.connection_lost()) return Run::kRetry;
    if (e.connection_lost()) {
      conn_.reset();
      context_.conn = nullptr;
    }
    note_failure(e.what());
    return Run::kDone;
  }
  for (auto& [k, v] : context_.pending_generations) context_.generations[k] = v;
  context_.pending_generations.clear();
  context_.notify = false;
  context_.paused_counts.clear();
  std::lock_guard lock(mutex_);
  ++stats_.commits;
  stats_.requests += group.size() - rejected;
  stats_.rejected += rejected;
  stats_.max_group = std::max<std::uint64_t>(stats_.max_group, group.size());
  if (!last_commit_ok_) spdlog::info("database {} is writable again", options_.where);
  last_commit_ok_ = true;
  return Run::kDone;
}

void PgWriter::note_failure(const std::string& what) {
  std::lock_guard lock(mutex_);
  ++stats_.failed_commits;
  if (last_commit_ok_) spdlog::error("database {} cannot be written: {}", options_.where, what);
  last_commit_ok_ = false;
}

}  // namespace relay::store::pg
