// Hostile endpoints (issue 7, SPEC §5, §8): receivers that drip, never stop, send too much,
// send garbage, stall or break the TLS handshake, hang up mid-body or only send 1xx. Each case
// runs the real relayd against a real server and checks that the attempt ends recorded and
// classified in the `attempts` table, that the read stops at the documented limits, and that
// relayd stays healthy afterwards (/healthz, and a normal delivery to a good receiver).
//
// Cases TestReceiver can produce (drip, endless/huge bodies, 1xx) use it; the rest use RawServer
// (RawServer.hpp): a small blocking TCP server (TLS through OpenSSL directly when asked) that
// writes exactly the bytes a case needs. Every RawServer case misbehaves on its first connection
// only and answers 200 from the second on, so the same delivery also shows the retry succeeding.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "DaemonProcess.hpp"
#include "Db.hpp"
#include "HttpTestClient.hpp"
#include "RawServer.hpp"
#include "TestCerts.hpp"
#include "TestConfig.hpp"
#include "TestReceiver.hpp"
#include "Waiting.hpp"

namespace relay::testing {
namespace {

using nlohmann::json;
using raw::RawConn;
using raw::RawServer;
using relay::test::CertAndKey;
using relay::test::Reply;
using relay::test::TestCerts;
using relay::test::TestReceiver;

constexpr std::size_t kMaxResponseBody = 64 * 1024;  // ClientOptions::max_response_body
// How much relayd's peak RSS may grow over its RSS before a 50 MB body or an endless one:
// reading either whole would add 50 MB or more. Growth, not an absolute figure: the baseline
// is ~10-30 MB in a release build but over 200 MB under ASan.
constexpr long kMaxRssGrowthKb = 40 * 1024;

// "VmRSS" / "VmHWM" of a process in kB, from /proc/<pid>/status; -1 when absent.
long proc_status_kb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

constexpr std::string_view kOk =
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

/// A handler whose first connection gets `hostile` and every later one a TLS handshake and a
/// plain 200 (TLS servers only).
RawServer::Handler first_hostile_then_ok(std::function<void(RawConn&)> hostile) {
  return [hostile = std::move(hostile)](RawConn& conn, std::size_t index) {
    if (index == 0) {
      hostile(conn);
      return;
    }
    if (conn.tls_accept() && conn.read_request()) conn.send(kOk);
  };
}

// ---- the fixture ----------------------------------------------------------------------------

struct AttemptRow {
  std::string outcome;
  std::string status;  // "NULL" when no status arrived
  std::string error;
  std::size_t body_length = 0;
  std::string body;
  long long duration_ms = 0;
};

class HostileEndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test_certs().write_pem_files(dir_.path());
    cfg_.port = free_port();
    cfg_.db = dir_.path() / "relayd.db";
    // A 2 s deadline for the whole attempt; retries 1 s apart so the second attempt (which the
    // servers answer normally) follows quickly.
    cfg_.delivery_yaml =
        "  concurrency: 16\n  per_webhook_concurrency: 4\n  timeout: 2s\n"
        "  retry_schedule: [0s, 1s, 1s, 1s, 1s, 1s]\n  ca_file: " +
        (dir_.path() / "ca.pem").string() + "\n  allow_private_networks: true\n";
    relay::test::ReceiverOptions o;
    o.certificate = test_certs().server();
    good_ = std::make_unique<TestReceiver>(o);
  }

  static std::unique_ptr<TestReceiver> https_receiver() {
    relay::test::ReceiverOptions o;
    o.certificate = test_certs().server();
    return std::make_unique<TestReceiver>(o);
  }

  // Webhook "hostile" gets ticket.created, webhook "good" customer.created.
  void start(const std::string& hostile_url) {
    cfg_.webhooks_yaml = "  - id: hostile\n    url: " + hostile_url +
                         "\n    secret: whsec-hostile\n    events: [ticket.created]\n"
                         "  - id: good\n    url: " +
                         good_->url() +
                         "\n    secret: whsec-good\n    events: [customer.created]\n";
    daemon_ = std::make_unique<DaemonProcess>(dir_.path(), cfg_.yaml());
    daemon_->start(cfg_.port);
    client_ = std::make_unique<HttpTestClient>("127.0.0.1", cfg_.port);
  }

  std::string post(const std::string& type) {
    const auto r = client_->post_json("/v1/events", R"({"event":")" + type + R"(","data":{}})");
    EXPECT_EQ(r.status, 202) << r.body;
    const auto j = json::parse(r.body);
    return j.at("deliveries").at(0).at("id").get<std::string>();
  }

  std::string status_of(const std::string& delivery_id) {
    Db db(cfg_.db);
    return db.value("SELECT status FROM deliveries WHERE id='" + delivery_id + "'");
  }

  std::vector<AttemptRow> attempts(const std::string& delivery_id) {
    Db db(cfg_.db);
    std::vector<AttemptRow> out;
    for (const auto& r :
         db.rows("SELECT outcome, COALESCE(CAST(response_status AS TEXT), 'NULL'), "
                 "COALESCE(error, ''), " +
                 db.byte_length("COALESCE(response_body, '')") +
                 ", COALESCE(response_body, ''), duration_ms FROM attempts WHERE delivery_id='" +
                 delivery_id + "' ORDER BY attempt_number")) {
      out.push_back({r[0], r[1], r[2], std::stoul(r[3]), r[4], std::stoll(r[5])});
    }
    return out;
  }

  // Waits for the first attempt's row and returns it.
  AttemptRow first_attempt(const std::string& delivery_id) {
    EXPECT_TRUE(wait_until([&] { return !attempts(delivery_id).empty(); })) << daemon_->log();
    const auto rows = attempts(delivery_id);
    return rows.empty() ? AttemptRow{"<none>", "", "", 0, "", 0} : rows.front();
  }

  // The hostile server answers normally from its second connection on: the delivery succeeds
  // with attempt 2.
  void expect_second_attempt_succeeds(const std::string& delivery_id) {
    EXPECT_TRUE(wait_until([&] { return status_of(delivery_id) == "succeeded"; }))
        << daemon_->log();
    const auto rows = attempts(delivery_id);
    ASSERT_EQ(rows.size(), 2U) << daemon_->log();
    EXPECT_EQ(rows[1].outcome, "succeeded");
    EXPECT_EQ(rows[1].status, "200");
  }

  // relayd is still alive, answers /healthz and delivers to a good receiver.
  void expect_healthy() {
    ASSERT_TRUE(daemon_->running()) << daemon_->log();
    EXPECT_EQ(client_->request("GET", "/healthz").status, 200);
    const auto id = post("customer.created");
    EXPECT_TRUE(wait_until([&] { return status_of(id) == "succeeded"; })) << daemon_->log();
    EXPECT_TRUE(daemon_->logged("delivery=" + id)) << daemon_->log();
  }

  TempDir dir_;
  TestConfig cfg_;
  std::unique_ptr<TestReceiver> good_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<HttpTestClient> client_;
};

// ---- slow and endless responses -------------------------------------------------------------

TEST_F(HostileEndpointTest, ResponseDrippingOneBytePerSecondIsCutAtTheAttemptDeadline) {
  auto receiver = https_receiver();
  Reply drip;
  drip.drip_interval = std::chrono::milliseconds(1000);
  drip.drip_chunk = 1;  // the whole 40-byte response would take 40 s
  receiver->push_reply(drip);
  start(receiver->url());
  const auto id = post("ticket.created");
  const auto a = first_attempt(id);
  EXPECT_EQ(a.outcome, "retry");
  EXPECT_EQ(a.status, "NULL");
  EXPECT_NE(a.error.find("timeout"), std::string::npos) << a.error;
  EXPECT_NE(a.error.find("read"), std::string::npos) << a.error;
  // Cut at the 2 s deadline, not when the drip would have ended (generous upper bound).
  EXPECT_GE(a.duration_ms, 1900);
  EXPECT_LT(a.duration_ms, 10000);
  expect_second_attempt_succeeds(id);
  expect_healthy();
}

TEST_F(HostileEndpointTest, BodyDrippingPastTheDeadlineKeepsTheStatusThatArrived) {
  // The head arrives at once, the body (1000 bytes) at 64 bytes a second. The final status
  // line and headers are in, so the attempt is classified by that status (200: succeeded) and
  // records the part of the body that arrived; the deadline still ends the read.
  auto receiver = https_receiver();
  Reply drip;
  drip.body = std::string(1000, 'b');
  drip.drip_interval = std::chrono::milliseconds(1000);
  drip.drip_chunk = 64;
  receiver->push_reply(drip);
  start(receiver->url());
  const auto id = post("ticket.created");
  const auto a = first_attempt(id);
  EXPECT_EQ(a.outcome, "succeeded") << a.error;
  EXPECT_EQ(a.status, "200");
  EXPECT_GT(a.body_length, 0U);
  EXPECT_LT(a.body_length, 1000U);
  EXPECT_GE(a.duration_ms, 1900);
  EXPECT_LT(a.duration_ms, 10000);
  EXPECT_EQ(a.error.rfind("response body cut off: ", 0), 0U) << a.error;
  EXPECT_EQ(status_of(id), "succeeded");
  expect_healthy();
}

TEST_F(HostileEndpointTest, EndlessChunkedBodyIsReadOnlyUpToTheLimit) {
  auto receiver = https_receiver();
  Reply endless;
  endless.endless_body = true;
  receiver->push_reply(endless);
  start(receiver->url());
  const long rss_before = proc_status_kb(daemon_->pid(), "VmRSS");
  const auto id = post("ticket.created");
  const auto a = first_attempt(id);
  EXPECT_EQ(a.outcome, "succeeded") << a.error;
  EXPECT_EQ(a.status, "200");
  EXPECT_EQ(a.error, "");
  EXPECT_LE(a.body_length, kMaxResponseBody);
  EXPECT_EQ(a.body, std::string(a.body_length, 'x'));
  EXPECT_GT(a.body_length, 0U);
  // It stopped reading at the limit instead of waiting for the deadline.
  EXPECT_LT(a.duration_ms, 1900);
  const long rss_after = proc_status_kb(daemon_->pid(), "VmRSS");
  const long peak = proc_status_kb(daemon_->pid(), "VmHWM");
  EXPECT_LT(peak - rss_before, kMaxRssGrowthKb)
      << "before " << rss_before << " kB, after " << rss_after << " kB, peak " << peak << " kB";
  expect_healthy();
  std::cout << "[ info     ] endless body: kept " << a.body_length << " bytes in " << a.duration_ms
            << " ms; relayd RSS " << rss_before << " -> " << rss_after << " kB, peak " << peak
            << " kB\n";
}

TEST_F(HostileEndpointTest, HugeBodyIsReadOnlyUpToTheLimitAndTheStatusCounts) {
  // 50 MB behind a 503: the status is recorded and retried, 64 KiB of the body kept.
  auto receiver = https_receiver();
  Reply huge = Reply::with_status(503);
  huge.filler_body = 50 * 1024 * 1024;
  receiver->push_reply(huge);
  start(receiver->url());
  const long rss_before = proc_status_kb(daemon_->pid(), "VmRSS");
  const auto id = post("ticket.created");
  const auto a = first_attempt(id);
  EXPECT_EQ(a.outcome, "retry");
  EXPECT_EQ(a.status, "503");
  EXPECT_EQ(a.error, "");
  EXPECT_LE(a.body_length, kMaxResponseBody);
  EXPECT_GT(a.body_length, 0U);
  EXPECT_EQ(a.body, std::string(a.body_length, 'x'));
  const long rss_after = proc_status_kb(daemon_->pid(), "VmRSS");
  const long peak = proc_status_kb(daemon_->pid(), "VmHWM");
  EXPECT_LT(peak - rss_before, kMaxRssGrowthKb)
      << "before " << rss_before << " kB, after " << rss_after << " kB, peak " << peak << " kB";
  expect_second_attempt_succeeds(id);
  expect_healthy();
  std::cout << "[ info     ] 50 MB body: kept " << a.body_length << " bytes in " << a.duration_ms
            << " ms; relayd RSS " << rss_before << " -> " << rss_after << " kB, peak " << peak
            << " kB\n";
}

// ---- malformed responses (raw server over TLS) ----------------------------------------------

// Runs one raw hostile case: returns the first attempt, checks that a retried one succeeds with
// attempt 2 and that relayd is healthy.
class RawCase : public HostileEndpointTest {
 protected:
  AttemptRow run(const std::function<void(RawConn&)>& hostile, bool tls_on_first = true) {
    RawServer server(first_hostile_then_ok([hostile, tls_on_first](RawConn& conn) {
                       if (tls_on_first && !(conn.tls_accept() && conn.read_request())) return;
                       hostile(conn);
                     }),
                     &test_certs().server());
    start(server.url());
    const auto id = post("ticket.created");
    const auto a = first_attempt(id);
    if (a.outcome == "retry") expect_second_attempt_succeeds(id);
    expect_healthy();
    std::cout << "[ info     ] recorded: outcome=" << a.outcome << " status=" << a.status
              << " error=\"" << a.error << "\" body_bytes=" << a.body_length
              << " duration_ms=" << a.duration_ms << "\n";
    daemon_.reset();  // before the server: no connection of relayd's is left to wait for
    return a;
  }
};

TEST_F(RawCase, MalformedStatusLineIsRetriedWithAnError) {
  const auto a = run([](RawConn& c) { c.send("HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\nok"); });
  EXPECT_EQ(a.outcome, "retry");
  EXPECT_EQ(a.status, "NULL");
  EXPECT_NE(a.error.find("read: invalid response"), std::string::npos) << a.error;
}

TEST_F(RawCase, OversizedStatusLineIsCutAtTheHeaderLimit) {
  const auto a = run([](RawConn& c) {
    c.send("HTTP/1.1 200 " + std::string(1024 * 1024, 'A') + "\r\nContent-Length: 2\r\n\r\nok");
  });
  EXPECT_EQ(a.outcome, "retry");
  EXPECT_EQ(a.status, "NULL");
  EXPECT_NE(a.error.find("header too large"), std::string::npos) << a.error;
}

TEST_F(RawCase, OversizedHeaderBlockIsCutAtTheHeaderLimit) {
  const auto a = run([](RawConn& c) {
    std::string head = "HTTP/1.1 200 OK\r\n";
    for (int i = 0; head.size() < 1024 * 1024; ++i) {
      head += "X-Pad-" + std::to_string(i) + ": " + std::string(100, 'p') + "\r\n";
    }
    c.send(head + "Content-Length: 2\r\n\r\nok");
  });
  EXPECT_EQ(a.outcome, "retry");
  EXPECT_EQ(a.status, "NULL");
  EXPECT_NE(a.error.find("header too large"), std::string::npos) << a.error;
}

TEST_F(RawCase, GarbageInsteadOfHttpIsRetriedWithAnError) {
  const auto a = run([](RawConn& c) {
    std::string garbage;
    for (int i = 0; i < 4096; ++i) garbage += static_cast<char>((i * 7919 + 13) % 256);
    c.send(garbage);
  });
  EXPECT_EQ(a.outcome, "retry");
  EXPECT_EQ(a.status, "NULL");
  EXPECT_NE(a.error.find("read: "), std::string::npos) << a.error;
}

TEST_F(RawCase, EndlessStreamOfInterimResponsesEndsAtTheDeadline) {
  const auto a = run([](RawConn& c) {
    while (!c.stopping() && c.send("HTTP/1.1 100 Continue\r\n\r\n")) {
    }
  });
  EXPECT_EQ(a.outcome, "retry");
  EXPECT_EQ(a.status, "NULL");
  EXPECT_NE(a.error.find("timeout"), std::string::npos) << a.error;
}

TEST_F(RawCase, TlsHandshakeThatStallsTimesOut) {
  const auto a = run(
      [](RawConn& c) {
        c.read_some();       // the ClientHello
        c.wait_for_close();  // and never a ServerHello
      },
      false);
  EXPECT_EQ(a.outcome, "retry");
  EXPECT_EQ(a.status, "NULL");
  EXPECT_NE(a.error.find("timeout"), std::string::npos) << a.error;
  EXPECT_NE(a.error.find("tls"), std::string::npos) << a.error;
  EXPECT_GE(a.duration_ms, 1900);
}

TEST_F(RawCase, TlsHandshakeAnsweredWithGarbageIsATlsError) {
  const auto a = run(
      [](RawConn& c) {
        c.read_some();  // the ClientHello, answered with something that is not TLS
        c.send("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" + std::string(512, '\x17'));
      },
      false);
  EXPECT_EQ(a.outcome, "retry");
  EXPECT_EQ(a.status, "NULL");
  EXPECT_EQ(a.error.rfind("tls: ", 0), 0U) << a.error;
}

TEST_F(RawCase, CloseInTheMiddleOfASuccessBodyKeepsTheStatus) {
  // Decision (HttpResult's contract): once the final status line and headers arrived, the
  // attempt is classified by that status; a body that breaks off is recorded as far as it came.
  // The receiver said 200, so the delivery succeeded.
  const auto a = run([](RawConn& c) {
    c.send("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789");  // then a TCP close
  });
  EXPECT_EQ(a.outcome, "succeeded");
  EXPECT_EQ(a.status, "200");
  EXPECT_EQ(a.body, "0123456789");
  EXPECT_EQ(a.error.rfind("response body cut off: ", 0), 0U) << a.error;
}

TEST_F(RawCase, CloseInTheMiddleOfAnErrorBodyIsRetriedWithItsStatus) {
  const auto a = run([](RawConn& c) {
    c.send("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 1000\r\n\r\n0123456789");
  });
  EXPECT_EQ(a.outcome, "retry");
  EXPECT_EQ(a.status, "500");
  EXPECT_EQ(a.body, "0123456789");
  EXPECT_EQ(a.error.rfind("response body cut off: ", 0), 0U) << a.error;
}

// ---- 1xx ------------------------------------------------------------------------------------

TEST_F(HostileEndpointTest, InterimResponsesBeforeTheFinalOneAreSkipped) {
  auto receiver = https_receiver();
  Reply continued;
  continued.interim = {100};
  receiver->push_reply(continued);
  Reply hints;
  hints.interim = {100, 103, 102};
  receiver->push_reply(hints);
  start(receiver->url());
  for (int i = 0; i < 2; ++i) {
    const auto id = post("ticket.created");
    const auto a = first_attempt(id);
    EXPECT_EQ(a.outcome, "succeeded") << a.error;
    EXPECT_EQ(a.status, "200");
    EXPECT_EQ(a.body, "ok");
  }
  expect_healthy();
}

TEST_F(HostileEndpointTest, LoneInterimResponseThenCloseIsRetried) {
  auto receiver = https_receiver();
  Reply lone;
  lone.interim = {103};
  lone.close_after_interim = true;
  receiver->push_reply(lone);
  start(receiver->url());
  const auto id = post("ticket.created");
  const auto a = first_attempt(id);
  EXPECT_EQ(a.outcome, "retry");
  EXPECT_EQ(a.status, "NULL");
  EXPECT_NE(a.error.find("interim"), std::string::npos) << a.error;
  expect_second_attempt_succeeds(id);
  expect_healthy();
}

}  // namespace
}  // namespace relay::testing
