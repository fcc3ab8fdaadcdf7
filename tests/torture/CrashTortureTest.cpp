// Crash torture (issue 7): cycles of intake load and delivery to a slow, flaky HTTPS receiver,
// ended by SIGKILL of the real relayd at a random moment, then a restart on the same SQLite file;
// after the last cycle everything drains. Checks after every kill (DbAudit) and at the end that
// no acknowledged event is lost, nothing unknown is delivered, and the attempt rows tell what
// the receiver saw. The seed (printed) replays the random choices; the thread interleaving and
// the exact moment of each kill relative to relayd's work differ from run to run.
// With RELAYD_TEST_BACKEND=postgres (ctest's torture.pg.*) relayd runs on a fresh database of
// the run's PostgreSQL server instead (TestConfig, Db and DbAudit switch over); only relayd is
// killed, never the server.
//
//   RELAYD_TORTURE_SEED=N      replay a run's random choices
//   RELAYD_TORTURE_CYCLES=N    kill cycles (default 5, the CI mode; 100 for the long mode)
//   RELAYD_TORTURE_CLIENTS=N   concurrent intake clients (default 24)
//   RELAYD_TORTURE_KEEP=1      keep the database and relayd's log even when the test passes
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "AttemptMatcher.hpp"
#include "DaemonProcess.hpp"
#include "Db.hpp"
#include "DbAudit.hpp"
#include "EventLedger.hpp"
#include "FlakyReceiver.hpp"
#include "HttpTestClient.hpp"
#include "IntakeLoad.hpp"
#include "PgServer.hpp"
#include "TestConfig.hpp"
#include "Waiting.hpp"

namespace relay::torture {
namespace {

namespace fs = std::filesystem;
using relay::testing::DaemonProcess;
using relay::testing::TempDir;
using relay::testing::TestConfig;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kScheduleLength = 6;  // [0s, 1s, 1s, 1s, 1s, 1s]
const std::map<std::string, std::string> kSecrets = {{"a", "whsec-torture-a-7Qx"},
                                                     {"b", "whsec-torture-b-Lm2"}};

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::stoull(v);
}

long long since_ms(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
}

struct Totals {
  int kills = 0;
  int startup_kills = 0;   // killed before or while it became healthy
  int unrecorded = 0;      // attempts in flight at a kill: made again after restart
  int unrecorded_2xx = 0;  // ...that the receiver had accepted: delivered twice
  int stale_resends = 0;   // sent again at once on a fresh connection (SPEC §5)
  std::size_t lost_answers = 0;
};

class CrashTorture : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = env_number("RELAYD_TORTURE_SEED", std::random_device{}());
    cycles_ = static_cast<int>(env_number("RELAYD_TORTURE_CYCLES", 5));
    clients_ = static_cast<int>(env_number("RELAYD_TORTURE_CLIENTS", 24));
    std::cout << "torture: seed " << seed_ << " (replay: RELAYD_TORTURE_SEED=" << seed_ << "), "
              << cycles_ << " cycles, " << clients_ << " clients" << std::endl;
    rng_.seed(seed_);

    relay::testing::test_certs().write_pem_files(dir_.path());
    receiver_ =
        std::make_unique<FlakyReceiver>(relay::testing::test_certs().server(), kSecrets, rng_());
    cfg_.port = relay::testing::free_port();
    cfg_.db = dir_.path() / "relayd.db";
    // A 10 s attempt timeout is far above the receiver's 300 ms worst delay, so every attempt
    // row matches an answer (or a close) the receiver chose.
    cfg_.delivery_yaml =
        "  concurrency: 32\n  per_webhook_concurrency: 16\n  timeout: 10s\n"
        "  retry_schedule: [0s, 1s, 1s, 1s, 1s, 1s]\n  ca_file: " +
        (dir_.path() / "ca.pem").string() + "\n  allow_private_networks: true\n";
    cfg_.webhooks_yaml =
        "  - id: a\n    url: " + receiver_->url("a") + "\n    secret: " + kSecrets.at("a") +
        "\n    events: [\"*\"]\n" + "  - id: b\n    url: " + receiver_->url("b") +
        "\n    secret: " + kSecrets.at("b") + "\n    events: [\"ticket.*\", \"message.*\"]\n";
    cfg_.shutdown_grace = "5s";
    daemon_ = std::make_unique<DaemonProcess>(dir_.path(), cfg_.yaml());
  }

  void TearDown() override {
    if (!HasFailure() && std::getenv("RELAYD_TORTURE_KEEP") == nullptr) return;
    // Keep the evidence: TempDir removes the originals.
    const auto keep = fs::temp_directory_path() / ("relayd-torture-" + std::to_string(seed_));
    std::error_code ec;
    fs::create_directories(keep, ec);
    for (const char* name :
         {"relayd.db", "relayd.db-wal", "relayd.db-shm", "relayd.log", "relayd.yaml"}) {
      fs::copy_file(dir_.path() / name, keep / name, fs::copy_options::overwrite_existing, ec);
    }
    if (relay::testing::postgres_backend()) {
      // The run's server (and so the database) goes when the ctest fixture stops it.
      const char* bindir = std::getenv("RELAYD_PG_BIN");
      const std::string dump =
          std::string(bindir != nullptr ? bindir : "/usr/lib/postgresql/15/bin") + "/pg_dump -d '" +
          relay::testing::dsn_for(cfg_.db) + "' -f '" + (keep / "relayd.sql").string() + "'";
      if (std::system(dump.c_str()) != 0) std::cout << "torture: pg_dump failed" << std::endl;
    }
    std::cout << "torture: database and log kept in " << keep.string() << std::endl;
  }

  /// Ends one life of relayd (it is dead or stopped): waits for the receiver to see the last of
  /// its connections, audits the file, and matches this epoch's requests with its attempt rows.
  AuditResult end_epoch(bool killed) {
    bool settled = false;
    const std::size_t end = receiver_->settle(std::chrono::seconds(10), settled);
    EXPECT_TRUE(settled) << "receiver connections still open 10 s after relayd ended";
    AuditResult result = audit_->audit();
    if (result.file_exists) {
      EXPECT_EQ(result.integrity, "ok") << "epoch " << epoch_;
    }
    std::map<std::string, std::vector<SeenRequest>> seen;
    for (const auto& r : receiver_->range(epoch_start_, end)) {
      seen[r.delivery_id].push_back(SeenRequest{r.answer, r.reused_connection});
      if (!audit_->deliveries().contains(r.delivery_id)) {
        ledger_->add_problem("the receiver got delivery '" + r.delivery_id +
                             "', which is not in the file (never posted?)");
      }
    }
    const auto overlapping = receiver_->overlapping();
    for (; overlaps_seen_ < overlapping.size(); ++overlaps_seen_) {
      ledger_->add_problem("delivery " + overlapping[overlaps_seen_] + ", epoch " +
                           std::to_string(epoch_) +
                           ": sent again while its previous request was unanswered");
    }
    std::set<std::string> touched;
    for (const auto& [id, list] : seen) touched.insert(id);
    for (const auto& [id, rows] : result.new_rows) touched.insert(id);
    for (const auto& id : touched) {
      const auto m =
          match_epoch(seen[id], result.new_rows[id], killed, result.finished_before.contains(id));
      if (!m.ok) {
        ledger_->add_problem("delivery " + id + ", epoch " + std::to_string(epoch_) +
                             ": attempt rows do not match the receiver: " + m.explanation);
      }
      totals_.unrecorded += m.unrecorded;
      totals_.unrecorded_2xx += m.unrecorded_2xx;
      totals_.stale_resends += m.stale_resends;
    }
    epoch_start_ = end;
    ++epoch_;
    if (killed) ++totals_.kills;
    return result;
  }

  void print_cycle(int cycle, const std::string& what, const AuditResult& r) {
    std::cout << "cycle " << cycle + 1 << "/" << cycles_ << " (" << since_ms(started_) / 1000
              << " s): " << what << "; acked " << ledger_->acked_count() << " of "
              << ledger_->event_count() << " posted; in db " << r.events << " events, "
              << r.deliveries << " deliveries (" << r.unfinished << " unfinished), " << r.attempts
              << " attempts; receiver " << receiver_->size()
              << " requests; unrecorded at kills so far " << totals_.unrecorded << "; integrity "
              << (r.file_exists ? r.integrity : "(no file yet)") << std::endl;
  }

  ::testing::AssertionResult no_problems() const {
    if (ledger_->problem_count() == 0) return ::testing::AssertionSuccess();
    auto failure = ::testing::AssertionFailure();
    failure << ledger_->problem_count() << " problem(s); the first ones:\n";
    for (const auto& p : ledger_->problems()) failure << "  - " << p << "\n";
    failure << "relayd log tail:\n" << log_tail();
    return failure;
  }

  std::string log_tail() const {
    const auto log = daemon_->log();
    return log.size() > 4000 ? log.substr(log.size() - 4000) : log;
  }

  Clock::time_point started_ = Clock::now();
  std::uint64_t seed_ = 0;
  int cycles_ = 0;
  int clients_ = 0;
  std::mt19937_64 rng_;
  TempDir dir_;
  TestConfig cfg_;
  std::unique_ptr<FlakyReceiver> receiver_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<EventLedger> ledger_ =
      std::make_unique<EventLedger>(std::set<std::string>{"a", "b"});
  std::unique_ptr<DbAudit> audit_;
  Totals totals_;
  int epoch_ = 0;
  std::size_t overlaps_seen_ = 0;  // receiver_->overlapping() already reported
  std::size_t epoch_start_ = 0;    // first receiver request of the current epoch
};

TEST_F(CrashTorture, CyclesOfLoadAndSigkillLoseNothing) {
  audit_ = std::make_unique<DbAudit>(cfg_.db, *ledger_, kScheduleLength);
  std::uniform_int_distribution<int> percent(0, 99);

  for (int cycle = 0; cycle < cycles_; ++cycle) {
    // Sometimes kill it while it opens the file, recovers interrupted deliveries and starts.
    if (percent(rng_) < 15) {
      const int after = std::uniform_int_distribution<int>(0, 150)(rng_);
      daemon_->spawn();
      std::this_thread::sleep_for(milliseconds(after));
      daemon_->kill_hard();
      ++totals_.startup_kills;
      print_cycle(cycle, "start-up kill after " + std::to_string(after) + " ms", end_epoch(true));
    }
    ASSERT_NO_THROW(daemon_->start(cfg_.port)) << log_tail();
    const int kill_after = std::uniform_int_distribution<int>(100, 3000)(rng_);
    {
      IntakeLoad load(*ledger_, cfg_.port, clients_, cycle, rng_(), milliseconds(250));
      std::this_thread::sleep_for(milliseconds(kill_after));
      daemon_->kill_hard();
      load.stop();
      totals_.lost_answers += load.lost();
    }
    print_cycle(cycle, "kill after " + std::to_string(kill_after) + " ms", end_epoch(true));
    // Stop at the first cycle that went wrong: its seed and log are the reproducer.
    ASSERT_TRUE(no_problems()) << "cycle " << cycle + 1 << ", seed " << seed_;
  }

  // Drain: the last restart, everything that lost its answer posted again, a healthy receiver.
  ASSERT_NO_THROW(daemon_->start(cfg_.port)) << log_tail();
  {
    relay::testing::HttpTestClient client("127.0.0.1", cfg_.port);
    for (int guard = 0; guard < 100000; ++guard) {
      const auto post = ledger_->next_repost();
      if (!post) break;
      const Post request = ledger_->post(*post);
      const auto reply = client.post_json(request.target(), request.body);
      ledger_->answered(*post, reply.status, reply.body);
    }
  }
  receiver_->set_healthy(true);
  const auto drain_started = Clock::now();
  const bool drained = relay::testing::wait_until(
      [&] {
        relay::testing::Db db(cfg_.db);
        return db.count(
                   "SELECT count(*) FROM deliveries WHERE status IN ('pending', "
                   "'delivering')") == 0;
      },
      std::chrono::minutes(5));
  const auto drain_ms = since_ms(drain_started);
  daemon_->signal(SIGTERM);
  const auto exit_code = daemon_->wait(std::chrono::seconds(30));
  EXPECT_EQ(exit_code, std::optional<int>(0)) << log_tail();
  const AuditResult final_state = end_epoch(false);
  ASSERT_TRUE(drained) << final_state.unfinished << " deliveries still unfinished\n" << log_tail();
  EXPECT_EQ(final_state.integrity, "ok");

  // Everything posted was acknowledged in the end, and all of it is in the database, no more.
  EXPECT_EQ(ledger_->reposts_waiting(), 0U);
  EXPECT_EQ(ledger_->acked_count(), ledger_->event_count());
  EXPECT_EQ(final_state.events, ledger_->event_count());
  EXPECT_EQ(final_state.deliveries, 2 * ledger_->event_count());
  EXPECT_EQ(final_state.unfinished, 0U);

  // What the receiver got, request by request (SPEC §4).
  const auto& deliveries = audit_->deliveries();
  const auto& payloads = audit_->payloads();
  const auto& types = audit_->event_types();
  const auto first_bodies = receiver_->first_bodies();
  std::map<std::string, int> requests_of;
  std::map<std::string, int> accepted_of;  // 2xx answers
  const auto received = receiver_->range(0, receiver_->size());
  for (const auto& r : received) {
    const auto d = deliveries.find(r.delivery_id);
    if (d == deliveries.end()) continue;  // reported by end_epoch
    ++requests_of[r.delivery_id];
    if (r.answer >= 200 && r.answer <= 299) ++accepted_of[r.delivery_id];
    std::string wrong;
    if (r.webhook != d->second.webhook) wrong += " sent to webhook '" + r.webhook + "';";
    if (r.event_id != d->second.event_id) wrong += " payload id '" + r.event_id + "';";
    if (r.event_header != types.at(d->second.event_id)) {
      wrong += " X-Relay-Event '" + r.event_header + "';";
    }
    if (!r.signature_ok) wrong += " bad signature;";
    if (!r.same_body_as_first) wrong += " body differs from its first attempt;";
    if (!wrong.empty()) ledger_->add_problem("delivery " + r.delivery_id + ":" + wrong);
  }
  std::size_t succeeded = 0;
  std::size_t failed = 0;
  int accepted_twice = 0;
  for (const auto& [id, d] : deliveries) {
    if (d.status == "succeeded") ++succeeded;
    if (d.status == "failed") ++failed;
    if (d.status != "succeeded" && d.status != "failed") {
      ledger_->add_problem("delivery " + id + " ended " + d.status);
    }
    if (requests_of[id] == 0) {
      ledger_->add_problem("acked event " + d.event_id + " never reached webhook " + d.webhook +
                           " (delivery " + id + ", " + d.status + ")");
      continue;
    }
    if (first_bodies.at(id) != payloads.at(d.event_id)) {
      ledger_->add_problem("delivery " + id + ": the body sent is not the stored payload");
    }
    if (d.status == "succeeded" && accepted_of[id] == 0) {
      ledger_->add_problem("delivery " + id + " is succeeded but the receiver never said 2xx");
    }
    accepted_twice += accepted_of[id] - (d.status == "succeeded" ? 1 : 0);
  }
  // A succeeded attempt row ends a delivery, so every extra 2xx must be an attempt that was in
  // flight at a kill.
  EXPECT_EQ(accepted_twice, totals_.unrecorded_2xx);
  EXPECT_TRUE(no_problems());

  std::cout << "torture summary: seed " << seed_ << ", " << cycles_ << " cycles, " << totals_.kills
            << " kills (" << totals_.startup_kills << " during start-up); "
            << ledger_->acked_count() << " events acked (" << ledger_->answers_200()
            << " single posts answered 200 as duplicates, " << totals_.lost_answers
            << " answers lost to kills, " << ledger_->overloaded() << " overloaded); "
            << final_state.deliveries << " deliveries (" << succeeded << " succeeded, " << failed
            << " failed); " << final_state.attempts << " attempt rows; " << received.size()
            << " receiver requests; " << totals_.unrecorded
            << " attempts in flight at a kill (made again), " << totals_.unrecorded_2xx
            << " of them accepted by the receiver, so delivered twice; " << totals_.stale_resends
            << " resent at once on a fresh connection; drain " << drain_ms << " ms; total "
            << since_ms(started_) / 1000.0 << " s" << std::endl;
}

}  // namespace
}  // namespace relay::torture
