// Signatures receivers already know (SPEC §9), checked with verifiers nobody on this project
// wrote: the official `standardwebhooks` npm package for `standard`/`both`, the user guide's
// Node.js and Python snippets for `relay`/`both` (tests/js/verify.js runs them), and
// `relayd receive` against the real daemon.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "DaemonProcess.hpp"
#include "HttpTestClient.hpp"
#include "TestCerts.hpp"
#include "TestConfig.hpp"
#include "TestReceiver.hpp"
#include "Waiting.hpp"
#include "relay/common/Time.hpp"

namespace relay::testing {
namespace {

using nlohmann::json;
using relay::test::RecordedRequest;
using relay::test::TestReceiver;
using namespace std::chrono_literals;

// Two Standard Webhooks secrets (whsec_ + base64 of 32 bytes), as `relayd gen-secret` makes.
const std::string kNew = "whsec_OC5bbYI1mh4TUL3Y5t8nXBQn8/H6LyB6CoB3tUt/bWg=";
const std::string kOld = "whsec_f1m8QjSgpaqzMnqQ4t9G3PNNKIOXWE2H0RzFZ1qm+Xk=";

std::filesystem::path js_dir() {
  return std::filesystem::path(RELAY_SOURCE_DIR) / "tests/js";
}

class SignatureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Never skip: without the verifiers these tests would prove nothing.
    ASSERT_TRUE(std::filesystem::exists(js_dir() / "node_modules/standardwebhooks"))
        << "tests/js/node_modules is missing: run `bash scripts/install-js-deps` (scripts/test "
           "does)";
    ASSERT_EQ(run_command("node --version").first, 0) << "node is not installed";
    test_certs().write_pem_files(dir_.path());
    cfg_.port = free_port();
    cfg_.db = dir_.path() / "relayd.db";
    cfg_.delivery_yaml = "  timeout: 2s\n  retry_schedule: [0s, 1s, 1s]\n  ca_file: " +
                         (dir_.path() / "ca.pem").string() + "\n  allow_private_networks: true\n";
    relay::test::ReceiverOptions o;
    o.certificate = test_certs().server();
    receiver_ = std::make_unique<TestReceiver>(o);
  }

  static std::string webhook(const std::string& id, const std::string& url,
                             const std::string& secret, const std::string& extra) {
    return "  - id: " + id + "\n    url: " + url + "\n    secret: \"" + secret +
           "\"\n    events: [\"*\"]\n" + extra;
  }

  void start(const std::string& webhooks_yaml) {
    cfg_.webhooks_yaml = webhooks_yaml;
    daemon_ = std::make_unique<DaemonProcess>(dir_.path(), cfg_.yaml());
    daemon_->start(cfg_.port);
    client_ = std::make_unique<HttpTestClient>("127.0.0.1", cfg_.port);
  }

  void post_event(const std::string& data = R"({"ticket":{"id":"tkt_1","note":"café ✓"}})") {
    const auto r =
        client_->post_json("/v1/events", R"({"event":"ticket.created","data":)" + data + "}");
    ASSERT_EQ(r.status, 202) << r.body;
  }

  RecordedRequest nth_request(std::size_t n) {
    EXPECT_TRUE(receiver_->wait_for_requests(n + 1, 10s)) << daemon_->log();
    return receiver_->requests().at(n);
  }

  /// Runs tests/js/verify.js on `req`: true when that verifier accepts it.
  bool js_verifies(const std::string& scheme, const std::string& secret, const RecordedRequest& req,
                   std::string* why = nullptr) {
    json headers = json::object();
    for (const auto& [k, v] : req.headers) headers[k] = v;
    const auto file = dir_.path() / ("req" + std::to_string(++files_) + ".json");
    write_file(file, json{{"headers", headers}, {"body", req.body}}.dump());
    const auto [code, out] = run_command("node " + (js_dir() / "verify.js").string() + " " +
                                         scheme + " '" + secret + "' " + file.string());
    if (why) *why = out;
    EXPECT_TRUE(out == "verified\n" || out.rfind("rejected", 0) == 0) << out;
    return code == 0;
  }

  /// The user guide's Python snippet, verbatim, on X-Relay-Signature.
  bool python_verifies(const std::string& secret, const RecordedRequest& req) {
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
    const auto [code, out] = run_command("python3 " + (dir_.path() / "verify.py").string() + " " +
                                         (dir_.path() / "body.json").string() + " '" +
                                         req.header("X-Relay-Signature") + "' '" + secret + "'");
    EXPECT_EQ(code, 0);
    return out == "True\n";
  }

  TempDir dir_;
  TestConfig cfg_;
  std::unique_ptr<TestReceiver> receiver_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<HttpTestClient> client_;
  int files_ = 0;
};

TEST_F(SignatureTest, StandardSchemeIsVerifiedByTheOfficialLibrary) {
  start(webhook("std", receiver_->url("/h"), kNew, "    signature: standard\n"));
  post_event();
  const auto req = nth_request(0);
  EXPECT_FALSE(req.has_header("X-Relay-Signature"));
  EXPECT_EQ(req.header("webhook-id"), req.header("X-Relay-Delivery"));
  EXPECT_FALSE(req.header("webhook-timestamp").empty());
  EXPECT_EQ(req.header("webhook-signature").rfind("v1,", 0), 0U);
  std::string why;
  EXPECT_TRUE(js_verifies("standard", kNew, req, &why)) << why;
  // A wrong secret and a tampered body are rejected by the same library.
  EXPECT_FALSE(js_verifies("standard", kOld, req));
  auto tampered = req;
  tampered.body.back() = ' ';
  EXPECT_FALSE(js_verifies("standard", kNew, tampered));
  auto other_id = req;
  for (auto& [k, v] : other_id.headers) {
    if (k == "webhook-id") v = "dlv_other";
  }
  EXPECT_FALSE(js_verifies("standard", kNew, other_id));
}

TEST_F(SignatureTest, BothSchemesSatisfyTheOfficialLibraryAndTheUserGuideSnippets) {
  start(webhook("both", receiver_->url("/h"), kNew, "    signature: both\n"));
  post_event();
  const auto req = nth_request(0);
  EXPECT_TRUE(js_verifies("standard", kNew, req));
  EXPECT_TRUE(js_verifies("relay", kNew, req));
  EXPECT_TRUE(python_verifies(kNew, req));
  EXPECT_FALSE(js_verifies("relay", kOld, req));
  EXPECT_FALSE(python_verifies(kOld, req));
}

TEST_F(SignatureTest, RotationKeepsThePreviousSecretValidUntilItExpires) {
  // The previous secret expires a few seconds from now: requests before then carry two
  // signatures, the current one first; after it, only the current one.
  const auto expires = common::now_ms() + 4s;
  start(webhook("rot", receiver_->url("/h"), kNew,
                "    signature: both\n    previous_secrets:\n      - secret: \"" + kOld +
                    "\"\n        expires: " + common::format_rfc3339_ms(expires) + "\n"));
  post_event();
  const auto before = nth_request(0);
  ASSERT_LT(common::now_ms(), expires) << "the machine was too slow for this test's window";
  const auto sig = before.header("webhook-signature");
  EXPECT_NE(sig.find(' '), std::string::npos) << sig;
  EXPECT_TRUE(js_verifies("standard", kOld, before));  // a receiver that still holds the old one
  EXPECT_TRUE(js_verifies("standard", kNew, before));
  // X-Relay-Signature carries the current secret only (the user guide compares one value).
  EXPECT_TRUE(python_verifies(kNew, before));
  EXPECT_FALSE(python_verifies(kOld, before));

  ASSERT_TRUE(wait_until([&] { return common::now_ms() > expires + 100ms; }, 10s));
  post_event();
  const auto after = nth_request(1);
  EXPECT_EQ(after.header("webhook-signature").find(' '), std::string::npos);
  EXPECT_FALSE(js_verifies("standard", kOld, after));
  EXPECT_TRUE(js_verifies("standard", kNew, after));
}

TEST_F(SignatureTest, ReloadedSecretSignsTheNextAttempt) {
  // The first attempt fails (500); a reload rotates the secret before the retry, which is
  // signed with the new secret and, during the overlap, the old one too.
  receiver_->push_reply(relay::test::Reply::with_status(500));
  cfg_.delivery_yaml =
      "  timeout: 2s\n  retry_schedule: [0s, 3s]\n  ca_file: " + (dir_.path() / "ca.pem").string() +
      "\n  allow_private_networks: true\n";
  start(webhook("rl", receiver_->url("/h"), kOld, "    signature: standard\n"));
  post_event();
  const auto first = nth_request(0);
  EXPECT_TRUE(js_verifies("standard", kOld, first));
  cfg_.webhooks_yaml = webhook("rl", receiver_->url("/h"), kNew,
                               "    signature: standard\n    previous_secrets:\n"
                               "      - {secret: \"" +
                                   kOld + "\", expires: 2099-01-01T00:00:00Z}\n");
  daemon_->rewrite_config(cfg_.yaml());
  daemon_->signal(SIGHUP);
  ASSERT_TRUE(wait_until(
      [&] { return daemon_->log().find("reload: configuration applied") != std::string::npos; },
      5s))
      << daemon_->log();
  const auto retry = nth_request(1);
  EXPECT_EQ(retry.header("webhook-id"), first.header("webhook-id"));
  EXPECT_EQ(retry.body, first.body);
  EXPECT_TRUE(js_verifies("standard", kNew, retry));
  EXPECT_TRUE(js_verifies("standard", kOld, retry));
  // Secrets never reach the log.
  EXPECT_EQ(daemon_->log().find(kNew.substr(6)), std::string::npos);
  EXPECT_EQ(daemon_->log().find(kOld.substr(6)), std::string::npos);
}

TEST_F(SignatureTest, TestSendsAreSignedMarkedAttemptedOnceAndSubscribedOnly) {
  start("  - id: t\n    url: " + receiver_->url("/h") + "\n    secret: \"" + kNew +
        "\"\n    signature: both\n    events: [ticket.created]\n");
  auto r = client_->post_json("/v1/webhooks/t/test", R"({"event":"ticket.created"})");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto answer = json::parse(r.body);
  const auto req = nth_request(0);
  EXPECT_EQ(req.header("X-Relay-Test"), "true");
  EXPECT_EQ(json::parse(req.body)["id"].get<std::string>().rfind("evt_test_", 0), 0U);
  EXPECT_TRUE(js_verifies("standard", kNew, req));
  EXPECT_TRUE(python_verifies(kNew, req));
  EXPECT_EQ(answer["outcome"], "succeeded");

  // A type the webhook does not subscribe to is refused, and nothing is sent.
  r = client_->post_json("/v1/webhooks/t/test", R"({"event":"message.created"})");
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "event_not_subscribed");

  // A failing test is attempted once, never retried (the schedule would retry after 1 s).
  receiver_->set_default_reply(relay::test::Reply::with_status(500, "broken"));
  r = client_->post_json("/v1/webhooks/t/test", R"({"event":"ticket.created"})");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto failed = json::parse(r.body);
  EXPECT_EQ(failed["status"], 500);
  EXPECT_EQ(failed["outcome"], "failed");
  EXPECT_EQ(failed["body"], "broken");
  std::this_thread::sleep_for(2500ms);
  EXPECT_EQ(receiver_->request_count(), 2U);
  const auto row = run_command("sqlite3 " + cfg_.db.string() +
                               " \"SELECT status, attempt_count FROM deliveries WHERE id='" +
                               failed["delivery_id"].get<std::string>() + "'\"");
  EXPECT_EQ(row.second, "failed|1\n");
}

/// `relayd receive` as a child process; its stdout goes to a file the test reads.
class ReceiveProcess {
 public:
  ReceiveProcess(const std::filesystem::path& dir, const std::string& args) : out_(dir / "rx.out") {
    port_ = free_port();
    const auto cmd = relayd_binary() + " receive --port " + std::to_string(port_) + " " + args +
                     " >" + out_.string() + " 2>&1 & echo $!";
    const auto [code, pid] = run_command(cmd);
    EXPECT_EQ(code, 0);
    pid_ = std::stoi(pid);
    EXPECT_TRUE(wait_until([&] { return output().find("listening on") != std::string::npos; }, 5s))
        << output();
  }
  ~ReceiveProcess() {
    ::kill(pid_, SIGTERM);
    (void)run_command("sleep 0.2");
  }
  [[nodiscard]] std::string output() const { return read_file(out_); }
  [[nodiscard]] std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/hooks";
  }

 private:
  std::filesystem::path out_;
  std::uint16_t port_ = 0;
  int pid_ = -1;
};

TEST_F(SignatureTest, ReceiveVerifiesBothSchemesAndReportsABadSignature) {
  ReceiveProcess rx(dir_.path(), "--secret '" + kNew + "'");
  start(webhook("std", rx.url(), kNew, "    signature: standard\n    allow_insecure_http: true\n") +
        webhook("rel", rx.url(), kNew, "    allow_insecure_http: true\n") +
        webhook("bad", rx.url(), kOld, "    signature: standard\n    allow_insecure_http: true\n"));
  post_event();
  ASSERT_TRUE(wait_until(
      [&] {
        const auto out = rx.output();
        std::size_t blocks = 0;
        for (auto p = out.find("signature: "); p != std::string::npos;
             p = out.find("signature: ", p + 1)) {
          ++blocks;
        }
        return blocks >= 3;
      },
      10s))
      << rx.output() << daemon_->log();
  const auto out = rx.output();
  EXPECT_NE(out.find("signature: verified (standard): signature 1 of 1 matches"), std::string::npos)
      << out;
  EXPECT_NE(out.find("signature: verified (relay): X-Relay-Signature matches"), std::string::npos)
      << out;
  EXPECT_NE(out.find("signature: NOT VERIFIED (standard): none of the 1 signatures match"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("event:     ticket.created"), std::string::npos) << out;
  EXPECT_NE(out.find("\"id\": \"tkt_1\""), std::string::npos) << out;  // pretty JSON
  EXPECT_EQ(out.find(kNew), std::string::npos) << "the secret must not be printed";
}

TEST_F(SignatureTest, ReceiveAnswersTheStatusAskedFor) {
  ReceiveProcess rx(dir_.path(), "--secret 'plain-secret' --scheme relay --status 503");
  start(webhook("rel", rx.url(), "plain-secret", "    allow_insecure_http: true\n"));
  post_event();
  ASSERT_TRUE(wait_until(
      [&] { return daemon_->log().find("result=\"HTTP 503\"") != std::string::npos; }, 10s))
      << daemon_->log() << rx.output();
  EXPECT_NE(rx.output().find("answered:  503"), std::string::npos) << rx.output();
}

}  // namespace
}  // namespace relay::testing
