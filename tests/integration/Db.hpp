#pragma once

#include <libpq-fe.h>
#include <sqlite3.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "PgServer.hpp"

namespace relay::testing {

/// Read access to the daemon's database, as an operator's session would have it: the SQLite
/// file, or (RELAYD_TEST_BACKEND=postgres) the PostgreSQL database that stands for that path
/// (dsn_for). Queries must then be SQL both speak.
class Db {
 public:
  explicit Db(const std::filesystem::path& path) {
    if (postgres_backend()) {
      pg_ = PQconnectdb(dsn_for(path).c_str());
      if (PQstatus(pg_) != CONNECTION_OK) {
        const std::string msg = PQerrorMessage(pg_);
        PQfinish(pg_);
        throw std::runtime_error("connect for " + path.string() + ": " + msg);
      }
      return;
    }
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw std::runtime_error("open " + path.string() + ": " + msg);
    }
    sqlite3_busy_timeout(db_, 5000);
  }
  ~Db() {
    if (pg_ != nullptr) PQfinish(pg_);
    sqlite3_close(db_);
  }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  /// Every row of `sql`, each column as text ("NULL" for null).
  std::vector<std::vector<std::string>> rows(const std::string& sql) {
    if (pg_ != nullptr) return pg_rows(sql);
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    }
    std::vector<std::vector<std::string>> out;
    int rc = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
        const auto* text = sqlite3_column_text(stmt, i);
        row.emplace_back(text ? std::string(reinterpret_cast<const char*>(text),
                                            static_cast<std::size_t>(sqlite3_column_bytes(stmt, i)))
                              : std::string("NULL"));
      }
      out.push_back(std::move(row));
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    return out;
  }

  std::string value(const std::string& sql) {
    const auto r = rows(sql);
    if (r.empty() || r[0].empty()) throw std::runtime_error("no row: " + sql);
    return r[0][0];
  }

  long long count(const std::string& sql) { return std::stoll(value(sql)); }

  /// SQL for the length in bytes of text `expr`.
  [[nodiscard]] std::string byte_length(const std::string& expr) const {
    return pg_ != nullptr ? "octet_length(" + expr + ")" : "length(CAST(" + expr + " AS BLOB))";
  }

  /// The deliveries column that keeps insertion order: SQLite's rowid, PostgreSQL's seq.
  [[nodiscard]] std::string insertion_order() const { return pg_ != nullptr ? "seq" : "rowid"; }

 private:
  std::vector<std::vector<std::string>> pg_rows(const std::string& sql) {
    PGresult* r = PQexec(pg_, sql.c_str());
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
      const std::string msg = PQresultErrorMessage(r);
      PQclear(r);
      throw std::runtime_error(sql + ": " + msg);
    }
    std::vector<std::vector<std::string>> out;
    for (int i = 0; i < PQntuples(r); ++i) {
      std::vector<std::string> row;
      for (int j = 0; j < PQnfields(r); ++j) {
        row.emplace_back(PQgetisnull(r, i, j) ? "NULL" : PQgetvalue(r, i, j));
      }
      out.push_back(std::move(row));
    }
    PQclear(r);
    return out;
  }

  sqlite3* db_ = nullptr;
  PGconn* pg_ = nullptr;
};

}  // namespace relay::testing
