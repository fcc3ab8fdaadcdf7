// The intake API (SPEC §3) against the real daemon and its real SQLite file.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "DaemonProcess.hpp"
#include "Db.hpp"
#include "HttpTestClient.hpp"
#include "TestConfig.hpp"

namespace relay::testing {
namespace {

using nlohmann::json;

// Webhooks whose deliveries go nowhere fast (a closed port) and retry only after an hour, so
// the rows the tests look at stay put.
std::string webhooks_yaml() {
  return "  - id: crm\n"
         "    url: http://127.0.0.1:9/hook\n"
         "    allow_insecure_http: true\n"
         "    secret: s3cret-crm\n"
         "    events: [ticket.created, \"message.*\"]\n"
         "  - id: billing\n"
         "    url: http://127.0.0.1:9/billing\n"
         "    allow_insecure_http: true\n"
         "    secret: s3cret-billing\n"
         "    events: [\"*\"]\n"
         "    enabled: false\n"
         "  - id: sla\n"
         "    url: http://127.0.0.1:9/sla\n"
         "    allow_insecure_http: true\n"
         "    secret: s3cret-sla\n"
         "    events: [\"sla.*\"]\n";
}

class IntakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_.port = free_port();
    cfg_.db = dir_.path() / "relayd.db";
    cfg_.webhooks_yaml = webhooks_yaml();
    cfg_.delivery_yaml =
        "  timeout: 2s\n  retry_schedule: [0s, 1h]\n  allow_private_networks: true\n";
  }

  void start() {
    daemon_ = std::make_unique<DaemonProcess>(dir_.path(), cfg_.yaml());
    daemon_->start(cfg_.port);
    client_ = std::make_unique<HttpTestClient>("127.0.0.1", cfg_.port);
  }

  HttpReply post(const std::string& body, const std::string& path = "/v1/events") {
    return client_->post_json(path, body);
  }

  static std::string error_code(const HttpReply& r) {
    const auto j = json::parse(r.body);
    return j.at("error").at("code").get<std::string>();
  }

  TempDir dir_;
  TestConfig cfg_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<HttpTestClient> client_;
};

TEST_F(IntakeTest, AcceptsAnEventAndCommitsPayloadAndDeliveries) {
  start();
  const auto r =
      post(R"({"event":"ticket.created","data":{"ticket":{"id":"tkt_789","b":1,"a":2}}})");
  ASSERT_EQ(r.status, 202) << r.body;
  const auto j = json::parse(r.body);
  const auto id = j.at("id").get<std::string>();
  EXPECT_EQ(id.rfind("evt_", 0), 0U);
  EXPECT_EQ(j.at("event"), "ticket.created");
  const auto created_at = j.at("created_at").get<std::string>();
  EXPECT_EQ(created_at.size(), 20U) << created_at;  // 2025-01-15T10:30:00Z
  ASSERT_EQ(j.at("deliveries").size(), 2U);         // crm (pending) + billing (paused)

  Db db(cfg_.db);
  // The payload is the exact bytes subscribers get: fixed key order, client's data order kept.
  EXPECT_EQ(db.value("SELECT payload FROM events WHERE id='" + id + "'"),
            R"({"id":")" + id + R"(","event":"ticket.created","created_at":")" + created_at +
                R"(","data":{"ticket":{"id":"tkt_789","b":1,"a":2}}})");
  const auto rows = db.rows("SELECT webhook_id, status FROM deliveries WHERE event_id='" + id +
                            "' ORDER BY webhook_id");
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_EQ(rows[0][0], "billing");
  EXPECT_EQ(rows[0][1], "paused");
  EXPECT_EQ(rows[1][0], "crm");
  EXPECT_NE(rows[1][1], "paused");
  // Every delivery id in the answer is in the file.
  for (const auto& d : j.at("deliveries")) {
    EXPECT_EQ(
        db.count("SELECT count(*) FROM deliveries WHERE id='" + d.at("id").get<std::string>() +
                 "' AND webhook_id='" + d.at("webhook").get<std::string>() + "'"),
        1);
  }
}

TEST_F(IntakeTest, SameIdIsIdempotent) {
  start();
  const std::string body = R"({"event":"sla.warning","data":{"x":1},"id":"evt_client-1.a:b"})";
  const auto first = post(body);
  ASSERT_EQ(first.status, 202) << first.body;
  const auto second = post(body);
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.body, first.body);
  // Even with other data, the id decides: the first result comes back, nothing new is stored.
  const auto third = post(R"({"event":"sla.warning","data":{"x":2},"id":"evt_client-1.a:b"})");
  EXPECT_EQ(third.status, 200);
  EXPECT_EQ(third.body, first.body);
  Db db(cfg_.db);
  EXPECT_EQ(db.count("SELECT count(*) FROM events WHERE id='evt_client-1.a:b'"), 1);
  EXPECT_EQ(db.count("SELECT count(*) FROM deliveries WHERE event_id='evt_client-1.a:b'"), 2);
}

TEST_F(IntakeTest, BatchIsAllOrNothing) {
  start();
  const auto ok = post(R"({"events":[
      {"event":"ticket.created","data":{"n":1}},
      {"event":"customer.created","data":{"n":2},"id":"cust-evt-1"},
      {"event":"sla.breached","data":{"n":3}}]})",
                       "/v1/events/batch");
  ASSERT_EQ(ok.status, 202) << ok.body;
  const auto j = json::parse(ok.body);
  ASSERT_EQ(j.at("events").size(), 3U);
  EXPECT_EQ(j["events"][1].at("id"), "cust-evt-1");
  EXPECT_EQ(j["events"][0].at("event"), "ticket.created");

  Db db(cfg_.db);
  const auto before = db.count("SELECT count(*) FROM events");
  EXPECT_EQ(before, 3);
  const auto bad = post(R"({"events":[
      {"event":"ticket.created","data":{}},
      {"event":"ticket.nope","data":{}}]})",
                        "/v1/events/batch");
  EXPECT_EQ(bad.status, 422) << bad.body;
  EXPECT_EQ(json::parse(bad.body)["error"].at("index"), 1);
  EXPECT_EQ(db.count("SELECT count(*) FROM events"), before);

  // A batch repeating a stored id echoes the first result for that item.
  const auto again =
      post(R"({"events":[{"event":"customer.created","data":{"n":9},"id":"cust-evt-1"}]})",
           "/v1/events/batch");
  ASSERT_EQ(again.status, 202) << again.body;
  EXPECT_EQ(json::parse(again.body)["events"][0], j["events"][1]);
}

TEST_F(IntakeTest, EveryErrorHasItsStatusAndCode) {
  start();
  struct Case {
    std::string body;
    std::string content_type;
    int status;
    std::string code;
  };
  const std::vector<Case> cases = {
      {R"({"event":"ticket.created","data":{}})", "text/plain", 415, "unsupported_media_type"},
      {R"({"event":"ticket.created","data":{}})", "", 415, "unsupported_media_type"},
      {"not json", "application/json", 400, "invalid_json"},
      {"[1,2,3]", "application/json", 400, "invalid_json"},
      {R"({"event":5,"data":{}})", "application/json", 400, "invalid_json"},
      {R"({"event":"ticket.created","data":[1]})", "application/json", 400, "invalid_json"},
      {R"({"event":"ticket.exploded","data":{}})", "application/json", 422, "unknown_event_type"},
      {R"({"data":{}})", "application/json", 422, "invalid_event"},
      {R"({"event":"ticket.created"})", "application/json", 422, "invalid_event"},
      {R"({"event":"ticket.created","data":{},"id":"has space"})", "application/json", 422,
       "invalid_event"},
      {R"({"event":"ticket.created","data":{},"id":""})", "application/json", 422, "invalid_event"},
      {R"({"event":"ticket.created","data":{},"id":")" + std::string(129, 'a') + R"("})",
       "application/json", 422, "invalid_event"},
      {R"({"event":"ticket.created","data":{}})", "application/json; charset=utf-8", 202, ""},
  };
  for (const auto& c : cases) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!c.content_type.empty()) headers.emplace_back("Content-Type", c.content_type);
    const auto r = client_->request("POST", "/v1/events", c.body, headers);
    EXPECT_EQ(r.status, c.status) << c.body << " / " << c.content_type << " → " << r.body;
    if (!c.code.empty()) {
      EXPECT_EQ(error_code(r), c.code) << c.body;
      EXPECT_FALSE(json::parse(r.body)["error"].at("message").get<std::string>().empty());
    }
  }
  Db db(cfg_.db);
  EXPECT_EQ(db.count("SELECT count(*) FROM events"), 1);  // only the last case stored
}

TEST_F(IntakeTest, OversizedBodyGets413AndHarmsNothing) {
  start();
  const std::string big =
      R"({"event":"ticket.created","data":{"blob":")" + std::string(70000, 'x') + "\"}}";
  const auto r = post(big);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(error_code(r), "payload_too_large");
  HttpTestClient fresh("127.0.0.1", cfg_.port);
  EXPECT_EQ(fresh.post_json("/v1/events", R"({"event":"ticket.created","data":{}})").status, 202);
  Db db(cfg_.db);
  EXPECT_EQ(db.count("SELECT count(*) FROM events"), 1);
}

TEST_F(IntakeTest, TokenIsRequiredOnV1ButNotOnHealth) {
  write_file(dir_.path() / "token", "t0ken-value\n");
  cfg_.server_extra = "  token_file: " + (dir_.path() / "token").string() + "\n";
  start();
  const std::string body = R"({"event":"ticket.created","data":{}})";
  auto r = post(body);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(error_code(r), "unauthorized");
  r = client_->post_json("/v1/events", body, {{"Authorization", "Bearer wrong-value"}});
  EXPECT_EQ(r.status, 401);
  r = client_->post_json("/v1/events", body, {{"Authorization", "Bearer t0ken-value"}});
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(client_->request("GET", "/healthz").status, 200);
  EXPECT_EQ(client_->request("GET", "/v1/deliveries").status, 401);
  // The token never reaches the log.
  EXPECT_EQ(daemon_->log().find("t0ken-value"), std::string::npos);
}

TEST_F(IntakeTest, TruncatedAndMalformedRequestsDoNotHarmTheDaemon) {
  start();
  // Content-Length promises more than is sent, then the client goes away.
  raw_exchange(cfg_.port,
               "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Content-Length: 100\r\n\r\n{\"event\":\"ticket.created\"",
               std::chrono::milliseconds(300));
  const auto garbage = raw_exchange(cfg_.port, "THIS IS NOT HTTP\r\n\r\n");
  EXPECT_NE(garbage.find("400"), std::string::npos) << garbage;
  const auto huge_header = raw_exchange(
      cfg_.port, "GET /healthz HTTP/1.1\r\nX-Big: " + std::string(100000, 'a') + "\r\n\r\n");
  EXPECT_EQ(huge_header.find("200 OK"), std::string::npos) << huge_header.substr(0, 200);
  EXPECT_EQ(post(R"({"event":"ticket.created","data":{}})").status, 202);
  Db db(cfg_.db);
  EXPECT_EQ(db.count("SELECT count(*) FROM events"), 1);
}

TEST_F(IntakeTest, SlowDripClientIsCutOff) {
  start();
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(cfg_.port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string head =
      "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 5000\r\n\r\n";
  ASSERT_EQ(::send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
  // One byte a second would take 5000 s; the server must hang up long before.
  const auto started = std::chrono::steady_clock::now();
  bool closed = false;
  while (std::chrono::steady_clock::now() - started < std::chrono::seconds(90)) {
    if (::send(fd, "x", 1, MSG_NOSIGNAL) != 1) {
      closed = true;
      break;
    }
    char buf[512];
    timeval tv{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0 ||
        (n > 0 && std::string(buf, static_cast<std::size_t>(n)).find("HTTP/1.1 4") == 0)) {
      closed = true;
      break;
    }
  }
  ::close(fd);
  EXPECT_TRUE(closed) << "a client dripping one byte a second was never cut off";
  EXPECT_EQ(client_->request("GET", "/healthz").status, 200);
}

TEST_F(IntakeTest, ThousandConcurrentPostsAreAllAckedAndStored) {
  start();
  constexpr int kThreads = 50;
  constexpr int kPerThread = 20;
  std::atomic<int> acked{0};
  std::vector<std::thread> threads;
  std::vector<std::vector<std::string>> ids(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      HttpTestClient c("127.0.0.1", cfg_.port);
      for (int i = 0; i < kPerThread; ++i) {
        const auto r = c.post_json("/v1/events", R"({"event":"message.created","data":{"t":)" +
                                                     std::to_string(t) + R"(,"i":)" +
                                                     std::to_string(i) + "}}");
        if (r.status == 202) {
          ++acked;
          ids[t].push_back(json::parse(r.body).at("id").get<std::string>());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(acked.load(), kThreads * kPerThread);
  Db db(cfg_.db);
  EXPECT_EQ(db.count("SELECT count(*) FROM events"), kThreads * kPerThread);
  EXPECT_EQ(db.count("SELECT count(*) FROM deliveries WHERE webhook_id='crm'"),
            kThreads * kPerThread);
  for (const auto& v : ids) {
    for (const auto& id : v) {
      ASSERT_EQ(db.count("SELECT count(*) FROM events WHERE id='" + id + "'"), 1) << id;
    }
  }
}

TEST_F(IntakeTest, SigkillRightAfterAckLosesNothing) {
  start();
  std::vector<std::string> acked;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  std::mutex mu;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      HttpTestClient c("127.0.0.1", cfg_.port);
      while (!stop) {
        try {
          const auto r = c.post_json("/v1/events", R"({"event":"ticket.created","data":{}})");
          if (r.status == 202) {
            std::lock_guard lock(mu);
            acked.push_back(json::parse(r.body).at("id").get<std::string>());
          }
        } catch (const std::exception&) {
          return;  // the daemon is gone
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  daemon_->kill_hard();  // while requests are in flight
  stop = true;
  for (auto& th : threads) th.join();
  ASSERT_GT(acked.size(), 10U);

  Db db(cfg_.db);
  if (!postgres_backend()) {
    EXPECT_EQ(db.value("PRAGMA integrity_check"), "ok");
  }
  for (const auto& id : acked) {
    ASSERT_EQ(db.count("SELECT count(*) FROM events WHERE id='" + id + "'"), 1) << id;
    ASSERT_EQ(db.count("SELECT count(*) FROM deliveries WHERE event_id='" + id + "'"), 2) << id;
  }
  // And the daemon starts again on the same file.
  daemon_->start(cfg_.port);
  HttpTestClient again("127.0.0.1", cfg_.port);
  EXPECT_EQ(again.post_json("/v1/events", R"({"event":"ticket.created","data":{}})").status, 202);
}

TEST_F(IntakeTest, FullWriteQueueAnswers503OverloadedAtOnce) {
  daemon_ = std::make_unique<DaemonProcess>(dir_.path(), cfg_.yaml());
  daemon_->start(cfg_.port, {{"RELAYD_MAX_QUEUED_WRITES", "2"}});
  client_ = std::make_unique<HttpTestClient>("127.0.0.1", cfg_.port);
  // An operator's write transaction holds the database: relayd's writer waits for it (up to its
  // busy timeout), so intake requests pile up behind the writer.
  sqlite3* lock = nullptr;
  ASSERT_EQ(sqlite3_open(cfg_.db.c_str(), &lock), SQLITE_OK);
  // relayd may be in a short write of its own just after start (seen once under TSan on a
  // loaded machine: SQLITE_BUSY at once): wait for it, as the sqlite3 CLI's .timeout would.
  sqlite3_busy_timeout(lock, 5000);
  ASSERT_EQ(sqlite3_exec(lock, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  std::vector<std::thread> threads;
  std::vector<int> statuses(8, 0);
  std::vector<std::string> codes(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50 * i));
      HttpTestClient c("127.0.0.1", cfg_.port);
      const auto r = c.post_json("/v1/events", R"({"event":"ticket.created","data":{}})");
      statuses[static_cast<std::size_t>(i)] = r.status;
      if (r.status == 503) codes[static_cast<std::size_t>(i)] = error_code(r);
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  sqlite3_exec(lock, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(lock);
  for (auto& t : threads) t.join();
  int overloaded = 0;
  int accepted = 0;
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    if (statuses[i] == 503 && codes[i] == "overloaded") ++overloaded;
    if (statuses[i] == 202) ++accepted;
  }
  EXPECT_GE(overloaded, 1);
  EXPECT_GE(accepted, 1);
  EXPECT_EQ(overloaded + accepted, 8);
  // The queue drains once the lock is gone, and intake is normal again.
  const auto after = post(R"({"event":"ticket.created","data":{}})");
  EXPECT_EQ(after.status, 202) << after.body << daemon_->log();
  Db db(cfg_.db);
  EXPECT_EQ(db.count("SELECT count(*) FROM events"), accepted + 1);
}

TEST_F(IntakeTest, ReadyzReportsReady) {
  start();
  const auto r = client_->request("GET", "/readyz");
  EXPECT_EQ(r.status, 200) << r.body;
}

}  // namespace
}  // namespace relay::testing
