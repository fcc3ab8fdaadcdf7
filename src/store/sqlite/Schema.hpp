#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace relay::store {

/// PRAGMA application_id of a relayd database ("RLAY").
inline constexpr std::int64_t kApplicationId = 0x524C4159;

/// A change to a table's definition that leaves every stored row valid as it is (a CHECK
/// constraint written differently). SQLite cannot ALTER a constraint; it documents editing the
/// table's text in sqlite_schema for exactly this case ("Making Other Kinds Of Table Schema
/// Changes"), which costs nothing, where rebuilding would copy the whole table.
struct TableTextEdit {
  std::string_view table;
  std::string_view from;  // must occur exactly as written in the table's CREATE text
  std::string_view to;
};

/// Migration k (1-based) turns schema version k-1 into k: first the `edits`, then `sql`, in one
/// transaction. Append only: never edit a released step, add a new one.
struct Migration {
  std::string_view sql;
  std::vector<TableTextEdit> edits;
};
const std::vector<Migration>& migrations();

}  // namespace relay::store
