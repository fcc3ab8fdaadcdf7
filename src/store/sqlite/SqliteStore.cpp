#include "SqliteStore.hpp"

#include "Migrations.hpp"

namespace relay::store {

SqliteStore::SqliteStore(const StoreOptions& options)
    : options_(options),
      readers_(options.path, [this](Connection& c) { leases_.install(c, false); }) {
  sqlite::check_file_header(options_.path);
  std::unique_ptr<Connection> conn;
  try {
    conn = std::make_unique<Connection>(
        options_.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX);
    sqlite::configure_connection(*conn);
    sqlite::open_and_migrate(*conn, options_);
    leases_.install(*conn, true);
  } catch (const sqlite::SqliteError& e) {
    const int p = e.primary();
    if (p == SQLITE_CORRUPT || p == SQLITE_NOTADB) {
      throw StoreError(options_.path + " is corrupt: " + e.what());
    }
    throw StoreError("cannot open database " + options_.path + ": " + e.what());
  }
  writer_ = std::make_unique<sqlite::WriterQueue>(std::move(conn), options_);
}

SqliteStore::~SqliteStore() {
  close();
}

StoreStats SqliteStore::stats() const {
  return writer_->stats();
}

bool SqliteStore::writable() {
  return writer_->writable();
}

void SqliteStore::close() {
  writer_->close();
  readers_.close();
}

std::unique_ptr<Store> open_sqlite_store(const StoreOptions& options) {
  return std::make_unique<SqliteStore>(options);
}

}  // namespace relay::store
