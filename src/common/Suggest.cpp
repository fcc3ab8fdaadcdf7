#include "relay/common/Suggest.hpp"

#include <algorithm>

namespace relay::common {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Optimal string alignment: Levenshtein plus adjacent transpositions ("recieve").
  const std::size_t n = a.size();
  const std::size_t m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::optional<std::string_view> closest_match(std::string_view word,
                                              const std::vector<std::string_view>& candidates) {
  // Long input is not a typo of a short name (and would cost n*m): skip it.
  if (word.empty() || word.size() > 64) return std::nullopt;
  const std::size_t limit = word.size() <= 4 ? 1 : word.size() <= 12 ? 2 : 3;
  std::optional<std::string_view> best;
  std::size_t best_distance = limit + 1;
  for (const auto c : candidates) {
    const auto dist = edit_distance(word, c);
    if (dist > 0 && dist < best_distance) {
      best = c;
      best_distance = dist;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string_view>& candidates) {
  const auto match = closest_match(word, candidates);
  return match ? " (did you mean '" + std::string(*match) + "'?)" : std::string();
}

}  // namespace relay::common
