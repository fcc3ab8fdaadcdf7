// TLS session resumption (issue 20): the real daemon delivering to a real HTTPS receiver that
// closes every connection after its answer, so each delivery needs a new TLS handshake. What
// is asserted is the server's view (SSL_session_reused on the receiver's side): a reconnect to
// the same origin resumes, and a session made for one origin is never offered to another.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "DaemonProcess.hpp"
#include "Db.hpp"
#include "HttpTestClient.hpp"
#include "TestConfig.hpp"
#include "TestReceiver.hpp"
#include "Waiting.hpp"

namespace relay::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class TlsResumptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test_certs().write_pem_files(dir_.path());
    cfg_.port = free_port();
    cfg_.db = dir_.path() / "relayd.db";
    cfg_.delivery_yaml =
        "  concurrency: 4\n  per_webhook_concurrency: 1\n  timeout: 5s\n"
        "  retry_schedule: [0s, 1s, 1s]\n  ca_file: " +
        (dir_.path() / "ca.pem").string() + "\n  allow_private_networks: true\n";
    // One server (one SSL_CTX, one ticket key) for both origins: it WOULD accept a session
    // made for the other origin, so only the client's discipline keeps them apart.
    test::ReceiverOptions o;
    o.certificate = test_certs().server();  // localhost, 127.0.0.1, ::1
    receiver_ = std::make_unique<test::TestReceiver>(o);
    test::Reply close;
    close.close_after_response = true;
    receiver_->set_default_reply(close);
  }

  void add_webhook(const std::string& id, const std::string& url, const std::string& event) {
    cfg_.webhooks_yaml += "  - id: " + id + "\n    url: " + url + "\n    secret: whsec-" + id +
                          "-Zq9\n    events: [" + event + "]\n";
  }

  void start() {
    daemon_ = std::make_unique<DaemonProcess>(dir_.path(), cfg_.yaml());
    daemon_->start(cfg_.port);
    client_ = std::make_unique<HttpTestClient>("127.0.0.1", cfg_.port);
  }

  // Posts one event and waits until its (only) delivery succeeded: by then the client has read
  // the whole answer, and with it the session tickets the server sent before it.
  void deliver(const std::string& type) {
    const auto r = client_->post_json("/v1/events", R"({"event":")" + type + R"(","data":{}})");
    ASSERT_EQ(r.status, 202) << r.body;
    const auto j = json::parse(r.body);
    const auto id = j.at("deliveries").at(0).at("id").get<std::string>();
    ASSERT_TRUE(wait_until(
        [&] {
          Db db(cfg_.db);
          return db.value("SELECT status FROM deliveries WHERE id='" + id + "'") == "succeeded";
        },
        20s))
        << "delivery " << id << " did not succeed";
  }

  // The server's view of the last request: its path and whether its handshake resumed.
  std::pair<std::string, bool> last_request() const {
    const auto all = receiver_->requests();
    if (all.empty()) return {"", false};
    return {all.back().target, all.back().tls_session_reused};
  }

  TempDir dir_;
  TestConfig cfg_;
  std::unique_ptr<test::TestReceiver> receiver_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<HttpTestClient> client_;
};

TEST_F(TlsResumptionTest, ReconnectResumesAndSessionsNeverCrossOrigins) {
  // Two origins on the same server: https://localhost:P and https://127.0.0.1:P.
  add_webhook("a", receiver_->url("/a", "localhost"), "ticket.created");
  add_webhook("b", receiver_->url("/b"), "message.created");
  start();

  deliver("ticket.created");
  EXPECT_EQ(last_request(), std::make_pair(std::string("/a"), false)) << "first handshake: full";
  deliver("ticket.created");
  EXPECT_EQ(last_request(), std::make_pair(std::string("/a"), true))
      << "a reconnect to the same origin must resume the session";

  // Origin b has never been connected to: a resumed handshake here would mean a's session was
  // offered to b (the server accepts it: same ticket key).
  deliver("message.created");
  EXPECT_EQ(last_request(), std::make_pair(std::string("/b"), false))
      << "a session of https://localhost was offered to https://127.0.0.1";
  deliver("message.created");
  EXPECT_EQ(last_request(), std::make_pair(std::string("/b"), true));

  // Back to a: still resumes (tickets are single-use; each connection brings fresh ones).
  deliver("ticket.created");
  EXPECT_EQ(last_request(), std::make_pair(std::string("/a"), true));
  EXPECT_EQ(receiver_->connections_accepted(), 5U) << "every delivery was a new connection";
}

}  // namespace
}  // namespace relay::testing
