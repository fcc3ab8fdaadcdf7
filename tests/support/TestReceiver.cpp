#include "TestReceiver.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace relay::test {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string status_line(int status, bool http10) {
  const auto reason = http::obsolete_reason(static_cast<http::status>(status));
  return std::string(http10 ? "HTTP/1.0 " : "HTTP/1.1 ") + std::to_string(status) + " " +
         std::string(reason.empty() ? "Unknown" : reason) + "\r\n";
}

}  // namespace

std::string RecordedRequest::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) return v;
  }
  return {};
}

bool RecordedRequest::has_header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) return true;
  }
  return false;
}

struct TestReceiver::Impl {
  explicit Impl(ReceiverOptions opts)
      : options(std::move(opts)), tls_context(ssl::context::tls_server), acceptor(io) {
    if (options.tls) {
      tls_context.use_certificate_chain(
          net::buffer(options.certificate.cert_pem.data(), options.certificate.cert_pem.size()));
      tls_context.use_private_key(
          net::buffer(options.certificate.key_pem.data(), options.certificate.key_pem.size()),
          ssl::context::pem);
    }
    const tcp::endpoint endpoint(net::ip::make_address(options.bind_address), 0);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(net::socket_base::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen();
    port = acceptor.local_endpoint().port();
    net::co_spawn(io, accept_loop(), net::detached);
    thread = std::thread([this] { io.run(); });
  }

  ~Impl() { stop(); }

  void stop() {
    std::call_once(stopped, [this] {
      net::post(io, [this] {
        error_code ignored;
        acceptor.close(ignored);
        for (auto& [id, conn] : live) conn.close();
      });
      // Give sessions a moment to unwind normally, then stop the loop regardless.
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      io.stop();
      if (thread.joinable()) thread.join();
    });
  }

  using error_code = boost::system::error_code;

  struct LiveConnection {
    std::function<void()> close;
    bool idle = true;
    bool close_when_idle = false;
  };

  net::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kUseTuple);
      if (ec) {
        if (!acceptor.is_open()) co_return;
        continue;
      }
      const std::uint64_t id = ++accepted;
      if (options.tls) {
        net::co_spawn(io, run_tls(std::move(socket), id), net::detached);
      } else {
        net::co_spawn(io, run_plain(std::move(socket), id), net::detached);
      }
    }
  }

  net::awaitable<void> run_plain(tcp::socket socket, std::uint64_t id) {
    beast::tcp_stream stream(std::move(socket));
    co_await session(stream, stream, id);
  }

  net::awaitable<void> run_tls(tcp::socket socket, std::uint64_t id) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), tls_context);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, kUseTuple);
    beast::get_lowest_layer(stream).expires_never();
    if (ec) co_return;  // e.g. the client rejected our certificate
    const bool resumed = SSL_session_reused(stream.native_handle()) == 1;
    co_await session(stream, beast::get_lowest_layer(stream), id, resumed);
  }

  Reply choose_reply(const RecordedRequest& request) {
    ReplyHandler h;
    {
      std::lock_guard lock(mutex);
      if (!script.empty()) {
        Reply r = std::move(script.front());
        script.pop_front();
        return r;
      }
      h = handler;
    }
    return h ? h(request) : Reply{};
  }

  template <class Stream>
  net::awaitable<bool> write_all(Stream& stream, std::string_view data) {
    auto [ec, n] = co_await net::async_write(stream, net::buffer(data), kUseTuple);
    co_return !ec;
  }

  template <class Stream>
  net::awaitable<void> session(Stream& stream, beast::tcp_stream& tcp, std::uint64_t id,
                               bool tls_resumed = false) {
    live[id] = LiveConnection{[&tcp] {
                                error_code ignored;
                                tcp.socket().close(ignored);
                              },
                              true};
    ++open;
    beast::flat_buffer buffer;
    for (std::size_t sequence = 0;; ++sequence) {
      if (live[id].close_when_idle) break;
      live[id].idle = true;
      http::request_parser<http::string_body> parser;
      parser.header_limit(64 * 1024);
      parser.body_limit(options.max_body);
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, kUseTuple);
      live[id].idle = false;
      if (ec) break;

      auto& message = parser.get();
      RecordedRequest recorded;
      recorded.method = std::string(message.method_string());
      recorded.target = std::string(message.target());
      for (const auto& field : message) {
        recorded.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
      }
      recorded.body = message.body();
      recorded.connection_id = id;
      recorded.sequence_on_connection = sequence;
      recorded.tls_session_reused = tls_resumed;
      recorded.received_at = std::chrono::steady_clock::now();
      const bool client_keep_alive = message.keep_alive();
      {
        std::lock_guard lock(mutex);
        recorded_requests.push_back(recorded);
      }
      changed.notify_all();

      const Reply reply = choose_reply(recorded);
      if (reply.delay.count() > 0) {
        net::steady_timer timer(io, reply.delay);
        co_await timer.async_wait(kUseTuple);
      }
      if (reply.close_without_response) break;
      bool interim_ok = true;
      for (int status : reply.interim) {
        interim_ok = interim_ok && co_await write_all(stream, status_line(status, false) + "\r\n");
      }
      if (!interim_ok || reply.close_after_interim) break;

      const bool close = reply.close_after_response || reply.http10 || !client_keep_alive;
      std::string head = status_line(reply.status, reply.http10);
      for (const auto& [name, value] : reply.headers) head += name + ": " + value + "\r\n";
      if (reply.close_after_response) head += "Connection: close\r\n";
      if (reply.endless_body) {
        head += "Transfer-Encoding: chunked\r\n\r\n";
        if (!co_await write_all(stream, head)) break;
        const std::string chunk = "1000\r\n" + std::string(0x1000, 'x') + "\r\n";
        while (co_await write_all(stream, chunk)) {
        }
        break;
      }
      const std::string body =
          reply.filler_body > 0 ? std::string(reply.filler_body, 'x') : reply.body;
      head += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
      const std::string data = head + body;
      if (reply.drip_interval.count() > 0) {
        const std::size_t step = std::max<std::size_t>(1, reply.drip_chunk);
        bool ok = true;
        for (std::size_t pos = 0; ok && pos < data.size(); pos += step) {
          ok = co_await write_all(stream, std::string_view(data).substr(pos, step));
          net::steady_timer timer(io, reply.drip_interval);
          co_await timer.async_wait(kUseTuple);
        }
        if (!ok) break;
      } else if (!co_await write_all(stream, data)) {
        break;
      }
      if (close) break;
    }
    error_code ignored;
    tcp.socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp.socket().close(ignored);
    live.erase(id);
    --open;
  }

  // Declaration order matters: the io_context (and the coroutine frames it owns) goes before the
  // TLS context, and the acceptor before the io_context.
  ReceiverOptions options;
  ssl::context tls_context;
  net::io_context io;
  tcp::acceptor acceptor;
  std::uint16_t port = 0;
  std::thread thread;
  std::once_flag stopped;

  std::map<std::uint64_t, LiveConnection> live;  // only touched on the io thread
  std::atomic<std::size_t> accepted{0};
  std::atomic<std::size_t> open{0};

  mutable std::mutex mutex;
  mutable std::condition_variable changed;
  std::vector<RecordedRequest> recorded_requests;  // guarded by mutex
  std::deque<Reply> script;                        // guarded by mutex
  ReplyHandler handler;                            // guarded by mutex
};

TestReceiver::TestReceiver(ReceiverOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

TestReceiver::~TestReceiver() = default;

std::uint16_t TestReceiver::port() const {
  return impl_->port;
}

std::string TestReceiver::url(std::string_view path, std::string_view host) const {
  std::string h(host.empty() ? std::string_view(impl_->options.bind_address) : host);
  if (h.find(':') != std::string::npos && h.front() != '[') h = "[" + h + "]";
  return std::string(impl_->options.tls ? "https://" : "http://") + h + ":" +
         std::to_string(impl_->port) + std::string(path);
}

void TestReceiver::push_reply(Reply reply) {
  std::lock_guard lock(impl_->mutex);
  impl_->script.push_back(std::move(reply));
}

void TestReceiver::set_handler(ReplyHandler handler) {
  std::lock_guard lock(impl_->mutex);
  impl_->handler = std::move(handler);
}

void TestReceiver::set_default_reply(Reply reply) {
  set_handler([reply = std::move(reply)](const RecordedRequest&) { return reply; });
}

std::vector<RecordedRequest> TestReceiver::requests() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->recorded_requests;
}

std::size_t TestReceiver::request_count() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->recorded_requests.size();
}

bool TestReceiver::wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mutex);
  return impl_->changed.wait_for(lock, timeout,
                                 [&] { return impl_->recorded_requests.size() >= n; });
}

void TestReceiver::clear_requests() {
  std::lock_guard lock(impl_->mutex);
  impl_->recorded_requests.clear();
}

std::size_t TestReceiver::connections_accepted() const {
  return impl_->accepted.load();
}

std::size_t TestReceiver::open_connections() const {
  return impl_->open.load();
}

void TestReceiver::close_idle_connections() {
  std::promise<void> closed;
  net::post(impl_->io, [&] {
    for (auto& [id, conn] : impl_->live) {
      if (conn.idle) {
        conn.close();
      } else {
        conn.close_when_idle = true;  // still finishing a response the caller may have seen
      }
    }
    closed.set_value();
  });
  closed.get_future().wait();
  // Let the sessions notice and send their FIN before the caller goes on.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

void TestReceiver::stop() {
  impl_->stop();
}

}  // namespace relay::test
