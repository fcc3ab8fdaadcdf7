#include "Migrations.hpp"

#include <spdlog/spdlog.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "Schema.hpp"

namespace relay::store::sqlite {

namespace fs = std::filesystem;

namespace {

constexpr int kBusyTimeoutMs = 5000;

// SQLite's procedure for schema changes that leave stored rows untouched: edit the text in
// sqlite_schema and bump schema_version, so that every connection, this one included,
// re-reads the schema before its next statement.
void edit_table_text(Connection& c, const std::vector<TableTextEdit>& edits,
                     const std::string& path) {
  const auto version = c.pragma_int("schema_version");
  c.exec("PRAGMA writable_schema=ON");
  try {
    for (const auto& e : edits) {
      sqlite::Statement s(c.get(),
                          "UPDATE sqlite_schema SET sql = replace(sql, ?2, ?3) "
                          "WHERE type = 'table' AND name = ?1 AND instr(sql, ?2) > 0");
      s.bind(1, e.table);
      s.bind(2, e.from);
      s.bind(3, e.to);
      s.run();
      if (c.changes() != 1) {
        throw StoreError(path + ": table " + std::string(e.table) +
                         " is not as relayd created it (cannot migrate it)");
      }
    }
  } catch (...) {
    sqlite3_exec(c.get(), "PRAGMA writable_schema=OFF", nullptr, nullptr, nullptr);
    throw;
  }
  c.exec("PRAGMA writable_schema=OFF");
  c.exec("PRAGMA schema_version=" + std::to_string(version + 1));
}

}  // namespace

void configure_connection(Connection& c) {
  sqlite3_busy_timeout(c.get(), kBusyTimeoutMs);
  c.exec("PRAGMA foreign_keys=ON");
}

void check_file_header(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    const auto parent = fs::path(path).parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ec)) {
      throw StoreError("cannot create database " + path + ": directory " + parent.string() +
                       " does not exist");
    }
    return;
  }
  if (fs::is_directory(path, ec)) throw StoreError(path + " is a directory, not a database file");
  const auto size = fs::file_size(path, ec);
  if (ec || size == 0) return;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw StoreError("cannot read database " + path);
  char header[16] = {};
  in.read(header, sizeof header);
  if (in.gcount() < 16 || std::memcmp(header, "SQLite format 3\0", 16) != 0) {
    throw StoreError(path + " is not a SQLite database (refusing to touch it)");
  }
}

void open_and_migrate(Connection& c, const StoreOptions& options) {
  const auto app_id = c.pragma_int("application_id");
  const auto version = c.pragma_int("user_version");
  std::int64_t tables = 0;
  {
    sqlite::Statement s(c.get(), "SELECT count(*) FROM sqlite_master");
    if (s.step()) tables = s.int64(0);
  }
  const auto known = static_cast<std::int64_t>(migrations().size());
  if (app_id != kApplicationId && !(app_id == 0 && tables == 0)) {
    throw StoreError(options.path + " is not a relayd database (refusing to touch it)");
  }
  if (version > known) {
    throw StoreError(options.path + " was created by a newer relayd (schema v" +
                     std::to_string(version) + ", this binary knows up to v" +
                     std::to_string(known) + ")");
  }
  if (tables > 0) {
    std::error_code ec;
    const auto size = fs::file_size(options.path, ec);
    if (!ec && options.quick_check_max_bytes > 0 && size <= options.quick_check_max_bytes) {
      sqlite::Statement s(c.get(), "PRAGMA quick_check");
      std::string first;
      if (s.step()) first = s.text(0);
      if (first != "ok") throw StoreError(options.path + " is corrupt: " + first);
    } else {
      spdlog::info("database {}: {} bytes, quick_check skipped (limit {} bytes)", options.path,
                   size, options.quick_check_max_bytes);
    }
  }
  if (tables == 0) {
    // Only possible before the first table exists: lets retention return freed pages.
    c.exec("PRAGMA auto_vacuum=INCREMENTAL");
  }
  {
    sqlite::Statement s(c.get(), "PRAGMA journal_mode=WAL");
    if (!s.step() || s.text(0) != "wal") {
      throw StoreError("cannot switch " + options.path + " to WAL mode");
    }
  }
  c.exec("PRAGMA synchronous=FULL");
  // The writer walks the due/webhook indexes all the time: keep them in SQLite's cache rather
  // than re-reading pages from the OS (16 MiB; the default is 2 MiB).
  c.exec("PRAGMA cache_size=-16384");
  // Savepoints keep a sub-journal of the pages they touch; in a temp file that cost one
  // pwrite per page (13 syscalls, 30 KB per event at intake). In memory it is a memcpy.
  c.exec("PRAGMA temp_store=MEMORY");
  // A long read transaction lets the WAL grow; after the next checkpoint resets it, give the
  // space back instead of keeping the high-water mark forever.
  c.exec("PRAGMA journal_size_limit=16777216");
  // WAL checkpoints are not SQLite's automatic ones on this connection: the writer queue
  // hands them to a thread of their own, with a hard WAL cap (Checkpointer.hpp).
  for (auto v = version + 1; v <= known; ++v) {
    c.exec("BEGIN IMMEDIATE");
    try {
      const auto& step = migrations()[static_cast<std::size_t>(v - 1)];
      if (!step.edits.empty()) edit_table_text(c, step.edits, options.path);
      c.exec(step.sql);
      c.exec("PRAGMA application_id=" + std::to_string(kApplicationId));
      c.exec("PRAGMA user_version=" + std::to_string(v));
      c.exec("COMMIT");
    } catch (...) {
      sqlite3_exec(c.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
    spdlog::info("database {}: schema migrated to v{}", options.path, v);
  }
}

}  // namespace relay::store::sqlite
