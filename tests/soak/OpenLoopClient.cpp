#include "OpenLoopClient.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <chrono>
#include <iostream>
#include <thread>

#include "BenchCommon.hpp"

namespace relay::soak {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using relay::bench::monotonic_ns;

namespace {

constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);
// Far above any healthy answer; a request that needs this long is a failure worth counting.
constexpr auto kRequestTimeout = std::chrono::seconds(30);

// {"id":"soak-N","event":"T","data":{"seq":N,"pad":"xxx…"}}, 512 to 1,024 bytes: sizes vary
// so that SQLite's pages and the allocator see the mix a real application sends.
std::string event_body(std::uint64_t seq) {
  const std::size_t target = 512 + static_cast<std::size_t>((seq * 7919) % 513);
  std::string body = R"({"id":"soak-)" + std::to_string(seq) + R"(","event":")" +
                     event_kind(seq).type + R"(","data":{"seq":)" + std::to_string(seq) +
                     R"(,"pad":")";
  const std::size_t tail = 4;  // "}}
  if (body.size() + tail < target) body.append(target - body.size() - tail, 'x');
  body += "\"}}";
  return body;
}

}  // namespace

struct OpenLoopClient::Impl {
  Impl(ClientOptions o, SoakLedger& l) : options(o), ledger(l) {
    endpoint = tcp::endpoint(net::ip::make_address("127.0.0.1"), options.port);
    host_header = "127.0.0.1:" + std::to_string(options.port);
    ns_per_request = 1e9 / options.rate;
    end_ns = options.start_ns + static_cast<std::int64_t>(options.duration_s * 1e9);
    for (int c = 0; c < options.connections; ++c) {
      net::co_spawn(io, run_connection(), [](const std::exception_ptr& e) {
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          std::cerr << "soak: client connection failed: " << ex.what() << std::endl;
        }
      });
    }
    thread = std::thread([this] { io.run(); });
  }

  net::awaitable<bool> connect(beast::tcp_stream& stream) {
    stream.expires_after(kRequestTimeout);
    auto [ec] = co_await stream.async_connect(endpoint, kUseTuple);
    if (ec) {
      stream.close();
      co_return false;
    }
    stream.socket().set_option(tcp::no_delay(true));
    co_return true;
  }

  net::awaitable<void> run_connection() {
    beast::tcp_stream stream(co_await net::this_coro::executor);
    net::steady_timer timer(stream.get_executor());
    beast::flat_buffer buffer;
    bool connected = co_await connect(stream);
    for (;;) {
      const std::uint64_t seq = next.fetch_add(1);
      const auto due =
          options.start_ns + static_cast<std::int64_t>(static_cast<double>(seq) * ns_per_request);
      if (due >= end_ns) break;
      if (const auto wait = due - monotonic_ns(); wait > 0) {
        timer.expires_after(std::chrono::nanoseconds(wait));
        co_await timer.async_wait(kUseTuple);
      }
      scheduled_count.fetch_add(1);
      if (!connected) {
        buffer.clear();
        connected = co_await connect(stream);
        if (!connected) {
          ledger.on_transport_error(seq);
          continue;
        }
      }
      const std::string body = event_body(seq);
      std::string request =
          "POST /v1/events HTTP/1.1\r\nHost: " + host_header +
          "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\n\r\n" + body;
      stream.expires_after(kRequestTimeout);
      auto [wec, wn] = co_await net::async_write(stream, net::buffer(request), kUseTuple);
      if (wec) {
        ledger.on_transport_error(seq);
        stream.close();
        connected = false;
        continue;
      }
      ledger.on_sent();
      http::response_parser<http::string_body> parser;
      parser.body_limit(1024 * 1024);
      auto [rec, rn] = co_await http::async_read(stream, buffer, parser, kUseTuple);
      if (rec) {
        ledger.on_transport_error(seq);
        stream.close();
        connected = false;
        continue;
      }
      const std::int64_t now = monotonic_ns();
      ledger.on_answer(seq, parser.get().result_int(), now - due, now);
      if (!parser.get().keep_alive()) {
        stream.close();
        connected = false;
      }
    }
    if (connected) {
      beast::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream.close();
    }
  }

  ClientOptions options;
  SoakLedger& ledger;
  net::io_context io{1};
  tcp::endpoint endpoint;
  std::string host_header;
  double ns_per_request = 0;
  std::int64_t end_ns = 0;
  std::atomic<std::uint64_t> next{0};
  std::atomic<std::uint64_t> scheduled_count{0};
  std::thread thread;
};

OpenLoopClient::OpenLoopClient(ClientOptions options, SoakLedger& ledger)
    : impl_(std::make_unique<Impl>(options, ledger)) {}

OpenLoopClient::~OpenLoopClient() {
  join();
}

void OpenLoopClient::join() {
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::uint64_t OpenLoopClient::scheduled() const {
  return impl_->scheduled_count.load();
}

}  // namespace relay::soak
