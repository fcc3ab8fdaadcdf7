// Endpoint health (SPEC §10) end to end, on a compressed schedule: the real daemon, a real
// HTTPS receiver that counts every request, the real SQLite file, the real CLI.
#include <gtest/gtest.h>
#include <signal.h>

#include <iostream>

#include <atomic>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

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
using relay::test::RecordedRequest;
using relay::test::Reply;
using relay::test::TestReceiver;
using namespace std::chrono_literals;

class HealthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test_certs().write_pem_files(dir_.path());
    cfg_.port = free_port();
    cfg_.db = dir_.path() / "relayd.db";
    relay::test::ReceiverOptions o;
    o.tls = true;
    o.certificate = test_certs().server();
    receiver_ = std::make_unique<TestReceiver>(o);
    // The receiver answers `status_` to everything (changed by the tests as they go).
    receiver_->set_handler([this](const RecordedRequest&) { return Reply::with_status(status_); });
  }

  void TearDown() override {
    if (HasFailure() && daemon_) std::cerr << "---- relayd log ----\n" << daemon_->log();
  }

  // per_webhook_concurrency 1: one attempt at a time, so the order is observable.
  void set_delivery(const std::string& schedule, const std::string& breaker,
                    const std::string& auto_disable) {
    cfg_.delivery_yaml =
        "  concurrency: 8\n  per_webhook_concurrency: 1\n  timeout: 5s\n"
        "  retry_schedule: " +
        schedule + "\n  ca_file: " + (dir_.path() / "ca.pem").string() +
        "\n  allow_private_networks: true\n  circuit_breaker: " + breaker +
        "\n  auto_disable_after: " + auto_disable + "\n";
  }

  void add_webhook(const std::string& id, const std::string& url) {
    cfg_.webhooks_yaml += "  - id: " + id + "\n    url: " + url + "\n    secret: whsec-" + id +
                          "-Zq9\n    events: [\"*\"]\n";
  }

  void start() {
    if (!daemon_) daemon_ = std::make_unique<DaemonProcess>(dir_.path(), cfg_.yaml());
    daemon_->start(cfg_.port);
    client_ = std::make_unique<HttpTestClient>("127.0.0.1", cfg_.port);
  }

  void restart() {
    daemon_->signal(SIGTERM);
    ASSERT_EQ(daemon_->wait(20s), 0);
    start();
  }

  std::string post_event() {
    const auto r =
        client_->post_json("/v1/events", R"({"event":"ticket.created","data":{"ticket":{}}})");
    EXPECT_EQ(r.status, 202) << r.body;
    return json::parse(r.body).at("deliveries").at(0).at("id").get<std::string>();
  }

  json webhook(const std::string& id) {
    const auto r = client_->request("GET", "/v1/webhooks/" + id);
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body);
  }

  std::string cli(const std::string& args) {
    auto [code, out] = run_command(relayd_binary() + " " + args + " --config " +
                                   daemon_->config_path().string() + " 2>&1");
    last_code_ = code;
    return out;
  }

  std::string status_of(const std::string& delivery_id) {
    Db db(cfg_.db);
    return db.value("SELECT status FROM deliveries WHERE id='" + delivery_id + "'");
  }

  std::map<std::string, std::string> attempt_counts() {
    Db db(cfg_.db);
    std::map<std::string, std::string> out;
    for (const auto& row : db.rows("SELECT id, attempt_count FROM deliveries")) {
      out[row.at(0)] = row.at(1);
    }
    return out;
  }

  std::size_t attempt_rows() {
    Db db(cfg_.db);
    return std::stoul(db.value("SELECT count(*) FROM attempts"));
  }

  static std::vector<std::string> delivery_ids(const std::vector<RecordedRequest>& requests,
                                               std::size_t from) {
    std::vector<std::string> out;
    for (std::size_t i = from; i < requests.size(); ++i) {
      out.push_back(requests[i].header("X-Relay-Delivery"));
    }
    return out;
  }

  TempDir dir_;
  TestConfig cfg_;
  std::atomic<int> status_{500};
  std::unique_ptr<TestReceiver> receiver_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<HttpTestClient> client_;
  int last_code_ = -1;
};

// Circuit: 3 failures open it; one probe per cooldown (1 s, then 2 s = max), counted at the
// receiver; waiting deliveries are not attempted and their attempt counts do not move; a
// successful probe closes it and the backlog arrives oldest due first. /metrics shows it.
TEST_F(HealthTest, CircuitOpensProbesOncePerCooldownClosesAndDrainsInOrder) {
  set_delivery("[0s, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms]",
               "{ failures: 3, cooldown: 1s, max_cooldown: 2s }", "0s");
  add_webhook("crm", receiver_->url("/hook"));
  start();
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(post_event());

  ASSERT_TRUE(wait_until([&] { return webhook("crm")["circuit"] == "open"; }, 20s));
  const auto opened = std::chrono::steady_clock::now();
  auto w = webhook("crm");
  EXPECT_GE(w["consecutive_failures"].get<int>(), 3) << w;
  EXPECT_TRUE(w["circuit_open_until"].is_string()) << w;
  EXPECT_TRUE(daemon_->logged("circuit opened webhook=crm")) << daemon_->log();
  // Attempts already under way when it opened finish; then the count is what it is.
  std::this_thread::sleep_for(300ms);
  const auto at_open = receiver_->request_count();
  const auto counts_at_open = attempt_counts();

  // /metrics while open: parses line by line, and shows the new series.
  {
    const auto r = client_->request("GET", "/metrics");
    ASSERT_EQ(r.status, 200);
    const std::regex sample(R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+Inf-]+$)");
    std::istringstream lines(r.body);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.empty() || line[0] == '#') continue;
      EXPECT_TRUE(std::regex_match(line, sample)) << line;
    }
    EXPECT_NE(r.body.find("relayd_webhook_up{webhook=\"crm\"} 0\n"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("relayd_webhook_oldest_due_age_seconds{webhook=\"crm\"} "),
              std::string::npos);
    EXPECT_NE(r.body.find("relayd_attempt_duration_seconds_bucket{webhook=\"crm\",le=\"0.005\"}"),
              std::string::npos);
    EXPECT_NE(r.body.find("relayd_attempt_duration_seconds_count{webhook=\"crm\"} "),
              std::string::npos);
    EXPECT_NE(r.body.find("relayd_storage_writable 1\n"), std::string::npos);
    EXPECT_NE(r.body.find("relayd_intake_responses_total{code=\"202\"} 6\n"), std::string::npos)
        << r.body;
    // No success yet: no last-success age.
    EXPECT_EQ(r.body.find("relayd_webhook_last_success_age_seconds{webhook=\"crm\"}"),
              std::string::npos);
  }

  // 3.6 s after opening: probes at ~1 s and ~3 s (cooldown 1 s, then doubled to 2 s).
  std::this_thread::sleep_until(opened + 3600ms);
  const auto requests = receiver_->requests();
  const auto probes = requests.size() - at_open;
  EXPECT_EQ(probes, 2U) << "receiver requests while open";
  for (std::size_t i = at_open + 1; i < requests.size(); ++i) {
    EXPECT_GE(requests[i].received_at - requests[i - 1].received_at, 900ms);
  }
  // Only the probed deliveries' attempt counts moved (one each per probe).
  const auto probed = delivery_ids(requests, at_open);
  const std::set<std::string> probed_set(probed.begin(), probed.end());
  const auto counts_now = attempt_counts();
  for (const auto& [id, n] : counts_at_open) {
    if (probed_set.count(id) == 0) {
      EXPECT_EQ(counts_now.at(id), n) << id;
    }
  }
  ASSERT_TRUE(wait_until([&] { return attempt_rows() == receiver_->request_count(); }, 5s));

  // The order the backlog should drain in: oldest due first.
  std::vector<std::string> expected;
  {
    Db db(cfg_.db);
    for (const auto& row : db.rows("SELECT id FROM deliveries WHERE status = 'pending' "
                                   "ORDER BY next_attempt_at, " +
                                   db.insertion_order())) {
      expected.push_back(row.at(0));
    }
  }
  ASSERT_EQ(expected.size(), 6U);
  const auto before_close = receiver_->request_count();
  status_ = 200;
  ASSERT_TRUE(wait_until(
      [&] {
        for (const auto& id : ids) {
          if (status_of(id) != "succeeded") return false;
        }
        return true;
      },
      20s));
  EXPECT_EQ(delivery_ids(receiver_->requests(), before_close), expected);
  w = webhook("crm");
  EXPECT_EQ(w["circuit"], "closed") << w;
  EXPECT_EQ(w["consecutive_failures"], 0) << w;
  EXPECT_TRUE(w["last_success_at"].is_string()) << w;
  EXPECT_EQ(w["deliveries"]["succeeded"], 6) << w;
  EXPECT_TRUE(daemon_->logged("circuit closed webhook=crm")) << daemon_->log();
  const auto r = client_->request("GET", "/metrics");
  EXPECT_NE(r.body.find("relayd_webhook_up{webhook=\"crm\"} 1\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("relayd_webhook_last_success_age_seconds{webhook=\"crm\"} "),
            std::string::npos);
}

// 410 Gone disables the webhook at once: later events are kept paused, nothing is sent; an
// error names the reason; `relayd enable` resumes them.
TEST_F(HealthTest, GoneDisablesAtOnceAndEnableResumes) {
  set_delivery("[0s, 1s, 1s]", "{ failures: 10, cooldown: 30s, max_cooldown: 10m }", "5d");
  add_webhook("crm", receiver_->url("/hook"));
  start();
  status_ = 410;
  const auto first = post_event();
  ASSERT_TRUE(wait_until([&] { return webhook("crm")["state"] == "disabled"; }, 20s));
  auto w = webhook("crm");
  EXPECT_NE(w["disabled_reason"].get<std::string>().find("410 Gone"), std::string::npos) << w;
  EXPECT_TRUE(w["disabled_at"].is_string()) << w;
  EXPECT_EQ(w["enabled"], false);
  EXPECT_EQ(status_of(first), "failed");
  EXPECT_TRUE(
      daemon_->logged("webhook disabled webhook=crm reason=\"the endpoint answered 410 Gone"))
      << daemon_->log();
  const auto second = post_event();
  const auto third = post_event();
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(status_of(second), "paused");
  EXPECT_EQ(status_of(third), "paused");
  EXPECT_EQ(receiver_->request_count(), 1U);

  status_ = 200;
  const auto out = cli("enable crm");
  EXPECT_EQ(last_code_, 0) << out;
  EXPECT_NE(out.find("webhook crm: enabled"), std::string::npos) << out;
  ASSERT_TRUE(wait_until([&] { return status_of(third) == "succeeded"; }, 20s));
  EXPECT_EQ(status_of(second), "succeeded");
  const auto requests = receiver_->requests();
  ASSERT_EQ(requests.size(), 3U);
  EXPECT_EQ(requests[1].header("X-Relay-Delivery"), second);  // oldest first
  EXPECT_EQ(requests[2].header("X-Relay-Delivery"), third);
  EXPECT_EQ(webhook("crm")["state"], "enabled");
  EXPECT_EQ(status_of(first), "failed");  // enable resumes paused ones, not failed ones
}

// No success for auto_disable_after (and at least `failures` failures): disabled; it stays
// disabled through a restart and a SIGHUP; `relayd enable` resumes everything kept.
TEST_F(HealthTest, AutoDisableSurvivesRestartAndSighupAndEnableResumesEverything) {
  set_delivery("[0s, 300ms, 300ms, 300ms, 300ms, 300ms, 300ms, 300ms, 300ms, 300ms]",
               "{ failures: 2, cooldown: 1s, max_cooldown: 1s }", "2s");
  add_webhook("crm", receiver_->url("/hook"));
  start();
  const auto first = post_event();
  ASSERT_TRUE(wait_until([&] { return webhook("crm")["state"] == "disabled"; }, 20s));
  auto w = webhook("crm");
  EXPECT_NE(w["disabled_reason"].get<std::string>().find("no successful attempt for 2s"),
            std::string::npos)
      << w;
  EXPECT_TRUE(daemon_->logged("webhook disabled webhook=crm")) << daemon_->log();
  ASSERT_TRUE(wait_until([&] { return status_of(first) == "paused"; }, 10s));
  const auto after_disable = receiver_->request_count();
  const auto second = post_event();
  EXPECT_EQ(status_of(second), "paused");

  restart();
  w = webhook("crm");
  EXPECT_EQ(w["state"], "disabled") << w;
  EXPECT_NE(daemon_->log().find("webhook=crm stays disabled"), std::string::npos);
  const auto third = post_event();
  EXPECT_EQ(status_of(third), "paused");

  daemon_->signal(SIGHUP);
  ASSERT_TRUE(wait_until(
      [&] { return daemon_->log().find("reload: configuration applied") != std::string::npos; },
      10s));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(webhook("crm")["state"], "disabled");
  EXPECT_EQ(status_of(first), "paused");
  EXPECT_EQ(receiver_->request_count(), after_disable);

  status_ = 200;
  const auto out = cli("enable crm");
  EXPECT_EQ(last_code_, 0) << out;
  ASSERT_TRUE(wait_until(
      [&] {
        return status_of(first) == "succeeded" && status_of(second) == "succeeded" &&
               status_of(third) == "succeeded";
      },
      20s));
  w = webhook("crm");
  EXPECT_EQ(w["state"], "enabled") << w;
  EXPECT_EQ(w["circuit"], "closed") << w;
}

// An operator's disable pauses like auto-disable (and is stored with its reason).
TEST_F(HealthTest, DisableByHandPausesAndAnswersItsState) {
  set_delivery("[0s]", "{ failures: 10, cooldown: 30s, max_cooldown: 10m }", "5d");
  add_webhook("crm", receiver_->url("/hook"));
  start();
  status_ = 200;
  auto r = client_->post_json("/v1/webhooks/crm/disable", "{}");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = json::parse(r.body);
  EXPECT_EQ(j["state"], "disabled");
  EXPECT_EQ(j["disabled_reason"], "disabled by an operator");
  const auto id = post_event();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(status_of(id), "paused");
  EXPECT_EQ(receiver_->request_count(), 0U);
  {
    Db db(cfg_.db);
    EXPECT_EQ(db.value("SELECT disabled_reason FROM webhook_state WHERE webhook_id='crm'"),
              "disabled by an operator");
  }
  r = client_->post_json("/v1/webhooks/nope/disable", "{}");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(client_->request("GET", "/v1/webhooks/nope").status, 404);
  const auto out = cli("disable nope");
  EXPECT_EQ(last_code_, 1) << out;
  r = client_->post_json("/v1/webhooks/crm/enable", "{}");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["state"], "enabled");
  ASSERT_TRUE(wait_until([&] { return status_of(id) == "succeeded"; }, 20s));
}

// recover replays exactly the failed deliveries of that webhook created in [since, until).
TEST_F(HealthTest, RecoverReplaysExactlyTheFailedDeliveriesInTheWindow) {
  set_delivery("[0s]", "{ failures: 100, cooldown: 30s, max_cooldown: 10m }", "0s");
  add_webhook("crm", receiver_->url("/hook"));
  add_webhook("other", receiver_->url("/other"));
  start();
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    ids.push_back(post_event());
    std::this_thread::sleep_for(20ms);  // distinct created_at (ms)
  }
  ASSERT_TRUE(wait_until(
      [&] {
        Db db(cfg_.db);
        return db.value("SELECT count(*) FROM deliveries WHERE status = 'failed'") == "8";
      },
      20s));
  std::string since, until;
  {
    Db db(cfg_.db);
    since = db.value("SELECT created_at FROM deliveries WHERE id='" + ids[1] + "'");
    until = db.value("SELECT created_at FROM deliveries WHERE id='" + ids[3] + "'");
  }
  status_ = 200;
  const auto before = receiver_->request_count();
  const auto out = cli("recover crm --since " + since + " --until " + until);
  EXPECT_EQ(last_code_, 0) << out;
  EXPECT_NE(out.find("webhook crm: 2 failed deliveries"), std::string::npos) << out;
  ASSERT_TRUE(wait_until([&] { return status_of(ids[2]) == "succeeded"; }, 20s));
  EXPECT_EQ(status_of(ids[1]), "succeeded");
  EXPECT_EQ(status_of(ids[0]), "failed");
  EXPECT_EQ(status_of(ids[3]), "failed");
  std::this_thread::sleep_for(300ms);
  const auto requests = receiver_->requests();
  ASSERT_EQ(requests.size(), before + 2);
  EXPECT_EQ(requests[before].header("X-Relay-Delivery"), ids[1]);  // oldest first
  EXPECT_EQ(requests[before + 1].header("X-Relay-Delivery"), ids[2]);
  {
    Db db(cfg_.db);
    EXPECT_EQ(db.value("SELECT count(*) FROM deliveries WHERE webhook_id = 'other' AND "
                       "status = 'failed'"),
              "4");
  }
  // Bad input: clear errors.
  auto r = client_->post_json("/v1/webhooks/crm/recover", R"({"until":"2026-01-01T00:00:00Z"})");
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_NE(r.body.find("since"), std::string::npos);
  r = client_->post_json("/v1/webhooks/crm/recover",
                         R"({"since":"2026-01-02T00:00:00Z","until":"2026-01-01T00:00:00Z"})");
  EXPECT_EQ(r.status, 422) << r.body;
  r = client_->post_json("/v1/webhooks/crm/recover", R"({"since":"yesterday"})");
  EXPECT_EQ(r.status, 422) << r.body;
  r = client_->post_json("/v1/webhooks/nope/recover", R"({"since":"2026-01-01T00:00:00Z"})");
  EXPECT_EQ(r.status, 404) << r.body;
  r = client_->post_json("/v1/webhooks/crm/recover", R"({"since":"2020-01-01T00:00:00Z"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["recovered"], 2);  // ids[0] and ids[3]
  const auto usage = cli("recover crm");
  EXPECT_EQ(last_code_, 2) << usage;
}

}  // namespace
}  // namespace relay::testing
