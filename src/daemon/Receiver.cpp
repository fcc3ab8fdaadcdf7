#include "relay/daemon/Receiver.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>

#include "relay/common/Time.hpp"
#include "relay/delivery/Verifier.hpp"

namespace relay::daemon {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr std::size_t kBodyLimit = 16 * 1024 * 1024;
constexpr auto kIdle = std::chrono::seconds(60);

std::string header(const http::request<http::string_body>& req, std::string_view name) {
  const auto it = req.find(name);
  return it == req.end() ? std::string() : std::string(it->value());
}

delivery::Verification verify(const ReceiveOptions& options,
                              const http::request<http::string_body>& req, std::string& scheme) {
  const auto standard_sig = header(req, "webhook-signature");
  const bool standard = options.scheme == ReceiveOptions::Scheme::kStandard ||
                        (options.scheme == ReceiveOptions::Scheme::kAuto && !standard_sig.empty());
  scheme = standard ? "standard" : "relay";
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  delivery::Verification last{false, "no secret given"};
  for (std::size_t i = 0; i < options.secrets.size(); ++i) {
    const auto& secret = options.secrets[i];
    auto v = standard ? delivery::verify_standard_signature(secret, header(req, "webhook-id"),
                                                            header(req, "webhook-timestamp"),
                                                            standard_sig, req.body(), now_s)
                      : delivery::verify_relay_signature(secret, req.body(),
                                                         header(req, "X-Relay-Signature"));
    if (v.ok) {
      if (options.secrets.size() > 1) v.detail += " (secret " + std::to_string(i + 1) + ")";
      return v;
    }
    last = std::move(v);
  }
  return last;
}

void print_block(std::ostream& out, const ReceiveOptions& options,
                 const http::request<http::string_body>& req) {
  std::string scheme;
  const auto v = verify(options, req, scheme);
  // ordered_json: the body is shown with its keys in the order they were sent.
  const auto body = nlohmann::ordered_json::parse(req.body(), nullptr, false);
  std::string event = header(req, "X-Relay-Event");
  std::string event_id;
  if (body.is_object() && body.contains("id") && body["id"].is_string()) {
    event_id = body["id"].get<std::string>();
  }
  out << "── " << common::format_rfc3339_s(common::now_ms()) << "  " << req.method_string() << ' '
      << req.target() << '\n';
  out << "event:     " << (event.empty() ? "(no X-Relay-Event)" : event)
      << (event_id.empty() ? "" : "  " + event_id) << '\n';
  const auto delivery = header(req, "X-Relay-Delivery");
  out << "delivery:  " << (delivery.empty() ? "(no X-Relay-Delivery)" : delivery) << '\n';
  if (header(req, "X-Relay-Test") == "true") out << "test:      yes (X-Relay-Test: true)\n";
  out << "signature: " << (v.ok ? "verified" : "NOT VERIFIED") << " (" << scheme
      << "): " << v.detail << '\n';
  out << "body:\n";
  if (body.is_discarded()) {
    out << req.body() << '\n';
  } else {
    out << body.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
  }
  out << "answered:  " << options.status << "\n\n";
  out.flush();
}

net::awaitable<void> session(tcp::socket socket, const ReceiveOptions& options, std::ostream& out) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kBodyLimit);
    stream.expires_after(kIdle);
    auto [ec, n] =
        co_await http::async_read(stream, buffer, parser, net::as_tuple(net::use_awaitable));
    (void)n;
    if (ec) co_return;
    auto req = parser.release();
    print_block(out, options, req);
    http::response<http::string_body> res{static_cast<http::status>(options.status), req.version()};
    res.set(http::field::content_type, "text/plain");
    res.body() = "ok\n";
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    std::tie(ec, n) = co_await http::async_write(stream, res, net::as_tuple(net::use_awaitable));
    if (ec || !res.keep_alive()) co_return;
  }
}

net::awaitable<void> accept_loop(tcp::acceptor& acceptor, const ReceiveOptions& options,
                                 std::ostream& out) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(net::as_tuple(net::use_awaitable));
    if (ec == net::error::operation_aborted) co_return;
    if (ec) continue;
    net::co_spawn(acceptor.get_executor(), session(std::move(socket), options, out), net::detached);
  }
}

}  // namespace

int run_receive(const ReceiveOptions& options, std::ostream& out, std::ostream& err) {
  net::io_context io(1);
  tcp::acceptor acceptor(io);
  try {
    const tcp::endpoint ep(net::ip::make_address(options.host), options.port);
    acceptor.open(ep.protocol());
    acceptor.set_option(net::socket_base::reuse_address(true));
    acceptor.bind(ep);
    acceptor.listen();
  } catch (const std::exception& e) {
    err << "relayd receive: cannot listen on " << options.host << ':' << options.port << ": "
        << e.what() << '\n';
    return 1;
  }
  out << "relayd receive: listening on http://" << options.host << ':'
      << acceptor.local_endpoint().port() << "/ (answering " << options.status
      << "; Ctrl-C stops)\n\n";
  out.flush();
  net::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) {
    boost::system::error_code ignored;
    acceptor.close(ignored);
    io.stop();
  });
  net::co_spawn(io, accept_loop(acceptor, options, out), net::detached);
  io.run();
  return 0;
}

}  // namespace relay::daemon
