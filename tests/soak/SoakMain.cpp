// Soak (issue 7): the real relayd on loopback under a steady open-loop intake of 2,000 events/s
// for a long time, delivering to a mix of healthy and failing HTTPS endpoints, while its RSS,
// open file descriptors, WAL and database size, intake latency and 202 → receipt latency are
// sampled; at the end the samples are printed as a Markdown table and checked for "flat".
//
//   relay_soak [--duration S] [--interval S] [--rate R] [--retention D] [--out FILE] [--keep DIR]
//   env: RELAYD_SOAK_SECONDS, RELAYD_SOAK_INTERVAL, RELAYD_SOAK_RATE, RELAYD_SOAK_OUT
//
// Default: 60 s, sampled every 5 s (ctest runs 90 s with --retention 30s). The long mode is
// --duration 1800 (sampled every 60 s unless --interval says otherwise). Exit 0 when every
// check holds, 1 when one fails, 2 on a usage error. docs/reliability.md ("Soak") explains
// the scenario, the bounds and a 30-minute result.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "BenchCommon.hpp"
#include "DaemonProcess.hpp"
#include "HttpTestClient.hpp"
#include "OpenLoopClient.hpp"
#include "SoakLedger.hpp"
#include "SoakProbe.hpp"
#include "SoakReceiver.hpp"
#include "SoakTable.hpp"
#include "TestCerts.hpp"

namespace relay::soak {
namespace {

namespace fs = std::filesystem;
using relay::bench::monotonic_ns;

struct Options {
  double duration_s = 60;
  double interval_s = 0;  // 0: 5 s up to 5 minutes of load, else 60 s
  double rate = 2000;
  int connections = 64;
  std::string retention = "5m";
  std::string out;
  std::string keep_dir;
  std::string log_level = "info";
};

constexpr const char* kUsage =
    "usage: relay_soak [--duration S] [--interval S] [--rate R] [--connections N]\n"
    "                  [--retention D] [--log-level L] [--out FILE] [--keep DIR]\n"
    "env: RELAYD_SOAK_SECONDS, RELAYD_SOAK_INTERVAL, RELAYD_SOAK_RATE, RELAYD_SOAK_OUT\n";

Options parse_options(int argc, char** argv) {
  using relay::bench::parse_double;
  Options o;
  if (const char* v = std::getenv("RELAYD_SOAK_SECONDS"); v && *v) {
    o.duration_s = parse_double(v, "RELAYD_SOAK_SECONDS");
  }
  if (const char* v = std::getenv("RELAYD_SOAK_INTERVAL"); v && *v) {
    o.interval_s = parse_double(v, "RELAYD_SOAK_INTERVAL");
  }
  if (const char* v = std::getenv("RELAYD_SOAK_RATE"); v && *v) {
    o.rate = parse_double(v, "RELAYD_SOAK_RATE");
  }
  if (const char* v = std::getenv("RELAYD_SOAK_OUT"); v && *v) o.out = v;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--duration") {
      o.duration_s = parse_double(value(), arg);
    } else if (arg == "--interval") {
      o.interval_s = parse_double(value(), arg);
    } else if (arg == "--rate") {
      o.rate = parse_double(value(), arg);
    } else if (arg == "--connections") {
      o.connections = static_cast<int>(relay::bench::parse_int(value(), arg));
    } else if (arg == "--retention") {
      o.retention = value();
    } else if (arg == "--log-level") {
      o.log_level = value();
    } else if (arg == "--out") {
      o.out = value();
    } else if (arg == "--keep") {
      o.keep_dir = value();
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown option " + arg);
    }
  }
  if (o.duration_s < 10) throw std::invalid_argument("--duration: at least 10 s");
  if (o.rate <= 0 || o.rate > 100000) throw std::invalid_argument("--rate: 1..100000");
  if (o.connections < 1 || o.connections > 1000) throw std::invalid_argument("--connections");
  if (o.interval_s == 0) o.interval_s = o.duration_s <= 300 ? 5 : 60;
  if (o.interval_s < 1 || o.interval_s > o.duration_s / 4) {
    throw std::invalid_argument("--interval: 1 s up to a quarter of --duration");
  }
  if (o.out.empty()) o.out = "soak-" + std::to_string(static_cast<int>(o.duration_s)) + "s.md";
  return o;
}

double ms(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

const std::vector<std::string> kFailingHooks = {"fail500", "refused", "hang"};

std::int64_t failing_attempts(const MetricsSnapshot& m) {
  std::int64_t n = 0;
  for (const auto& hook : kFailingHooks) {
    const auto it = m.attempts.find(hook);
    if (it == m.attempts.end()) continue;
    for (const auto& [outcome, count] : it->second) n += count;
  }
  return n;
}

// ---- the checks ----

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct Checks {
  std::ostringstream text;
  bool ok = true;
  void check(bool pass, const std::string& what) {
    text << (pass ? "- PASS " : "- FAIL ") << what << "\n";
    ok = ok && pass;
  }
};

// Bounds, generous on purpose (a shared 2-core machine, other tests may just have run) but
// each one fails on the failure it names; docs/reliability.md gives the arithmetic.
constexpr double kMinIntakeShare = 0.95;  // of the offered rate, acked with 2xx
constexpr double kMinKeepPace = 0.95;     // healthy deliveries / healthy deliveries owed
constexpr double kRssSlackMb = 8;         // plus kRssSlackShare of the first half's peak
constexpr double kRssSlackShare = 0.10;
constexpr int kFdSlack = 32;
constexpr int kDeliveryConcurrency = 128;  // delivery.concurrency of the soak config
constexpr int kIdlePerOrigin = 16;         // the delivery client's idle pool per origin
constexpr double kMaxWalMb = 64;           // journal_size_limit is 16 MiB
constexpr double kLatencyFactor = 3;       // second half's median p99 vs the first half's
// Plus an absolute allowance: on a shared machine a few busy windows move a 60 s run's median
// p99 by ~400 ms (kernel autogroups share the CPU per session, whatever the other jobs' nice).
constexpr double kLatencySlackMs = 500;
// CPU time per unit of work does not depend on what else runs: growth means relayd does more
// per event as its tables grow (a scan, a leak walked on every request).
constexpr double kCpuPerOpFactor = 1.5;
constexpr double kBacklogFloorSeconds = 2;
// Medians forgive a bad window; this catches the window itself. A busy machine has pushed a
// window's p99 to ~1 s in our runs; 5 s means relayd stopped keeping up for a while.
constexpr double kMaxWindowP99Ms = 5000;

// "30s", "5m", "2h", "7d" (the config's duration forms the soak uses) in seconds.
std::optional<double> duration_seconds(const std::string& text) {
  if (text.size() < 2) return std::nullopt;
  const char unit = text.back();
  const double per = unit == 's'   ? 1
                     : unit == 'm' ? 60
                     : unit == 'h' ? 3600
                     : unit == 'd' ? 86400
                                   : 0;
  if (per == 0) return std::nullopt;
  try {
    return std::stod(text.substr(0, text.size() - 1)) * per;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Rows the retention job reported pruned ("retention: pruned N rows older than …" lines).
std::uint64_t pruned_rows(const fs::path& log_path) {
  std::ifstream log(log_path);
  std::uint64_t total = 0;
  std::string line;
  const std::string key = "retention: pruned ";
  while (std::getline(log, line)) {
    const auto at = line.find(key);
    if (at != std::string::npos)
      total += std::strtoull(line.c_str() + at + key.size(), nullptr, 10);
  }
  return total;
}

Checks evaluate(const Options& o, const std::vector<Sample>& samples, const WindowStats& tail,
                const SoakLedger& ledger, std::uint64_t scheduled, double drain_s, int exit_code,
                bool died, const MetricsSnapshot& final_metrics, std::uint64_t pruned) {
  Checks c;
  std::vector<const Sample*> first;
  std::vector<const Sample*> second;
  for (const auto& s : samples) {
    if (s.t_s <= 0) continue;  // the sample before the load
    (s.t_s <= o.duration_s / 2 + 1e-6 ? first : second).push_back(&s);
  }
  if (first.empty() || second.empty()) {
    c.check(false, "at least one sample in each half of the run");
    return c;
  }
  auto max_of = [](const std::vector<const Sample*>& v, auto field) {
    double m = 0;
    for (const auto* s : v) m = std::max(m, static_cast<double>(field(*s)));
    return m;
  };
  auto median_of = [](const std::vector<const Sample*>& v, auto field) {
    std::vector<double> values;
    for (const auto* s : v) values.push_back(static_cast<double>(field(*s)));
    return median(values);
  };
  // Answers that arrived after the last sample (a relayd that fell behind) are in `tail`:
  // they count as answers, but not as intake achieved during the load.
  std::uint64_t acked_in_load = 0;
  std::uint64_t non_2xx = tail.non_2xx;
  std::uint64_t errors = tail.transport_errors;
  for (const auto& s : samples) {
    acked_in_load += s.acked;
    non_2xx += s.non_2xx;
    errors += s.transport_errors;
  }
  const double offered = o.rate * o.duration_s;
  c.check(!died, "relayd ran the whole time");
  c.check(static_cast<double>(acked_in_load) >= kMinIntakeShare * offered,
          "intake: " + std::to_string(acked_in_load) + " events acked during the load of " +
              std::to_string(static_cast<std::uint64_t>(offered)) +
              " offered = " + fmt("%.1f", 100.0 * static_cast<double>(acked_in_load) / offered) +
              "% >= " + fmt("%.0f", 100 * kMinIntakeShare) + "% (" +
              std::to_string(ledger.acked_total()) + " of " + std::to_string(scheduled) +
              " sent were acked in the end)");
  c.check(non_2xx == 0 && errors == 0, "intake: no non-2xx answer (" + std::to_string(non_2xx) +
                                           ") and no transport error (" + std::to_string(errors) +
                                           ")");

  std::uint64_t due2 = 0, delivered2 = 0;
  for (const auto* s : second) {
    due2 += s->healthy_due;
    delivered2 += s->healthy_delivered;
  }
  c.check(static_cast<double>(delivered2) >= kMinKeepPace * static_cast<double>(due2),
          "healthy endpoints keep pace in the second half: " + std::to_string(delivered2) +
              " delivered of " + std::to_string(due2) +
              " owed (>= " + fmt("%.0f", 100 * kMinKeepPace) + "%)");
  const double backlog1 = max_of(first, [](const Sample& s) { return s.healthy_backlog; });
  const double backlog2 = max_of(second, [](const Sample& s) { return s.healthy_backlog; });
  // Healthy deliveries owed per second (0.95 x rate with the event mix of SoakLedger.cpp).
  const double floor = kBacklogFloorSeconds * 0.95 * o.rate;
  c.check(backlog2 <= std::max(floor, 2 * backlog1),
          "healthy backlog does not grow: second-half peak " + fmt("%.0f", backlog2) + " <= max(" +
              fmt("%.0f", floor) + " (2 s of deliveries), 2 x first-half peak " +
              fmt("%.0f", backlog1) + ")");
  const auto missing = ledger.missing(10);
  std::string missing_text;
  for (const auto seq : missing) missing_text += " soak-" + std::to_string(seq);
  c.check(missing.empty(), "every acked event reached its healthy webhooks after the load (" +
                               std::to_string(ledger.healthy_expected_total()) +
                               " deliveries, drained in " + fmt("%.1f", drain_s) + " s)" +
                               (missing.empty() ? "" : "; missing:" + missing_text));

  const double rss1 = max_of(first, [](const Sample& s) { return s.proc.rss_mb; });
  const double rss2 = max_of(second, [](const Sample& s) { return s.proc.rss_mb; });
  const double rss_bound = rss1 + std::max(kRssSlackMb, kRssSlackShare * rss1);
  c.check(rss2 <= rss_bound, "RSS flat: second-half peak " + fmt("%.1f", rss2) +
                                 " MB <= " + fmt("%.1f", rss_bound) + " MB (first-half peak " +
                                 fmt("%.1f", rss1) + " MB + max(8 MB, 10%))");
  const double fd1 = max_of(first, [](const Sample& s) { return s.proc.fds; });
  const double fd2 = max_of(second, [](const Sample& s) { return s.proc.fds; });
  // Every socket relayd may hold: the load's connections, one per delivery in flight, the
  // idle pool of the receiver's origin; plus files, listeners and the event loop's fds.
  const int fd_cap = o.connections + kDeliveryConcurrency + kIdlePerOrigin + kFdSlack;
  c.check(fd2 <= fd1 + kFdSlack && std::max(fd1, fd2) <= fd_cap,
          "open fds flat: second-half peak " + fmt("%.0f", fd2) + " <= first-half peak " +
              fmt("%.0f", fd1) + " + " + std::to_string(kFdSlack) +
              ", and every sample <= " + std::to_string(fd_cap));
  const double wal = std::max(max_of(first, [](const Sample& s) { return s.wal_mb; }),
                              max_of(second, [](const Sample& s) { return s.wal_mb; }));
  c.check(wal <= kMaxWalMb,
          "WAL bounded: peak " + fmt("%.1f", wal) + " MB <= " + fmt("%.0f", kMaxWalMb) + " MB");

  const double ack1 = median_of(first, [](const Sample& s) { return s.ack_p99; });
  const double ack2 = median_of(second, [](const Sample& s) { return s.ack_p99; });
  c.check(ack2 <= kLatencyFactor * ack1 + kLatencySlackMs,
          "intake latency flat: median of window p99s " + fmt("%.2f", ack2) +
              " ms (second half) <= 3 x " + fmt("%.2f", ack1) + " ms (first half) + 500 ms");
  const double e2e1 = median_of(first, [](const Sample& s) { return s.e2e_p99; });
  const double e2e2 = median_of(second, [](const Sample& s) { return s.e2e_p99; });
  c.check(e2e2 <= kLatencyFactor * e2e1 + kLatencySlackMs,
          "202→receipt latency flat: median of window p99s " + fmt("%.2f", e2e2) +
              " ms (second half) <= 3 x " + fmt("%.2f", e2e1) + " ms (first half) + 500 ms");

  const double cpu1 = median_of(first, [](const Sample& s) { return s.cpu_us_per_op; });
  const double cpu2 = median_of(second, [](const Sample& s) { return s.cpu_us_per_op; });
  c.check(cpu2 <= kCpuPerOpFactor * cpu1, "relayd CPU per operation flat: median " +
                                              fmt("%.0f", cpu2) +
                                              " µs per event or attempt (second half) <= 1.5 x " +
                                              fmt("%.0f", cpu1) + " µs (first half)");
  const double ack_worst = max_of(first, [](const Sample& s) { return s.ack_p99; });
  const double ack_worst2 = max_of(second, [](const Sample& s) { return s.ack_p99; });
  const double e2e_worst = std::max(max_of(first, [](const Sample& s) { return s.e2e_p99; }),
                                    max_of(second, [](const Sample& s) { return s.e2e_p99; }));
  c.check(std::max(ack_worst, ack_worst2) <= kMaxWindowP99Ms && e2e_worst <= kMaxWindowP99Ms,
          "no stall: every window's p99 <= " + fmt("%.0f", kMaxWindowP99Ms) + " ms (worst intake " +
              fmt("%.0f", std::max(ack_worst, ack_worst2)) + " ms, worst 202→receipt " +
              fmt("%.0f", e2e_worst) + " ms)");

  auto attempts = [&](const std::string& hook, const std::string& outcome) {
    const auto it = final_metrics.attempts.find(hook);
    if (it == final_metrics.attempts.end()) return std::int64_t{0};
    const auto jt = it->second.find(outcome);
    return jt == it->second.end() ? std::int64_t{0} : jt->second;
  };
  c.check(attempts("fail500", "retry") > 0 && attempts("refused", "retry") > 0 &&
              attempts("hang", "retry") > 0,
          "the failing endpoints were retried (retry attempts: fail500 " +
              std::to_string(attempts("fail500", "retry")) + ", refused " +
              std::to_string(attempts("refused", "retry")) + ", hang " +
              std::to_string(attempts("hang", "retry")) + ")");
  // Retention runs at start and then every minute; the first run that finds rows older than
  // `retention` prunes under load, and the latency and stall checks above cover it (a prune
  // once stalled intake for a minute). Runs too short for that say so instead of checking.
  const auto keep = duration_seconds(o.retention);
  const double first_prune_s = keep ? 60 * std::ceil((*keep + 1) / 60) : 0;
  if (keep && o.duration_s >= first_prune_s + 5) {
    c.check(pruned > 0, "retention pruned rows under load (" + std::to_string(pruned) +
                            " rows older than " + o.retention + ", from " +
                            fmt("%.0f", first_prune_s) + " s on)");
  } else {
    c.text << "- (retention not exercised: no retention run after rows are " << o.retention
           << " old)\n";
  }
  c.check(exit_code == 0, "SIGTERM: relayd exited with " + std::to_string(exit_code));
  return c;
}

std::string config_yaml(const Options& o, std::uint16_t port, const fs::path& dir,
                        const SoakReceiver& receiver, std::uint16_t closed_port) {
  std::string y;
  y += "server:\n  listen: 127.0.0.1:" + std::to_string(port) + "\n  max_body_bytes: 65536\n";
  y += "storage:\n  path: " + (dir / "relayd.db").string() + "\n  retention: " + o.retention + "\n";
  // The retry schedule is the default's shape compressed ~60x so that, within a run, failing
  // deliveries keep being retried and reach their final failure after 225 s; the timeout
  // is short so the endpoint that never answers costs 5 s per attempt, not 30.
  y += "delivery:\n  concurrency: " + std::to_string(kDeliveryConcurrency) +
       "\n  per_webhook_concurrency: 32\n  timeout: 5s\n";
  y += "  retry_schedule: [0s, 5s, 10s, 30s, 60s, 120s]\n";
  y += "  ca_file: " + (dir / "ca.pem").string() + "\n  allow_private_networks: true\n";
  y += "shutdown_grace: 10s\n";
  y += "logging:\n  level: " + o.log_level + "\n  format: text\n";
  y += "webhooks:\n";
  auto hook = [&](const std::string& id, const std::string& url, const std::string& events) {
    y += "  - id: " + id + "\n    url: " + url + "\n    secret: whsec-soak-" + id +
         "-7c1f\n    events: " + events + "\n";
  };
  hook("fast", receiver.url("/fast"), "[ticket.created, message.created]");
  hook("slow", receiver.url("/slow"), "[message.created]");
  hook("fail500", receiver.url("/fail"), "[ticket.updated]");
  hook("refused", "https://127.0.0.1:" + std::to_string(closed_port) + "/refused",
       "[customer.created]");
  hook("hang", receiver.url("/hang"), "[sla.breached]");
  return y;
}

int run(const Options& o) {
  std::optional<relay::testing::TempDir> temp;
  fs::path dir;
  if (o.keep_dir.empty()) {
    temp.emplace();
    dir = temp->path();
  } else {
    dir = o.keep_dir;
    fs::create_directories(dir);
  }
  const relay::test::TestCerts certs;
  certs.write_pem_files(dir);
  const auto capacity = static_cast<std::uint64_t>(o.rate * (o.duration_s + 5)) + 1000;
  SoakLedger ledger(capacity);
  SoakReceiver receiver(certs.server(), ledger, std::chrono::milliseconds(20));
  const std::uint16_t closed_port = relay::testing::free_port();  // nothing listens there
  const std::uint16_t port = relay::testing::free_port();
  relay::testing::DaemonProcess daemon(dir, config_yaml(o, port, dir, receiver, closed_port));
  daemon.start(port);
  const pid_t pid = daemon.pid();
  const fs::path db = dir / "relayd.db";
  std::cout << "soak: relayd pid " << pid << ", " << o.rate << " events/s for " << o.duration_s
            << " s, a sample every " << o.interval_s << " s, files in " << dir << std::endl;

  relay::testing::HttpTestClient metrics_client("127.0.0.1", port);
  std::vector<Sample> samples;
  double previous_cpu = read_proc(pid).cpu_s;
  std::int64_t previous_failing = 0;
  std::int64_t previous_ns = monotonic_ns();
  bool died = false;
  auto take_sample = [&](double t_s) {
    Sample s;
    const auto now = monotonic_ns();
    s.t_s = t_s;
    s.window_s = static_cast<double>(now - previous_ns) / 1e9;
    previous_ns = now;
    const WindowStats w = ledger.take_window();
    s.acked = w.acked;
    s.non_2xx = w.non_2xx;
    s.transport_errors = w.transport_errors;
    s.bad = w.non_2xx + w.transport_errors;
    s.acked_per_s = static_cast<double>(w.acked) / s.window_s;
    s.ack_p50 = ms(w.intake.quantile(0.50));
    s.ack_p99 = ms(w.intake.quantile(0.99));
    s.ack_max = ms(w.intake.max());
    s.healthy_due = w.healthy_due;
    s.healthy_delivered = w.healthy_delivered;
    s.delivered_per_s = static_cast<double>(w.healthy_delivered) / s.window_s;
    s.e2e_p50 = ms(w.e2e.quantile(0.50));
    s.e2e_p99 = ms(w.e2e.quantile(0.99));
    s.duplicates = w.duplicates;
    s.requests = w.requests;
    s.healthy_backlog = ledger.healthy_outstanding();
    if (!daemon.running()) {
      died = true;
    } else {
      s.proc = read_proc(pid);
    }
    s.cpu_pct = 100.0 * (s.proc.cpu_s - previous_cpu) / s.window_s;
    previous_cpu = s.proc.cpu_s;
    s.wal_mb = file_mb(fs::path(db.string() + "-wal"));
    s.db_mb = file_mb(db);
    s.load1 = load_average();
    const auto m = scrape(metrics_client);
    s.scrape_ms = m.scrape_ms;
    for (const auto& hook : kFailingHooks) {
      const auto it = m.deliveries.find(hook);
      if (it == m.deliveries.end()) continue;
      for (const char* status : {"pending", "delivering"}) {
        const auto jt = it->second.find(status);
        if (jt != it->second.end()) s.retrying += jt->second;
      }
    }
    const auto failing = failing_attempts(m);
    if (m.ok) {
      s.failing_attempts_per_s = static_cast<double>(failing - previous_failing) / s.window_s;
      previous_failing = failing;
    }
    const double ops =
        static_cast<double>(s.acked + s.healthy_delivered) + s.failing_attempts_per_s * s.window_s;
    if (ops > 0) s.cpu_us_per_op = 1e6 * (s.cpu_pct / 100.0) * s.window_s / ops;
    std::fprintf(stderr,
                 "soak: t=%.0fs acked/s=%.0f bad=%llu ack p99=%.2fms delivered/s=%.0f e2e "
                 "p99=%.2fms backlog=%llu retrying=%lld rss=%.1fMB fds=%d wal=%.1fMB db=%.0fMB "
                 "cpu=%.0f%% load=%.2f scrape=%.0fms\n",
                 s.t_s, s.acked_per_s, static_cast<unsigned long long>(s.bad), s.ack_p99,
                 s.delivered_per_s, s.e2e_p99, static_cast<unsigned long long>(s.healthy_backlog),
                 static_cast<long long>(s.retrying), s.proc.rss_mb, s.proc.fds, s.wal_mb, s.db_mb,
                 s.cpu_pct, s.load1, s.scrape_ms);
    samples.push_back(s);
  };

  take_sample(0);
  // Request 0 is due half a second from now: time for the 64 connections to open first.
  const std::int64_t start_ns = monotonic_ns() + 500'000'000;
  OpenLoopClient client({port, o.rate, o.duration_s, o.connections, start_ns}, ledger);
  const auto windows = static_cast<int>(std::ceil(o.duration_s / o.interval_s - 1e-9));
  for (int k = 1; k <= windows && !died; ++k) {
    const double t = std::min(o.duration_s, k * o.interval_s);
    const auto at = start_ns + static_cast<std::int64_t>(t * 1e9);
    std::this_thread::sleep_for(
        std::chrono::nanoseconds(std::max<std::int64_t>(0, at - monotonic_ns())));
    take_sample(t);
  }
  client.join();

  // Healthy deliveries still owed once the load stops: they must all arrive, and soon.
  const auto drain_start = monotonic_ns();
  const auto drain_limit = drain_start + 60'000'000'000LL;
  while (!died && ledger.healthy_outstanding() > 0 && monotonic_ns() < drain_limit) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const double drain_s = static_cast<double>(monotonic_ns() - drain_start) / 1e9;
  const auto final_metrics = scrape(metrics_client);
  const ProcStat final_proc = died ? ProcStat{} : read_proc(pid);

  int exit_code = -1;
  if (daemon.running()) {
    daemon.signal(SIGTERM);
    exit_code = daemon.wait(std::chrono::seconds(30)).value_or(-1);
  }
  receiver.stop();

  // What happened after the last sample (late answers, the drain) counts in the totals, not in
  // the table.
  const WindowStats tail = ledger.take_window();
  const Checks checks = evaluate(o, samples, tail, ledger, client.scheduled(), drain_s, exit_code,
                                 died, final_metrics, pruned_rows(daemon.log_path()));
  std::uint64_t duplicates = tail.duplicates;
  auto requests = tail.requests;
  for (const auto& s : samples) {
    duplicates += s.duplicates;
    for (std::size_t h = 0; h < kHookCount; ++h) requests[h] += s.requests[h];
  }
  std::string per_hook;
  for (std::size_t h = 0; h < kHookCount; ++h) {
    if (static_cast<Hook>(h) == Hook::kRefused) continue;  // nothing listens on its port
    per_hook += std::string(h == 0 ? "" : ", ") + hook_name(static_cast<Hook>(h)) + " " +
                std::to_string(requests[h]);
  }
  std::ostringstream report;
  report << "relayd soak: " << o.rate << " events/s for " << o.duration_s << " s, sampled every "
         << o.interval_s << " s; " << ::sysconf(_SC_NPROCESSORS_ONLN) << " CPUs; retention "
         << o.retention << "\n\n"
         << table(samples) << "\n"
         << "After the load: healthy backlog drained in " << fmt("%.1f", drain_s)
         << " s; relayd RSS " << fmt("%.1f", final_proc.rss_mb) << " MB, " << final_proc.fds
         << " fds; duplicates seen by healthy endpoints: " << duplicates
         << ". Requests the receiver got: " << per_hook << ".\n\n"
         << checks.text.str();
  std::cout << "\n" << report.str() << std::flush;
  std::ofstream out(o.out, std::ios::trunc);
  out << report.str();
  if (!out) std::cerr << "soak: cannot write " << o.out << std::endl;
  std::cout << (checks.ok ? "soak: PASS" : "soak: FAIL") << " (table in " << o.out << ")"
            << std::endl;
  if (!checks.ok) {
    // The end of relayd's log only: a long run writes hundreds of MB of retry lines.
    std::ifstream log(daemon.log_path(), std::ios::binary | std::ios::ate);
    const std::streamoff size = log.tellg();
    log.seekg(std::max<std::streamoff>(0, size - 4000));
    std::cerr << "soak: end of relayd's log:\n" << log.rdbuf() << std::endl;
  }
  return checks.ok ? 0 : 1;
}

}  // namespace
}  // namespace relay::soak

int main(int argc, char** argv) {
  relay::soak::Options options;
  try {
    options = relay::soak::parse_options(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "relay_soak: " << e.what() << "\n" << relay::soak::kUsage;
    return 2;
  }
  try {
    return relay::soak::run(options);
  } catch (const std::exception& e) {
    std::cerr << "relay_soak: " << e.what() << std::endl;
    return 1;
  }
}
