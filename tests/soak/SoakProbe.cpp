#include "SoakProbe.hpp"

#include <unistd.h>

#include <chrono>
#include <exception>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "BenchCommon.hpp"

namespace relay::soak {

namespace fs = std::filesystem;
using relay::bench::monotonic_ns;

ProcStat read_proc(pid_t pid) {
  ProcStat p;
  const fs::path base = fs::path("/proc") / std::to_string(pid);
  std::ifstream status(base / "status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmRSS:")) p.rss_mb = std::stod(line.substr(6)) / 1024.0;
    if (line.starts_with("Threads:")) p.threads = std::stoi(line.substr(8));
  }
  std::error_code ec;
  for (auto it = fs::directory_iterator(base / "fd", ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    ++p.fds;
  }
  std::ifstream stat_file(base / "stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may contain spaces): state is field 3, utime 14,
  // stime 15.
  const auto close = stat.rfind(')');
  if (close != std::string::npos) {
    std::istringstream rest(stat.substr(close + 2));
    std::string field;
    double utime = 0;
    double stime = 0;
    for (int n = 3; n <= 15 && rest >> field; ++n) {
      if (n == 14) utime = std::stod(field);
      if (n == 15) stime = std::stod(field);
    }
    p.cpu_s = (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }
  return p;
}

double file_mb(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0.0 : static_cast<double>(size) / (1024.0 * 1024.0);
}

double load_average() {
  std::ifstream f("/proc/loadavg");
  double one = 0;
  f >> one;
  return one;
}

MetricsSnapshot parse_metrics(const std::string& text) {
  MetricsSnapshot m;
  std::istringstream in(text);
  auto label = [](const std::string& line, const std::string& name) {
    const auto at = line.find(name + "=\"");
    if (at == std::string::npos) return std::string();
    const auto start = at + name.size() + 2;
    return line.substr(start, line.find('"', start) - start);
  };
  for (std::string line; std::getline(in, line);) {
    const bool deliveries = line.starts_with("relayd_deliveries{");
    const bool attempts = line.starts_with("relayd_attempts_total{");
    if (!deliveries && !attempts) continue;
    const auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    const auto value = std::stoll(line.substr(space + 1));
    if (deliveries) {
      m.deliveries[label(line, "webhook")][label(line, "status")] = value;
    } else {
      m.attempts[label(line, "webhook")][label(line, "outcome")] = value;
    }
  }
  m.ok = true;
  return m;
}

MetricsSnapshot scrape(relay::testing::HttpTestClient& client) {
  const auto t0 = monotonic_ns();
  try {
    const auto reply = client.request("GET", "/metrics", {}, {}, std::chrono::seconds(30));
    if (reply.status != 200) return {};
    auto m = parse_metrics(reply.body);
    m.scrape_ms = static_cast<double>(monotonic_ns() - t0) / 1e6;
    return m;
  } catch (const std::exception& e) {
    std::cerr << "soak: GET /metrics failed: " << e.what() << std::endl;
    return {};
  }
}

}  // namespace relay::soak
