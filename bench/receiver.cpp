// relay_bench_receiver: a fast keep-alive HTTP/1.1 webhook receiver for the benchmarks.
//
// Answers every request with a fixed response (200 "ok", or a failure status for --fail-path
// targets / --status-code), counts them, and keeps one line per request in memory:
//   <receive ns, CLOCK_REALTIME> <status answered> <X-Relay-Delivery or -> <payload id or ->
//   <target>
// written to --log when it stops (SIGTERM/SIGINT, --duration, --expect/--expect-ok reached).
// The in-memory log is bounded by --max-log-bytes; lines beyond it are only counted.
// With --tls-cert/--tls-key it speaks TLS 1.3 only (issue 20's HTTPS shapes): one server for
// any number of host names (the certificate names them, e.g. a wildcard), counting full and
// resumed handshakes and the distinct SNI names seen, so a benchmark can show what it measured.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include "BenchCommon.hpp"

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace {

using relay::bench::monotonic_ns;
using relay::bench::realtime_ns;

constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);

constexpr std::string_view kUsage =
    R"(usage: relay_bench_receiver [options]
  --host H             listen address (default 127.0.0.1)
  --port P             listen port (default 0: any free port, printed and written to --port-file)
  --port-file FILE     write the bound port number to FILE once listening
  --threads N          threads running the io_context (default 1)
  --status-code C      status for every request (default 200)
  --fail-path PREFIX   requests whose target starts with PREFIX get --fail-status instead
  --fail-status C      status for --fail-path requests (default 500)
  --log FILE           on exit, write one line per request:
                       <recv ns> <status> <X-Relay-Delivery|-> <payload id|-> <target>
  --max-log-bytes N    memory bound of the request log (default 536870912)
  --duration S         stop after S seconds (default: at a signal or --expect; capped by --max-time)
  --expect N           stop once N requests were answered
  --expect-ok N        stop once N requests were answered with 2xx
  --max-time S         hard cap on the run (default 3600)
  --quiet              no per-second progress on stderr
  --close              answer every request with "Connection: close" (no connection reuse)
  --tls-cert FILE      speak TLS 1.3 with this certificate chain (PEM) ...
  --tls-key FILE       ... and key; the summary then counts handshakes, resumed ones, SNI names
  --tls-no-resume      issue no session tickets and keep no session cache: every handshake full
Prints requests/s each second on stderr and one flat JSON summary on stdout at exit.
)";

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::string port_file;
  int threads = 1;
  unsigned status_code = 200;
  std::string fail_path;
  unsigned fail_status = 500;
  std::string log;
  std::uint64_t max_log_bytes = 512ULL * 1024 * 1024;
  double duration_s = 0;
  std::uint64_t expect = 0;
  std::uint64_t expect_ok = 0;
  double max_time_s = 3600;
  bool quiet = false;
  bool close = false;
  std::string tls_cert;
  std::string tls_key;
  bool tls_no_resume = false;
};

Options parse_options(int argc, char** argv) {
  using relay::bench::parse_double;
  using relay::bench::parse_int;
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) throw std::invalid_argument(std::string(arg) + " needs a value");
      return argv[++i];
    };
    auto status = [&]() {
      const auto c = parse_int(value(), arg);
      if (c < 100 || c > 599) throw std::invalid_argument(std::string(arg) + ": 100..599");
      return static_cast<unsigned>(c);
    };
    if (arg == "--host") {
      o.host = value();
    } else if (arg == "--port") {
      const auto p = parse_int(value(), arg);
      if (p < 0 || p > 65535) throw std::invalid_argument("--port: out of range");
      o.port = static_cast<std::uint16_t>(p);
    } else if (arg == "--port-file") {
      o.port_file = value();
    } else if (arg == "--threads") {
      o.threads = static_cast<int>(parse_int(value(), arg));
    } else if (arg == "--status-code") {
      o.status_code = status();
    } else if (arg == "--fail-path") {
      o.fail_path = value();
    } else if (arg == "--fail-status") {
      o.fail_status = status();
    } else if (arg == "--log") {
      o.log = value();
    } else if (arg == "--max-log-bytes") {
      o.max_log_bytes = static_cast<std::uint64_t>(parse_int(value(), arg));
    } else if (arg == "--duration") {
      o.duration_s = parse_double(value(), arg);
    } else if (arg == "--expect") {
      o.expect = static_cast<std::uint64_t>(parse_int(value(), arg));
    } else if (arg == "--expect-ok") {
      o.expect_ok = static_cast<std::uint64_t>(parse_int(value(), arg));
    } else if (arg == "--max-time") {
      o.max_time_s = parse_double(value(), arg);
    } else if (arg == "--quiet") {
      o.quiet = true;
    } else if (arg == "--close") {
      o.close = true;
    } else if (arg == "--tls-cert") {
      o.tls_cert = value();
    } else if (arg == "--tls-key") {
      o.tls_key = value();
    } else if (arg == "--tls-no-resume") {
      o.tls_no_resume = true;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown option " + std::string(arg));
    }
  }
  if (o.threads < 1 || o.threads > 16) throw std::invalid_argument("--threads: 1..16");
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    throw std::invalid_argument("--tls-cert and --tls-key go together");
  }
  if (o.duration_s < 0 || o.max_time_s <= 0) {
    throw std::invalid_argument("--duration / --max-time: must be positive");
  }
  return o;
}

// Per-thread request record: touched only by the thread that owns it while running, merged
// after the io_context has stopped.
struct ThreadRecord {
  std::string log;
  std::map<unsigned, std::uint64_t> by_status;
  std::int64_t first_ns = 0;
  std::int64_t last_ns = 0;
  std::int64_t last_ok_ns = 0;
};

class Receiver {
 public:
  explicit Receiver(const Options& o)
      : opt_(o),
        ioc_(o.threads),
        ok_response_(fixed_response(o.status_code, true)),
        ok_response_close_(fixed_response(o.status_code, false)),
        fail_response_(fixed_response(o.fail_status, true)),
        fail_response_close_(fixed_response(o.fail_status, false)),
        tls_context_(ssl::context::tls_server) {
    if (!o.tls_cert.empty()) setup_tls();
  }

  int run() {
    tcp::acceptor acceptor(ioc_);
    const tcp::endpoint endpoint(net::ip::make_address(opt_.host), opt_.port);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(net::socket_base::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(net::socket_base::max_listen_connections);
    const auto port = acceptor.local_endpoint().port();
    if (!opt_.port_file.empty()) {
      const std::string tmp = opt_.port_file + ".tmp";
      std::ofstream(tmp, std::ios::trunc) << port << '\n';
      std::filesystem::rename(tmp, opt_.port_file);
    }
    std::cerr << "relay_bench_receiver: listening on " << opt_.host << ':' << port << std::endl;

    start_mono_ = monotonic_ns();
    net::co_spawn(ioc_, accept_loop(acceptor), net::detached);
    net::co_spawn(ioc_, progress_loop(), net::detached);
    net::signal_set signals(ioc_, SIGINT, SIGTERM);
    signals.async_wait([this](const beast::error_code& ec, int) {
      if (!ec) request_stop("signal");
    });
    net::steady_timer limit(ioc_);
    const double limit_s =
        opt_.duration_s > 0 ? std::min(opt_.duration_s, opt_.max_time_s) : opt_.max_time_s;
    limit.expires_after(std::chrono::milliseconds(static_cast<std::int64_t>(limit_s * 1000)));
    limit.async_wait([this](const beast::error_code& ec) {
      if (!ec) request_stop(opt_.duration_s > 0 ? "duration" : "max-time");
    });

    std::vector<std::thread> extra;
    for (int i = 1; i < opt_.threads; ++i) extra.emplace_back([this] { ioc_.run(); });
    ioc_.run();
    for (auto& t : extra) t.join();
    return finish();
  }

 private:
  static std::string fixed_response(unsigned code, bool keep_alive) {
    const auto reason = http::obsolete_reason(http::int_to_status(code));
    const std::string body = code / 100 == 2 ? "ok" : "fail";
    std::string r = "HTTP/1.1 " + std::to_string(code) + " " + std::string(reason) + "\r\n";
    r += "Content-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    if (!keep_alive) r += "Connection: close\r\n";
    r += "\r\n" + body;
    return r;
  }

  void setup_tls() {
    SSL_CTX* ctx = tls_context_.native_handle();
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    tls_context_.use_certificate_chain_file(opt_.tls_cert);
    tls_context_.use_private_key_file(opt_.tls_key, ssl::context::pem);
    if (opt_.tls_no_resume) {
      // TLS 1.3 resumes through tickets only; none issued means every handshake is a full one.
      SSL_CTX_set_num_tickets(ctx, 0);
      SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
      SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    }
    // Counts the names clients ask for; the certificate answers all of them.
    SSL_CTX_set_tlsext_servername_arg(ctx, this);
    SSL_CTX_set_tlsext_servername_callback(
        ctx, +[](SSL* s, int*, void* arg) -> int {
          if (const char* name = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name)) {
            auto* self = static_cast<Receiver*>(arg);
            std::lock_guard lock(self->sni_mu_);
            if (self->sni_names_.size() < 1000000) self->sni_names_.insert(name);
          }
          return SSL_TLSEXT_ERR_OK;
        });
    tls_ = true;
  }

  ThreadRecord& record() {
    thread_local ThreadRecord* mine = nullptr;
    thread_local const Receiver* owner = nullptr;
    if (mine == nullptr || owner != this) {
      std::lock_guard lock(records_mu_);
      records_.push_back(std::make_unique<ThreadRecord>());
      mine = records_.back().get();
      owner = this;
    }
    return *mine;
  }

  // The payload's "id": relayd's body starts with {"id":"evt_…" (SPEC §4).
  static std::string_view payload_id(std::string_view body) {
    constexpr std::string_view kLead = R"({"id":")";
    if (!body.starts_with(kLead)) return "-";
    body.remove_prefix(kLead.size());
    const auto end = body.find('"');
    if (end == std::string_view::npos || end == 0 || end > 128) return "-";
    return body.substr(0, end);
  }

  static std::string_view token(std::string_view s, std::size_t max) {
    if (s.empty()) return "-";
    s = s.substr(0, max);
    const auto bad = s.find_first_of(" \t\r\n");
    return bad == std::string_view::npos ? s : s.substr(0, bad == 0 ? 1 : bad);
  }

  void note(const http::request<http::string_body>& req, unsigned status) {
    const std::int64_t now = realtime_ns();
    const std::uint64_t n = total_.fetch_add(1, std::memory_order_relaxed) + 1;
    std::uint64_t n_ok = 0;
    if (status / 100 == 2) {
      n_ok = ok_.fetch_add(1, std::memory_order_relaxed) + 1;
    }
    ThreadRecord& r = record();
    if (r.first_ns == 0) r.first_ns = now;
    r.last_ns = now;
    if (status / 100 == 2) r.last_ok_ns = now;
    ++r.by_status[status];

    const std::string_view delivery = token(req["X-Relay-Delivery"], 64);
    const std::string_view id = payload_id(req.body());
    const std::string_view target = token(req.target(), 96);
    const std::size_t len = 20 + 4 + delivery.size() + id.size() + target.size() + 4;
    if (log_bytes_.fetch_add(len, std::memory_order_relaxed) + len <= opt_.max_log_bytes) {
      std::string& log = r.log;
      log += std::to_string(now);
      log += ' ';
      log += std::to_string(status);
      log += ' ';
      log += delivery;
      log += ' ';
      log += id;
      log += ' ';
      log += target;
      log += '\n';
    } else {
      log_dropped_.fetch_add(1, std::memory_order_relaxed);
    }
    if ((opt_.expect > 0 && n == opt_.expect) || (opt_.expect_ok > 0 && n_ok == opt_.expect_ok)) {
      request_stop("expect");
    }
  }

  net::awaitable<void> session(tcp::socket socket) {
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    if (!tls_) {
      beast::tcp_stream stream(std::move(socket));
      co_await serve(stream, stream);
      co_return;
    }
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), tls_context_);
    auto& lowest = beast::get_lowest_layer(stream);
    lowest.expires_after(std::chrono::seconds(30));
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, kUseTuple);
    if (ec) {
      tls_failed_.fetch_add(1, std::memory_order_relaxed);
      co_return;
    }
    tls_handshakes_.fetch_add(1, std::memory_order_relaxed);
    if (SSL_session_reused(stream.native_handle()) == 1) {
      tls_resumed_.fetch_add(1, std::memory_order_relaxed);
    }
    co_await serve(stream, lowest);
  }

  template <class Stream>
  net::awaitable<void> serve(Stream& stream, beast::tcp_stream& lowest) {
    beast::error_code ignored;
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(64 * 1024);
      parser.body_limit(64 * 1024 * 1024);
      lowest.expires_after(std::chrono::seconds(120));
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, kUseTuple);
      if (ec) break;
      const auto& req = parser.get();
      const bool fail = !opt_.fail_path.empty() && req.target().starts_with(opt_.fail_path);
      const unsigned status = fail ? opt_.fail_status : opt_.status_code;
      note(req, status);
      const bool keep_alive = req.keep_alive() && !opt_.close;
      const std::string& response = fail ? (keep_alive ? fail_response_ : fail_response_close_)
                                         : (keep_alive ? ok_response_ : ok_response_close_);
      lowest.expires_after(std::chrono::seconds(30));
      auto [wec, wn] = co_await net::async_write(stream, net::buffer(response), kUseTuple);
      if (wec || !keep_alive) break;
    }
    lowest.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  net::awaitable<void> accept_loop(tcp::acceptor& acceptor) {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kUseTuple);
      if (ec) {
        if (ec == net::error::operation_aborted) co_return;
        continue;  // e.g. EMFILE: keep serving the open connections
      }
      net::co_spawn(ioc_, session(std::move(socket)), net::detached);
    }
  }

  net::awaitable<void> progress_loop() {
    net::steady_timer timer(co_await net::this_coro::executor);
    std::uint64_t previous = 0;
    for (int second = 1; !stopping_.load(); ++second) {
      timer.expires_after(std::chrono::seconds(1));
      co_await timer.async_wait(kUseTuple);
      const std::uint64_t now = total_.load();
      const std::uint64_t rate = now - previous;
      previous = now;
      peak_1s_ = std::max(peak_1s_.load(), rate);
      if (opt_.quiet) continue;
      std::fprintf(stderr, "relay_bench_receiver: t=%ds total=%llu ok=%llu rate=%llu/s\n", second,
                   static_cast<unsigned long long>(now),
                   static_cast<unsigned long long>(ok_.load()),
                   static_cast<unsigned long long>(rate));
    }
  }

  // Thread-safe: the last response gets a moment to leave before the io_context stops.
  void request_stop(const char* reason) {
    if (stopping_.exchange(true)) return;
    stop_reason_ = reason;
    net::post(ioc_, [this] {
      auto grace = std::make_shared<net::steady_timer>(ioc_, std::chrono::milliseconds(200));
      grace->async_wait([this, grace](const beast::error_code&) { ioc_.stop(); });
    });
  }

  int finish() {
    ThreadRecord all;
    for (const auto& r : records_) {
      for (const auto& [code, n] : r->by_status) all.by_status[code] += n;
      if (r->first_ns != 0 && (all.first_ns == 0 || r->first_ns < all.first_ns)) {
        all.first_ns = r->first_ns;
      }
      all.last_ns = std::max(all.last_ns, r->last_ns);
      all.last_ok_ns = std::max(all.last_ok_ns, r->last_ok_ns);
    }
    int rc = 0;
    if (!opt_.log.empty()) {
      std::ofstream out(opt_.log, std::ios::binary | std::ios::trunc);
      for (const auto& r : records_) out << r->log;
      if (!out) {
        std::cerr << "relay_bench_receiver: cannot write " << opt_.log << '\n';
        rc = 1;
      }
    }
    const std::uint64_t total = total_.load();
    const char* reason = stop_reason_.load();
    const double span_s = static_cast<double>(all.last_ns - all.first_ns) / 1e9;
    char buf[256];
    std::string s = "{\"reason\":\"" + std::string(reason != nullptr ? reason : "stopped") + "\"";
    s += ",\"requests\":" + std::to_string(total);
    s += ",\"ok\":" + std::to_string(ok_.load());
    s += ",\"not_ok\":" + std::to_string(total - ok_.load());
    for (const auto& [code, n] : all.by_status) {
      s += ",\"status_" + std::to_string(code) + "\":" + std::to_string(n);
    }
    s += ",\"first_ns\":" + std::to_string(all.first_ns);
    s += ",\"last_ns\":" + std::to_string(all.last_ns);
    s += ",\"last_ok_ns\":" + std::to_string(all.last_ok_ns);
    std::snprintf(buf, sizeof buf, ",\"span_s\":%.6f,\"requests_per_s\":%.1f", span_s,
                  span_s > 0 ? static_cast<double>(total) / span_s : 0.0);
    s += buf;
    s += ",\"peak_1s\":" + std::to_string(peak_1s_.load());
    s += ",\"logged_bytes\":" + std::to_string(std::min(log_bytes_.load(), opt_.max_log_bytes));
    s += ",\"log_dropped\":" + std::to_string(log_dropped_.load());
    if (tls_) {
      s += ",\"tls_handshakes\":" + std::to_string(tls_handshakes_.load());
      s += ",\"tls_resumed\":" + std::to_string(tls_resumed_.load());
      s += ",\"tls_failed\":" + std::to_string(tls_failed_.load());
      std::lock_guard lock(sni_mu_);
      s += ",\"sni_names\":" + std::to_string(sni_names_.size());
    }
    std::snprintf(buf, sizeof buf, ",\"run_s\":%.3f}",
                  static_cast<double>(monotonic_ns() - start_mono_) / 1e9);
    s += buf;
    std::cout << s << std::endl;
    return rc;
  }

  const Options& opt_;
  net::io_context ioc_;
  const std::string ok_response_, ok_response_close_, fail_response_, fail_response_close_;
  std::atomic<std::uint64_t> total_{0};
  std::atomic<std::uint64_t> ok_{0};
  std::atomic<std::uint64_t> log_bytes_{0};
  std::atomic<std::uint64_t> log_dropped_{0};
  std::atomic<std::uint64_t> peak_1s_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<const char*> stop_reason_{nullptr};
  std::int64_t start_mono_ = 0;
  ssl::context tls_context_;
  bool tls_ = false;
  std::atomic<std::uint64_t> tls_handshakes_{0};
  std::atomic<std::uint64_t> tls_resumed_{0};
  std::atomic<std::uint64_t> tls_failed_{0};
  std::mutex sni_mu_;
  std::unordered_set<std::string> sni_names_;  // by sni_mu_
  std::mutex records_mu_;
  std::vector<std::unique_ptr<ThreadRecord>> records_;
};

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    options = parse_options(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "relay_bench_receiver: " << e.what() << '\n' << kUsage;
    return 2;
  }
  try {
    Receiver receiver(options);
    return receiver.run();
  } catch (const std::exception& e) {
    std::cerr << "relay_bench_receiver: " << e.what() << '\n';
    return 1;
  }
}
