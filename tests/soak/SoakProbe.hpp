// What the soak reads about relayd from outside: /proc (RSS, fds, threads, CPU), file sizes, the
// load average, and GET /metrics.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "HttpTestClient.hpp"

namespace relay::soak {

struct ProcStat {
  double rss_mb = 0;
  int fds = 0;
  int threads = 0;
  double cpu_s = 0;  // user + system since start
};

ProcStat read_proc(pid_t pid);
/// Size of a file in MB; 0 when it does not exist.
double file_mb(const std::filesystem::path& path);
/// The 1-minute load average.
double load_average();

// relayd_deliveries{webhook="w",status="s"} N and relayd_attempts_total{webhook="w",
// outcome="o"} N from GET /metrics.
struct MetricsSnapshot {
  std::map<std::string, std::map<std::string, std::int64_t>> deliveries;  // webhook → status
  std::map<std::string, std::map<std::string, std::int64_t>> attempts;    // webhook → outcome
  double scrape_ms = 0;
  bool ok = false;
};

MetricsSnapshot parse_metrics(const std::string& text);
/// GET /metrics and parse it; ok = false (and a line on stderr) when it failed.
MetricsSnapshot scrape(relay::testing::HttpTestClient& client);

}  // namespace relay::soak
