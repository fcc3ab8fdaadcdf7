#include "PgStore.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>

#include "relay/common/Redaction.hpp"

namespace relay::store {

namespace pg {

ReaderPool::ReaderPool(std::string dsn, std::string where, std::size_t size)
    : dsn_(std::move(dsn)), where_(std::move(where)), free_slots_(std::max<std::size_t>(size, 1)) {}

// Connections are opened on first use and replaced when one breaks, so a server restart
// costs the reads in flight at that moment, nothing more.
ReaderPool::Lease ReaderPool::acquire() {
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [this] { return closed_ || free_slots_ > 0; });
  if (closed_) throw StoreError("the store is closed");
  --free_slots_;
  Lease l;
  if (!idle_.empty()) {
    l.conn = std::move(idle_.back());
    idle_.pop_back();
  }
  lock.unlock();
  try {
    if (!l.conn || !l.conn->ok()) l.conn = std::make_unique<Connection>(dsn_);
  } catch (const PgError& e) {
    discard(l);
    throw StoreError(std::string("cannot read from ") + where_ + ": " + e.what());
  }
  return l;
}

void ReaderPool::release(Lease& l) {
  {
    std::lock_guard lock(mutex_);
    if (!closed_ && l.conn && l.conn->ok() && !l.conn->in_transaction()) {
      idle_.push_back(std::move(l.conn));
    }
    ++free_slots_;
  }
  l.conn.reset();
  cv_.notify_one();
}

void ReaderPool::discard(Lease& l) {
  if (l.conn && l.conn->ok() && l.conn->in_transaction()) {
    PQclear(PQexec(l.conn->get(), "ROLLBACK"));
  }
  release(l);
}

void ReaderPool::close() {
  std::vector<std::unique_ptr<Connection>> gone;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    gone.swap(idle_);
  }
  cv_.notify_all();
}

Listener::Listener(std::string dsn, std::string where, std::chrono::milliseconds sweep)
    : dsn_(std::move(dsn)), where_(std::move(where)), sweep_(sweep) {
  if (::pipe2(stop_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw StoreError("cannot create the listener's pipe");
  }
}

Listener::~Listener() {
  stop();
  ::close(stop_pipe_[0]);
  ::close(stop_pipe_[1]);
}

void Listener::start(std::function<void()> wake) {
  if (thread_.joinable()) return;
  wake_ = std::move(wake);
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "relayd-pglisten");
    loop();
  });
}

void Listener::stop() {
  if (!thread_.joinable()) return;
  const char byte = 1;
  (void)!::write(stop_pipe_[1], &byte, 1);
  thread_.join();
}

void Listener::loop() {
  auto backoff = std::chrono::milliseconds(100);
  std::unique_ptr<Connection> conn;
  while (true) {
    if (!conn || !conn->ok()) {
      conn.reset();
      try {
        conn = std::make_unique<Connection>(dsn_);
        conn->exec_script("LISTEN relayd_work");
        backoff = std::chrono::milliseconds(100);
        // Whatever was notified while we were away: look once.
        if (wake_) wake_();
      } catch (const PgError& e) {
        spdlog::warn("database {}: cannot listen for other nodes' work (retrying): {}", where_,
                     e.what());
        conn.reset();
      }
    }
    pollfd fds[2] = {{stop_pipe_[0], POLLIN, 0}, {conn ? PQsocket(conn->get()) : -1, POLLIN, 0}};
    const auto timeout = conn ? sweep_ : backoff;
    const int n = ::poll(fds, conn ? 2 : 1, static_cast<int>(timeout.count()));
    if (n > 0 && (fds[0].revents & POLLIN) != 0) return;
    if (!conn) {
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      continue;
    }
    bool notified = n == 0;  // the sweep: leases that ran out notify nobody
    if (n > 0) {
      if (PQconsumeInput(conn->get()) == 0) {
        conn.reset();
        continue;
      }
      while (PGnotify* note = PQnotifies(conn->get())) {
        notified = true;
        PQfreemem(note);
      }
    }
    if (notified && wake_) {
      try {
        wake_();
      } catch (const std::exception& e) {
        spdlog::error("wake handler threw: {}", e.what());
      }
    }
  }
}

}  // namespace pg

PgStore::PgStore(const PostgresStoreOptions& options)
    : options_(options), where_(common::redact_dsn(options.dsn)) {
  std::unique_ptr<pg::Connection> conn;
  try {
    conn = std::make_unique<pg::Connection>(options_.dsn);
    pg::migrate(*conn, where_);
  } catch (const pg::PgError& e) {
    throw StoreError(std::string("cannot open database ") + where_ + ": " + e.what());
  }
  pg::WriterOptions w;
  w.dsn = options_.dsn;
  w.where = where_;
  w.max_queued_writes = options_.max_queued_writes;
  w.max_group = options_.max_group;
  w.before_group_for_testing = options_.before_group_for_testing;
  writer_ = std::make_unique<pg::PgWriter>(std::move(conn), std::move(w));
  readers_ = std::make_unique<pg::ReaderPool>(options_.dsn, where_,
                                              std::max<std::size_t>(options_.pool_size, 3) - 2);
  // Half a lease: a node that died is taken over within 1.5 leases at worst even when no
  // other node has anything to do.
  listener_ = std::make_unique<pg::Listener>(
      options_.dsn, where_, std::max(std::chrono::milliseconds(100), options_.lease / 2));
}

PgStore::~PgStore() {
  close();
}

void PgStore::set_wake_handler(std::function<void()> wake) {
  listener_->start(std::move(wake));
}

StoreStats PgStore::stats() const {
  return writer_->stats();
}

bool PgStore::writable() {
  return writer_->writable();
}

void PgStore::close() {
  std::call_once(closed_, [this] {
    listener_->stop();
    writer_->close();
    readers_->close();
  });
}

std::unique_ptr<Store> open_postgres_store(const PostgresStoreOptions& options) {
  return std::make_unique<PgStore>(options);
}

}  // namespace relay::store
