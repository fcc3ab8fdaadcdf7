// HttpClientPool against a real HTTPS TestReceiver on 127.0.0.1 with a generated CA.
#include "relay/delivery/HttpClient.hpp"

#include <filesystem>
#include <future>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "TempDir.hpp"
#include "TestCerts.hpp"
#include "TestReceiver.hpp"

namespace relay::delivery {
namespace {

using namespace std::chrono_literals;
using test::Reply;
using test::TestCerts;
using test::TestReceiver;

const TestCerts& certs() {
  static const TestCerts instance;
  return instance;
}

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certs().write_pem_files(dir_.path());
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }

  void TearDown() override {
    pool_.reset();
    work_.reset();
    for (auto& t : threads_) t.join();
  }

  HttpClientPool& pool(ClientOptions options = {}) {
    if (!pool_) {
      options.ca_file = dir_.file("ca.pem").string();
      pool_ = std::make_unique<HttpClientPool>(io_, options);
    }
    return *pool_;
  }

  static OutgoingRequest request(std::string url, std::chrono::milliseconds timeout = 5s) {
    OutgoingRequest r;
    r.url = std::move(url);
    r.headers = {{"Content-Type", "application/json"}, {"X-Relay-Event", "ticket.created"}};
    r.body = R"({"id":"evt_1"})";
    r.timeout = timeout;
    r.allow_private_networks = true;  // the receiver is on loopback
    return r;
  }

  HttpResult send(OutgoingRequest r) {
    auto promise = std::make_shared<std::promise<HttpResult>>();
    auto future = promise->get_future();
    pool().send(std::move(r), [promise](HttpResult result) { promise->set_value(result); });
    if (future.wait_for(20s) != std::future_status::ready) {
      ADD_FAILURE() << "done was not called";
      return {};
    }
    return future.get();
  }

  static test::ReceiverOptions https(test::CertAndKey cert = certs().server()) {
    test::ReceiverOptions o;
    o.certificate = std::move(cert);
    return o;
  }

  relay::test::TempDir dir_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::vector<std::thread> threads_;
  std::unique_ptr<HttpClientPool> pool_;
};

TEST_F(HttpClientTest, PostsAndReadsResponse) {
  TestReceiver receiver(https());
  Reply reply;
  reply.body = R"({"ok":true})";
  reply.headers = {{"X-Reply", "1"}};
  receiver.push_reply(reply);

  const HttpResult r = send(request(receiver.url("/hooks/relay?x=1")));
  EXPECT_EQ(r.error, "");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"ok":true})");
  EXPECT_FALSE(r.body_truncated);
  EXPECT_EQ(r.remote_address, "127.0.0.1:" + std::to_string(receiver.port()));
  EXPECT_GT(r.duration.count(), -1);
  bool saw_reply_header = false;
  for (const auto& [n, v] : r.headers) saw_reply_header |= (n == "X-Reply" && v == "1");
  EXPECT_TRUE(saw_reply_header);

  const auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/hooks/relay?x=1");
  EXPECT_EQ(requests[0].body, R"({"id":"evt_1"})");
  EXPECT_EQ(requests[0].header("x-relay-event"), "ticket.created");
  EXPECT_EQ(requests[0].header("Host"), "127.0.0.1:" + std::to_string(receiver.port()));
  EXPECT_EQ(requests[0].header("Content-Length"), "14");
}

TEST_F(HttpClientTest, ReusesKeepAliveConnection) {
  TestReceiver receiver(https());
  EXPECT_EQ(send(request(receiver.url())).status, 200);
  EXPECT_EQ(pool().idle_connections(), 1u);
  EXPECT_EQ(send(request(receiver.url())).status, 200);
  const auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].connection_id, requests[1].connection_id);
  EXPECT_EQ(requests[1].sequence_on_connection, 1u);
  EXPECT_EQ(receiver.connections_accepted(), 1u);
}

TEST_F(HttpClientTest, CallerCannotOverrideFramingHeaders) {
  TestReceiver receiver(https());
  auto r = request(receiver.url());
  r.headers.emplace_back("Host", "evil.example");
  r.headers.emplace_back("Content-Length", "1");
  r.headers.emplace_back("Connection", "close");
  EXPECT_EQ(send(r).status, 200);
  const auto got = receiver.requests().at(0);
  int hosts = 0;
  for (const auto& [n, v] : got.headers) hosts += (n == "Host") ? 1 : 0;
  EXPECT_EQ(hosts, 1);
  EXPECT_EQ(got.header("Host"), "127.0.0.1:" + std::to_string(receiver.port()));
  EXPECT_EQ(got.header("Content-Length"), "14");
  EXPECT_FALSE(got.has_header("Connection"));
}

TEST_F(HttpClientTest, HeaderThatBreaksTheFramingIsNeverSent) {
  // The request head is written as text: a line break in a header would inject headers (or a
  // second request). Config validation refuses such values; the client refuses them too.
  TestReceiver receiver(https());
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"X-Extra", "a\r\nX-Injected: 1"},
                                                        {"X-Extra", std::string("a\0b", 3)},
                                                        {"X-Bad\nName", "v"},
                                                        {"X-Colon:", "v"}}) {
    auto r = request(receiver.url());
    r.headers.emplace_back(name, value);
    const HttpResult result = send(r);
    EXPECT_FALSE(result.status.has_value());
    EXPECT_EQ(result.error, "request: a header name or value would break the HTTP framing");
  }
  EXPECT_EQ(send(request(receiver.url())).status, 200);
  const auto got = receiver.requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(got[0].has_header("X-Injected"));
}

TEST_F(HttpClientTest, IdleConnectionsExpire) {
  ClientOptions options;
  options.idle_timeout = 100ms;
  pool(options);
  TestReceiver receiver(https());
  EXPECT_EQ(send(request(receiver.url())).status, 200);
  EXPECT_EQ(pool().idle_connections(), 1u);
  std::this_thread::sleep_for(250ms);
  EXPECT_EQ(send(request(receiver.url())).status, 200);
  const auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_NE(requests[0].connection_id, requests[1].connection_id);
  pool().close_idle();
  EXPECT_EQ(pool().idle_connections(), 0u);
}

TEST_F(HttpClientTest, ServerClosedIdleConnectionCostsNothing) {
  TestReceiver receiver(https());
  EXPECT_EQ(send(request(receiver.url())).status, 200);
  receiver.close_idle_connections();
  const HttpResult r = send(request(receiver.url()));
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.status, 200);
  const auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_NE(requests[0].connection_id, requests[1].connection_id);
}

TEST_F(HttpClientTest, ReusedConnectionDyingBeforeResponseIsRetriedOnce) {
  TestReceiver receiver(https());
  receiver.push_reply(Reply{});  // 1st request: 200
  Reply vanish;
  vanish.close_without_response = true;
  receiver.push_reply(vanish);  // 2nd (on the reused connection): closed without answer
  EXPECT_EQ(send(request(receiver.url())).status, 200);
  const HttpResult r = send(request(receiver.url()));
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.status, 200);
  const auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].connection_id, requests[0].connection_id);
  EXPECT_NE(requests[2].connection_id, requests[0].connection_id);
}

TEST_F(HttpClientTest, FreshConnectionClosedWithoutResponseIsAnError) {
  TestReceiver receiver(https());
  Reply vanish;
  vanish.close_without_response = true;
  receiver.push_reply(vanish);
  const HttpResult r = send(request(receiver.url()));
  EXPECT_FALSE(r.status.has_value());
  EXPECT_EQ(r.error.rfind("read: ", 0), 0u) << r.error;
  EXPECT_EQ(receiver.request_count(), 1u);
}

TEST_F(HttpClientTest, UntrustedCertificate) {
  TestReceiver receiver(https(TestCerts::self_signed()));
  const HttpResult r = send(request(receiver.url()));
  EXPECT_FALSE(r.status.has_value());
  EXPECT_EQ(r.error.rfind("tls: certificate verify failed (", 0), 0u) << r.error;
  EXPECT_NE(r.error.find("self-signed certificate"), std::string::npos) << r.error;
  EXPECT_EQ(receiver.request_count(), 0u);
}

TEST_F(HttpClientTest, WrongHostName) {
  TestReceiver receiver(https(certs().make_leaf({"wrong.example"}, {})));
  const HttpResult by_name = send(request(receiver.url("/hook", "localhost")));
  EXPECT_EQ(by_name.error, "tls: host name mismatch (certificate is not valid for localhost)");
  const HttpResult by_ip = send(request(receiver.url()));
  EXPECT_EQ(by_ip.error, "tls: host name mismatch (certificate is not valid for 127.0.0.1)");
  EXPECT_EQ(receiver.request_count(), 0u);
}

TEST_F(HttpClientTest, ConnectionRefused) {
  std::string url;
  {
    TestReceiver gone(https());
    url = gone.url();
  }
  const HttpResult r = send(request(url));
  EXPECT_FALSE(r.status.has_value());
  EXPECT_EQ(r.error, "connect: Connection refused");
}

TEST_F(HttpClientTest, TimeoutCoversTheWholeExchange) {
  TestReceiver receiver(https());
  Reply slow;
  slow.delay = 3s;
  receiver.push_reply(slow);
  const auto start = std::chrono::steady_clock::now();
  const HttpResult r = send(request(receiver.url(), 300ms));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(r.status.has_value());
  EXPECT_EQ(r.error, "timeout after 300 ms (during read)");
  EXPECT_GE(r.duration, 290ms);
  EXPECT_LT(elapsed, 1500ms);
}

TEST_F(HttpClientTest, RedirectIsNotFollowed) {
  TestReceiver receiver(https());
  Reply redirect = Reply::with_status(302);
  redirect.headers = {{"Location", receiver.url("/elsewhere")}};
  receiver.push_reply(redirect);
  const HttpResult r = send(request(receiver.url()));
  EXPECT_EQ(r.status, 302);
  std::this_thread::sleep_for(100ms);
  ASSERT_EQ(receiver.request_count(), 1u);
  EXPECT_EQ(receiver.requests()[0].target, "/hook");
}

TEST_F(HttpClientTest, LargeBodyIsTruncatedAndStatusKept) {
  ClientOptions options;
  options.max_response_body = 1000;
  pool(options);
  TestReceiver receiver(https());
  Reply big = Reply::with_status(500);
  big.filler_body = 5 * 1024 * 1024;
  receiver.push_reply(big);
  const HttpResult r = send(request(receiver.url()));
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, std::string(1000, 'x'));
  EXPECT_TRUE(r.body_truncated);
  EXPECT_EQ(pool().idle_connections(), 0u);  // the rest of the body is never read
}

TEST_F(HttpClientTest, EndlessBodyIsTruncated) {
  ClientOptions options;
  options.max_response_body = 10000;
  pool(options);
  TestReceiver receiver(https());
  Reply endless;
  endless.endless_body = true;
  receiver.push_reply(endless);
  const HttpResult r = send(request(receiver.url(), 3s));
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), 10000u);
  EXPECT_TRUE(r.body_truncated);
  EXPECT_LT(r.duration, 2s);
}

TEST_F(HttpClientTest, BodyExactlyAtLimitIsNotTruncated) {
  ClientOptions options;
  options.max_response_body = 100;
  pool(options);
  TestReceiver receiver(https());
  Reply exact;
  exact.filler_body = 100;
  receiver.push_reply(exact);
  const HttpResult r = send(request(receiver.url()));
  EXPECT_EQ(r.body.size(), 100u);
  EXPECT_FALSE(r.body_truncated);
  EXPECT_EQ(pool().idle_connections(), 1u);
}

TEST_F(HttpClientTest, SlowBodyPastDeadlineKeepsStatus) {
  TestReceiver receiver(https());
  Reply drip;
  drip.filler_body = 2000;
  drip.drip_chunk = 100;
  drip.drip_interval = 50ms;
  receiver.push_reply(drip);
  const HttpResult r = send(request(receiver.url(), 500ms));
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body_truncated);
  EXPECT_EQ(r.body_error, "timeout after 500 ms (during read)");
  EXPECT_LT(r.body.size(), 2000u);
}

TEST_F(HttpClientTest, DripFedResponseWithinDeadline) {
  TestReceiver receiver(https());
  Reply drip;
  drip.body = "slow but fine";
  drip.drip_chunk = 7;
  drip.drip_interval = 5ms;
  receiver.push_reply(drip);
  const HttpResult r = send(request(receiver.url()));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "slow but fine");
}

TEST_F(HttpClientTest, SsrfGuardRefusesLoopbackWithoutConnecting) {
  TestReceiver receiver(https());
  auto r1 = request(receiver.url());
  r1.allow_private_networks = false;
  EXPECT_EQ(send(r1).error,
            "refused: 127.0.0.1 resolves only to private/loopback addresses "
            "(allow_private_networks is false)");
  auto r2 = request(receiver.url("/hook", "localhost"));
  r2.allow_private_networks = false;
  EXPECT_EQ(send(r2).error,
            "refused: localhost resolves only to private/loopback addresses "
            "(allow_private_networks is false)");
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(receiver.connections_accepted(), 0u);
  EXPECT_EQ(receiver.request_count(), 0u);
}

TEST_F(HttpClientTest, LocalhostTriesEveryAddress) {
  TestReceiver receiver(https());  // listens on 127.0.0.1 only; localhost may give ::1 first
  const HttpResult r = send(request(receiver.url("/hook", "localhost")));
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(receiver.requests().at(0).header("Host"),
            "localhost:" + std::to_string(receiver.port()));
}

TEST_F(HttpClientTest, InterimResponsesAreSkipped) {
  TestReceiver receiver(https());
  Reply r = Reply::with_status(201, "created");
  r.interim = {100, 103};
  receiver.push_reply(r);
  const HttpResult result = send(request(receiver.url()));
  EXPECT_EQ(result.status, 201);
  EXPECT_EQ(result.body, "created");
}

TEST_F(HttpClientTest, LoneInterimResponseIsATransportError) {
  TestReceiver receiver(https());
  Reply r;
  r.interim = {100};
  r.close_after_interim = true;
  receiver.push_reply(r);
  const HttpResult result = send(request(receiver.url()));
  EXPECT_FALSE(result.status.has_value());
  EXPECT_EQ(result.error, "read: connection closed after an interim 1xx response");
}

TEST_F(HttpClientTest, ConnectionCloseAndHttp10AreNotPooled) {
  TestReceiver receiver(https());
  Reply close;
  close.close_after_response = true;
  receiver.push_reply(close);
  Reply old;
  old.http10 = true;
  receiver.push_reply(old);
  EXPECT_EQ(send(request(receiver.url())).status, 200);
  EXPECT_EQ(pool().idle_connections(), 0u);
  EXPECT_EQ(send(request(receiver.url())).status, 200);
  EXPECT_EQ(pool().idle_connections(), 0u);
  EXPECT_EQ(send(request(receiver.url())).status, 200);
  EXPECT_EQ(pool().idle_connections(), 1u);
  EXPECT_EQ(receiver.connections_accepted(), 3u);
}

TEST_F(HttpClientTest, PlainHttpNeedsAllowInsecure) {
  test::ReceiverOptions options;
  options.tls = false;
  TestReceiver receiver(options);
  auto r = request(receiver.url());
  EXPECT_EQ(send(r).error, "insecure: http:// URL requires allow_insecure_http");
  r.allow_insecure_http = true;
  const HttpResult ok = send(r);
  EXPECT_EQ(ok.error, "");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(receiver.request_count(), 1u);
}

TEST_F(HttpClientTest, InvalidUrlAndDnsFailure) {
  EXPECT_EQ(send(request("ftp://example.com/")).error, "url: unsupported scheme \"ftp\"");
  const HttpResult r = send(request("https://relay-test.invalid/hook", 3s));
  EXPECT_FALSE(r.status.has_value());
  EXPECT_TRUE(r.error.rfind("dns: ", 0) == 0 || r.error == "timeout after 3000 ms (during dns)")
      << r.error;
}

TEST_F(HttpClientTest, DoneIsCalledWhenPoolIsDestroyedMidFlight) {
  TestReceiver receiver(https());
  Reply slow;
  slow.delay = 200ms;
  receiver.push_reply(slow);
  auto promise = std::make_shared<std::promise<HttpResult>>();
  auto future = promise->get_future();
  pool().send(request(receiver.url()), [promise](HttpResult r) { promise->set_value(r); });
  pool_.reset();
  ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(future.get().status, 200);
}

TEST_F(HttpClientTest, ConcurrentSendsFromManyThreads) {
  TestReceiver receiver(https());
  constexpr int kCount = 40;
  HttpClientPool& client = pool();  // created before the threads use it
  std::vector<std::future<HttpResult>> futures;
  std::vector<std::thread> senders;
  std::mutex m;
  for (int t = 0; t < 4; ++t) {
    senders.emplace_back([&] {
      for (int i = 0; i < kCount / 4; ++i) {
        auto promise = std::make_shared<std::promise<HttpResult>>();
        {
          std::lock_guard lock(m);
          futures.push_back(promise->get_future());
        }
        client.send(request(receiver.url()), [promise](HttpResult r) { promise->set_value(r); });
      }
    });
  }
  for (auto& s : senders) s.join();
  for (auto& f : futures) {
    ASSERT_EQ(f.wait_for(20s), std::future_status::ready);
    EXPECT_EQ(f.get().status, 200);
  }
  EXPECT_EQ(receiver.request_count(), static_cast<std::size_t>(kCount));
  EXPECT_LE(pool().idle_connections(), ClientOptions{}.max_idle_per_origin);
}

}  // namespace
}  // namespace relay::delivery
