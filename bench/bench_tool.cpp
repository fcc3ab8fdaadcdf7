// relay_bench_tool: small helpers for bench/run, kept in C++ so the runner needs nothing but
// bash and the project's own build.
//
//   relay_bench_tool free-port
//       print a TCP port on 127.0.0.1 that nothing listens on right now
//   relay_bench_tool join IDS_FILE RECEIVER_LOG
//       end-to-end latency: joins relay_loadgen --ids-out ("<id> <send ns> <ack ns>") with
//       relay_bench_receiver --log ("<recv ns> <status> <delivery> <payload id> <target>") on
//       the event id, first receipt of each event; prints one flat JSON object
//   relay_bench_tool drain RECEIVER_LOG [--since NS]
//       delivery throughput from a receiver log: 2xx unique deliveries per second from NS (or
//       the first request) to the last 2xx; failures, duplicates, peak one-second rates
//   relay_bench_tool blackhole PORT SECONDS
//       a dead endpoint: listens on 127.0.0.1:PORT for SECONDS but never accepts, so TCP
//       connects succeed (the kernel's backlog) and requests are never answered
//
// Exit status: 0 ok, 1 unreadable input, 2 usage.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "BenchCommon.hpp"

namespace {

constexpr std::string_view kUsage =
    "usage: relay_bench_tool free-port\n"
    "       relay_bench_tool join IDS_FILE RECEIVER_LOG\n"
    "       relay_bench_tool drain RECEIVER_LOG [--since NS]\n"
    "       relay_bench_tool blackhole PORT SECONDS\n";

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return 1;
  }
  ::close(fd);
  std::printf("%u\n", ntohs(addr.sin_port));
  return 0;
}

int blackhole(int port, int seconds) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 1;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4096) != 0) {
    std::perror("relay_bench_tool blackhole");
    ::close(fd);
    return 1;
  }
  // Never accept(): connections complete in the kernel and then hang until the client gives up.
  ::sleep(static_cast<unsigned>(seconds));
  ::close(fd);
  return 0;
}

// Splits a line on single spaces into at most `max` fields.
std::size_t split(std::string_view line, std::string_view* fields, std::size_t max) {
  std::size_t n = 0;
  while (n < max && !line.empty()) {
    const auto sp = line.find(' ');
    fields[n++] = line.substr(0, sp);
    if (sp == std::string_view::npos) break;
    line.remove_prefix(sp + 1);
  }
  return n;
}

std::int64_t to_i64(std::string_view s) {
  try {
    return relay::bench::parse_int(s, "number");
  } catch (const std::exception&) {
    return 0;
  }
}

// Exact percentiles of a sample (sorted in place), as milliseconds.
void add_percentiles(std::string& json, std::string_view prefix, std::vector<std::int64_t>& v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) -> std::int64_t {
    if (v.empty()) return 0;
    const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
  };
  char buf[256];
  std::snprintf(buf, sizeof buf,
                ",\"%.*sp50_ms\":%.3f,\"%.*sp90_ms\":%.3f,\"%.*sp99_ms\":%.3f,\"%.*smax_ms\":%.3f",
                static_cast<int>(prefix.size()), prefix.data(), static_cast<double>(at(0.5)) / 1e6,
                static_cast<int>(prefix.size()), prefix.data(), static_cast<double>(at(0.9)) / 1e6,
                static_cast<int>(prefix.size()), prefix.data(), static_cast<double>(at(0.99)) / 1e6,
                static_cast<int>(prefix.size()), prefix.data(),
                v.empty() ? 0.0 : static_cast<double>(v.back()) / 1e6);
  json += buf;
}

int join(const std::string& ids_path, const std::string& log_path) {
  std::ifstream ids_in(ids_path);
  std::ifstream log_in(log_path);
  if (!ids_in || !log_in) {
    std::cerr << "relay_bench_tool: cannot read " << (ids_in ? log_path : ids_path) << '\n';
    return 1;
  }
  struct Sent {
    std::int64_t send_ns = 0;
    std::int64_t ack_ns = 0;
    std::int64_t recv_ns = 0;  // first receipt; 0 = not received
  };
  std::unordered_map<std::string, Sent> sent;
  std::string line;
  std::string_view f[5];
  while (std::getline(ids_in, line)) {
    if (split(line, f, 3) != 3) continue;
    sent[std::string(f[0])] = Sent{to_i64(f[1]), to_i64(f[2]), 0};
  }
  std::uint64_t lines = 0, unknown = 0, repeats = 0;
  while (std::getline(log_in, line)) {
    if (split(line, f, 5) < 4) continue;
    ++lines;
    const auto it = sent.find(std::string(f[3]));
    if (it == sent.end()) {
      ++unknown;
      continue;
    }
    const std::int64_t ns = to_i64(f[0]);
    if (it->second.recv_ns != 0) {
      ++repeats;
      it->second.recv_ns = std::min(it->second.recv_ns, ns);
    } else {
      it->second.recv_ns = ns;
    }
  }
  std::vector<std::int64_t> from_ack, from_send;
  std::uint64_t before_ack = 0;
  for (const auto& [id, s] : sent) {
    if (s.recv_ns == 0) continue;
    from_ack.push_back(std::max<std::int64_t>(0, s.recv_ns - s.ack_ns));
    from_send.push_back(s.recv_ns - s.send_ns);
    if (s.recv_ns < s.ack_ns) ++before_ack;
  }
  std::string json = "{\"sent\":" + std::to_string(sent.size());
  json += ",\"received\":" + std::to_string(from_ack.size());
  json += ",\"missing\":" + std::to_string(sent.size() - from_ack.size());
  json += ",\"receiver_lines\":" + std::to_string(lines);
  json += ",\"unknown_ids\":" + std::to_string(unknown);
  json += ",\"repeat_receipts\":" + std::to_string(repeats);
  json += ",\"receipt_before_ack\":" + std::to_string(before_ack);
  add_percentiles(json, "ack_to_receipt_", from_ack);
  add_percentiles(json, "send_to_receipt_", from_send);
  json += "}";
  std::cout << json << '\n';
  return 0;
}

int drain(const std::string& log_path, std::int64_t since) {
  std::ifstream in(log_path);
  if (!in) {
    std::cerr << "relay_bench_tool: cannot read " << log_path << '\n';
    return 1;
  }
  std::unordered_set<std::string> delivered;
  std::map<std::int64_t, std::uint64_t> ok_per_s, fail_per_s;
  std::uint64_t requests = 0, ok = 0, fail = 0, duplicate_ok = 0;
  std::int64_t first = 0, last_ok = 0, first_fail = 0, last_fail = 0;
  std::string line;
  std::string_view f[5];
  std::vector<std::pair<std::int64_t, bool>> times;
  while (std::getline(in, line)) {
    if (split(line, f, 5) < 3) continue;
    const std::int64_t ns = to_i64(f[0]);
    const bool is_ok = !f[1].empty() && f[1][0] == '2';
    ++requests;
    if (first == 0 || ns < first) first = ns;
    times.emplace_back(ns, is_ok);
    if (is_ok) {
      ++ok;
      last_ok = std::max(last_ok, ns);
      if (f[2] != "-" && !delivered.insert(std::string(f[2])).second) ++duplicate_ok;
    } else {
      ++fail;
      if (first_fail == 0 || ns < first_fail) first_fail = ns;
      last_fail = std::max(last_fail, ns);
    }
  }
  const std::int64_t origin = since > 0 ? since : first;
  for (const auto& [ns, is_ok] : times) {
    const std::int64_t second = (ns - origin) / 1'000'000'000;
    ++(is_ok ? ok_per_s : fail_per_s)[second];
  }
  auto peak = [](const std::map<std::int64_t, std::uint64_t>& m) {
    std::uint64_t p = 0;
    for (const auto& [s, n] : m) p = std::max(p, n);
    return p;
  };
  const std::uint64_t unique_ok = delivered.empty() ? ok : delivered.size();
  const double ok_span = static_cast<double>(last_ok - origin) / 1e9;
  const double fail_span = static_cast<double>(last_fail - first_fail) / 1e9;
  char buf[512];
  std::snprintf(
      buf, sizeof buf,
      "{\"requests\":%llu,\"ok\":%llu,\"not_ok\":%llu,\"unique_ok\":%llu,\"duplicate_ok\":%llu,"
      "\"origin_ns\":%lld,\"first_ns\":%lld,\"last_ok_ns\":%lld,\"ok_span_s\":%.6f,"
      "\"ok_per_s\":%.1f,\"ok_peak_1s\":%llu,\"not_ok_span_s\":%.6f,\"not_ok_per_s\":%.1f,"
      "\"not_ok_peak_1s\":%llu}",
      static_cast<unsigned long long>(requests), static_cast<unsigned long long>(ok),
      static_cast<unsigned long long>(fail), static_cast<unsigned long long>(unique_ok),
      static_cast<unsigned long long>(duplicate_ok), static_cast<long long>(origin),
      static_cast<long long>(first), static_cast<long long>(last_ok), ok_span,
      ok_span > 0 ? static_cast<double>(unique_ok) / ok_span : 0.0,
      static_cast<unsigned long long>(peak(ok_per_s)), fail_span,
      fail_span > 0 ? static_cast<double>(fail) / fail_span : 0.0,
      static_cast<unsigned long long>(peak(fail_per_s)));
  std::cout << buf << '\n';
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && args[0] == "free-port") return free_port();
  if (args.size() == 3 && args[0] == "join") return join(args[1], args[2]);
  if (args.size() == 3 && args[0] == "blackhole") {
    return blackhole(static_cast<int>(to_i64(args[1])), static_cast<int>(to_i64(args[2])));
  }
  if ((args.size() == 2 || args.size() == 4) && args[0] == "drain") {
    std::int64_t since = 0;
    if (args.size() == 4) {
      if (args[2] != "--since") {
        std::cerr << kUsage;
        return 2;
      }
      since = to_i64(args[3]);
    }
    return drain(args[1], since);
  }
  std::cerr << kUsage;
  return 2;
}
