#pragma once

// Small pieces shared by the benchmark tools (header-only, plain C++: no Beast here).

#include <time.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace relay::bench {

/// Wall-clock nanoseconds (CLOCK_REALTIME): comparable between processes on one machine,
/// which is what joining the load generator's and the receiver's logs needs.
inline std::int64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

/// Monotonic nanoseconds, for durations measured inside one process.
inline std::int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

/// Parses a whole decimal number or throws std::invalid_argument naming the option.
inline std::int64_t parse_int(std::string_view text, std::string_view option) {
  std::int64_t value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end) {
    throw std::invalid_argument(std::string(option) + ": not a whole number: " + std::string(text));
  }
  return value;
}

/// Parses a decimal number (seconds, rates) or throws std::invalid_argument.
inline double parse_double(std::string_view text, std::string_view option) {
  const std::string copy(text);
  char* end = nullptr;
  const double value = std::strtod(copy.c_str(), &end);
  if (copy.empty() || end != copy.c_str() + copy.size()) {
    throw std::invalid_argument(std::string(option) + ": not a number: " + copy);
  }
  return value;
}

/// A log-linear histogram of non-negative nanosecond values (the HdrHistogram idea): exact
/// below 256 ns, then 128 sub-buckets per power of two, so any reported percentile is within
/// 0.8% of the true sample. Fixed size (~58 KiB), no allocation while recording; merge by
/// adding. Not thread-safe: keep one per coroutine and merge at the end.
class LatencyHistogram {
 public:
  static constexpr int kLinearBits = 8;
  static constexpr std::size_t kHalf = std::size_t{1} << (kLinearBits - 1);
  static constexpr std::size_t kBuckets = (std::size_t{1} << kLinearBits) + 56 * kHalf;

  void record(std::int64_t ns) {
    const auto v = static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0));
    ++counts_[index(v)];
    ++total_;
    max_ = std::max(max_, v);
    sum_ += static_cast<double>(v);
  }

  void merge(const LatencyHistogram& other) {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    max_ = std::max(max_, other.max_);
    sum_ += other.sum_;
  }

  [[nodiscard]] std::uint64_t count() const { return total_; }
  [[nodiscard]] std::uint64_t max() const { return max_; }
  [[nodiscard]] double mean() const { return total_ ? sum_ / static_cast<double>(total_) : 0; }

  /// The value at quantile q in [0, 1] (the bucket's midpoint, capped at the true maximum).
  [[nodiscard]] std::uint64_t quantile(double q) const {
    if (total_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(std::max(1.0, q * static_cast<double>(total_)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(midpoint(i), max_);
    }
    return max_;
  }

 private:
  static std::size_t index(std::uint64_t v) {
    if (v < (std::uint64_t{1} << kLinearBits)) return static_cast<std::size_t>(v);
    const int msb = 63 - std::countl_zero(v);
    const int shift = msb - kLinearBits + 1;
    const std::uint64_t top = v >> shift;  // in [kHalf, 2 * kHalf)
    const std::size_t i = (std::size_t{1} << kLinearBits) +
                          static_cast<std::size_t>(shift - 1) * kHalf +
                          static_cast<std::size_t>(top - kHalf);
    return std::min(i, kBuckets - 1);
  }

  static std::uint64_t midpoint(std::size_t i) {
    if (i < (std::size_t{1} << kLinearBits)) return i;
    const std::size_t rest = i - (std::size_t{1} << kLinearBits);
    const int shift = static_cast<int>(rest / kHalf) + 1;
    const std::uint64_t top = kHalf + rest % kHalf;
    return (top << shift) + (std::uint64_t{1} << (shift - 1));
  }

  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
  double sum_ = 0;
};

/// Formats nanoseconds as milliseconds with three decimals (for JSON and tables).
inline std::string ms(std::uint64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(ns) / 1e6);
  return buf;
}

}  // namespace relay::bench
