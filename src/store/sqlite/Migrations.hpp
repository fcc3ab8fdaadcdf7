#pragma once

#include <string>

#include "Sqlite.hpp"
#include "relay/store/Store.hpp"

namespace relay::store::sqlite {

/// Busy timeout and foreign keys: what every connection of the store needs.
void configure_connection(Connection& c);

/// Reads the first bytes of `path` to tell "not SQLite at all" from everything else before
/// SQLite gets a chance to touch the file. Throws StoreError; a missing file is fine when its
/// directory exists.
void check_file_header(const std::string& path);

/// Checks that the file is a relayd database this binary can use (application id, schema
/// version, quick_check when small enough), sets the writer's pragmas (WAL, synchronous=FULL,
/// …) and applies the missing migrations, each in its own transaction. Throws StoreError
/// (or SqliteError for a failure SQLite reports). Schema.hpp lists the migrations.
void open_and_migrate(Connection& c, const StoreOptions& options);

}  // namespace relay::store::sqlite
