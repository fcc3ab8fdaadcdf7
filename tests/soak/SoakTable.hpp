// One row of the soak's table (a sample of relayd and the load over one interval), and the
// Markdown table the soak prints and writes.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "SoakLedger.hpp"
#include "SoakProbe.hpp"

namespace relay::soak {

struct Sample {
  double t_s = 0;
  double window_s = 0;
  double acked_per_s = 0;
  std::uint64_t acked = 0;
  std::uint64_t bad = 0;  // non-2xx answers + transport errors
  std::uint64_t non_2xx = 0;
  std::uint64_t transport_errors = 0;
  double ack_p50 = 0, ack_p99 = 0, ack_max = 0;  // ms
  double delivered_per_s = 0;
  std::uint64_t healthy_due = 0;
  std::uint64_t healthy_delivered = 0;
  double e2e_p50 = 0, e2e_p99 = 0;  // ms
  std::uint64_t healthy_backlog = 0;
  std::int64_t retrying = 0;  // failing hooks' deliveries pending or delivering (relayd's view)
  double failing_attempts_per_s = 0;
  std::uint64_t duplicates = 0;
  std::array<std::uint64_t, kHookCount> requests{};  // what the receiver got, per hook
  ProcStat proc;
  double cpu_pct = 0;
  double cpu_us_per_op = 0;  // relayd CPU time / (events acked + attempts made) in the window
  double wal_mb = 0;
  double db_mb = 0;
  double load1 = 0;
  double scrape_ms = 0;
};

/// printf-style formatting of one number.
std::string fmt(const char* format, double v);
/// The samples as a Markdown table, one row each.
std::string table(const std::vector<Sample>& samples);

}  // namespace relay::soak
