// Webhooks managed over the API (SPEC §11), against the real daemon, a real HTTPS receiver and
// the real SQLite file; signatures checked with the official `standardwebhooks` package
// (tests/js/verify.js), so a secret that came back wrong, or a rotation that dropped the old
// secret, fails here.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
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
using relay::test::RecordedRequest;
using relay::test::Reply;
using relay::test::TestReceiver;
using namespace std::chrono_literals;

// base64 of "0123456789abcdef0123456789abcdef" and of another 32 bytes.
const std::string kKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const std::string kOtherKey = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

std::filesystem::path js_dir() {
  return std::filesystem::path(RELAY_SOURCE_DIR) / "tests/js";
}

std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class WebhookApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(js_dir() / "node_modules/standardwebhooks"))
        << "tests/js/node_modules is missing: run `bash scripts/install-js-deps`";
    test_certs().write_pem_files(dir_.path());
    write_file(dir_.path() / "secret.key", kKey + "\n");
    cfg_.port = free_port();
    cfg_.db = dir_.path() / "relayd.db";
    cfg_.storage_extra = "  secret_key_file: " + (dir_.path() / "secret.key").string() + "\n";
    cfg_.delivery_yaml =
        "  timeout: 2s\n  retry_schedule: [0s, 1s, 1s, 1s, 1s, 1s, 1s, 1s]\n"
        "  ca_file: " +
        (dir_.path() / "ca.pem").string() + "\n  allow_private_networks: true\n";
    relay::test::ReceiverOptions o;
    o.certificate = test_certs().server();
    receiver_ = std::make_unique<TestReceiver>(o);
    cfg_.webhooks_yaml = "  - id: filehook\n    url: " + receiver_->url("/file") +
                         "\n    secret: file-secret\n    events: [sla.warning]\n";
  }

  void start() {
    daemon_ = std::make_unique<DaemonProcess>(dir_.path(), cfg_.yaml());
    daemon_->start(cfg_.port);
    client_ = std::make_unique<HttpTestClient>("127.0.0.1", cfg_.port);
  }

  void restart() {
    daemon_->signal(SIGTERM);
    ASSERT_EQ(daemon_->wait(10s), 0) << daemon_->log();
    client_.reset();
    daemon_->start(cfg_.port);
    client_ = std::make_unique<HttpTestClient>("127.0.0.1", cfg_.port);
  }

  HttpReply call(const std::string& method, const std::string& target, const std::string& body) {
    return client_->request(method, target, body, {{"Content-Type", "application/json"}});
  }

  json create(const json& spec) {
    const auto r = call("POST", "/v1/webhooks", spec.dump());
    EXPECT_EQ(r.status, 201) << r.body;
    return json::parse(r.body);
  }

  std::string post_event(const std::string& type = "ticket.created") {
    const auto r = client_->post_json(
        "/v1/events", R"({"event":")" + type + R"(","data":{"ticket":{"id":"tkt_1"}}})");
    EXPECT_EQ(r.status, 202) << r.body;
    const auto j = json::parse(r.body);
    return j["deliveries"].empty() ? std::string() : j["deliveries"][0]["id"].get<std::string>();
  }

  json delivery(const std::string& id) {
    const auto r = call("GET", "/v1/deliveries/" + id, "");
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body);
  }

  bool status_becomes(const std::string& delivery_id, const std::string& status,
                      std::chrono::milliseconds timeout = 10s) {
    return wait_until([&] { return delivery(delivery_id)["status"] == status; }, timeout);
  }

  // relayd_attempts_in_flight from /metrics (-1 when it cannot be read).
  long attempts_in_flight() {
    const auto body = call("GET", "/metrics", "").body;
    const std::string name = "\nrelayd_attempts_in_flight ";
    const auto at = body.find(name);
    return at == std::string::npos ? -1 : std::stol(body.substr(at + name.size()));
  }

  RecordedRequest nth_request(std::size_t n) {
    EXPECT_TRUE(receiver_->wait_for_requests(n + 1, 10s)) << daemon_->log();
    return receiver_->requests().at(n);
  }

  /// The official Standard Webhooks library on `req` with `secret`.
  bool verifies(const std::string& secret, const RecordedRequest& req) {
    json headers = json::object();
    for (const auto& [k, v] : req.headers) headers[k] = v;
    const auto file = dir_.path() / ("req" + std::to_string(++files_) + ".json");
    write_file(file, json{{"headers", headers}, {"body", req.body}}.dump());
    const auto [code, out] = run_command("node " + (js_dir() / "verify.js").string() +
                                         " standard '" + secret + "' " + file.string());
    EXPECT_TRUE(out == "verified\n" || out.rfind("rejected", 0) == 0) << out;
    return code == 0;
  }

  json standard_hook(const std::string& path) {
    return {
        {"url", receiver_->url(path)}, {"events", {"ticket.created"}}, {"signature", "standard"}};
  }

  TempDir dir_;
  TestConfig cfg_;
  std::unique_ptr<TestReceiver> receiver_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<HttpTestClient> client_;
  int files_ = 0;
};

TEST_F(WebhookApiTest, CreatedWebhookDeliversAndTheReturnedSecretVerifies) {
  start();
  const auto created = create(standard_hook("/api"));
  const auto id = created["id"].get<std::string>();
  const auto secret = created["secret"].get<std::string>();
  EXPECT_EQ(id.rfind("wh_", 0), 0U) << id;
  EXPECT_EQ(secret.rfind("whsec_", 0), 0U);
  EXPECT_EQ(created["source"], "api");

  // Listed with both sources, and never with a secret again.
  const auto list = call("GET", "/v1/webhooks", "");
  ASSERT_EQ(list.status, 200);
  const auto lj = json::parse(list.body);
  ASSERT_EQ(lj["webhooks"].size(), 2U) << list.body;
  EXPECT_EQ(lj["webhooks"][0]["source"], "config");
  EXPECT_EQ(lj["webhooks"][1]["source"], "api");
  const auto one = call("GET", "/v1/webhooks/" + id, "");
  EXPECT_EQ(one.status, 200);
  EXPECT_EQ(json::parse(one.body)["url"], receiver_->url("/api"));
  for (const auto* body : {&list.body, &one.body}) {
    EXPECT_EQ(body->find(secret), std::string::npos);
    EXPECT_EQ(body->find(secret.substr(6)), std::string::npos);
  }

  const auto delivery_id = post_event();
  const auto req = nth_request(0);
  EXPECT_EQ(req.target, "/api");
  EXPECT_TRUE(verifies(secret, req));
  ASSERT_TRUE(status_becomes(delivery_id, "succeeded"));
  // The exact body, as a string, in the delivery.
  const auto d = delivery(delivery_id);
  EXPECT_EQ(d["payload"], req.body);
  EXPECT_EQ(d.dump().find(secret), std::string::npos);
}

TEST_F(WebhookApiTest, ReloadDryRunDoesNotCountApiWebhooksAsRemoved) {
  // The file knows nothing of API webhooks: a preview of the same file must not report them
  // removed (a reload keeps them), nor count their deliveries as cancelled.
  start();
  const auto created = create(standard_hook("/api"));
  const auto id = created["id"].get<std::string>();
  const auto r = call("POST", "/v1/reload?dry_run=true", "");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto j = json::parse(r.body);
  EXPECT_EQ(j.at("applied"), false);
  EXPECT_EQ(j.at("webhooks").at("removed"), json::array()) << r.body;
  EXPECT_EQ(j.at("webhooks").at("added"), json::array()) << r.body;
  EXPECT_EQ(j.at("deliveries").at("cancelled"), 0) << r.body;
  EXPECT_EQ(j.at("webhooks").at("total"), 2) << r.body;
  EXPECT_EQ(call("GET", "/v1/webhooks/" + id, "").status, 200);
}

TEST_F(WebhookApiTest, BadInputIsRefusedWithTheFieldPath) {
  start();
  auto r = call("POST", "/v1/webhooks",
                json{{"url", receiver_->url("/x")},
                     {"events", {"ticket.created", "message.*", "ticket.creatd"}}}
                    .dump());
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(json::parse(r.body)["error"]["message"],
            "events[2]: unknown event type 'ticket.creatd' (did you mean 'ticket.created'?)")
      << r.body;
  r = call("POST", "/v1/webhooks",
           json{{"url", receiver_->url("/x")}, {"events", {"*"}}, {"colour", "red"}}.dump());
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(
      json::parse(r.body)["error"]["message"].get<std::string>().rfind("colour: unknown key", 0),
      0U)
      << r.body;
  r = call("POST", "/v1/webhooks",
           json{{"url", receiver_->url("/x")}, {"events", {"*"}}, {"enabled", "yes"}}.dump());
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(json::parse(r.body)["error"]["message"],
            "enabled: expected a boolean (found a string)");
  r = call("POST", "/v1/webhooks",
           json{{"url", receiver_->url("/x")}, {"events", {"*"}}, {"max_queued", 1.5}}.dump());
  EXPECT_EQ(r.status, 422) << r.body;
  // The API must not read the server's files, nor expand its environment.
  r = call("POST", "/v1/webhooks",
           json{{"url", receiver_->url("/x")}, {"events", {"*"}}, {"secret_file", "/etc/shadow"}}
               .dump());
  EXPECT_EQ(r.status, 422) << r.body;
  r = call("POST", "/v1/webhooks",
           json{{"url", "http://example.com/${HOME}"}, {"events", {"*"}}}.dump());
  EXPECT_EQ(r.status, 422);
  EXPECT_NE(json::parse(r.body)["error"]["message"].get<std::string>().find("url: "),
            std::string::npos)
      << r.body;
  EXPECT_EQ(call("POST", "/v1/webhooks", "[1]").status, 400);
  EXPECT_EQ(call("POST", "/v1/webhooks", "{").status, 400);
  EXPECT_EQ(call("POST", "/v1/webhooks", std::string(60000, ' ') + "{}    ").status, 422);
  EXPECT_EQ(call("POST", "/v1/webhooks",
                 R"({"url":")" + receiver_->url("/x") + R"(","events":["*"],"headers":{"A":")" +
                     std::string(65500, 'a') + "\"}}")
                .status,
            413);
  // Ids are unique across both sources; the file's webhooks are the file's.
  r = call("POST", "/v1/webhooks",
           json{{"id", "filehook"}, {"url", receiver_->url("/x")}, {"events", {"*"}}}.dump());
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "managed_by_config");
  r = call("PATCH", "/v1/webhooks/filehook", R"({"enabled":false})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "managed_by_config");
  EXPECT_EQ(call("DELETE", "/v1/webhooks/filehook", "").status, 409);
  EXPECT_EQ(call("POST", "/v1/webhooks/filehook/rotate-secret", "{}").status, 409);
  EXPECT_EQ(call("PATCH", "/v1/webhooks/nope", "{}").status, 404);
  EXPECT_EQ(call("DELETE", "/v1/webhooks/nope", "").status, 404);
  create(json{{"id", "dup"}, {"url", receiver_->url("/x")}, {"events", {"*"}}});
  r = call("POST", "/v1/webhooks",
           json{{"id", "dup"}, {"url", receiver_->url("/x")}, {"events", {"*"}}}.dump());
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "already_exists");
  r = call("PATCH", "/v1/webhooks/dup", R"({"id":"other"})");
  EXPECT_EQ(r.status, 422);
  r = call("PATCH", "/v1/webhooks/dup", R"({"events":[]})");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(json::parse(r.body)["error"]["message"].get<std::string>().rfind("events: ", 0), 0U);
}

TEST_F(WebhookApiTest, WithoutAKeyFileCreationIsRefused) {
  cfg_.storage_extra.clear();
  start();
  const auto r =
      call("POST", "/v1/webhooks", json{{"url", receiver_->url("/x")}, {"events", {"*"}}}.dump());
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "no_secret_key");
}

TEST_F(WebhookApiTest, PatchedUrlTakesTheNextAttempt) {
  receiver_->set_handler([](const RecordedRequest& req) {
    return req.target == "/old" ? Reply::with_status(500, "down") : Reply{};
  });
  start();
  const auto id = create(standard_hook("/old"))["id"].get<std::string>();
  const auto delivery_id = post_event();
  ASSERT_TRUE(receiver_->wait_for_requests(1, 10s));
  const auto r = call("PATCH", "/v1/webhooks/" + id, json{{"url", receiver_->url("/new")}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["url"], receiver_->url("/new"));
  ASSERT_TRUE(status_becomes(delivery_id, "succeeded")) << daemon_->log();
  const auto reqs = receiver_->requests();
  EXPECT_EQ(reqs.front().target, "/old");
  EXPECT_EQ(reqs.back().target, "/new");
}

TEST_F(WebhookApiTest, DisablePausesAndDeleteCancelsAndStopsSending) {
  receiver_->set_default_reply(Reply::with_status(500, "down"));
  start();
  const auto id = create(standard_hook("/down"))["id"].get<std::string>();
  const auto delivery_id = post_event();
  ASSERT_TRUE(receiver_->wait_for_requests(1, 10s));
  ASSERT_EQ(call("PATCH", "/v1/webhooks/" + id, R"({"enabled":false})").status, 200);
  ASSERT_TRUE(status_becomes(delivery_id, "paused")) << daemon_->log();
  // New events for a disabled webhook wait as paused too.
  const auto second = post_event();
  EXPECT_EQ(delivery(second)["status"], "paused");
  ASSERT_EQ(call("PATCH", "/v1/webhooks/" + id, R"({"enabled":true})").status, 200);
  ASSERT_TRUE(wait_until([&] { return delivery(delivery_id)["status"] != "paused"; }, 5s));
  const auto del = call("DELETE", "/v1/webhooks/" + id, "");
  ASSERT_EQ(del.status, 200) << del.body;
  ASSERT_TRUE(status_becomes(delivery_id, "cancelled")) << daemon_->log();
  ASSERT_TRUE(status_becomes(second, "cancelled"));
  // An attempt already under way when the DELETE commits still reaches the receiver (a request
  // on the wire cannot be called back); none may start after it.
  ASSERT_TRUE(wait_until([&] { return attempts_in_flight() == 0; }, 10s));
  const auto sent = receiver_->request_count();
  std::this_thread::sleep_for(2500ms);  // two retry intervals
  EXPECT_EQ(receiver_->request_count(), sent);
  EXPECT_EQ(delivery(delivery_id)["status"], "cancelled");  // the last record did not revive it
  EXPECT_EQ(delivery(second)["status"], "cancelled");
  EXPECT_EQ(call("GET", "/v1/webhooks/" + id, "").status, 404);
  // Gone for intake too: no delivery is made for it.
  EXPECT_EQ(post_event(), "");
}

TEST_F(WebhookApiTest, DisablingWhileAnAttemptIsInFlightPausesItWhenItComesBack) {
  // The pause skips a delivery whose attempt is under way (its record decides it); that attempt
  // comes back as a retry after the webhook was disabled, and must end paused, not pending.
  auto slow = Reply::with_status(500, "down");
  slow.delay = 1500ms;
  receiver_->set_default_reply(slow);
  start();
  const auto id = create(standard_hook("/slow"))["id"].get<std::string>();
  const auto delivery_id = post_event();
  ASSERT_TRUE(receiver_->wait_for_requests(1, 10s));  // in flight: answered 1.5 s later
  ASSERT_EQ(call("PATCH", "/v1/webhooks/" + id, R"({"enabled":false})").status, 200);
  EXPECT_EQ(delivery(delivery_id)["status"], "delivering");
  ASSERT_TRUE(status_becomes(delivery_id, "paused")) << daemon_->log();
  const auto sent = receiver_->request_count();
  std::this_thread::sleep_for(2500ms);  // past the retry's due time (1 s)
  EXPECT_EQ(receiver_->request_count(), sent);
  EXPECT_EQ(delivery(delivery_id)["status"], "paused");
}

TEST_F(WebhookApiTest, RotatedSecretsBothVerifyUntilTheOldOneExpires) {
  start();
  const auto created = create(standard_hook("/rot"));
  const auto id = created["id"].get<std::string>();
  const auto old_secret = created["secret"].get<std::string>();
  auto r = call("POST", "/v1/webhooks/" + id + "/rotate-secret", R"({"expires_in":"3s"})");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto rotated = json::parse(r.body);
  const auto new_secret = rotated["secret"].get<std::string>();
  EXPECT_NE(new_secret, old_secret);
  EXPECT_EQ(rotated["previous_secrets"].size(), 1U);
  post_event();
  const auto during = nth_request(0);
  EXPECT_TRUE(verifies(new_secret, during));
  EXPECT_TRUE(verifies(old_secret, during));
  // The rotation answer was the one that returned it: never again.
  EXPECT_EQ(call("GET", "/v1/webhooks/" + id, "").body.find(new_secret.substr(6)),
            std::string::npos);
  std::this_thread::sleep_for(3500ms);
  post_event();
  const auto after = nth_request(1);
  EXPECT_TRUE(verifies(new_secret, after));
  EXPECT_FALSE(verifies(old_secret, after));
  EXPECT_EQ(
      call("POST", "/v1/webhooks/" + id + "/rotate-secret", R"({"expires_in":"soon"})").status,
      422);
}

TEST_F(WebhookApiTest, RestartKeepsEverythingAndTheSecretIsNeverInClear) {
  start();
  auto spec = standard_hook("/keep");
  spec["id"] = "keep";
  spec["headers"] = {{"Authorization", "Bearer header-credential-xyz"}};
  const auto secret = create(spec)["secret"].get<std::string>();
  const auto rotated =
      json::parse(call("POST", "/v1/webhooks/keep/rotate-secret", R"({"expires_in":"1h"})").body);
  const auto new_secret = rotated["secret"].get<std::string>();
  ASSERT_EQ(call("PATCH", "/v1/webhooks/keep", R"({"max_queued":77})").status, 200);
  restart();
  const auto got = json::parse(call("GET", "/v1/webhooks/keep", "").body);
  EXPECT_EQ(got["max_queued"], 77);
  EXPECT_EQ(got["source"], "api");
  EXPECT_EQ(got["previous_secrets"].size(), 1U);
  post_event();
  const auto req = nth_request(0);
  EXPECT_TRUE(verifies(new_secret, req));
  EXPECT_TRUE(verifies(secret, req));
  EXPECT_EQ(req.header("Authorization"), "Bearer header-credential-xyz");
  daemon_->signal(SIGTERM);
  ASSERT_EQ(daemon_->wait(10s), 0);

  // Neither the database (and its WAL) nor the log holds a secret or the header credential.
  for (const auto& file :
       {cfg_.db, std::filesystem::path(cfg_.db.string() + "-wal"), daemon_->log_path()}) {
    if (!std::filesystem::exists(file)) continue;
    const auto bytes = read_bytes(file);
    for (const auto& s : {secret, new_secret}) {
      EXPECT_EQ(bytes.find(s.substr(6)), std::string::npos) << file;
    }
    EXPECT_EQ(bytes.find("header-credential-xyz"), std::string::npos) << file;
  }
  {
    Db db(cfg_.db);
    EXPECT_EQ(db.count("SELECT count(*) FROM api_webhooks WHERE id = 'keep'"), 1);
  }

  // Another key cannot open them: relayd refuses to start rather than sign with garbage.
  write_file(dir_.path() / "secret.key", kOtherKey + "\n");
  daemon_->spawn();
  EXPECT_EQ(daemon_->wait(10s), 1);
  EXPECT_NE(daemon_->log().find("cannot be decrypted with the key in storage.secret_key_file"),
            std::string::npos)
      << daemon_->log();
}

TEST_F(WebhookApiTest, ConcurrentPatchesLeaveOneConsistentState) {
  start();
  create(json{{"id", "busy"}, {"url", receiver_->url("/b")}, {"events", {"*"}}});
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&, i] {
      HttpTestClient c("127.0.0.1", cfg_.port);
      const auto r = c.request(
          "PATCH", "/v1/webhooks/busy",
          json{{"max_queued", 1000 + i}, {"headers", {{"X-N", std::to_string(i)}}}}.dump(),
          {{"Content-Type", "application/json"}});
      if (r.status == 200) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 20);
  const auto before = json::parse(call("GET", "/v1/webhooks/busy", "").body);
  const int n = before["max_queued"].get<int>() - 1000;
  ASSERT_GE(n, 0);
  ASSERT_LT(n, 20);
  // The header came from the same PATCH as max_queued: no request half-applied over another.
  post_event();
  EXPECT_EQ(nth_request(0).header("X-N"), std::to_string(n));
  restart();
  const auto after = json::parse(call("GET", "/v1/webhooks/busy", "").body);
  EXPECT_EQ(after["max_queued"], before["max_queued"]);
}

TEST_F(WebhookApiTest, ListsPageWithACursor) {
  start();
  for (int i = 0; i < 5; ++i) {
    create(json{{"id", "p" + std::to_string(i)}, {"url", receiver_->url("/p")}, {"events", {"*"}}});
  }
  std::vector<std::string> seen;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    const auto r =
        call("GET", "/v1/webhooks?limit=2" + (cursor.empty() ? "" : "&after=" + cursor), "");
    ASSERT_EQ(r.status, 200) << r.body;
    const auto j = json::parse(r.body);
    for (const auto& w : j["webhooks"]) seen.push_back(w["id"]);
    if (j["next_after"].is_null()) break;
    cursor = j["next_after"];
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"filehook", "p0", "p1", "p2", "p3", "p4"}));
  EXPECT_EQ(call("GET", "/v1/webhooks?limit=0", "").status, 400);
  EXPECT_EQ(call("GET", "/v1/webhooks?after=gone", "").status, 400);
}

// Every answer below, success and error alike, must be described by docs/openapi.yaml and
// match its schema (checked by Ajv, tests/js/openapi-check.js).
TEST_F(WebhookApiTest, AnswersMatchTheOpenApiDescription) {
  start();
  json exchanges = json::array();
  const auto record = [&](const std::string& method, const std::string& target,
                          const std::string& templ, const std::string& body) {
    const auto r = call(method, target, body);
    exchanges.push_back(
        {{"method", method}, {"path", templ}, {"status", r.status}, {"body", r.body}});
    return r;
  };
  const auto created =
      json::parse(record("POST", "/v1/webhooks", "/v1/webhooks", standard_hook("/o").dump()).body);
  const std::string id = created["id"];
  const std::string one = "/v1/webhooks/{id}";
  record("POST", "/v1/webhooks", "/v1/webhooks", R"({"url":"x","events":["nope"]})");
  record("POST", "/v1/webhooks", "/v1/webhooks",
         R"({"id":"filehook","url":")" + receiver_->url("/o") + R"(","events":["*"]})");
  record("GET", "/v1/webhooks", "/v1/webhooks", "");
  record("GET", "/v1/webhooks?limit=1", "/v1/webhooks", "");
  record("GET", "/v1/webhooks?limit=0", "/v1/webhooks", "");
  record("GET", "/v1/webhooks/" + id, one, "");
  record("GET", "/v1/webhooks/filehook", one, "");
  record("GET", "/v1/webhooks/nope", one, "");
  record("PATCH", "/v1/webhooks/" + id, one, R"({"headers":{"X-A":"b"}})");
  record("PATCH", "/v1/webhooks/filehook", one, R"({"enabled":false})");
  record("POST", "/v1/webhooks/" + id + "/rotate-secret", "/v1/webhooks/{id}/rotate-secret",
         R"({"expires_in":"1h"})");
  record("POST", "/v1/webhooks/" + id + "/rotate-secret", "/v1/webhooks/{id}/rotate-secret",
         R"({"expires_in":1})");
  record("POST", "/v1/webhooks/" + id + "/test", "/v1/webhooks/{id}/test",
         R"({"event":"ticket.created"})");
  const auto receipt = json::parse(
      record("POST", "/v1/events", "/v1/events", R"({"event":"ticket.created","data":{}})").body);
  record("POST", "/v1/events", "/v1/events", R"({"event":"ticket.nope","data":{}})");
  record("POST", "/v1/events/batch", "/v1/events/batch",
         R"({"events":[{"event":"sla.warning","data":{}}]})");
  const std::string delivery_id = receipt["deliveries"][0]["id"];
  ASSERT_TRUE(status_becomes(delivery_id, "succeeded"));
  record("GET", "/v1/deliveries?limit=1", "/v1/deliveries", "");
  record("GET", "/v1/deliveries/" + delivery_id, "/v1/deliveries/{id}", "");
  record("GET", "/v1/deliveries/dlv_nope", "/v1/deliveries/{id}", "");
  record("POST", "/v1/deliveries/" + delivery_id + "/redeliver", "/v1/deliveries/{id}/redeliver",
         "");
  record("GET", "/v1/stats/webhooks", "/v1/stats/webhooks", "");
  record("GET", "/v1/stats/attempts?hours=24", "/v1/stats/attempts", "");
  record("GET", "/v1/stats/attempts?hours=0", "/v1/stats/attempts", "");
  record("GET", "/v1/stats/summary", "/v1/stats/summary", "");
  record("GET", "/v1/stats/summary?webhook=filehook", "/v1/stats/summary", "");
  record("GET", "/v1/stats/summary?webhook=", "/v1/stats/summary", "");
  record("POST", "/v1/reload", "/v1/reload", "");
  record("GET", "/healthz", "/healthz", "");
  record("GET", "/readyz", "/readyz", "");
  record("GET", "/metrics", "/metrics", "");
  record("DELETE", "/v1/webhooks/" + id, one, "");
  record("DELETE", "/v1/webhooks/" + id, one, "");
  const auto file = dir_.path() / "exchanges.json";
  write_file(file, exchanges.dump());
  const auto [code, out] =
      run_command("node " + (js_dir() / "openapi-check.js").string() + " " +
                  (std::filesystem::path(RELAY_SOURCE_DIR) / "docs/openapi.yaml").string() + " " +
                  file.string());
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, "ok " + std::to_string(exchanges.size()) + "\n");
}

}  // namespace
}  // namespace relay::testing
