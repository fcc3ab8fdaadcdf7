// Operator paper cuts (issue #21), against the real daemon: reload --dry-run, redeliver of a
// removed webhook's delivery, per-webhook ca_file, clearer messages, dropped ids in the log.
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <nlohmann/json.hpp>
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
  bool enabled = true;
  std::string extra = "";  // more lines of the webhook, indented by 4
  int max_queued = 10000;
};

class OperatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test_certs().write_pem_files(dir_.path());
    cfg_.port = free_port();
    cfg_.db = dir_.path() / "relayd.db";
    receiver_ = make_receiver(test_certs().server());
  }

  static std::unique_ptr<TestReceiver> make_receiver(const relay::test::CertAndKey& cert) {
    relay::test::ReceiverOptions o;
    o.certificate = cert;
    return std::make_unique<TestReceiver>(o);
  }

  std::string yaml(const std::vector<Hook>& hooks, const std::string& db = "") {
    cfg_.delivery_yaml =
        "  concurrency: 16\n  per_webhook_concurrency: 4\n  timeout: 5s\n"
        "  retry_schedule: " +
        schedule_ + "\n  ca_file: " + (dir_.path() / "ca.pem").string() +
        "\n  allow_private_networks: true\n";
    cfg_.webhooks_yaml.clear();
    for (const auto& h : hooks) {
      cfg_.webhooks_yaml += "  - id: " + h.id + "\n    url: " + h.url +
                            "\n    secret: whsec-op\n    events: [\"*\"]\n    enabled: " +
                            (h.enabled ? "true" : "false") +
                            "\n    max_queued: " + std::to_string(h.max_queued) + "\n" + h.extra;
    }
    auto text = cfg_.yaml();
    if (!db.empty()) {
      const auto at = text.find(cfg_.db.string());
      text.replace(at, cfg_.db.string().size(), db);
    }
    return text;
  }

  void start(const std::vector<Hook>& hooks) {
    daemon_ = std::make_unique<DaemonProcess>(dir_.path(), yaml(hooks));
    daemon_->start(cfg_.port);
    client_ = std::make_unique<HttpTestClient>("127.0.0.1", cfg_.port);
  }

  std::map<std::string, std::string> post(const std::string& type = "ticket.created") {
    const auto r = client_->post_json("/v1/events", R"({"event":")" + type + R"(","data":{}})");
    EXPECT_EQ(r.status, 202) << r.body;
    std::map<std::string, std::string> out;
    const auto body = json::parse(r.body);
    for (const auto& d : body.at("deliveries")) {
      out[d.at("webhook").get<std::string>()] = d.at("id").get<std::string>();
    }
    return out;
  }

  std::string db_value(const std::string& sql) {
    Db db(cfg_.db);
    return db.value(sql);
  }

  std::string status_of(const std::string& id) {
    return db_value("SELECT status FROM deliveries WHERE id='" + id + "'");
  }

  bool wait_status(const std::string& id, const std::string& status) {
    return wait_until([&] { return status_of(id) == status; });
  }

  // Every (webhook, status, attempt_count, next_attempt_at) row: what must not change.
  std::string snapshot() {
    Db db(cfg_.db);
    std::string out;
    for (const auto& row : db.rows("SELECT id, webhook_id, status, attempt_count, "
                                   "coalesce(next_attempt_at, '-') FROM deliveries ORDER BY id")) {
      for (const auto& col : row) out += col + " ";
      out += "\n";
    }
    return out;
  }

  std::pair<int, std::string> cli(const std::string& args) {
    return run_command(relayd_binary() + " " + args + " --config " +
                       daemon_->config_path().string() + " 2>&1");
  }

  std::size_t count_in_log(const std::string& needle) {
    const auto log = daemon_->log();
    std::size_t n = 0;
    for (auto pos = log.find(needle); pos != std::string::npos; pos = log.find(needle, pos + 1)) {
      ++n;
    }
    return n;
  }

  TempDir dir_;
  TestConfig cfg_;
  std::string schedule_ = "[0s, 1h]";
  std::unique_ptr<TestReceiver> receiver_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<HttpTestClient> client_;
};

// Item 1: add / remove / rename / disable / enable with deliveries pending, and nothing changes.
TEST_F(OperatorTest, ReloadDryRunListsWhatTheFileWouldDoAndChangesNothing) {
  receiver_->set_default_reply(Reply::with_status(503));  // deliveries stay pending (retry in 1h)
  const auto url = receiver_->url();
  start({{"gone", url + "?gone"},
         {"crm", url + "?crm"},
         {"later", url + "?later", false},
         {"busy", url + "?busy"}});
  std::vector<std::map<std::string, std::string>> posted = {post(), post()};
  for (const auto& ids : posted) {
    for (const char* hook : {"gone", "crm", "busy"}) {
      ASSERT_TRUE(wait_until([&] {
        return db_value("SELECT status || attempt_count FROM deliveries WHERE id='" + ids.at(hook) +
                        "'") == "pending1";
      })) << daemon_->log();
    }
    EXPECT_EQ(status_of(ids.at("later")), "paused");
  }
  const auto before = snapshot();
  const auto applied_before = count_in_log("configuration applied");

  // gone: removed; crm: renamed to crm2 (same URL); later: enabled; busy: disabled; new: added;
  // storage.path needs a restart.
  daemon_->rewrite_config(yaml({{"crm2", url + "?crm"},
                                {"later", url + "?later"},
                                {"busy", url + "?busy", false},
                                {"new", url + "?new"}},
                               (dir_.path() / "other.db").string()));
  const auto [code, out] = cli("reload --dry-run");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("nothing was applied"), std::string::npos) << out;
  EXPECT_NE(out.find("  add webhook crm2 (same URL as removed crm: a rename does not move "
                     "deliveries)\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("  add webhook new\n"), std::string::npos) << out;
  EXPECT_NE(out.find("  remove webhook gone: cancels 2 unfinished deliveries\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("  remove webhook crm: cancels 2 unfinished deliveries\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("  disable webhook busy: pauses 2 pending deliveries\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("  enable webhook later: resumes 2 paused deliveries\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("  need a restart for: storage.path"), std::string::npos) << out;
  EXPECT_EQ(out.find("change webhook busy"), std::string::npos) << "said by its disable line";
  EXPECT_NE(out.find("deliveries: 4 cancelled, 2 paused, 0 dropped, 2 resumed\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("warning: storage.path takes effect only after a restart"), std::string::npos)
      << out;

  // The same through the API: the JSON shape docs/api.md shows.
  const auto r = client_->request("POST", "/v1/reload?dry_run=true");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto j = json::parse(r.body);
  EXPECT_EQ(j.at("applied"), false);
  EXPECT_EQ(j.at("deliveries").at("cancelled"), 4);
  EXPECT_EQ(j.at("webhooks").at("total"), 4);

  // Nothing was applied: same rows, same webhooks, no reload logged, old ids still served.
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(count_in_log("configuration applied"), applied_before) << daemon_->log();
  const auto hooks = client_->request("GET", "/v1/webhooks");
  EXPECT_NE(hooks.body.find(R"("id":"gone")"), std::string::npos) << hooks.body;
  EXPECT_EQ(hooks.body.find(R"("id":"crm2")"), std::string::npos) << hooks.body;

  // A file the daemon would reject: its problems, exit 1, still nothing applied.
  daemon_->rewrite_config(yaml({{"crm", url}}) + "shutdown_grac: 1s\n");
  const auto [bad_code, bad_out] = cli("reload --dry-run");
  EXPECT_EQ(bad_code, 1) << bad_out;
  EXPECT_NE(
      bad_out.find("unknown key 'shutdown_grac' at top level (did you mean 'shutdown_grace'?)"),
      std::string::npos)
      << bad_out;
  EXPECT_NE(bad_out.find("would reject this file"), std::string::npos) << bad_out;
  EXPECT_EQ(snapshot(), before);
}

// Item 2: the webhook is gone, so the delivery could never be sent: 409, exit 1.
TEST_F(OperatorTest, RedeliverOfARemovedWebhooksDeliveryIsRefused) {
  receiver_->set_default_reply(Reply::with_status(503));
  start({{"crm", receiver_->url()}, {"erp", receiver_->url()}});
  const auto ids = post();
  daemon_->rewrite_config(yaml({{"erp", receiver_->url()}}));
  daemon_->signal(SIGHUP);
  ASSERT_TRUE(wait_status(ids.at("crm"), "cancelled")) << daemon_->log();

  const auto r = client_->post_json("/v1/deliveries/" + ids.at("crm") + "/redeliver", "{}");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(json::parse(r.body).at("error").at("code"), "webhook_removed") << r.body;
  const auto [code, out] = cli("redeliver " + ids.at("crm"));
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("belongs to webhook 'crm', which is no longer in the configuration"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("is due again now"), std::string::npos) << out;
  EXPECT_EQ(status_of(ids.at("crm")), "cancelled");
  // A configured webhook's delivery is still redelivered.
  EXPECT_EQ(cli("redeliver " + ids.at("erp")).first, 0);
}

// Item 3: a webhook's ca_file is trusted for it, in addition to delivery.ca_file; a webhook
// without it still refuses the private CA's receiver.
TEST_F(OperatorTest, PerWebhookCaFileIsAddedToTheDefaultTrust) {
  const TestCerts private_ca;  // a second CA, unknown to delivery.ca_file
  write_file(dir_.path() / "private-ca.pem", private_ca.ca_pem());
  auto private_receiver = make_receiver(private_ca.server());
  const std::string extra = "    ca_file: " + (dir_.path() / "private-ca.pem").string() + "\n";
  schedule_ = "[0s]";
  start({{"private", private_receiver->url(), true, extra},
         {"stranger", private_receiver->url() + "?no-ca"},
         // ca_file adds: the default CA still vouches for this receiver.
         {"public", receiver_->url(), true, extra}});
  const auto ids = post();
  EXPECT_TRUE(wait_status(ids.at("private"), "succeeded")) << daemon_->log();
  EXPECT_TRUE(wait_status(ids.at("public"), "succeeded")) << daemon_->log();
  ASSERT_TRUE(wait_status(ids.at("stranger"), "failed")) << daemon_->log();
  EXPECT_NE(db_value("SELECT last_error FROM deliveries WHERE id='" + ids.at("stranger") + "'")
                .find("certificate verify failed"),
            std::string::npos);
  // Pooled connections never mix trust: "stranger" after "private" on the same origin is still
  // refused.
  const auto again = post();
  EXPECT_TRUE(wait_status(again.at("private"), "succeeded")) << daemon_->log();
  EXPECT_TRUE(wait_status(again.at("stranger"), "failed")) << daemon_->log();
  EXPECT_EQ(private_receiver->request_count(), 2U);
}

// Item 5: the messages an operator meets.
TEST_F(OperatorTest, ClearerMessages) {
  write_file(dir_.path() / "token", "t0ken-secret-value\n");
  cfg_.server_extra = "  token_file: " + (dir_.path() / "token").string() + "\n";
  start({{"crm", receiver_->url()}});
  const std::vector<std::pair<std::string, std::string>> auth = {
      {"Authorization", "Bearer t0ken-secret-value"}};

  // GET of a path that is no resource: 404 as for POST; the one action there: 405 + Allow.
  EXPECT_EQ(client_->request("GET", "/v1/webhooks/local", "", auth).status, 404);
  EXPECT_EQ(client_->request("POST", "/v1/webhooks/local", "{}", auth).status, 404);
  const auto wrong_method = client_->request("GET", "/v1/webhooks/crm/test", "", auth);
  EXPECT_EQ(wrong_method.status, 405) << wrong_method.body;
  EXPECT_EQ(wrong_method.header("Allow"), "POST");

  // 401: one log line with the peer, never the token; a burst is rate-limited.
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(
        client_->request("GET", "/v1/webhooks", "", {{"Authorization", "Bearer wrong-tok"}}).status,
        401);
  }
  ASSERT_TRUE(wait_until([&] {
    return count_in_log("http: 401 for GET /v1/webhooks from 127.0.0.1:") > 0;
  })) << daemon_->log();
  EXPECT_LT(count_in_log("http: 401 for"), 5U) << daemon_->log();
  EXPECT_EQ(count_in_log("wrong-tok"), 0U);
  EXPECT_EQ(count_in_log("t0ken-secret-value"), 0U);

  // 1e400 is a number out of range, not "not valid JSON".
  const auto big =
      client_->post_json("/v1/events", R"({"event":"ticket.created","data":{"n":1e400}})", auth);
  EXPECT_EQ(big.status, 400);
  EXPECT_NE(big.body.find("the number 1e400 is out of range"), std::string::npos) << big.body;

  // A reload that changes one restart-only key names that key only.
  daemon_->rewrite_config(yaml({{"crm", receiver_->url()}}, (dir_.path() / "moved.db").string()));
  const auto [code, out] = cli("reload");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("warning: storage.path takes effect only after a restart (the previous "
                     "value stays in use)"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("server.listen"), std::string::npos) << out;

  // The port in use: said once.
  std::filesystem::create_directories(dir_.path() / "second");
  DaemonProcess second(dir_.path() / "second", yaml({}, (dir_.path() / "second.db").string()));
  second.spawn();
  ASSERT_TRUE(second.wait(std::chrono::seconds(20)).has_value());
  const auto log = second.log();
  EXPECT_NE(
      log.find("cannot listen on 127.0.0.1:" + std::to_string(cfg_.port) + ": address in use"),
      std::string::npos)
      << log;
  EXPECT_EQ(log.find("cannot listen on"), log.rfind("cannot listen on")) << log;
}

// Item 6: deliveries dropped by max_queued are logged with their ids.
TEST_F(OperatorTest, DroppedDeliveriesAreLoggedWithTheirIds) {
  start({{"crm", receiver_->url(), false, "", 2}});
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(post().at("crm"));
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_EQ(status_of(ids[i]), "dropped") << i;
    EXPECT_TRUE(wait_until([&] { return count_in_log(ids[i]) > 0; })) << daemon_->log();
  }
  EXPECT_NE(daemon_->log().find("webhook=crm: dropped 1 oldest paused deliveries (more than "
                                "max_queued): " +
                                ids[0]),
            std::string::npos)
      << daemon_->log();
  for (std::size_t i = 3; i < 5; ++i) {
    EXPECT_EQ(status_of(ids[i]), "paused");
    EXPECT_EQ(count_in_log(ids[i]), 0U) << "kept deliveries are not in the drop lines";
  }
}

}  // namespace
}  // namespace relay::testing
