// Issue #13: each attack of the adversarial review, replayed byte for byte against the real
// daemon (SPEC §8). Each test failed on the code before the fix.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

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

constexpr const char* kToken = "t0ken-Xq7";

/// A connected blocking TCP socket to 127.0.0.1:port (−1 on failure), closed by its owner.
int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const auto n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

/// What the server sends within `timeout` (until it closes or the time is up).
std::string read_some(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[4096];
  const auto n = ::recv(fd, buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

/// True when the peer closed (or reset) the connection within `timeout`.
bool closed_by_peer(int fd, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    timeval tv{0, 100000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return true;
  }
  return false;
}

long rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

/// Sanitizer builds keep shadow memory and run slower: the figures of SPEC §8 hold for the
/// release build; under ASan or TSan (the daemon measured is built the same way) the same
/// test checks looser bounds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

/// The test process holds thousands of sockets in the load test.
void raise_fd_limit() {
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  limit.rlim_cur = limit.rlim_max;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
}

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_.port = free_port();
    cfg_.db = dir_.path() / "relayd.db";
    write_file(dir_.path() / "token", std::string(kToken) + "\n");
    cfg_.server_extra = "  token_file: " + (dir_.path() / "token").string() + "\n";
  }

  void start(const std::string& replace_max_body = "") {
    std::string yaml = cfg_.yaml();
    if (!replace_max_body.empty()) {
      const auto at = yaml.find("  max_body_bytes: 65536\n");
      yaml.replace(at, std::string("  max_body_bytes: 65536\n").size(), replace_max_body);
    }
    daemon_ = std::make_unique<DaemonProcess>(dir_.path(), yaml);
    daemon_->start(cfg_.port);
    client_ = std::make_unique<HttpTestClient>("127.0.0.1", cfg_.port);
  }

  HttpReply get(const std::string& target, const std::string& authorization = "") {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!authorization.empty()) headers.emplace_back("Authorization", authorization);
    return client_->request("GET", target, "", headers);
  }

  HttpReply post_event(const std::string& body) {
    return client_->post_json("/v1/events", body,
                              {{"Authorization", std::string("Bearer ") + kToken}});
  }

  long long metric(const std::string& name) {
    const auto r = get("/metrics", std::string("Bearer ") + kToken);
    const auto at = r.body.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stoll(r.body.substr(at + name.size() + 2));
  }

  TempDir dir_;
  TestConfig cfg_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<HttpTestClient> client_;
};

// Item 1: configured header values were stored and served in clear when their name did not
// look secret. Item 7: a credential in the URL's query was printed by check-config, served by
// GET /v1/webhooks and stored in attempts.url.
TEST_F(SecurityTest, CredentialsInResponseHeadersAreNotStored) {
  // A receiver that hands out a session cookie: the attempt log keeps the header's name, not
  // its value; ordinary headers stay readable for debugging.
  relay::test::ReceiverOptions plain;
  plain.tls = false;
  relay::test::TestReceiver receiver(plain);
  relay::test::Reply reply;
  reply.headers = {{"Set-Cookie", "session=sc-Tq61; HttpOnly"}, {"X-Request-Id", "req-Bn27"}};
  receiver.set_default_reply(reply);
  cfg_.webhooks_yaml = "  - id: crm\n    url: " + receiver.url("/hook") +
                       "\n    secret: whsec-Zq9\n    events: [\"*\"]\n"
                       "    allow_insecure_http: true\n";
  start();
  ASSERT_EQ(post_event(R"({"event":"ticket.created","data":{}})").status, 202);
  ASSERT_TRUE(wait_until(
      [&] {
        Db db(cfg_.db);
        return db.count("SELECT count(*) FROM attempts") > 0;
      },
      10s));
  Db db(cfg_.db);
  const auto stored = json::parse(db.value("SELECT response_headers FROM attempts"));
  EXPECT_EQ(stored.at("Set-Cookie"), "[redacted]") << stored.dump();
  EXPECT_EQ(stored.at("X-Request-Id"), "req-Bn27") << stored.dump();
  const auto [code, dump] = run_command("sqlite3 " + cfg_.db.string() + " .dump");
  EXPECT_EQ(code, 0);
  EXPECT_EQ(dump.find("sc-Tq61"), std::string::npos);
}

TEST_F(SecurityTest, ConfiguredHeaderValuesAndUrlQueryValuesNeverLeave) {
  relay::test::ReceiverOptions plain;
  plain.tls = false;
  relay::test::TestReceiver receiver(plain);
  const std::vector<std::pair<std::string, std::string>> secrets = {
      {"X-Auth", "Basic c2VjcmV0LWJhc2lj"},
      {"X-Api-Pass", "pass-Vq81"},
      {"X-Credential", "cred-Lm22"},
      {"X-Session", "sess-Ow93"},
      {"X-Access", "acc-Zr04"},
      {"X-Team", "team-Hp55"}};
  std::string headers_yaml = "    headers:\n";
  for (const auto& [name, value] : secrets) headers_yaml += "      " + name + ": " + value + "\n";
  const std::string query_secret = "qs-Kd7730";
  cfg_.webhooks_yaml = "  - id: crm\n    url: " + receiver.url("/hook") +
                       "?api_token=" + query_secret +
                       "\n    secret: whsec-Zq9\n    events: [\"*\"]\n"
                       "    allow_insecure_http: true\n" +
                       headers_yaml;
  start();
  const auto r = post_event(R"({"event":"ticket.created","data":{}})");
  ASSERT_EQ(r.status, 202) << r.body;
  const auto delivery = json::parse(r.body).at("deliveries").at(0).at("id").get<std::string>();
  ASSERT_TRUE(receiver.wait_for_requests(1, 10s));
  // The receiver got every value: redaction is for what relayd keeps and shows.
  const auto sent = receiver.requests().at(0);
  for (const auto& [name, value] : secrets) EXPECT_EQ(sent.header(name), value);
  EXPECT_NE(sent.target.find(query_secret), std::string::npos);

  ASSERT_TRUE(wait_until(
      [&] {
        Db db(cfg_.db);
        return db.count("SELECT count(*) FROM attempts") > 0;
      },
      10s));
  Db db(cfg_.db);
  const auto stored = db.rows("SELECT url, request_headers FROM attempts");
  const auto api = get("/v1/deliveries/" + delivery, std::string("Bearer ") + kToken);
  ASSERT_EQ(api.status, 200);
  const auto webhooks = get("/v1/webhooks", std::string("Bearer ") + kToken);
  ASSERT_EQ(webhooks.status, 200);
  const auto [code, check] = run_command(relayd_binary() + " check-config --config " +
                                         daemon_->config_path().string() + " 2>&1");
  EXPECT_EQ(code, 0) << check;
  std::vector<std::string> leaked_values = {query_secret};
  for (const auto& [name, value] : secrets) leaked_values.push_back(value);
  for (const auto& value : leaked_values) {
    EXPECT_EQ(stored[0][0].find(value), std::string::npos) << stored[0][0];
    EXPECT_EQ(stored[0][1].find(value), std::string::npos) << stored[0][1];
    EXPECT_EQ(api.body.find(value), std::string::npos) << api.body;
    EXPECT_EQ(webhooks.body.find(value), std::string::npos) << webhooks.body;
    EXPECT_EQ(check.find(value), std::string::npos) << check;
    EXPECT_EQ(daemon_->log().find(value), std::string::npos) << value;
  }
  // What is shown still names the parameters and headers.
  EXPECT_NE(stored[0][0].find("?api_token=[redacted]"), std::string::npos) << stored[0][0];
  EXPECT_NE(webhooks.body.find("api_token=[redacted]"), std::string::npos) << webhooks.body;
  EXPECT_EQ(json::parse(stored[0][1]).at("X-Team"), "[redacted]");
  EXPECT_EQ(json::parse(stored[0][1]).at("X-Relay-Event"), "ticket.created");
}

// Item 2: 300 idle sockets under LimitNOFILE=256 made intake and /healthz time out while the
// log repeated "accept failed: Too many open files".
TEST_F(SecurityTest, IdleConnectionsCannotExhaustDescriptors) {
  start();
  rlimit limit{256, 256};
  ASSERT_EQ(::prlimit(daemon_->pid(), RLIMIT_NOFILE, &limit, nullptr), 0);
  std::vector<int> idle;
  for (int i = 0; i < 300; ++i) {
    const int fd = connect_to(cfg_.port);
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  // The newest connections pushed the oldest idle ones out; a new client is still served.
  HttpTestClient fresh("127.0.0.1", cfg_.port);
  EXPECT_EQ(fresh.request("GET", "/healthz", "", {}, 5s).status, 200);
  const auto r = fresh.post_json("/v1/events", R"({"event":"ticket.created","data":{}})",
                                 {{"Authorization", std::string("Bearer ") + kToken}});
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_TRUE(closed_by_peer(idle.front(), 5s)) << "the oldest idle connection was kept";
  for (const int fd : idle) ::close(fd);
  EXPECT_EQ(daemon_->log().find("Too many open files"), std::string::npos) << daemon_->log();
  HttpTestClient reader("127.0.0.1", cfg_.port);
  const auto metrics =
      reader.request("GET", "/metrics", "", {{"Authorization", std::string("Bearer ") + kToken}});
  EXPECT_NE(metrics.body.find("relayd_http_connections_shed_total "), std::string::npos);
  EXPECT_EQ(metrics.body.find("relayd_http_connections_shed_total 0\n"), std::string::npos);
}

// Item 2, the other half: only when every connection is busy is a new one refused.
TEST_F(SecurityTest, AtTheCapBusyConnectionsAreKeptAndNewOnesRefused) {
  cfg_.server_extra += "  max_connections: 8\n";
  start();
  // The start-up probe's connections must be gone first: until relayd has read a request's
  // first byte, its connection is idle and may be the one shed.
  client_.reset();
  std::this_thread::sleep_for(500ms);
  std::vector<int> busy;
  for (int i = 0; i < 8; ++i) {
    const int fd = connect_to(cfg_.port);
    ASSERT_GE(fd, 0);
    // Half a header: a request in progress.
    ASSERT_TRUE(send_all(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n"));
    busy.push_back(fd);
    std::this_thread::sleep_for(100ms);
  }
  std::this_thread::sleep_for(500ms);
  const int refused = connect_to(cfg_.port);
  ASSERT_GE(refused, 0);  // the kernel accepts; relayd closes it at once
  EXPECT_TRUE(closed_by_peer(refused, 3s));
  ::close(refused);
  // The busy ones were not touched: each finishes its request.
  for (const int fd : busy) {
    ASSERT_TRUE(send_all(fd, "\r\n"));
    EXPECT_EQ(read_some(fd, 3s).rfind("HTTP/1.1 200", 0), 0U);
    ::close(fd);
  }
  client_ = std::make_unique<HttpTestClient>("127.0.0.1", cfg_.port);
  EXPECT_GE(metric("relayd_http_connections_refused_total"), 1);
  EXPECT_EQ(metric("relayd_http_connections_limit"), 8);
}

// Item 3: 150 unauthenticated clients each sending 1 MiB − 1 byte and stalling took RSS from
// 49 MB to 196 MB; `Expect: 100-continue` got its 100 before the token check.
TEST_F(SecurityTest, TokenIsCheckedBeforeTheBodyAndBefore100Continue) {
  start("  max_body_bytes: 1048576\n");
  const int fd = connect_to(cfg_.port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd,
                       "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 1048575\r\nExpect: 100-continue\r\n\r\n"));
  const auto answer = read_some(fd, 3s);
  ::close(fd);
  EXPECT_EQ(answer.rfind("HTTP/1.1 401", 0), 0U) << answer;

  const long before = rss_kib(daemon_->pid());
  std::vector<int> stalled;
  const std::string head =
      "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 1048576\r\n\r\n";
  const std::string body(1048575, 'a');
  std::vector<std::thread> senders;
  std::mutex mutex;
  for (int t = 0; t < 10; ++t) {
    senders.emplace_back([&] {
      for (int i = 0; i < 15; ++i) {
        const int c = connect_to(cfg_.port);
        if (c < 0) continue;
        timeval tv{2, 0};
        ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        (void)send_all(c, head + body);  // may stop early: the server answered and closed
        std::lock_guard lock(mutex);
        stalled.push_back(c);
      }
    });
  }
  for (auto& s : senders) s.join();
  const long after = rss_kib(daemon_->pid());
  for (const int c : stalled) ::close(c);
  EXPECT_EQ(stalled.size(), 150U);
  // Before the fix: about +147 MB. Now nothing is buffered beyond a read buffer per connection.
  EXPECT_LT(after - before, kSanitized ? 80 * 1024 : 24 * 1024) << before << " → " << after;
  EXPECT_EQ(get("/healthz").status, 200);
}

// Item 4: `Transfer-Encoding: identity|gzip|xchunked|chunked, identity` without Content-Length
// was read as an empty body, and the rest ran as the next request: an embedded authenticated
// POST was stored (202). RFC 9112 §6.3: 400 and close.
TEST_F(SecurityTest, TransferEncodingOtherThanChunkedIsRefusedNotSmuggled) {
  start();
  int n = 0;
  for (const std::string te : {"identity", "gzip", "xchunked", "chunked, identity"}) {
    const std::string inner_body =
        R"({"event":"ticket.created","id":"smuggled-)" + std::to_string(n++) + R"(","data":{}})";
    const std::string smuggled = "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                                 std::string(kToken) +
                                 "\r\nContent-Type: application/json\r\nContent-Length: " +
                                 std::to_string(inner_body.size()) + "\r\n\r\n" + inner_body;
    const std::string outer =
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + std::string(kToken) +
        "\r\nContent-Type: application/json\r\nTransfer-Encoding: " + te + "\r\n\r\n" + smuggled;
    const auto reply = raw_exchange(cfg_.port, outer, 5s);
    EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0U) << te << ": " << reply;
    EXPECT_EQ(reply.find("HTTP/1.1 202"), std::string::npos) << te << ": " << reply;
    EXPECT_NE(reply.find("Transfer-Encoding"), std::string::npos) << reply;
  }
  // Chunked still works.
  const std::string body = R"({"event":"ticket.created","id":"chunked-ok","data":{}})";
  char size[16];
  std::snprintf(size, sizeof size, "%zx", body.size());
  const auto ok =
      raw_exchange(cfg_.port,
                   "POST /v1/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: "
                   "Bearer " +
                       std::string(kToken) +
                       "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
                       size + "\r\n" + body + "\r\n0\r\n\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 202", 0), 0U) << ok;
  Db db(cfg_.db);
  EXPECT_EQ(db.count("SELECT count(*) FROM events WHERE id LIKE 'smuggled-%'"), 0);
  EXPECT_EQ(db.count("SELECT count(*) FROM events WHERE id = 'chunked-ok'"), 1);
}

// Item 6: /metrics checked the token with its own code: `bearer T` and `Bearer  T` passed on
// /v1 but not on /metrics.
TEST_F(SecurityTest, MetricsAndV1AcceptTheSameSpellingsOfTheToken) {
  start();
  for (const auto& auth : {std::string("Bearer ") + kToken, std::string("bearer ") + kToken,
                           std::string("Bearer  ") + kToken}) {
    EXPECT_EQ(get("/metrics", auth).status, 200) << auth;
    EXPECT_EQ(get("/v1/webhooks", auth).status, 200) << auth;
  }
  for (const auto& auth :
       {std::string(""), std::string("Bearer ") + kToken + "x", std::string("Basic ") + kToken}) {
    EXPECT_EQ(get("/metrics", auth).status, 401) << auth;
    EXPECT_EQ(get("/v1/webhooks", auth).status, 401) << auth;
  }
  EXPECT_EQ(get("/metrics").header("WWW-Authenticate"), "Bearer");
}

// Item 8: header names with bytes >= 0x80 reached std::tolower(char) in the admin API.
TEST_F(SecurityTest, HeaderNamesWithHighBytesAreRefusedCleanly) {
  start();
  const auto reply = raw_exchange(cfg_.port,
                                  "GET /v1/webhooks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                                      std::string(kToken) + "\r\nX-\xC4\xB0\xFF: 1\r\n\r\n",
                                  3s);
  EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0U) << reply;
  // A high byte in the Authorization value is just a wrong token.
  EXPECT_EQ(get("/v1/webhooks", std::string("Bearer ") + kToken + "\xC4").status, 401);
  EXPECT_EQ(get("/healthz").status, 200);
}

// SPEC §8's load figure: with 2,000 idle connections and 200 unauthenticated stalled uploads
// open, an authenticated client still gets 202s with p99 under 50 ms and RSS stays under
// 100 MB.
TEST_F(SecurityTest, AuthenticatedClientIsServedUnderConnectionFlood) {
  raise_fd_limit();
  cfg_.server_extra += "  max_connections: 4096\n";
  start("  max_body_bytes: 1048576\n");
  std::vector<int> open;
  for (int i = 0; i < 2000; ++i) {
    const int fd = connect_to(cfg_.port);
    ASSERT_GE(fd, 0) << i;
    open.push_back(fd);
  }
  const std::string head =
      "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 1048576\r\n\r\n";
  for (int i = 0; i < 200; ++i) {
    const int fd = connect_to(cfg_.port);
    ASSERT_GE(fd, 0) << i;
    timeval tv{0, 200000};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    (void)send_all(fd, head + std::string(256 * 1024, 'a'));
    open.push_back(fd);
  }
  std::vector<double> latencies_ms;
  for (int i = 0; i < 400; ++i) {
    const auto started = std::chrono::steady_clock::now();
    const auto r =
        post_event(R"({"event":"ticket.created","data":{"i":)" + std::to_string(i) + "}}");
    latencies_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count());
    ASSERT_EQ(r.status, 202) << r.body;
  }
  const long rss = rss_kib(daemon_->pid());
  for (const int fd : open) ::close(fd);
  std::sort(latencies_ms.begin(), latencies_ms.end());
  const double p50 = latencies_ms[latencies_ms.size() / 2];
  const double p99 = latencies_ms[latencies_ms.size() * 99 / 100];
  std::printf(
      "[ figures ] 2000 idle + 200 stalled uploads: p50 %.2f ms, p99 %.2f ms, RSS %ld KiB\n", p50,
      p99, rss);
  EXPECT_LT(p99, kSanitized ? 250.0 : 50.0);
  EXPECT_LT(rss, kSanitized ? 400L * 1024 : 100L * 1024);
}

}  // namespace
}  // namespace relay::testing
