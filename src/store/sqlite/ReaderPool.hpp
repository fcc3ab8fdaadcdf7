#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "Sqlite.hpp"
#include "relay/store/Store.hpp"

namespace relay::store::sqlite {

/// Connections for the admin API's reads. WAL: a reader sees one committed snapshot and never
/// blocks the writer nor waits for it. Up to kMaxIdle idle connections are kept; more are
/// opened when reads overlap and closed when they end. Thread-safe.
class ReaderPool {
 public:
  /// `on_open` runs on every connection this pool opens (e.g. to register SQL functions).
  ReaderPool(std::string path, std::function<void(Connection&)> on_open)
      : path_(std::move(path)), on_open_(std::move(on_open)) {}

  /// Runs `f(Connection&)` inside one read transaction (one WAL snapshot). Throws StoreError
  /// on a database error or after close().
  template <class F>
  std::invoke_result_t<F&, Connection&> read(const std::string& what, F&& f) {
    auto reader = acquire();
    try {
      reader->exec("BEGIN");
      auto result = f(*reader);
      reader->exec("COMMIT");
      return result;
    } catch (const SqliteError& e) {
      throw StoreError("cannot read " + what + " from " + path_ + ": " + e.what());
    }
  }

  /// Later reads throw; idle connections close now, leased ones when their read ends.
  void close();

 private:
  static constexpr std::size_t kMaxIdle = 4;

  // A reader connection borrowed from the pool; goes back (or is closed) when released.
  class Lease {
   public:
    Lease(ReaderPool& pool, std::unique_ptr<Connection> c) : pool_(pool), c_(std::move(c)) {}
    ~Lease() { pool_.release(std::move(c_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Connection* operator->() const { return c_.get(); }
    Connection& operator*() const { return *c_; }

   private:
    ReaderPool& pool_;
    std::unique_ptr<Connection> c_;
  };

  Lease acquire();
  void release(std::unique_ptr<Connection> c);

  const std::string path_;
  const std::function<void(Connection&)> on_open_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mutex_
  bool closed_ = false;                            // guarded by mutex_
};

}  // namespace relay::store::sqlite
