// The delivery engine (SPEC §4, §5, §6, §8) end to end: the real daemon, a real HTTPS receiver
// with a certificate this test makes (trusted through delivery.ca_file), the real SQLite file.
#include <gtest/gtest.h>
#include <signal.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "DaemonProcess.hpp"
#include "Db.hpp"
#include "HttpTestClient.hpp"
#include "TestCerts.hpp"
#include "TestConfig.hpp"
#include "TestReceiver.hpp"
#include "Waiting.hpp"
#include "relay/common/Version.hpp"

namespace relay::testing {
namespace {

using nlohmann::json;
using relay::test::Reply;
using relay::test::TestCerts;
using relay::test::TestReceiver;

class DeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test_certs().write_pem_files(dir_.path());
    cfg_.port = free_port();
    cfg_.db = dir_.path() / "relayd.db";
    set_delivery(true);
  }

  void set_delivery(bool allow_private, const std::string& timeout = "2s") {
    cfg_.delivery_yaml = "  concurrency: 16\n  per_webhook_concurrency: 4\n  timeout: " + timeout +
                         "\n  retry_schedule: [0s, 1s, 1s, 1s, 1s, 1s]\n  ca_file: " +
                         (dir_.path() / "ca.pem").string() +
                         "\n  allow_private_networks: " + (allow_private ? "true" : "false") + "\n";
  }

  void add_webhook(const std::string& id, const std::string& url, const std::string& extra = "") {
    cfg_.webhooks_yaml += "  - id: " + id + "\n    url: " + url + "\n    secret: " + secret(id) +
                          "\n    events: [\"*\"]\n" + extra;
  }

  static std::string secret(const std::string& id) { return "whsec-" + id + "-Zq9"; }

  std::unique_ptr<TestReceiver> https_receiver() {
    relay::test::ReceiverOptions o;
    o.tls = true;
    o.certificate = test_certs().server();
    return std::make_unique<TestReceiver>(o);
  }

  void start() {
    daemon_ = std::make_unique<DaemonProcess>(dir_.path(), cfg_.yaml());
    daemon_->start(cfg_.port);
    client_ = std::make_unique<HttpTestClient>("127.0.0.1", cfg_.port);
  }

  // Posts one event and returns (event id, delivery id of the first webhook).
  std::pair<std::string, std::string> post_event(
      const std::string& type = "ticket.created",
      const std::string& data = R"({"ticket":{"id":"tkt_1"}})") {
    const auto r =
        client_->post_json("/v1/events", R"({"event":")" + type + R"(","data":)" + data + "}");
    EXPECT_EQ(r.status, 202) << r.body;
    const auto j = json::parse(r.body);
    return {j.at("id").get<std::string>(), j.at("deliveries").at(0).at("id").get<std::string>()};
  }

  std::string status_of(const std::string& delivery_id) {
    Db db(cfg_.db);
    return db.value("SELECT status FROM deliveries WHERE id='" + delivery_id + "'");
  }

  bool wait_status(const std::string& delivery_id, const std::string& status,
                   std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    return wait_until([&] { return status_of(delivery_id) == status; }, timeout);
  }

  std::vector<std::vector<std::string>> attempts(const std::string& delivery_id) {
    Db db(cfg_.db);
    return db.rows(
        "SELECT attempt_number, outcome, COALESCE(CAST(response_status AS TEXT), 'NULL'), "
        "COALESCE(error, ''), "
        "started_at FROM attempts WHERE delivery_id='" +
        delivery_id + "' ORDER BY attempt_number");
  }

  TempDir dir_;
  TestConfig cfg_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<HttpTestClient> client_;
};

TEST_F(DeliveryTest, SubscriberGetsSpecHeadersExactBodyAndAVerifiableSignature) {
  auto receiver = https_receiver();
  add_webhook("crm", receiver->url("/hooks/relay"), "    headers: { X-Team: support }\n");
  start();
  const auto [event_id, delivery_id] = post_event();
  ASSERT_TRUE(receiver->wait_for_requests(1, std::chrono::seconds(10)));
  const auto req = receiver->requests().at(0);
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/hooks/relay");
  EXPECT_EQ(req.header("Content-Type"), "application/json");
  EXPECT_EQ(req.header("User-Agent"), std::string("relayd/") + relay::kVersion);
  EXPECT_EQ(req.header("X-Relay-Event"), "ticket.created");
  EXPECT_EQ(req.header("X-Relay-Delivery"), delivery_id);
  EXPECT_EQ(req.header("X-Team"), "support");
  const auto signature = req.header("X-Relay-Signature");
  EXPECT_EQ(signature.rfind("sha256=", 0), 0U) << signature;
  EXPECT_EQ(signature.size(), 7U + 64U);

  Db db(cfg_.db);
  const auto payload = db.value("SELECT payload FROM events WHERE id='" + event_id + "'");
  EXPECT_EQ(req.body, payload);
  const auto body = json::parse(req.body);
  EXPECT_EQ(body.at("id"), event_id);
  EXPECT_EQ(body.at("event"), "ticket.created");
  EXPECT_EQ(body.at("data"), json::parse(R"({"ticket":{"id":"tkt_1"}})"));

  // The user guide's Python snippet, verbatim, must accept it.
  write_file(dir_.path() / "body.json", req.body);
  write_file(dir_.path() / "verify.py",
             "import hmac\nimport hashlib\nimport sys\n\n"
             "def verify_signature(payload, signature, secret):\n"
             "    expected = hmac.new(\n"
             "        secret.encode(),\n"
             "        payload.encode(),\n"
             "        hashlib.sha256\n"
             "    ).hexdigest()\n\n"
             "    return f\"sha256={expected}\" == signature\n\n"
             "payload = open(sys.argv[1], encoding='utf-8').read()\n"
             "print(verify_signature(payload, sys.argv[2], sys.argv[3]))\n");
  auto [code, out] = run_command("python3 " + (dir_.path() / "verify.py").string() + " " +
                                 (dir_.path() / "body.json").string() + " '" + signature + "' '" +
                                 secret("crm") + "'");
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, "True\n");
  std::tie(code, out) =
      run_command("python3 " + (dir_.path() / "verify.py").string() + " " +
                  (dir_.path() / "body.json").string() + " '" + signature + "' 'wrong-secret'");
  EXPECT_EQ(out, "False\n");

  ASSERT_TRUE(wait_status(delivery_id, "succeeded")) << daemon_->log();
  const auto rows = attempts(delivery_id);
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0][1], "succeeded");
  EXPECT_EQ(rows[0][2], "200");
  // No secret anywhere in the database or the log.
  const auto [dump_code, dump] = run_command("sqlite3 " + cfg_.db.string() + " .dump");
  EXPECT_EQ(dump_code, 0);
  EXPECT_EQ(dump.find(secret("crm")), std::string::npos);
  EXPECT_EQ(daemon_->log().find(secret("crm")), std::string::npos);
}

TEST_F(DeliveryTest, ServerErrorIsRetriedSixTimesThenFailedWithIdenticalRequests) {
  auto receiver = https_receiver();
  receiver->set_default_reply(Reply::with_status(500, "boom"));
  add_webhook("crm", receiver->url());
  start();
  const auto [event_id, delivery_id] = post_event();
  ASSERT_TRUE(wait_status(delivery_id, "failed", std::chrono::seconds(30))) << daemon_->log();
  const auto reqs = receiver->requests();
  ASSERT_EQ(reqs.size(), 6U);
  for (const auto& r : reqs) {
    EXPECT_EQ(r.body, reqs[0].body);
    EXPECT_EQ(r.header("X-Relay-Delivery"), delivery_id);
    EXPECT_EQ(r.header("X-Relay-Signature"), reqs[0].header("X-Relay-Signature"));
  }
  const auto rows = attempts(delivery_id);
  ASSERT_EQ(rows.size(), 6U);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(rows[i][1], "retry");
    EXPECT_EQ(rows[i][2], "500");
  }
  EXPECT_EQ(rows[5][1], "failed");
  Db db(cfg_.db);
  EXPECT_EQ(db.value("SELECT attempt_count || ' ' || last_status_code FROM deliveries WHERE id='" +
                     delivery_id + "'"),
            "6 500");
  EXPECT_EQ(db.value("SELECT response_body FROM attempts WHERE delivery_id='" + delivery_id +
                     "' AND attempt_number=1"),
            "boom");
  // Nothing after the last attempt.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(receiver->request_count(), 6U);
}

TEST_F(DeliveryTest, ClientErrorFailsAtOnce) {
  auto receiver = https_receiver();
  receiver->set_default_reply(Reply::with_status(404, "no such hook"));
  add_webhook("crm", receiver->url());
  start();
  const auto [event_id, delivery_id] = post_event();
  ASSERT_TRUE(wait_status(delivery_id, "failed")) << daemon_->log();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(receiver->request_count(), 1U);
  const auto rows = attempts(delivery_id);
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0][1], "failed");
  EXPECT_EQ(rows[0][2], "404");
}

TEST_F(DeliveryTest, TooManyRequestsHonoursRetryAfter) {
  auto receiver = https_receiver();
  Reply slow_down = Reply::with_status(429, "slow down");
  slow_down.headers = {{"Retry-After", "3"}};
  receiver->push_reply(slow_down);
  add_webhook("crm", receiver->url());
  start();
  const auto [event_id, delivery_id] = post_event();
  ASSERT_TRUE(wait_status(delivery_id, "succeeded", std::chrono::seconds(15))) << daemon_->log();
  const auto reqs = receiver->requests();
  ASSERT_EQ(reqs.size(), 2U);
  // The schedule says 1s; Retry-After: 3 is larger and wins.
  EXPECT_GE(reqs[1].received_at - reqs[0].received_at, std::chrono::milliseconds(2900));
  const auto rows = attempts(delivery_id);
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_EQ(rows[0][1], "retry");
  EXPECT_EQ(rows[0][2], "429");
}

TEST_F(DeliveryTest, RedirectIsRetriedAndNeverFollowed) {
  auto receiver = https_receiver();
  Reply redirect = Reply::with_status(302, "");
  redirect.headers = {{"Location", receiver->url("/elsewhere")}};
  receiver->push_reply(redirect);
  add_webhook("crm", receiver->url("/hook"));
  start();
  const auto [event_id, delivery_id] = post_event();
  ASSERT_TRUE(wait_status(delivery_id, "succeeded")) << daemon_->log();
  for (const auto& r : receiver->requests()) EXPECT_EQ(r.target, "/hook");
  const auto rows = attempts(delivery_id);
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_EQ(rows[0][2], "302");
  EXPECT_EQ(rows[0][1], "retry");
}

TEST_F(DeliveryTest, TransportFailuresAreRetriedWithTheErrorRecorded) {
  // timeout, then a connection closed without an answer, then success.
  auto receiver = https_receiver();
  Reply too_slow;
  too_slow.delay = std::chrono::milliseconds(3500);  // the attempt timeout is 2s
  receiver->push_reply(too_slow);
  Reply hang_up;
  hang_up.close_without_response = true;
  receiver->push_reply(hang_up);
  add_webhook("crm", receiver->url());
  start();
  const auto [event_id, delivery_id] = post_event();
  ASSERT_TRUE(wait_status(delivery_id, "succeeded", std::chrono::seconds(30))) << daemon_->log();
  const auto rows = attempts(delivery_id);
  ASSERT_EQ(rows.size(), 3U) << daemon_->log();
  EXPECT_EQ(rows[0][1], "retry");
  EXPECT_EQ(rows[0][2], "NULL");
  EXPECT_NE(rows[0][3].find("timeout"), std::string::npos) << rows[0][3];
  EXPECT_EQ(rows[1][1], "retry");
  EXPECT_FALSE(rows[1][3].empty());
  EXPECT_EQ(rows[2][1], "succeeded");
  const auto reqs = receiver->requests();
  ASSERT_EQ(reqs.size(), 3U);
  EXPECT_EQ(reqs[0].body, reqs[2].body);
  EXPECT_EQ(reqs[0].header("X-Relay-Delivery"), reqs[2].header("X-Relay-Delivery"));
}

TEST_F(DeliveryTest, RefusedConnectionIsRetried) {
  const auto closed_port = free_port();
  add_webhook("crm", "https://127.0.0.1:" + std::to_string(closed_port) + "/hook");
  start();
  const auto [event_id, delivery_id] = post_event();
  ASSERT_TRUE(wait_until([&] { return attempts(delivery_id).size() >= 2; })) << daemon_->log();
  const auto rows = attempts(delivery_id);
  EXPECT_EQ(rows[0][1], "retry");
  EXPECT_NE(rows[0][3].find("refused"), std::string::npos) << rows[0][3];
  EXPECT_EQ(status_of(delivery_id).find("succeeded"), std::string::npos);
}

TEST_F(DeliveryTest, UntrustedCertificateAndWrongHostNameAreRetried) {
  relay::test::ReceiverOptions untrusted;
  untrusted.certificate = TestCerts::self_signed();
  TestReceiver self_signed(untrusted);
  relay::test::ReceiverOptions wrong_name;
  wrong_name.certificate = test_certs().make_leaf({"wrong.example"}, {});
  TestReceiver misnamed(wrong_name);
  add_webhook("selfsigned", self_signed.url());
  add_webhook("misnamed", misnamed.url("/hook", "localhost"));
  start();
  const auto r = client_->post_json("/v1/events", R"({"event":"ticket.created","data":{}})");
  ASSERT_EQ(r.status, 202);
  const auto deliveries = json::parse(r.body).at("deliveries");
  std::map<std::string, std::string> by_webhook;
  for (const auto& d : deliveries) {
    by_webhook[d.at("webhook").get<std::string>()] = d.at("id").get<std::string>();
  }
  for (const auto& [webhook, id] : by_webhook) {
    ASSERT_TRUE(wait_until([&, id = id] { return !attempts(id).empty(); })) << webhook;
    const auto rows = attempts(id);
    EXPECT_EQ(rows[0][1], "retry") << webhook;
    EXPECT_EQ(rows[0][2], "NULL") << webhook;
    EXPECT_NE(rows[0][3].find("tls"), std::string::npos) << webhook << ": " << rows[0][3];
  }
  EXPECT_NE(attempts(by_webhook["misnamed"])[0][3].find("host"), std::string::npos)
      << attempts(by_webhook["misnamed"])[0][3];
  // The handshake failed, so no request ever reached either receiver.
  EXPECT_EQ(self_signed.request_count(), 0U);
  EXPECT_EQ(misnamed.request_count(), 0U);
}

TEST_F(DeliveryTest, PrivateTargetIsRefusedWithoutAllowPrivateNetworks) {
  set_delivery(false);
  auto receiver = https_receiver();
  add_webhook("crm", receiver->url());
  start();
  const auto [event_id, delivery_id] = post_event();
  ASSERT_TRUE(wait_until([&] { return !attempts(delivery_id).empty(); })) << daemon_->log();
  const auto rows = attempts(delivery_id);
  EXPECT_NE(rows[0][3].find("private"), std::string::npos) << rows[0][3];
  EXPECT_EQ(receiver->request_count(), 0U);
  EXPECT_EQ(receiver->connections_accepted(), 0U);
}

TEST_F(DeliveryTest, SigkillWithRequestsInFlightLosesNoDelivery) {
  auto receiver = https_receiver();
  Reply slow;
  slow.delay = std::chrono::milliseconds(1500);
  receiver->set_default_reply(slow);
  add_webhook("crm", receiver->url());
  start();
  std::vector<std::string> deliveries;
  for (int i = 0; i < 20; ++i) deliveries.push_back(post_event().second);
  ASSERT_TRUE(receiver->wait_for_requests(4, std::chrono::seconds(10)));
  daemon_->kill_hard();  // 4 requests (per_webhook_concurrency) are waiting for answers
  const auto interrupted = receiver->requests();

  receiver->set_default_reply(Reply{});
  daemon_->start(cfg_.port);
  for (const auto& id : deliveries) {
    ASSERT_TRUE(wait_status(id, "succeeded", std::chrono::seconds(30))) << id << daemon_->log();
  }
  std::map<std::string, std::set<std::string>> bodies;
  std::map<std::string, int> count;
  for (const auto& r : receiver->requests()) {
    bodies[r.header("X-Relay-Delivery")].insert(r.body);
    ++count[r.header("X-Relay-Delivery")];
  }
  for (const auto& id : deliveries) {
    EXPECT_EQ(bodies[id].size(), 1U) << id;  // same body every time
  }
  for (const auto& r : interrupted) {
    EXPECT_GE(count[r.header("X-Relay-Delivery")], 2) << "interrupted delivery not resent";
  }
}

// Sixteen webhooks on one receiver (a fan-out to one origin) share its pooled connections: all
// that the global limit lets be in flight at once must go back to the pool, not only
// per_webhook_concurrency of them (the rest used to be closed after each answer and opened again).
TEST_F(DeliveryTest, WebhooksSharingAnOriginReuseConnectionsUpToTheGlobalLimit) {
  auto receiver = https_receiver();
  Reply slow;  // long enough for each wave's 32 attempts to be in flight together
  slow.delay = std::chrono::milliseconds(200);
  receiver->set_default_reply(slow);
  constexpr int kWebhooks = 16;
  for (int i = 0; i < kWebhooks; ++i) {
    add_webhook("fan" + std::to_string(i), receiver->url("/hook/" + std::to_string(i)));
  }
  cfg_.delivery_yaml =
      "  concurrency: 32\n  per_webhook_concurrency: 2\n  timeout: 5s\n"
      "  retry_schedule: [0s, 1s, 1s, 1s, 1s, 1s]\n  ca_file: " +
      (dir_.path() / "ca.pem").string() + "\n  allow_private_networks: true\n";
  start();
  Db db(cfg_.db);
  // Each wave: two events = 32 attempts at once; all answered and recorded (so every connection
  // is back in the pool) before the next wave starts.
  for (int wave = 1; wave <= 3; ++wave) {
    post_event();
    post_event();
    const auto total = static_cast<std::size_t>(wave * 2 * kWebhooks);
    ASSERT_TRUE(receiver->wait_for_requests(total, std::chrono::seconds(20))) << daemon_->log();
    ASSERT_TRUE(wait_until([&] {
      return db.value("SELECT count(*) FROM deliveries WHERE status = 'succeeded'") ==
             std::to_string(total);
    })) << daemon_->log();
  }
  // With the idle cap at per_webhook_concurrency (or the old floor of 16), each later wave
  // would have opened 16 new connections: 64 in all.
  EXPECT_LE(receiver->connections_accepted(), 32U);
}

TEST_F(DeliveryTest, DeliveryLogTellsTheStoryWhileTheDaemonRuns) {
  auto receiver = https_receiver();
  receiver->push_reply(Reply::with_status(503, "busy"));
  add_webhook("crm", receiver->url());
  start();
  const auto [event_id, delivery_id] = post_event();
  ASSERT_TRUE(wait_status(delivery_id, "succeeded")) << daemon_->log();
  // The operator's tool, while relayd keeps running.
  const auto [code, out] =
      run_command("sqlite3 -separator '|' " + cfg_.db.string() +
                  " \"SELECT attempt_number, outcome, response_status, event_type, webhook_id FROM "
                  "delivery_log WHERE delivery_id='" +
                  delivery_id + "' ORDER BY attempt_number\"");
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, "1|retry|503|ticket.created|crm\n2|succeeded|200|ticket.created|crm\n");
  EXPECT_EQ(client_->request("GET", "/healthz").status, 200);
  EXPECT_TRUE(daemon_->running());
}

}  // namespace
}  // namespace relay::testing
