// Reliability under faults (issue 7): isolation of a dead endpoint from healthy ones, and
// operators' readers holding a read transaction on the live database (SPEC §5, §6).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "DaemonProcess.hpp"
#include "Db.hpp"
#include "HttpTestClient.hpp"
#include "TestCerts.hpp"
#include "TestConfig.hpp"
#include "TestReceiver.hpp"
#include "Waiting.hpp"

namespace relay::testing {
namespace {

using nlohmann::json;
using relay::test::TestCerts;
using relay::test::TestReceiver;
using SteadyClock = std::chrono::steady_clock;

long long ms_since(SteadyClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - t).count();
}

/// A dead endpoint: a TCP listener on 127.0.0.1 that accepts every connection and never sends
/// a byte (so a TLS handshake stalls until the client's deadline). One thread polls the
/// listener and all connections; a connection is forgotten when the client closes it. Counts
/// accepted connections and the most that were open at once.
class BlackHole {
 public:
  BlackHole() {
    fd_ = listen_on_loopback(128, port_, "BlackHole");
    thread_ = std::thread([this] { run(); });
  }
  ~BlackHole() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  BlackHole(const BlackHole&) = delete;
  BlackHole& operator=(const BlackHole&) = delete;

  [[nodiscard]] std::string url() const {
    return "https://127.0.0.1:" + std::to_string(port_) + "/hook";
  }
  [[nodiscard]] std::size_t accepted() const { return accepted_; }
  [[nodiscard]] std::size_t peak_open() const { return peak_; }

 private:
  void run() {
    std::vector<int> conns;
    while (!stop_) {
      std::vector<pollfd> fds;
      for (int c : conns) fds.push_back({c, POLLIN, 0});
      fds.push_back({fd_, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 100) <= 0) continue;
      // Closes first, then accepts: a slot that relayd freed and reused within one poll round
      // is not counted twice.
      std::vector<int> still_open;
      for (std::size_t i = 0; i + 1 < fds.size(); ++i) {
        if (fds[i].revents != 0) {
          std::array<char, 4096> buf{};
          if (::recv(fds[i].fd, buf.data(), buf.size(), MSG_DONTWAIT) == 0 ||
              (fds[i].revents & (POLLERR | POLLHUP)) != 0) {
            ::close(fds[i].fd);
            continue;
          }
        }
        still_open.push_back(fds[i].fd);
      }
      conns = std::move(still_open);
      if ((fds.back().revents & POLLIN) != 0) {
        const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          conns.push_back(c);
          ++accepted_;
          peak_ = std::max<std::size_t>(peak_, conns.size());
        }
      }
    }
    for (int c : conns) ::close(c);
  }

  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> accepted_{0};
  std::atomic<std::size_t> peak_{0};
};

class ReliabilityTest : public ::testing::Test {
 protected:
  static constexpr int kConcurrency = 16;
  static constexpr int kPerWebhook = 4;

  void SetUp() override {
    test_certs().write_pem_files(dir_.path());
    cfg_.port = free_port();
    cfg_.db = dir_.path() / "relayd.db";
    cfg_.delivery_yaml = "  concurrency: " + std::to_string(kConcurrency) +
                         "\n  per_webhook_concurrency: " + std::to_string(kPerWebhook) +
                         "\n  timeout: 2s\n  retry_schedule: [0s, 1s, 1s, 1s, 1s, 1s]\n"
                         "  ca_file: " +
                         (dir_.path() / "ca.pem").string() + "\n  allow_private_networks: true\n";
    relay::test::ReceiverOptions o;
    o.certificate = test_certs().server();
    healthy_ = std::make_unique<TestReceiver>(o);
  }

  void add_webhook(const std::string& id, const std::string& url, const std::string& events) {
    cfg_.webhooks_yaml += "  - id: " + id + "\n    url: " + url + "\n    secret: whsec-" + id +
                          "\n    events: " + events + "\n";
  }

  void start() {
    daemon_ = std::make_unique<DaemonProcess>(dir_.path(), cfg_.yaml());
    daemon_->start(cfg_.port);
    client_ = std::make_unique<HttpTestClient>("127.0.0.1", cfg_.port);
  }

  std::string post(const std::string& type) {
    const auto r = client_->post_json("/v1/events", R"({"event":")" + type + R"(","data":{}})");
    EXPECT_EQ(r.status, 202) << r.body;
    if (r.status != 202) return {};
    const auto j = json::parse(r.body);
    return j.at("deliveries").at(0).at("id").get<std::string>();
  }

  long long count(const std::string& sql) {
    Db db(cfg_.db);
    return db.count(sql);
  }

  long long succeeded(const std::vector<std::string>& ids) {
    std::string list;
    for (const auto& id : ids) list += (list.empty() ? "'" : ",'") + id + "'";
    return count("SELECT count(*) FROM deliveries WHERE status='succeeded' AND id IN (" + list +
                 ")");
  }

  TempDir dir_;
  TestConfig cfg_;
  std::unique_ptr<TestReceiver> healthy_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<HttpTestClient> client_;
};

// ---- isolation --------------------------------------------------------------------------------

TEST_F(ReliabilityTest, DeadEndpointWithThousandsPendingDoesNotStopAHealthyOne) {
  constexpr int kDeadEvents = 2000;  // 4 batches of 500 (max_body_bytes is 64 KiB in tests)
  constexpr int kHealthyEvents = 200;
  BlackHole dead;
  add_webhook("dead", dead.url(), "[ticket.created]");
  add_webhook("healthy", healthy_->url(), "[message.created]");
  start();

  std::string item = R"({"event":"ticket.created","data":{}})";
  std::string batch = R"({"events":[)" + item;
  for (int i = 1; i < 500; ++i) batch += "," + item;
  batch += "]}";
  for (int b = 0; b < kDeadEvents / 500; ++b) {
    const auto r = client_->post_json("/v1/events/batch", batch);
    ASSERT_EQ(r.status, 202) << r.body;
  }
  // Let the storm run: several rounds of dead attempts (each runs into the 2 s deadline and is
  // retried 1 s later, while 2,000 fresh ones wait behind them) are recorded.
  const auto dead_attempts = [&] {
    return count(
        "SELECT count(*) FROM attempts a JOIN deliveries d ON d.id=a.delivery_id WHERE "
        "d.webhook_id='dead'");
  };
  ASSERT_TRUE(wait_until([&] { return dead_attempts() >= 3 * kPerWebhook; }))
      << dead_attempts() << daemon_->log();

  // Healthy traffic meanwhile, spread over a few seconds so it overlaps several dead rounds.
  const auto dead_attempts_before = dead_attempts();
  const auto t0 = SteadyClock::now();
  std::vector<std::string> ids;
  for (int i = 0; i < kHealthyEvents; ++i) {
    ids.push_back(post("message.created"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const bool all_done =
      wait_until([&] { return succeeded(ids) == kHealthyEvents; }, std::chrono::seconds(30));
  const auto healthy_ms = ms_since(t0);
  const long long dead_open = count(
      "SELECT count(*) FROM deliveries WHERE webhook_id='dead' AND status IN "
      "('pending','delivering')");
  const auto dead_attempts_after = dead_attempts();
  EXPECT_TRUE(all_done) << succeeded(ids) << " of " << kHealthyEvents << " succeeded";
  EXPECT_EQ(healthy_->request_count(), static_cast<std::size_t>(kHealthyEvents));
  // From intake to the start of its (first and only) attempt, per healthy delivery: a dead
  // webhook's backlog must not queue healthy work behind it. Generous: no benchmark.
  const long long worst_wait_ms = count(
      "SELECT CAST(MAX(julianday(a.started_at) - julianday(d.created_at)) * 86400000 AS "
      "INTEGER) FROM attempts a JOIN deliveries d ON d.id=a.delivery_id WHERE "
      "d.webhook_id='healthy'");
  EXPECT_LT(worst_wait_ms, 10000);
  EXPECT_EQ(count("SELECT count(*) FROM attempts a JOIN deliveries d ON d.id=a.delivery_id WHERE "
                  "d.webhook_id='healthy' AND a.outcome<>'succeeded'"),
            0);
  // ...while the dead webhook kept failing and still had most of its backlog: it never got
  // more than its per-webhook share of the 16 global slots.
  EXPECT_GT(dead_attempts_after, dead_attempts_before);
  EXPECT_GT(dead_open, kDeadEvents / 2);
  EXPECT_LE(dead.peak_open(), static_cast<std::size_t>(kPerWebhook));
  // Each dead attempt is recorded as a retry with the timeout.
  EXPECT_EQ(count("SELECT count(*) FROM attempts a JOIN deliveries d ON d.id=a.delivery_id WHERE "
                  "d.webhook_id='dead' AND (a.outcome<>'retry' OR a.error NOT LIKE 'timeout%')"),
            0);
  EXPECT_EQ(client_->request("GET", "/healthz").status, 200);
  std::cout << "[ info     ] " << kHealthyEvents << " healthy deliveries in " << healthy_ms
            << " ms (worst intake-to-attempt wait " << worst_wait_ms << " ms) beside "
            << kDeadEvents << " dead ones; dead: " << dead_attempts_after << " attempts, "
            << dead.accepted() << " connections, at most " << dead.peak_open() << " at once, "
            << dead_open << " still pending\n";
}

// ---- readers ----------------------------------------------------------------------------------

// How long the operator's read transaction stays open. The issue says a minute; CI runs a
// shorter hold with the same meaning (many group commits and deliveries happen meanwhile).
constexpr auto kReaderHold = std::chrono::seconds(12);

/// The first 32 bytes of a WAL file: checkpoint sequence number and salt change every time
/// SQLite restarts the log from its beginning (only after everything in it was checkpointed).
struct WalHeader {
  std::uint32_t checkpoint_sequence = 0;
  std::uint32_t salt1 = 0;
  bool operator==(const WalHeader&) const = default;
};

WalHeader read_wal_header(const std::filesystem::path& wal) {
  std::ifstream in(wal, std::ios::binary);
  std::array<unsigned char, 32> h{};
  in.read(reinterpret_cast<char*>(h.data()), h.size());
  if (in.gcount() != 32) return {};
  auto be32 = [&](std::size_t at) {
    return (std::uint32_t{h[at]} << 24) | (std::uint32_t{h[at + 1]} << 16) |
           (std::uint32_t{h[at + 2]} << 8) | std::uint32_t{h[at + 3]};
  };
  return {be32(12), be32(16)};
}

/// An operator's session on the live database through the sqlite3 C API, as the sqlite3 CLI
/// would open it.
class ReaderSession {
 public:
  explicit ReaderSession(const std::filesystem::path& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      throw std::runtime_error("open " + path.string());
    }
    sqlite3_busy_timeout(db_, 5000);
  }
  ~ReaderSession() { sqlite3_close(db_); }
  ReaderSession(const ReaderSession&) = delete;
  ReaderSession& operator=(const ReaderSession&) = delete;

  void exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      const std::string message = error != nullptr ? error : "?";
      sqlite3_free(error);
      throw std::runtime_error(sql + ": " + message);
    }
  }
  long long count(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    }
    const bool row = sqlite3_step(stmt) == SQLITE_ROW;
    const long long n = row ? sqlite3_column_int64(stmt, 0) : -1;
    sqlite3_finalize(stmt);
    if (!row) throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    return n;
  }

 private:
  sqlite3* db_ = nullptr;
};

TEST_F(ReliabilityTest, LongReadTransactionDoesNotStopDeliveryAndTheWalIsCheckpointedAfter) {
  add_webhook("crm", healthy_->url(), "[\"*\"]");
  start();
  const auto wal = std::filesystem::path(cfg_.db.string() + "-wal");
  std::vector<std::string> warmup;
  for (int i = 0; i < 20; ++i) warmup.push_back(post("ticket.created"));
  ASSERT_TRUE(wait_until([&] { return succeeded(warmup) == 20; })) << daemon_->log();

  // The operator opens a read transaction and keeps it (and its snapshot) open.
  ReaderSession reader(cfg_.db);
  reader.exec("BEGIN");
  const long long seen_at_begin = reader.count("SELECT count(*) FROM attempts");
  const auto hold_start = SteadyClock::now();
  const auto wal_size_at_begin = std::filesystem::file_size(wal);

  // Meanwhile: intake and delivery go on. Events for the first half of the hold, then every
  // one of them must be delivered before the hold ends.
  std::vector<std::string> ids;
  while (SteadyClock::now() - hold_start < kReaderHold / 2) {
    ids.push_back(post("ticket.created"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
      kReaderHold - (SteadyClock::now() - hold_start));
  const bool delivered_during_hold =
      wait_until([&] { return succeeded(ids) == static_cast<long long>(ids.size()); }, remaining);
  EXPECT_TRUE(delivered_during_hold) << succeeded(ids) << " of " << ids.size() << daemon_->log();
  std::this_thread::sleep_until(hold_start + kReaderHold);

  // Still the same snapshot: the transaction really was open the whole time.
  EXPECT_EQ(reader.count("SELECT count(*) FROM attempts"), seen_at_begin);
  const auto wal_size_at_release = std::filesystem::file_size(wal);
  const auto header_at_release = read_wal_header(wal);
  EXPECT_GT(wal_size_at_release, wal_size_at_begin);  // the WAL could only grow meanwhile
  reader.exec("COMMIT");

  // Once the reader is gone, SQLite's automatic checkpoint (relayd keeps the default
  // wal_autocheckpoint, 1000 pages, PASSIVE, run by its writer after a commit) copies the WAL
  // into the database; the next write then restarts the WAL from its beginning, which changes
  // the header's salt and checkpoint sequence. Keep writing until that happens.
  const auto release = SteadyClock::now();
  int posted_after = 0;
  const bool restarted = wait_until(
      [&] {
        if (read_wal_header(wal) != header_at_release) return true;
        post("ticket.created");
        ++posted_after;
        return false;
      },
      std::chrono::seconds(60));
  const auto restart_ms = ms_since(release);
  EXPECT_TRUE(restarted) << "the WAL was not checkpointed and restarted after the reader ended";
  const auto wal_size_after = std::filesystem::file_size(wal);
  EXPECT_EQ(client_->request("GET", "/healthz").status, 200);
  std::cout << "[ info     ] hold " << kReaderHold.count() << " s: " << ids.size()
            << " events delivered meanwhile; WAL " << wal_size_at_begin << " -> "
            << wal_size_at_release << " bytes; restarted " << restart_ms << " ms after the reader "
            << "ended (" << posted_after << " more events); WAL file then " << wal_size_after
            << " bytes\n";
}

}  // namespace
}  // namespace relay::testing
