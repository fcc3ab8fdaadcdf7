#include "SoakTable.hpp"

#include <cstdio>
#include <sstream>

namespace relay::soak {

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string table(const std::vector<Sample>& samples) {
  std::ostringstream out;
  out << "| t (s) | acked/s | non-2xx + errors | ack p50 ms | ack p99 ms | delivered/s (healthy) "
         "| 202→receipt p50 ms | 202→receipt p99 ms | healthy backlog | retrying | failing "
         "attempts/s | RSS MB | fds | threads | WAL MB | DB MB | relayd CPU % | CPU µs/op | load "
         "avg |\n"
      << "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
         "---:|---:|\n";
  for (const auto& s : samples) {
    out << "| " << fmt("%.0f", s.t_s) << " | " << fmt("%.0f", s.acked_per_s) << " | " << s.bad
        << " | " << fmt("%.2f", s.ack_p50) << " | " << fmt("%.2f", s.ack_p99) << " | "
        << fmt("%.0f", s.delivered_per_s) << " | " << fmt("%.2f", s.e2e_p50) << " | "
        << fmt("%.2f", s.e2e_p99) << " | " << s.healthy_backlog << " | " << s.retrying << " | "
        << fmt("%.0f", s.failing_attempts_per_s) << " | " << fmt("%.1f", s.proc.rss_mb) << " | "
        << s.proc.fds << " | " << s.proc.threads << " | " << fmt("%.1f", s.wal_mb) << " | "
        << fmt("%.0f", s.db_mb) << " | " << fmt("%.0f", s.cpu_pct) << " | "
        << fmt("%.0f", s.cpu_us_per_op) << " | " << fmt("%.2f", s.load1) << " |\n";
  }
  return out.str();
}

}  // namespace relay::soak
