#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace relay::store {

/// PRAGMA application_id of a relayd database ("RLAY").
inline constexpr std::int64_t kApplicationId = 0x524C4159;

/// Migration k (1-based) turns schema version k-1 into k. Append only: never edit a released
/// step, add a new one.
const std::vector<std::string_view>& migrations();

}  // namespace relay::store
