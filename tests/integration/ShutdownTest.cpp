// Shutdown under load (issue 14): clients keep posting while relayd gets SIGTERM. Every event
// that is in the database afterwards must have had its 202 delivered (a client that saw its
// connection drop would send it again: a duplicate when it had no `id`); every other request
// got 503 shutting_down or could not connect.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "DaemonProcess.hpp"
#include "Db.hpp"
#include "TestConfig.hpp"

namespace relay::testing {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;

// What one POST saw. No retries of any kind: a request that was written and then lost its
// connection is reported as such (HttpTestClient would retry it once).
struct Seen {
  int status = 0;          // 0: no answer
  std::string body;        // the answer's body
  bool connected = false;  // the request reached a connection
};

class OneShotClient {
 public:
  explicit OneShotClient(std::uint16_t port) : port_(port) {}

  Seen post(const std::string& target, const std::string& body) {
    Seen seen;
    beast::error_code ec;
    if (!stream_) {
      stream_.emplace(io_);
      stream_->expires_after(5s);
      stream_->socket().connect({net::ip::make_address("127.0.0.1"), port_}, ec);
      if (ec) {
        stream_.reset();
        return seen;
      }
      buffer_.clear();
    }
    seen.connected = true;
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    stream_->expires_after(10s);
    http::write(*stream_, req, ec);
    http::response<http::string_body> res;
    if (!ec) http::read(*stream_, buffer_, res, ec);
    if (ec) {
      stream_.reset();
      return seen;
    }
    seen.status = static_cast<int>(res.result_int());
    seen.body = res.body();
    if (!res.keep_alive()) stream_.reset();
    return seen;
  }

 private:
  std::uint16_t port_;
  net::io_context io_;
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
};

// `batch` 0: single events to /v1/events; else batches of that many to /v1/events/batch
// (bigger groups: a commit is more likely to be under way when SIGTERM comes).
void post_through_sigterm(int clients_n, int batch) {
  TempDir dir;
  TestConfig cfg;
  cfg.port = free_port();
  cfg.db = dir.path() / "relayd.db";
  // Deliveries stay paused: this is about intake alone.
  cfg.webhooks_yaml =
      "  - id: crm\n"
      "    url: http://127.0.0.1:9/crm\n"
      "    allow_insecure_http: true\n"
      "    enabled: false\n"
      "    secret: s3cret-crm\n"
      "    events: [\"*\"]\n";
  DaemonProcess daemon(dir.path(), cfg.yaml());
  daemon.start(cfg.port);

  std::mutex mutex;
  std::map<std::string, Seen> seen;  // by event id
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < clients_n; ++c) {
    clients.emplace_back([&, c] {
      OneShotClient client(cfg.port);
      int refused_in_a_row = 0;
      for (int i = 0; !stop && refused_in_a_row < 20; ++i) {
        std::vector<std::string> ids;
        std::string body;
        for (int k = 0; k < std::max(batch, 1); ++k) {
          ids.push_back("evt_c" + std::to_string(c) + "_" + std::to_string(i) + "_" +
                        std::to_string(k));
          if (!body.empty()) body += ",";
          body += R"({"id":")" + ids.back() + R"(","event":"ticket.created","data":{"pad":")" +
                  std::string(batch > 0 ? 900 : 0, 'x') + R"("}})";
        }
        auto s = batch > 0 ? client.post("/v1/events/batch", R"({"events":[)" + body + "]}")
                           : client.post("/v1/events", body);
        refused_in_a_row = s.connected ? 0 : refused_in_a_row + 1;
        if (!s.connected) std::this_thread::sleep_for(5ms);
        if (s.status != 0) answered += static_cast<int>(ids.size());
        std::lock_guard lock(mutex);
        for (const auto& id : ids) seen[id] = s;
      }
    });
  }
  // Let the load build up, then stop the daemon in the middle of it.
  while (answered < 500) std::this_thread::sleep_for(5ms);
  daemon.signal(SIGTERM);
  const auto code = daemon.wait(30s);
  stop = true;
  for (auto& t : clients) t.join();
  ASSERT_TRUE(code.has_value()) << daemon.log();
  EXPECT_EQ(*code, 0) << daemon.log();

  Db db(cfg.db);
  std::set<std::string> stored;
  for (const auto& row : db.rows("SELECT id FROM events")) stored.insert(row[0]);
  int accepted = 0;
  int shutting_down = 0;
  int not_answered = 0;
  for (const auto& [id, s] : seen) {
    if (stored.contains(id)) {
      // Committed: the client must have seen the 202.
      EXPECT_EQ(s.status, 202) << id << " is stored but its client saw "
                               << (s.status == 0 ? "no answer" : std::to_string(s.status));
      ++accepted;
    } else if (s.status != 0) {
      EXPECT_EQ(s.status, 503) << id << ": " << s.body;
      EXPECT_NE(s.body.find("shutting_down"), std::string::npos) << id << ": " << s.body;
      ++shutting_down;
    } else {
      ++not_answered;  // refused, or cut off before anything was committed
    }
  }
  // Nothing is stored that no client sent, and the run did overlap the shutdown.
  EXPECT_EQ(static_cast<std::size_t>(accepted), stored.size());
  EXPECT_GE(accepted, 500);
  EXPECT_FALSE(::testing::Test::HasFailure()) << daemon.log();
  EXPECT_GT(shutting_down + not_answered, 0);
  std::cerr << "accepted " << accepted << ", 503 shutting_down " << shutting_down << ", no answer "
            << not_answered << "\n";
}

TEST(Shutdown, EveryCommittedEventGotItsAnswerWhenSigtermComesUnderLoad) {
  post_through_sigterm(64, 0);
}

TEST(Shutdown, EveryCommittedBatchGotItsAnswerWhenSigtermComesUnderLoad) {
  post_through_sigterm(32, 50);  // ~47 KB bodies, under the test max_body_bytes
}

}  // namespace
}  // namespace relay::testing
