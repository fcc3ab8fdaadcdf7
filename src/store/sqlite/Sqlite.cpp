#include "Sqlite.hpp"

#include <mutex>

namespace relay::store::sqlite {

namespace {

[[noreturn]] void fail(sqlite3* db, int rc, const std::string& what) {
  throw SqliteError(rc, what + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
}

}  // namespace

Statement::Statement(sqlite3* db, std::string_view sql) : db_(db), sql_(sql) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  stmt_.reset(raw);
  if (rc != SQLITE_OK) fail(db, rc, "prepare [" + sql_ + "]");
}

void Statement::check(int rc, const char* what) const {
  if (rc != SQLITE_OK) fail(db_, rc, std::string(what) + " [" + sql_ + "]");
}

void Statement::bind(int i, std::string_view text) {
  check(
      sqlite3_bind_text64(stmt_.get(), i, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
      "bind");
}

void Statement::bind_static(int i, std::string_view text) {
  check(sqlite3_bind_text64(stmt_.get(), i, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8),
        "bind");
}

void Statement::bind(int i, std::int64_t value) {
  check(sqlite3_bind_int64(stmt_.get(), i, value), "bind");
}

void Statement::bind_null(int i) {
  check(sqlite3_bind_null(stmt_.get(), i), "bind");
}

void Statement::bind(int i, const std::optional<std::string>& text) {
  if (text) {
    bind(i, std::string_view(*text));
  } else {
    bind_null(i);
  }
}

void Statement::bind(int i, std::optional<int> value) {
  if (value) {
    bind(i, static_cast<std::int64_t>(*value));
  } else {
    bind_null(i);
  }
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(db_, rc, "step [" + sql_ + "]");
}

void Statement::run() {
  while (step()) {
  }
}

void Statement::reset() noexcept {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
}

std::string Statement::text(int col) const {
  const auto* p = sqlite3_column_text(stmt_.get(), col);
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<std::size_t>(sqlite3_column_bytes(stmt_.get(), col)));
}

std::string_view Statement::text_view(int col) const {
  const auto* p = sqlite3_column_text(stmt_.get(), col);
  if (p == nullptr) return {};
  return {reinterpret_cast<const char*>(p),
          static_cast<std::size_t>(sqlite3_column_bytes(stmt_.get(), col))};
}

std::optional<std::string> Statement::optional_text(int col) const {
  if (is_null(col)) return std::nullopt;
  return text(col);
}

std::int64_t Statement::int64(int col) const {
  return sqlite3_column_int64(stmt_.get(), col);
}

std::optional<int> Statement::optional_int(int col) const {
  if (is_null(col)) return std::nullopt;
  return static_cast<int>(sqlite3_column_int64(stmt_.get(), col));
}

bool Statement::is_null(int col) const {
  return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL;
}

Connection::Connection(const std::string& path, int flags) {
  // SQLite's memory statistics (sqlite3_memory_used, the soft heap limit; relayd uses
  // neither) take a process-wide mutex on every allocation and free inside SQLite: ~1% of a
  // drain's CPU on the writer thread. Off before the first connection initializes SQLite; if
  // something in the process initialized it already, the call is refused and changes nothing.
  static std::once_flag memstatus_off;
  std::call_once(memstatus_off, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  db_.reset(raw);
  if (rc != SQLITE_OK) fail(raw, rc, "open");
  sqlite3_extended_result_codes(raw, 1);
}

void Connection::exec(std::string_view sql) {
  const std::string s(sql);
  char* err = nullptr;
  const int rc = sqlite3_exec(db_.get(), s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    const std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    throw SqliteError(rc, msg + " [" + s.substr(0, 200) + "]");
  }
}

Statement& Connection::cached(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    std::string text(sql);
    auto statement = std::make_unique<Statement>(db_.get(), text);
    it = cache_.emplace(std::move(text), std::move(statement)).first;
  }
  return *it->second;
}

std::int64_t Connection::pragma_int(const std::string& name) {
  Statement s(db_.get(), "PRAGMA " + name);
  return s.step() ? s.int64(0) : 0;
}

}  // namespace relay::store::sqlite
