// Running relayd as a service (SPEC §1–3, §7): reload rules, shutdown, admin API, metrics,
// the send-test / redeliver commands and retention — against the real daemon.
#include <gtest/gtest.h>
#include <signal.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
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
using relay::test::Reply;
using relay::test::TestCerts;
using relay::test::TestReceiver;

struct Hook {
  std::string id;
  std::string url;
  std::string secret = "whsec-default";
  bool enabled = true;
  int max_queued = 10000;
};

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test_certs().write_pem_files(dir_.path());
    cfg_.port = free_port();
    cfg_.db = dir_.path() / "relayd.db";
    schedule_ = "[0s, 1s, 1s, 1s, 1s, 1s]";
    receiver_ = make_receiver();
  }

  static std::unique_ptr<TestReceiver> make_receiver() {
    relay::test::ReceiverOptions o;
    o.certificate = test_certs().server();
    return std::make_unique<TestReceiver>(o);
  }

  std::string yaml(const std::vector<Hook>& hooks) {
    cfg_.delivery_yaml =
        "  concurrency: 16\n  per_webhook_concurrency: " + std::to_string(per_webhook_) +
        "\n  timeout: 5s\n  retry_schedule: " + schedule_ +
        "\n  ca_file: " + (dir_.path() / "ca.pem").string() + "\n  allow_private_networks: true\n";
    cfg_.webhooks_yaml.clear();
    for (const auto& h : hooks) {
      cfg_.webhooks_yaml +=
          "  - id: " + h.id + "\n    url: " + h.url + "\n    secret: " + h.secret +
          "\n    events: [\"*\"]\n    enabled: " + (h.enabled ? "true" : "false") +
          "\n    max_queued: " + std::to_string(h.max_queued) + "\n";
    }
    return cfg_.yaml();
  }

  void start(const std::vector<Hook>& hooks) {
    daemon_ = std::make_unique<DaemonProcess>(dir_.path(), yaml(hooks));
    daemon_->start(cfg_.port);
    client_ = std::make_unique<HttpTestClient>("127.0.0.1", cfg_.port);
  }

  void reload(const std::vector<Hook>& hooks) {
    daemon_->rewrite_config(yaml(hooks));
    const auto before = count_in_log("reload");
    daemon_->signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] { return count_in_log("reload") > before; })) << daemon_->log();
  }

  std::size_t count_in_log(const std::string& needle) {
    const auto log = daemon_->log();
    std::size_t n = 0;
    for (auto pos = log.find(needle); pos != std::string::npos; pos = log.find(needle, pos + 1)) {
      ++n;
    }
    return n;
  }

  // Posts an event; returns delivery ids by webhook.
  std::map<std::string, std::string> post(const std::string& type = "ticket.created") {
    const auto r = client_->post_json("/v1/events", R"({"event":")" + type + R"(","data":{}})");
    EXPECT_EQ(r.status, 202) << r.body;
    std::map<std::string, std::string> out;
    const auto body = json::parse(r.body);  // must outlive the loop
    for (const auto& d : body.at("deliveries")) {
      out[d.at("webhook").get<std::string>()] = d.at("id").get<std::string>();
    }
    return out;
  }

  std::string status_of(const std::string& id) {
    Db db(cfg_.db);
    return db.value("SELECT status FROM deliveries WHERE id='" + id + "'");
  }

  bool wait_status(const std::string& id, const std::string& status,
                   std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    return wait_until([&] { return status_of(id) == status; }, timeout);
  }

  TempDir dir_;
  TestConfig cfg_;
  std::string schedule_;
  int per_webhook_ = 4;
  std::unique_ptr<TestReceiver> receiver_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<HttpTestClient> client_;
};

TEST_F(ServiceTest, DisabledWebhookQueuesPausedAndReEnablingDeliversOldestFirst) {
  per_webhook_ = 1;  // one at a time, so the arrival order is the resume order
  start({{"crm", receiver_->url(), "whsec-a", false}});
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(post()["crm"]);
  for (const auto& id : ids) EXPECT_EQ(status_of(id), "paused");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(receiver_->request_count(), 0U);

  reload({{"crm", receiver_->url(), "whsec-a", true}});
  for (const auto& id : ids) ASSERT_TRUE(wait_status(id, "succeeded")) << daemon_->log();
  const auto reqs = receiver_->requests();
  ASSERT_EQ(reqs.size(), 5U);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(reqs[i].header("X-Relay-Delivery"), ids[i]);
  }
}

TEST_F(ServiceTest, DisablingPausesPendingWorkAndCapsTheQueue) {
  receiver_->set_default_reply(Reply::with_status(500));
  schedule_ = "[0s, 1h]";  // after the first failure, pending for an hour
  start({{"crm", receiver_->url(), "whsec-a", true, 3}});
  const auto first = post()["crm"];
  ASSERT_TRUE(receiver_->wait_for_requests(1, std::chrono::seconds(10)));
  ASSERT_TRUE(wait_until([&] {
    Db db(cfg_.db);
    return db.value("SELECT status || attempt_count FROM deliveries WHERE id='" + first + "'") ==
           "pending1";
  }));

  reload({{"crm", receiver_->url(), "whsec-a", false, 3}});
  ASSERT_TRUE(wait_status(first, "paused")) << daemon_->log();
  std::vector<std::string> later;
  for (int i = 0; i < 3; ++i) later.push_back(post()["crm"]);
  // 4 paused with max_queued 3: the oldest (first) is dropped, and says so in the log.
  EXPECT_TRUE(wait_status(first, "dropped")) << daemon_->log();
  for (const auto& id : later) EXPECT_EQ(status_of(id), "paused");
  EXPECT_GT(count_in_log("dropped"), 0U) << daemon_->log();
  EXPECT_EQ(receiver_->request_count(), 1U);
}

TEST_F(ServiceTest, RemovedWebhookIsCancelledAndNothingMoreIsSent) {
  receiver_->set_default_reply(Reply::with_status(500));
  start({{"crm", receiver_->url()}, {"other", receiver_->url("/other")}});
  const auto ids = post();
  ASSERT_TRUE(receiver_->wait_for_requests(2, std::chrono::seconds(10)));
  reload({{"other", receiver_->url("/other")}});
  ASSERT_TRUE(wait_status(ids.at("crm"), "cancelled")) << daemon_->log();
  // The schedule would retry every second: wait long enough for two more retries.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  std::size_t crm_requests = 0;
  for (const auto& r : receiver_->requests()) crm_requests += r.target == "/hook" ? 1 : 0;
  EXPECT_LE(crm_requests, 2U);  // the first attempt, plus at most one already in flight
  EXPECT_EQ(status_of(ids.at("crm")), "cancelled");
}

TEST_F(ServiceTest, ChangedUrlAndSecretApplyToTheNextAttempt) {
  receiver_->set_default_reply(Reply::with_status(500));
  schedule_ = "[0s, 2s, 2s]";
  start({{"crm", receiver_->url(), "whsec-old"}});
  const auto id = post()["crm"];
  ASSERT_TRUE(receiver_->wait_for_requests(1, std::chrono::seconds(10)));
  auto second = make_receiver();
  reload({{"crm", second->url("/new"), "whsec-new"}});
  ASSERT_TRUE(wait_status(id, "succeeded", std::chrono::seconds(15))) << daemon_->log();
  ASSERT_EQ(second->request_count(), 1U);
  const auto r = second->requests()[0];
  EXPECT_EQ(r.target, "/new");
  EXPECT_EQ(r.header("X-Relay-Delivery"), id);
  EXPECT_NE(r.header("X-Relay-Signature"), receiver_->requests()[0].header("X-Relay-Signature"));
  EXPECT_EQ(r.body, receiver_->requests()[0].body);
}

TEST_F(ServiceTest, InvalidReloadIsLoggedAndTheOldConfigStays) {
  start({{"crm", receiver_->url()}});
  daemon_->rewrite_config("server:\n  listen: [broken\n");
  daemon_->signal(SIGHUP);
  ASSERT_TRUE(wait_until([&] { return count_in_log("reload rejected") > 0; })) << daemon_->log();
  const auto id = post()["crm"];
  EXPECT_TRUE(wait_status(id, "succeeded")) << daemon_->log();
  EXPECT_TRUE(daemon_->running());
}

TEST_F(ServiceTest, SigtermLetsInFlightAttemptsFinishAndRefusesIntake) {
  Reply slow;
  slow.delay = std::chrono::milliseconds(1500);
  receiver_->set_default_reply(slow);
  cfg_.shutdown_grace = "5s";
  start({{"crm", receiver_->url()}});
  const auto id = post()["crm"];
  ASSERT_TRUE(receiver_->wait_for_requests(1, std::chrono::seconds(10)));
  daemon_->signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  try {
    HttpTestClient late("127.0.0.1", cfg_.port);
    const auto r = late.post_json("/v1/events", R"({"event":"ticket.created","data":{}})");
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "shutting_down");
  } catch (const std::exception&) {
    // Refusing the connection outright is also acceptable.
  }
  const auto code = daemon_->wait(std::chrono::seconds(10));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << daemon_->log();
  EXPECT_EQ(status_of(id), "succeeded");  // the in-flight attempt finished and was recorded
}

TEST_F(ServiceTest, SigtermAfterGraceExitsAndTheAttemptIsRetriedAfterRestart) {
  Reply very_slow;
  very_slow.delay = std::chrono::milliseconds(4000);
  receiver_->set_default_reply(very_slow);
  cfg_.shutdown_grace = "1s";
  start({{"crm", receiver_->url()}});
  const auto id = post()["crm"];
  ASSERT_TRUE(receiver_->wait_for_requests(1, std::chrono::seconds(10)));
  const auto t0 = std::chrono::steady_clock::now();
  daemon_->signal(SIGTERM);
  const auto code = daemon_->wait(std::chrono::seconds(10));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << daemon_->log();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(3500));
  EXPECT_NE(status_of(id), "succeeded");

  receiver_->set_default_reply(Reply{});
  daemon_->start(cfg_.port);
  EXPECT_TRUE(wait_status(id, "succeeded")) << daemon_->log();
}

TEST_F(ServiceTest, AdminEndpoints) {
  write_file(dir_.path() / "token", "adm1n-t0ken");
  cfg_.server_extra = "  token_file: " + (dir_.path() / "token").string() + "\n";
  receiver_->push_reply(Reply::with_status(500, "first fails"));
  start({{"crm", receiver_->url()}});
  const std::vector<std::pair<std::string, std::string>> auth = {
      {"Authorization", "Bearer adm1n-t0ken"}};
  const auto r0 = client_->post_json("/v1/events", R"({"event":"ticket.created","data":{}})", auth);
  ASSERT_EQ(r0.status, 202);
  const std::string id = json::parse(r0.body)["deliveries"][0]["id"];
  ASSERT_TRUE(wait_status(id, "succeeded")) << daemon_->log();

  // Token rule: every /v1 endpoint and /metrics; not /healthz or /readyz.
  for (const auto& path : {"/v1/webhooks", "/v1/deliveries", "/metrics"}) {
    EXPECT_EQ(client_->request("GET", path).status, 401) << path;
  }
  EXPECT_EQ(client_->request("GET", "/healthz").status, 200);
  EXPECT_EQ(client_->request("GET", "/readyz").status, 200);

  auto r = client_->request("GET", "/v1/webhooks", "", auth);
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = json::parse(r.body);
  ASSERT_EQ(j["webhooks"].size(), 1U);
  EXPECT_EQ(j["webhooks"][0]["id"], "crm");
  EXPECT_EQ(j["webhooks"][0]["deliveries"]["succeeded"], 1);
  EXPECT_FALSE(j["webhooks"][0]["last_success_at"].is_null());
  EXPECT_FALSE(j["webhooks"][0]["last_failure_at"].is_null());
  EXPECT_EQ(r.body.find("whsec"), std::string::npos);  // no secrets

  r = client_->request("GET", "/v1/deliveries?webhook=crm&status=succeeded&limit=10", "", auth);
  ASSERT_EQ(r.status, 200) << r.body;
  j = json::parse(r.body);
  ASSERT_EQ(j["deliveries"].size(), 1U);
  EXPECT_EQ(j["deliveries"][0]["id"], id);
  r = client_->request("GET", "/v1/deliveries?status=failed", "", auth);
  EXPECT_EQ(json::parse(r.body)["deliveries"].size(), 0U);
  r = client_->request("GET", "/v1/deliveries?status=bogus", "", auth);
  EXPECT_EQ(r.status, 400);
  r = client_->request("GET", "/v1/deliveries?limit=0", "", auth);
  EXPECT_EQ(r.status, 400);

  r = client_->request("GET", "/v1/deliveries/" + id, "", auth);
  ASSERT_EQ(r.status, 200) << r.body;
  j = json::parse(r.body);
  EXPECT_EQ(j["status"], "succeeded");
  ASSERT_EQ(j["attempts"].size(), 2U);
  EXPECT_EQ(j["attempts"][0]["response_status"], 500);
  EXPECT_EQ(j["attempts"][0]["response_body"], "first fails");
  EXPECT_EQ(j["attempts"][1]["outcome"], "succeeded");

  r = client_->request("GET", "/v1/deliveries/dlv_nope", "", auth);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "not_found");
  r = client_->request("POST", "/v1/deliveries/dlv_nope/redeliver", "", auth);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "not_found");

  // Redeliver: due now, one more attempt counted, same delivery id.
  const auto before = receiver_->request_count();
  r = client_->request("POST", "/v1/deliveries/" + id + "/redeliver", "", auth);
  EXPECT_EQ(r.status, 202) << r.body;
  ASSERT_TRUE(receiver_->wait_for_requests(before + 1, std::chrono::seconds(10)));
  EXPECT_EQ(receiver_->requests().back().header("X-Relay-Delivery"), id);
  ASSERT_TRUE(wait_until([&] {
    Db db(cfg_.db);
    return db.value("SELECT status || attempt_count FROM deliveries WHERE id='" + id + "'") ==
           "succeeded3";
  }));

  // Send Test: a sample payload now, the answer carries status, latency and body.
  const auto tests_before = receiver_->request_count();
  r = client_->post_json("/v1/webhooks/crm/test", R"({"event":"message.created"})", auth);
  ASSERT_EQ(r.status, 200) << r.body;
  j = json::parse(r.body);
  EXPECT_EQ(j["status"], 200);
  EXPECT_EQ(j["body"], "ok");
  EXPECT_TRUE(j["latency_ms"].is_number());
  ASSERT_EQ(receiver_->request_count(), tests_before + 1);
  const auto test_req = receiver_->requests().back();
  EXPECT_EQ(test_req.header("X-Relay-Event"), "message.created");
  EXPECT_TRUE(json::parse(test_req.body)["data"].contains("message"));
  // SPEC §9: a real delivery, marked as a test, attempted once and in the delivery log.
  EXPECT_EQ(test_req.header("X-Relay-Test"), "true");
  const auto test_event = json::parse(test_req.body)["id"].get<std::string>();
  EXPECT_EQ(test_event.rfind("evt_test_", 0), 0U) << test_event;
  EXPECT_EQ(j["event_id"], test_event);
  EXPECT_EQ(j["delivery_id"], test_req.header("X-Relay-Delivery"));
  EXPECT_EQ(j["outcome"], "succeeded");
  {
    Db db(cfg_.db);
    EXPECT_EQ(db.value("SELECT status || attempt_count FROM deliveries WHERE event_id='" +
                       test_event + "'"),
              "succeeded1");
    EXPECT_EQ(db.value("SELECT outcome || ' ' || response_status FROM delivery_log WHERE "
                       "event_id='" +
                       test_event + "'"),
              "succeeded 200");
  }
  r = client_->post_json("/v1/webhooks/nope/test", R"({"event":"message.created"})", auth);
  EXPECT_EQ(r.status, 404);
  r = client_->post_json("/v1/webhooks/crm/test", R"({"event":"nope.nope"})", auth);
  EXPECT_EQ(r.status, 422);

  // Metrics after known traffic: 1 event; attempts 500 (retry) + 200 + redeliver 200.
  r = client_->request("GET", "/metrics", "", auth);
  ASSERT_EQ(r.status, 200);
  const auto metric = [&](const std::string& name) -> double {
    const std::regex re("(^|\\n)" + std::regex_replace(name, std::regex(R"([{}"\\])"), R"(\$&)") +
                        " ([0-9.e+-]+)");
    std::smatch m;
    if (!std::regex_search(r.body, m, re)) return -1;
    return std::stod(m[2]);
  };
  EXPECT_EQ(metric("relayd_events_received_total"), 1) << r.body;
  EXPECT_EQ(metric(R"(relayd_attempts_total{webhook="crm",outcome="retry"})"), 1) << r.body;
  EXPECT_EQ(metric(R"(relayd_attempts_total{webhook="crm",outcome="succeeded"})"), 2) << r.body;
  // The event's delivery and the test send's.
  EXPECT_EQ(metric(R"(relayd_deliveries{webhook="crm",status="succeeded"})"), 2) << r.body;
  EXPECT_EQ(metric(R"(relayd_attempt_duration_seconds_count{webhook="crm"})"), 3) << r.body;
  EXPECT_EQ(metric("relayd_queue_depth"), 0) << r.body;
}

TEST_F(ServiceTest, SendTestAndRedeliverCommands) {
  receiver_->push_reply(Reply::with_status(404, "gone"));
  start({{"crm", receiver_->url()}});
  const auto id = post()["crm"];
  ASSERT_TRUE(wait_status(id, "failed")) << daemon_->log();

  const auto cfg = daemon_->config_path().string();
  auto [code, out] = run_command(relayd_binary() +
                                 " send-test crm --event ticket.created --config " + cfg + " 2>&1");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("HTTP 200"), std::string::npos) << out;
  EXPECT_NE(out.find("ok"), std::string::npos) << out;

  std::tie(code, out) = run_command(
      relayd_binary() + " send-test nope --event ticket.created --config " + cfg + " 2>&1");
  EXPECT_EQ(code, 1) << out;

  std::tie(code, out) =
      run_command(relayd_binary() + " redeliver " + id + " --config " + cfg + " 2>&1");
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(wait_status(id, "succeeded")) << daemon_->log();
  std::tie(code, out) =
      run_command(relayd_binary() + " redeliver dlv_missing --config " + cfg + " 2>&1");
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("dlv_missing"), std::string::npos) << out;

  daemon_->kill_hard();
  std::tie(code, out) =
      run_command(relayd_binary() + " redeliver " + id + " --config " + cfg + " 2>&1");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("is the daemon running"), std::string::npos) << out;
}

TEST_F(ServiceTest, RetentionPrunesExactlyWhatIsOlderThanTheWindow) {
  start({{"crm", receiver_->url()}});
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(post()["crm"]);
  for (const auto& id : ids) ASSERT_TRUE(wait_status(id, "succeeded"));
  daemon_->signal(SIGTERM);
  ASSERT_TRUE(daemon_->wait(std::chrono::seconds(10)).has_value());

  // Age two finished deliveries (with their events and attempts) past the 30-day window and
  // one just inside it.
  const auto age = [&](const std::string& id, const std::string& when) {
    const auto sql = "UPDATE attempts SET started_at='" + when + "' WHERE delivery_id='" + id +
                     "'; UPDATE deliveries SET created_at='" + when + "', updated_at='" + when +
                     "' WHERE id='" + id + "'; UPDATE events SET created_at='" + when +
                     "' WHERE id=(SELECT event_id FROM deliveries WHERE id='" + id + "');";
    const auto [code, out] = run_command("sqlite3 " + cfg_.db.string() + " \"" + sql + "\" 2>&1");
    ASSERT_EQ(code, 0) << out;
  };
  age(ids[0], "2000-01-01T00:00:00.000Z");
  const auto [c1, old_stamp] = run_command("date -u -d '31 days ago' +%Y-%m-%dT%H:%M:%S.000Z");
  const auto [c2, recent_stamp] = run_command("date -u -d '29 days ago' +%Y-%m-%dT%H:%M:%S.000Z");
  age(ids[1], old_stamp.substr(0, old_stamp.size() - 1));
  age(ids[2], recent_stamp.substr(0, recent_stamp.size() - 1));

  daemon_->start(cfg_.port);
  ASSERT_TRUE(wait_until([&] {
    Db db(cfg_.db);
    return db.count("SELECT count(*) FROM deliveries") == 2;
  })) << daemon_->log();
  Db db(cfg_.db);
  EXPECT_EQ(
      db.count("SELECT count(*) FROM deliveries WHERE id IN ('" + ids[2] + "','" + ids[3] + "')"),
      2);
  EXPECT_EQ(db.count("SELECT count(*) FROM attempts"), 2);
  EXPECT_EQ(db.count("SELECT count(*) FROM events"), 2);
}

}  // namespace
}  // namespace relay::testing
