#include "SoakReceiver.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <array>
#include <charconv>
#include <mutex>
#include <thread>

#include "BenchCommon.hpp"

namespace relay::soak {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using relay::bench::monotonic_ns;

namespace {

constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);

const std::string kOk =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
const std::string kFail =
    "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: "
    "4\r\n\r\nfail";

// relayd's body starts with {"id":"soak-N" (SPEC §4): N, or -1 for anything else.
std::int64_t payload_seq(std::string_view body) {
  constexpr std::string_view kLead = R"({"id":"soak-)";
  if (!body.starts_with(kLead)) return -1;
  body.remove_prefix(kLead.size());
  std::int64_t seq = -1;
  const auto [ptr, ec] = std::from_chars(body.data(), body.data() + body.size(), seq);
  if (ec != std::errc{} || ptr == body.data() + body.size() || *ptr != '"') return -1;
  return seq;
}

Hook hook_for(std::string_view target) {
  if (target.starts_with("/fast")) return Hook::kFast;
  if (target.starts_with("/slow")) return Hook::kSlow;
  if (target.starts_with("/hang")) return Hook::kHang;
  return Hook::kFail;
}

}  // namespace

struct SoakReceiver::Impl {
  Impl(const relay::test::CertAndKey& certificate, SoakLedger& l, std::chrono::milliseconds d)
      : ledger(l), slow_delay(d), tls(ssl::context::tls_server), acceptor(io) {
    tls.use_certificate_chain(
        net::buffer(certificate.cert_pem.data(), certificate.cert_pem.size()));
    tls.use_private_key(net::buffer(certificate.key_pem.data(), certificate.key_pem.size()),
                        ssl::context::pem);
    const tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), 0);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(net::socket_base::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(net::socket_base::max_listen_connections);
    port = acceptor.local_endpoint().port();
    net::co_spawn(io, accept_loop(), net::detached);
    thread = std::thread([this] { io.run(); });
  }

  net::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kUseTuple);
      if (ec) {
        if (!acceptor.is_open()) co_return;
        continue;  // e.g. EMFILE: keep serving the open connections
      }
      net::co_spawn(io, session(std::move(socket)), net::detached);
    }
  }

  net::awaitable<void> session(tcp::socket socket) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), tls);
    auto& lowest = beast::get_lowest_layer(stream);
    lowest.expires_after(std::chrono::seconds(30));
    auto [hec] = co_await stream.async_handshake(ssl::stream_base::server, kUseTuple);
    if (hec) co_return;
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(16 * 1024);
      parser.body_limit(1024 * 1024);
      // Longer than relayd keeps an idle pooled connection, so relayd is the side that closes.
      lowest.expires_after(std::chrono::seconds(300));
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, kUseTuple);
      if (ec) break;
      const auto& req = parser.get();
      const Hook hook = hook_for(req.target());
      ledger.on_receipt(hook, payload_seq(req.body()), monotonic_ns());
      if (hook == Hook::kHang) {
        // Never answer: wait for relayd to give up (its attempt timeout) and close.
        std::array<char, 256> sink{};
        for (;;) {
          auto [rec, rn] = co_await stream.async_read_some(net::buffer(sink), kUseTuple);
          if (rec) break;
        }
        break;
      }
      if (hook == Hook::kSlow) {
        net::steady_timer timer(io, slow_delay);
        co_await timer.async_wait(kUseTuple);
      }
      const std::string& answer = hook == Hook::kFail ? kFail : kOk;
      lowest.expires_after(std::chrono::seconds(30));
      auto [wec, wn] = co_await net::async_write(stream, net::buffer(answer), kUseTuple);
      if (wec || !req.keep_alive()) break;
    }
    beast::error_code ignored;
    lowest.socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest.socket().close(ignored);
  }

  void stop() {
    std::call_once(stopped, [this] {
      net::post(io, [this] {
        beast::error_code ignored;
        acceptor.close(ignored);
      });
      io.stop();
      if (thread.joinable()) thread.join();
    });
  }

  SoakLedger& ledger;
  std::chrono::milliseconds slow_delay;
  // Destroyed in reverse order: the acceptor, then the io_context with the coroutine frames
  // (and their TLS streams) it still owns, then the TLS context they refer to.
  ssl::context tls;
  net::io_context io{1};
  tcp::acceptor acceptor;
  std::uint16_t port = 0;
  std::thread thread;
  std::once_flag stopped;
};

SoakReceiver::SoakReceiver(const relay::test::CertAndKey& certificate, SoakLedger& ledger,
                           std::chrono::milliseconds slow_delay)
    : impl_(std::make_unique<Impl>(certificate, ledger, slow_delay)) {}

SoakReceiver::~SoakReceiver() {
  stop();
}

std::uint16_t SoakReceiver::port() const {
  return impl_->port;
}

std::string SoakReceiver::url(const std::string& path) const {
  return "https://127.0.0.1:" + std::to_string(impl_->port) + path;
}

void SoakReceiver::stop() {
  impl_->stop();
}

}  // namespace relay::soak
