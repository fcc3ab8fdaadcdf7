// HttpServer over real sockets on 127.0.0.1:0 with an in-memory Store (FakeStore.hpp; the
// SQLite store is exercised by the integration tests) and a raw POSIX-socket client
// (RawHttpClient.hpp), so what is on the wire is exactly what the test wrote.
#include "relay/server/HttpServer.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstdlib>
#include <filesystem>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "FakeStore.hpp"
#include "RawHttpClient.hpp"
#include "TempDir.hpp"
#include "relay/store/Store.hpp"

namespace relay::server {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using namespace test_support;

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override { start(); }

  void start(std::string token = "", std::optional<std::string> tls_cert = std::nullopt,
             std::optional<std::string> tls_key = std::nullopt) {
    auto config = std::make_shared<config::Config>();
    config->server.tls_cert = std::move(tls_cert);
    config->server.tls_key = std::move(tls_key);
    config->server.listen_host = "127.0.0.1";
    config->server.listen_port = 0;
    config->server.max_body_bytes = 1024;
    config->server.token = std::move(token);
    config::WebhookConfig crm;
    crm.id = "crm";
    crm.url = "https://crm.example.com/hook";
    crm.events = {"ticket.created", "message.*"};
    config::WebhookConfig paused;
    paused.id = "paused";
    paused.url = "https://paused.example.com/hook";
    paused.events = {"sla.*"};
    paused.enabled = false;
    config->webhooks = {crm, paused};
    config_ = config;

    ServerContext context;
    context.config = [this] { return config_; };
    context.store = &store_;
    context.on_new_deliveries = [this] { ++wakeups_; };
    ServerOptions options;
    options.header_timeout = 500ms;
    options.body_timeout = 300ms;
    options.body_timeout_max = 800ms;
    options.body_min_rate = 1024 * 1024;
    options.idle_timeout = 1500ms;
    options.write_timeout = 2s;
    server_ = std::make_unique<HttpServer>(io_, context, options);
    server_->add_route("GET", "/v1/things/", [](Request request, auto respond) {
      std::string body = R"({"path":")" + request.path + "\"";
      for (auto& [k, v] : request.query) body += ",\"" + k + "\":\"" + v + "\"";
      body += "}";
      // Answer from a foreign thread, as admin handlers do.
      std::thread([respond, body] {
        respond(Response{200, "application/json", body, {}});
      }).detach();
    });
    // Answers 300 ms late (a request still being served when stop() comes).
    server_->add_route("GET", "/slow", [](Request, auto respond) {
      std::thread([respond] {
        std::this_thread::sleep_for(300ms);
        respond(Response{200, "application/json", R"({"slow":true})", {}});
      }).detach();
    });
    // An answer far larger than the socket buffers: a client that never reads it stalls the write.
    server_->add_route("GET", "/big", [](Request, auto respond) {
      respond(Response{200, "application/octet-stream", std::string(64 << 20, 'x'), {}});
    });
    server_->add_route("GET", "/throws",
                       [](Request, auto) -> void { throw std::runtime_error("handler bug"); });
    server_->start();
    port_ = server_->port();
    ASSERT_NE(port_, 0);
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }

  void TearDown() override {
    if (server_) server_->stop();
    work_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
    server_.reset();
    store_.close();
  }

  HttpReply roundtrip(const std::string& request) {
    RawClient client(port_);
    EXPECT_TRUE(client.connected());
    client.send(request);
    return client.read_reply();
  }

  FakeStore store_;
  std::shared_ptr<const config::Config> config_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::vector<std::thread> threads_;
  std::unique_ptr<HttpServer> server_;
  std::uint16_t port_ = 0;
  std::atomic<int> wakeups_{0};
};

const std::string kTicket = R"({"event":"ticket.created","data":{"b":1,"a":2},"id":"tkt-1"})";

TEST_F(HttpServerTest, AcceptsThenAnswersDuplicateWithSameBytes) {
  auto first = roundtrip(post("/v1/events", kTicket));
  ASSERT_EQ(first.status, 202) << first.body;
  EXPECT_TRUE(first.has_header("Content-Type: application/json"));
  EXPECT_TRUE(first.body.starts_with(R"({"id":"tkt-1","event":"ticket.created","created_at":")"))
      << first.body;
  EXPECT_NE(first.body.find(R"(,"deliveries":[{"id":"dlv_)"), std::string::npos) << first.body;
  EXPECT_NE(first.body.find(R"(","webhook":"crm"}])"), std::string::npos) << first.body;
  EXPECT_EQ(wakeups_.load(), 1);
  const auto payload = store_.payload("tkt-1");
  EXPECT_TRUE(payload.starts_with(R"({"id":"tkt-1","event":"ticket.created","created_at":")"));
  EXPECT_TRUE(payload.ends_with(R"(Z","data":{"b":1,"a":2}})")) << payload;

  auto second = roundtrip(post("/v1/events", kTicket));
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(store_.stored(), 1u);
  EXPECT_EQ(wakeups_.load(), 1);  // nothing new: no wake-up
}

TEST_F(HttpServerTest, GeneratesIdsAndPausedDeliveriesDoNotWake) {
  auto reply = roundtrip(post("/v1/events", R"({"event":"sla.warning","data":{}})"));
  ASSERT_EQ(reply.status, 202) << reply.body;
  EXPECT_TRUE(reply.body.starts_with(R"({"id":"evt_)")) << reply.body;
  EXPECT_NE(reply.body.find(R"("webhook":"paused")"), std::string::npos);
  EXPECT_EQ(wakeups_.load(), 0);
}

TEST_F(HttpServerTest, Batch) {
  auto reply =
      roundtrip(post("/v1/events/batch", R"({"events":[{"event":"ticket.created","data":{}},)"
                                         R"({"event":"customer.created","data":{},"id":"c1"}]})"));
  ASSERT_EQ(reply.status, 202) << reply.body;
  EXPECT_TRUE(reply.body.starts_with(R"({"events":[{"id":"evt_)")) << reply.body;
  EXPECT_NE(reply.body.find(R"({"id":"c1","event":"customer.created")"), std::string::npos);
  EXPECT_EQ(store_.stored(), 2u);

  auto bad =
      roundtrip(post("/v1/events/batch", R"({"events":[{"event":"ticket.created","data":{}},)"
                                         R"({"event":"nope","data":{}}]})"));
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(bad.body,
            R"({"error":{"code":"unknown_event_type","message":"unknown event type \"nope\"",)"
            R"("index":1}})");
  EXPECT_EQ(store_.stored(), 2u);
}

TEST_F(HttpServerTest, ClientErrors) {
  auto r415 = roundtrip(post("/v1/events", kTicket, "", "text/plain"));
  EXPECT_EQ(r415.status, 415);
  EXPECT_EQ(error_code_of(r415), "unsupported_media_type");
  auto missing = roundtrip(post("/v1/events", kTicket, "", ""));
  EXPECT_EQ(missing.status, 415);
  auto charset = roundtrip(post("/v1/events", kTicket, "", "application/json; charset=utf-8"));
  EXPECT_EQ(charset.status, 202);

  auto r400 = roundtrip(post("/v1/events", "{not json"));
  EXPECT_EQ(r400.status, 400);
  EXPECT_EQ(error_code_of(r400), "invalid_json");

  auto r404 = roundtrip(get("/nope"));
  EXPECT_EQ(r404.status, 404);
  EXPECT_EQ(error_code_of(r404), "not_found");

  auto r405 = roundtrip(get("/v1/events"));
  EXPECT_EQ(r405.status, 405);
  EXPECT_EQ(error_code_of(r405), "method_not_allowed");
  EXPECT_TRUE(r405.has_header("Allow: POST"));

  auto r500 = roundtrip(get("/throws"));
  EXPECT_EQ(r500.status, 500);
  EXPECT_EQ(error_code_of(r500), "internal_error");
}

TEST_F(HttpServerTest, BodyOverLimitIs413) {
  const std::string big =
      R"({"event":"ticket.created","data":{"x":")" + std::string(2000, 'x') + "\"}}";
  RawClient client(port_);
  client.send(post("/v1/events", big));
  auto reply = client.read_reply();
  EXPECT_EQ(reply.status, 413);
  EXPECT_EQ(error_code_of(reply), "payload_too_large");
  EXPECT_TRUE(reply.has_header("Connection: close"));
  EXPECT_TRUE(client.closed_by_peer());
  EXPECT_EQ(store_.submits.load(), 0);

  // Chunked bodies are limited too.
  RawClient chunked(port_);
  std::string req =
      "POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) req += "200\r\n" + std::string(0x200, ' ') + "\r\n";
  req += "0\r\n\r\n";
  chunked.send(req);
  EXPECT_EQ(chunked.read_reply().status, 413);
}

TEST_F(HttpServerTest, MalformedHttpIs400AndCloses) {
  RawClient client(port_);
  client.send("GARBAGE\r\n\r\n");
  auto reply = client.read_reply();
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(error_code_of(reply), "bad_request");
  EXPECT_TRUE(client.closed_by_peer());
  EXPECT_EQ(roundtrip(get("/healthz")).status, 200);  // the server is fine
}

TEST_F(HttpServerTest, Overloaded) {
  store_.refuse = true;
  auto reply = roundtrip(post("/v1/events", kTicket));
  EXPECT_EQ(reply.status, 503);
  EXPECT_EQ(error_code_of(reply), "overloaded");
  EXPECT_TRUE(reply.has_header("Retry-After: 1"));
}

TEST_F(HttpServerTest, StorageUnavailableAndStoreShuttingDown) {
  store_.status = store::WriteStatus::kStorageUnavailable;
  auto reply = roundtrip(post("/v1/events", kTicket));
  EXPECT_EQ(reply.status, 503);
  EXPECT_EQ(error_code_of(reply), "storage_unavailable");
  store_.status = store::WriteStatus::kShuttingDown;
  reply = roundtrip(post("/v1/events", kTicket));
  EXPECT_EQ(reply.status, 503);
  EXPECT_EQ(error_code_of(reply), "shutting_down");
}

TEST_F(HttpServerTest, HealthAndReadiness) {
  auto health = roundtrip(get("/healthz"));
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, R"({"status":"ok"})");
  auto ready = roundtrip(get("/readyz"));
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, R"({"status":"ready"})");
  EXPECT_NE(store_.writable_calls_from.load(), std::thread::id{});
  for (auto& t : threads_) EXPECT_NE(store_.writable_calls_from.load(), t.get_id());

  store_.is_writable = false;
  auto not_ready = roundtrip(get("/readyz"));
  EXPECT_EQ(not_ready.status, 503);
  EXPECT_EQ(not_ready.body, R"({"status":"not_ready","reason":"storage_unavailable"})");
}

TEST_F(HttpServerTest, BeginShutdown) {
  server_->begin_shutdown();
  EXPECT_TRUE(server_->shutting_down());
  auto reply = roundtrip(post("/v1/events", kTicket));
  EXPECT_EQ(reply.status, 503);
  EXPECT_EQ(error_code_of(reply), "shutting_down");
  EXPECT_EQ(roundtrip(get("/healthz")).status, 200);
  auto ready = roundtrip(get("/readyz"));
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(ready.body, R"({"status":"not_ready","reason":"shutting_down"})");
  EXPECT_EQ(store_.submits.load(), 0);
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  RawClient client(port_);
  client.send(post("/v1/events", kTicket));
  auto first = client.read_reply();
  EXPECT_EQ(first.status, 202);
  client.send(get("/healthz"));
  EXPECT_EQ(client.read_reply().status, 200);
  // Pipelined: two requests in one write.
  client.send(get("/v1/things/a?x=1%202&y=z+w") + post("/v1/events", kTicket));
  auto things = client.read_reply();
  EXPECT_EQ(things.status, 200);
  EXPECT_EQ(things.body, R"({"path":"/v1/things/a","x":"1 2","y":"z w"})");
  auto dup = client.read_reply();
  EXPECT_EQ(dup.status, 200);
  EXPECT_EQ(dup.body, first.body);
}

TEST_F(HttpServerTest, IdleKeepAliveIsClosed) {
  RawClient client(port_);
  client.send(get("/healthz"));
  EXPECT_EQ(client.read_reply().status, 200);
  const auto start = Clock::now();
  EXPECT_TRUE(client.closed_by_peer(4s));
  EXPECT_LT(Clock::now() - start, 3s);
}

TEST_F(HttpServerTest, StalledBodyIsCutOffWith408) {
  RawClient client(port_);
  const auto start = Clock::now();
  client.send(
      "POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
      "Content-Length: 100\r\n\r\n{\"event\":");
  auto reply = client.read_reply();
  const auto elapsed = Clock::now() - start;
  EXPECT_EQ(reply.status, 408);
  EXPECT_EQ(error_code_of(reply), "request_timeout");
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 2s);
  EXPECT_TRUE(client.closed_by_peer());
  EXPECT_EQ(store_.submits.load(), 0);
}

TEST_F(HttpServerTest, SlowDripHeadersAreCutOff) {
  RawClient client(port_);
  const auto start = Clock::now();
  client.send("POST /v1/events HTTP/1.1\r\n");
  std::this_thread::sleep_for(200ms);
  client.send("Host: t\r\n");
  std::this_thread::sleep_for(200ms);
  client.send("X-A: b\r\n");
  auto reply = client.read_reply();
  EXPECT_EQ(reply.status, 408);
  EXPECT_LT(Clock::now() - start, 2s);
}

TEST_F(HttpServerTest, TruncatedBodyStoresNothing) {
  {
    RawClient client(port_);
    client.send(
        "POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n{\"event\":\"ticket.created\"");
    std::this_thread::sleep_for(50ms);
  }  // closed mid-body
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(store_.submits.load(), 0);
  EXPECT_EQ(roundtrip(get("/healthz")).status, 200);
}

TEST_F(HttpServerTest, ExpectContinue) {
  RawClient client(port_);
  client.send(
      "POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
      "Expect: 100-continue\r\nContent-Length: " +
      std::to_string(kTicket.size()) + "\r\n\r\n");
  auto cont = client.read_reply();
  EXPECT_EQ(cont.status, 100);
  client.send(kTicket);
  EXPECT_EQ(client.read_reply().status, 202);
}

TEST_F(HttpServerTest, StopClosesIdleConnections) {
  RawClient client(port_);
  client.send(get("/healthz"));
  EXPECT_EQ(client.read_reply().status, 200);
  server_->stop();
  EXPECT_TRUE(client.closed_by_peer(1s));
  RawClient late(port_);
  if (late.connected()) {
    EXPECT_TRUE(late.closed_by_peer(1s));
  }
}

// Shutdown's first step: after stop(), a request being served still gets its answer, and
// wait_drained returns once its connection is gone (not before).
TEST_F(HttpServerTest, WaitDrainedWaitsForTheAnswerInProgress) {
  RawClient client(port_);
  client.send(get("/slow"));
  std::this_thread::sleep_for(50ms);  // the handler is running
  server_->stop();
  EXPECT_FALSE(server_->wait_drained(20ms));
  EXPECT_TRUE(server_->wait_drained(5s));
  const auto reply = client.read_reply();
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, R"({"slow":true})");
  EXPECT_TRUE(client.closed_by_peer(1s));
}

// A client that stops reading its answer holds the connection only until write_timeout (2 s
// here), also after stop(): stop() lets an answer being written finish, never wait forever.
TEST_F(HttpServerTest, AnAnswerNobodyReadsIsCutAtTheWriteDeadline) {
  RawClient client(port_);
  const int small = 4096;
  ::setsockopt(client.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  const auto asked = std::chrono::steady_clock::now();
  client.send(get("/big"));
  std::this_thread::sleep_for(300ms);  // the write has filled the buffers and waits
  EXPECT_EQ(server_->connection_stats().open, 1U);
  server_->stop();
  EXPECT_FALSE(server_->wait_drained(500ms));  // stop() did not cut the answer short
  EXPECT_TRUE(server_->wait_drained(5s));
  const auto held = std::chrono::steady_clock::now() - asked;
  EXPECT_GE(held, 1900ms);
  EXPECT_EQ(server_->connection_stats().open, 0U);
}

TEST_F(HttpServerTest, ManyConcurrentConnections) {
  std::vector<std::thread> clients;
  std::atomic<int> accepted{0};
  for (int i = 0; i < 16; ++i) {
    clients.emplace_back([&, i] {
      for (int j = 0; j < 10; ++j) {
        RawClient client(port_);
        client.send(post("/v1/events", R"({"event":"message.created","data":{"n":)" +
                                           std::to_string(i * 100 + j) + "}}"));
        if (client.read_reply().status == 202) ++accepted;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(accepted.load(), 160);
  EXPECT_EQ(store_.stored(), 160u);
}

class HttpServerTokenTest : public HttpServerTest {
 protected:
  void SetUp() override { start("s3cret-token"); }
};

TEST_F(HttpServerTokenTest, V1NeedsTheBearerToken) {
  auto none = roundtrip(post("/v1/events", kTicket));
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(error_code_of(none), "unauthorized");
  EXPECT_TRUE(none.has_header("WWW-Authenticate: Bearer"));
  auto wrong = roundtrip(post("/v1/events", kTicket, "Authorization: Bearer s3cret-tokem\r\n"));
  EXPECT_EQ(wrong.status, 401);
  auto unknown = roundtrip(get("/v1/nothing-here"));
  EXPECT_EQ(unknown.status, 401);  // no route discovery without the token
  auto good = roundtrip(post("/v1/events", kTicket, "Authorization: Bearer s3cret-token\r\n"));
  EXPECT_EQ(good.status, 202);
  EXPECT_EQ(roundtrip(get("/healthz")).status, 200);
  EXPECT_EQ(roundtrip(get("/readyz")).status, 200);
  EXPECT_EQ(store_.stored(), 1u);
}

// ---------------------------------------------------------------- TLS

class HttpServerTlsTest : public HttpServerTest {
 protected:
  void SetUp() override {
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-subj /CN=localhost -days 1 -keyout " +
        dir_.file("key.pem").string() + " -out " + dir_.file("cert.pem").string() +
        " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl req failed";
    start("", dir_.file("cert.pem").string(), dir_.file("key.pem").string());
  }

  /// One HTTPS request with OpenSSL's client (certificate not verified: self-signed).
  /// Returns the whole response, or "" when the handshake failed.
  std::string tls_roundtrip(const std::string& request, int max_version = 0) {
    RawClient sock(port_);
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                          SSL_CTX_free);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    if (max_version != 0) {
      SSL_CTX_set_security_level(ctx.get(), 0);
      SSL_CTX_set_min_proto_version(ctx.get(), 0);
      SSL_CTX_set_max_proto_version(ctx.get(), max_version);
    }
    std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
    SSL_set_fd(ssl.get(), sock.fd());
    if (SSL_connect(ssl.get()) != 1) {
      ERR_clear_error();
      return "";
    }
    SSL_write(ssl.get(), request.data(), static_cast<int>(request.size()));
    std::string out;
    char buf[4096];
    for (;;) {
      const int n = SSL_read(ssl.get(), buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
      const auto end = out.find("\r\n\r\n");
      const auto cl = out.find("Content-Length: ");
      if (end != std::string::npos && cl != std::string::npos &&
          out.size() >= end + 4 + std::stoul(out.substr(cl + 16))) {
        break;
      }
    }
    ERR_clear_error();
    return out;
  }

  relay::test::TempDir dir_;
};

TEST_F(HttpServerTlsTest, ServesIntakeOverTls) {
  const auto reply = tls_roundtrip(post("/v1/events", kTicket, "Connection: close\r\n"));
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 202")) << reply;
  EXPECT_NE(reply.find(R"({"id":"tkt-1","event":"ticket.created")"), std::string::npos);
  EXPECT_EQ(store_.stored(), 1u);
}

TEST_F(HttpServerTlsTest, RefusesTls11) {
  EXPECT_EQ(tls_roundtrip(get("/healthz"), TLS1_1_VERSION), "");
  EXPECT_TRUE(tls_roundtrip(get("/healthz", "Connection: close\r\n")).starts_with("HTTP/1.1 200"));
}

TEST(HttpServerStart, ThrowsOnMissingTlsFiles) {
  boost::asio::io_context io;
  FakeStore store;
  auto config = std::make_shared<config::Config>();
  config->server.listen_host = "127.0.0.1";
  config->server.listen_port = 0;
  config->server.tls_cert = "/nonexistent/cert.pem";
  config->server.tls_key = "/nonexistent/key.pem";
  ServerContext context;
  context.config = [&] { return std::shared_ptr<const config::Config>(config); };
  context.store = &store;
  HttpServer server(io, context);
  EXPECT_THROW(server.start(), std::runtime_error);
}

TEST(HttpServerStart, ThrowsWhenThePortIsTaken) {
  boost::asio::io_context io;
  FakeStore store;
  auto config = std::make_shared<config::Config>();
  config->server.listen_host = "127.0.0.1";
  config->server.listen_port = 0;
  ServerContext context;
  context.config = [&] { return std::shared_ptr<const config::Config>(config); };
  context.store = &store;
  HttpServer first(io, context);
  first.start();
  config->server.listen_port = first.port();
  HttpServer second(io, context);
  EXPECT_THROW(second.start(), std::runtime_error);
}

}  // namespace
}  // namespace relay::server
