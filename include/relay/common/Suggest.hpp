#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relay::common {

/// Edit distance (insertions, deletions, substitutions, and swaps of two neighbours count 1).
[[nodiscard]] std::size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate closest to `word` when it is close enough to be a typo (at most 1 edit for
/// words up to 4 characters, 2 up to 12, else 3), ties going to the first; nullopt otherwise.
[[nodiscard]] std::optional<std::string_view> closest_match(
    std::string_view word, const std::vector<std::string_view>& candidates);

/// " (did you mean 'X'?)" for the closest match, or "" when none is close.
[[nodiscard]] std::string did_you_mean(std::string_view word,
                                       const std::vector<std::string_view>& candidates);

}  // namespace relay::common
