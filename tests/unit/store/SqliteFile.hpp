#pragma once

// The SQLite store tests' view of the database file itself: SQL run on it from outside the
// store (what an operator's sqlite3 session sees), and a store opened on it.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "relay/store/Store.hpp"

namespace relay::store::testing_support {

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Direct SQL on the file, outside the store (what an operator's sqlite3 session sees): the
// rows as "a|b" lines, or "error: …".
inline std::string query(const std::filesystem::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr);
  sqlite3_busy_timeout(h, 5000);
  sqlite3_stmt* s = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(h, sql.c_str(), -1, &s, nullptr) == SQLITE_OK) {
    while (sqlite3_step(s) == SQLITE_ROW) {
      if (!out.empty()) out += "\n";
      for (int i = 0; i < sqlite3_column_count(s); ++i) {
        if (i) out += "|";
        const auto* t = sqlite3_column_text(s, i);
        out += t ? reinterpret_cast<const char*>(t) : "NULL";
      }
    }
    if (sqlite3_errcode(h) != SQLITE_OK && sqlite3_errcode(h) != SQLITE_DONE &&
        sqlite3_errcode(h) != SQLITE_ROW) {
      out = std::string("error: ") + sqlite3_errmsg(h);
    }
  } else {
    out = std::string("error: ") + sqlite3_errmsg(h);
  }
  sqlite3_finalize(s);
  sqlite3_close(h);
  return out;
}

inline void exec(const std::filesystem::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  ASSERT_EQ(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(h);
  sqlite3_close(h);
}

inline std::unique_ptr<Store> open(const std::filesystem::path& path, StoreOptions o = {}) {
  o.path = path.string();
  return open_sqlite_store(o);
}

}  // namespace relay::store::testing_support
