#pragma once

// RAII over the SQLite C API. Private to the store module: nothing outside src/store includes
// sqlite3.h.

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

namespace relay::store::sqlite {

/// A failed SQLite call: the primary result code, and a message naming the SQL.
class SqliteError : public std::runtime_error {
 public:
  SqliteError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  [[nodiscard]] int code() const noexcept { return code_; }
  [[nodiscard]] int primary() const noexcept { return code_ & 0xFF; }
  /// Disk full, I/O error, corruption and the like: the database, not the request, is at
  /// fault (the request can succeed later, unchanged). Anything else (constraint, type,
  /// size) is the request's own fault.
  [[nodiscard]] bool is_storage_failure() const noexcept {
    const int p = primary();
    return p == SQLITE_FULL || p == SQLITE_IOERR || p == SQLITE_CANTOPEN || p == SQLITE_BUSY ||
           p == SQLITE_LOCKED || p == SQLITE_NOMEM || p == SQLITE_READONLY || p == SQLITE_CORRUPT ||
           p == SQLITE_NOTADB || p == SQLITE_PROTOCOL;
  }

 private:
  int code_;
};

class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql);
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  void bind(int i, std::string_view text);
  /// Binds `text` without copying it: it must stay alive and unchanged until the statement is
  /// reset (StatementScope's end; reset() also clears the bindings).
  void bind_static(int i, std::string_view text);
  void bind(int i, const std::string& text) { bind(i, std::string_view(text)); }
  void bind(int i, const char* text) { bind(i, std::string_view(text)); }
  void bind(int i, std::int64_t value);
  void bind(int i, int value) { bind(i, static_cast<std::int64_t>(value)); }
  void bind_null(int i);
  void bind(int i, const std::optional<std::string>& text);
  void bind(int i, std::optional<int> value);

  /// true: a row is ready; false: done. Throws SqliteError.
  [[nodiscard]] bool step();
  /// step() for statements that return no rows.
  void run();
  void reset() noexcept;

  [[nodiscard]] std::string text(int col) const;
  /// The column's text without a copy, valid until the next step() or reset().
  [[nodiscard]] std::string_view text_view(int col) const;
  [[nodiscard]] std::optional<std::string> optional_text(int col) const;
  [[nodiscard]] std::int64_t int64(int col) const;
  [[nodiscard]] std::optional<int> optional_int(int col) const;
  [[nodiscard]] bool is_null(int col) const;

 private:
  void check(int rc, const char* what) const;
  struct Finalize {
    void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
  };
  sqlite3* db_;
  std::string sql_;
  std::unique_ptr<sqlite3_stmt, Finalize> stmt_;
};

/// Resets a statement when the scope ends, whatever happens.
class StatementScope {
 public:
  explicit StatementScope(Statement& s) : s_(s) {}
  ~StatementScope() { s_.reset(); }
  StatementScope(const StatementScope&) = delete;
  StatementScope& operator=(const StatementScope&) = delete;
  Statement* operator->() { return &s_; }
  Statement& operator*() { return s_; }

 private:
  Statement& s_;
};

class Connection {
 public:
  /// Opens `path` with `flags` (SQLITE_OPEN_*). Throws SqliteError.
  Connection(const std::string& path, int flags);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void exec(std::string_view sql);
  /// A statement prepared once per connection and reused (reset it with StatementScope).
  Statement& cached(std::string_view sql);
  /// The same for a string literal, found by its address: the writer asks for several per
  /// attempt, and hashing and comparing ~250 bytes of SQL each time showed in the drain.
  /// Only for literals (an array whose text never changes).
  template <std::size_t N>
  Statement& cached(const char (&sql)[N]) {
    if (const auto it = by_literal_.find(sql); it != by_literal_.end()) return *it->second;
    auto& statement = cached(std::string_view(sql, N - 1));
    by_literal_.emplace(sql, &statement);
    return statement;
  }
  [[nodiscard]] std::int64_t changes() const { return sqlite3_changes64(db_.get()); }
  [[nodiscard]] sqlite3* get() const { return db_.get(); }
  [[nodiscard]] std::int64_t pragma_int(const std::string& name);

 private:
  struct Close {
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
  };
  std::unique_ptr<sqlite3, Close> db_;
  struct TextHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::string, std::unique_ptr<Statement>, TextHash, std::equal_to<>> cache_;
  std::unordered_map<const char*, Statement*> by_literal_;
};

}  // namespace relay::store::sqlite
