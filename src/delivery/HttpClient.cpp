// The HTTPS client pool. This is the only translation unit of the delivery module that includes
// Asio/Beast/OpenSSL-SSL (slow to compile); the header stays plain.
#include "relay/delivery/HttpClient.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "HttpErrorText.hpp"
#include "RequestHead.hpp"
#include "TlsContexts.hpp"
#include "relay/common/Url.hpp"
#include "relay/delivery/AddressPolicy.hpp"

namespace relay::delivery {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using boost::system::error_code;
using common::parse_url;
using common::Url;
using detail::dns_message;
using detail::Phase;
using detail::read_message;
using detail::serialize_head;
using detail::timeout_message;
using detail::tls_message;
using SteadyClock = std::chrono::steady_clock;
using Strand = net::strand<net::io_context::executor_type>;

constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);
constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::chrono::milliseconds kTrustedIdle{100};      // reused without a peek (checkout)
constexpr std::chrono::milliseconds kMinPruneInterval{10};  // see prune_locked

std::string format_endpoint(const tcp::endpoint& ep) {
  const auto addr = ep.address();
  std::string host = addr.to_string();
  if (addr.is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

AddressClass classify(const net::ip::address& addr) {
  if (addr.is_v4()) return classify_ipv4(addr.to_v4().to_bytes());
  return classify_ipv6(addr.to_v6().to_bytes());
}

// A reused connection that fails like this never got the request to a live server process:
// the server had closed it while it was idle.
bool is_stale_connection_error(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == net::error::connection_aborted || ec == net::error::not_connected ||
         ec == ssl::error::stream_truncated;
}

/// One TCP (+TLS) connection. All I/O on it happens on its own strand, so the deadline timer's
/// handler never races with an operation on another thread.
struct Connection {
  Connection(Strand s, ssl::context* tls_context, std::string key)
      : strand(std::move(s)), session_key(std::move(key)) {
    if (tls_context != nullptr) {
      tls.emplace(strand, *tls_context);
    } else {
      plain.emplace(strand);
    }
  }
  beast::tcp_stream& tcp() { return tls ? beast::get_lowest_layer(*tls) : *plain; }

  Strand strand;
  // The pool key, under which this connection's TLS sessions are cached (the SSL object points
  // at it, so it is declared before `tls` and outlives it).
  std::string session_key;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  std::optional<beast::tcp_stream> plain;
  beast::flat_buffer buffer;
  // Where response bodies are read to, one chunk at a time. Per connection rather than in each
  // request's coroutine frame: a 16 KiB frame to allocate and zero for every attempt showed in
  // the drain profile.
  std::array<char, kReadChunk> chunk;
  std::string head;  // the request line and headers being written (capacity reused)
  std::string remote;
  SteadyClock::time_point idle_since{};
  // The exchange's deadline: one timer per exchange that closes the socket when it fires
  // (Beast's stream deadline arms and cancels a timer for every read and write instead).
  net::steady_timer deadline_timer{strand};
  bool expired = false;         // the deadline closed the socket: any error since is a timeout
  std::uint64_t exchanges = 0;  // bumped at each exchange's start and end (stale timer waits)
};

/// What one exchange on one connection produced.
struct Exchange {
  HttpResult result;
  bool connect_failed = false;  // try the next address
  bool stale = false;           // reused connection died before any response byte: go fresh
  bool reusable = false;        // may go back to the pool
};

/// Calls `done` exactly once: with the result, or from the destructor when the coroutine's
/// completion handler is destroyed without running (io_context torn down).
class DoneOnce {
 public:
  explicit DoneOnce(std::function<void(HttpResult)> done) : done_(std::move(done)) {}
  DoneOnce(const DoneOnce&) = delete;
  DoneOnce& operator=(const DoneOnce&) = delete;
  ~DoneOnce() {
    if (!done_) return;
    try {
      HttpResult r;
      r.error = "cancelled: client shut down";
      auto done = std::move(done_);
      done_ = nullptr;
      done(std::move(r));
    } catch (...) {  // NOLINT(bugprone-empty-catch): nothing sensible to do during teardown
    }
  }
  void operator()(HttpResult r) {
    auto done = std::move(done_);
    done_ = nullptr;
    if (done) done(std::move(r));
  }

 private:
  std::function<void(HttpResult)> done_;
};

bool socket_looks_alive(beast::tcp_stream& stream) {
  auto& socket = stream.socket();
  if (!socket.is_open()) return false;
  char byte = 0;
  const auto n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  // 0: the peer closed; >0: it sent something unasked (a TLS close_notify, junk); both make
  // the connection unusable. Only "nothing to read yet" means alive.
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

struct HttpClientPool::Impl : std::enable_shared_from_this<HttpClientPool::Impl> {
  Impl(net::io_context& io_context, ClientOptions opts)
      : io(io_context), options(std::move(opts)), tls_contexts(options.ca_file) {}

  net::awaitable<HttpResult> send(OutgoingRequest request);
  net::awaitable<Exchange> exchange(std::shared_ptr<Connection> conn, const Url& url,
                                    const OutgoingRequest& request,
                                    SteadyClock::time_point deadline, bool reused,
                                    tcp::endpoint endpoint);
  template <class Stream>
  net::awaitable<void> write_and_read(Stream& stream, Connection& conn, const Url& url,
                                      const OutgoingRequest& request, bool reused, Exchange& out);

  std::shared_ptr<Connection> checkout(const std::string& key);
  void checkin(const std::string& key, std::shared_ptr<Connection> conn);
  void close_idle();
  std::size_t idle_count() const;

  // Pooled connections are closed on their own strand (their stream is not thread-safe).
  static void dispose(std::vector<std::shared_ptr<Connection>> dead) {
    for (auto& c : dead) {
      auto strand = c->strand;
      net::post(strand, [c = std::move(c)] { c->tcp().close(); });
    }
  }
  void prune_locked(std::vector<std::shared_ptr<Connection>>& dead);

  net::io_context& io;
  const ClientOptions options;
  TlsContexts tls_contexts;

  mutable std::mutex mutex;
  bool closed = false;                   // guarded by mutex
  SteadyClock::time_point next_prune{};  // guarded by mutex
  std::unordered_map<std::string, std::vector<std::shared_ptr<Connection>>> idle;  // by mutex
};

void HttpClientPool::Impl::prune_locked(std::vector<std::shared_ptr<Connection>>& dead) {
  const auto now = SteadyClock::now();
  // A walk over every origin's list: not at each checkout and checkin (with a thousand origins
  // that was the pool's main cost), but a few times per idle timeout. checkout refuses an
  // expired connection itself, so pruning later only delays closing it.
  if (now < next_prune) return;
  next_prune = now + std::max<SteadyClock::duration>(options.idle_timeout / 8, kMinPruneInterval);
  for (auto it = idle.begin(); it != idle.end();) {
    auto& list = it->second;
    // Oldest first: the list is pushed at the back.
    auto keep = std::find_if(list.begin(), list.end(), [&](const auto& c) {
      return now - c->idle_since < options.idle_timeout;
    });
    std::move(list.begin(), keep, std::back_inserter(dead));
    list.erase(list.begin(), keep);
    it = list.empty() ? idle.erase(it) : std::next(it);
  }
}

std::shared_ptr<Connection> HttpClientPool::Impl::checkout(const std::string& key) {
  std::vector<std::shared_ptr<Connection>> dead;
  std::shared_ptr<Connection> found;
  {
    std::lock_guard lock(mutex);
    prune_locked(dead);
    if (auto it = idle.find(key); it != idle.end()) {
      auto& list = it->second;
      const auto now = SteadyClock::now();
      while (!list.empty() && !found) {
        auto c = std::move(list.back());  // most recently used first: most likely still open
        list.pop_back();
        const auto idle_for = now - c->idle_since;
        // A connection back for moments is not worth a system call to check: if its peer did
        // close it meanwhile, the exchange finds out before any response byte and goes fresh.
        if (idle_for < options.idle_timeout &&
            (idle_for < kTrustedIdle || socket_looks_alive(c->tcp()))) {
          found = std::move(c);
        } else {
          dead.push_back(std::move(c));
        }
      }
      if (list.empty()) idle.erase(it);
    }
  }
  dispose(std::move(dead));
  return found;
}

void HttpClientPool::Impl::checkin(const std::string& key, std::shared_ptr<Connection> conn) {
  std::vector<std::shared_ptr<Connection>> dead;
  {
    std::lock_guard lock(mutex);
    prune_locked(dead);
    auto& list = idle[key];
    if (closed || list.size() >= options.max_idle_per_origin) {
      dead.push_back(std::move(conn));
      if (list.empty()) idle.erase(key);
    } else {
      conn->idle_since = SteadyClock::now();
      list.push_back(std::move(conn));
    }
  }
  dispose(std::move(dead));
}

void HttpClientPool::Impl::close_idle() {
  std::vector<std::shared_ptr<Connection>> dead;
  {
    std::lock_guard lock(mutex);
    for (auto& [key, list] : idle) std::move(list.begin(), list.end(), std::back_inserter(dead));
    idle.clear();
  }
  dispose(std::move(dead));
}

std::size_t HttpClientPool::Impl::idle_count() const {
  std::lock_guard lock(mutex);
  std::size_t n = 0;
  for (const auto& [key, list] : idle) n += list.size();
  return n;
}

template <class Stream>
net::awaitable<void> HttpClientPool::Impl::write_and_read(Stream& stream, Connection& conn,
                                                          const Url& url,
                                                          const OutgoingRequest& request,
                                                          bool reused, Exchange& out) {
  HttpResult& result = out.result;

  // The request head is written as text into a buffer the connection keeps, and sent with the
  // body in one gather write: a Beast message would allocate every field and copy the body.
  if (!serialize_head(url, request, conn.head)) {
    result.error = "request: a header name or value would break the HTTP framing";
    co_return;
  }
  {
    const std::array<net::const_buffer, 2> buffers = {net::buffer(conn.head),
                                                      net::buffer(request.body)};
    auto [ec, n] = co_await net::async_write(stream, buffers, kUseTuple);
    if (ec) {
      if (conn.expired) {
        result.error = timeout_message(request.timeout, Phase::kWrite);
      } else {
        out.stale = reused;
        result.error = "write: " + ec.message();
      }
      co_return;
    }
  }

  // Interim 1xx responses (100 Continue, 103 Early Hints, ...) are skipped; 101 is final (we
  // never ask to switch protocols, so it is a status like any other odd one).
  std::optional<http::response_parser<http::buffer_body>> parser;
  for (int interim = 0;; ++interim) {
    parser.emplace();
    parser->header_limit(
        static_cast<std::uint32_t>(std::min<std::size_t>(options.max_response_header, UINT32_MAX)));
    parser->body_limit(boost::none);  // the loop below stops reading at max_response_body
    auto [ec, n] = co_await http::async_read_header(stream, conn.buffer, *parser, kUseTuple);
    if (ec) {
      if (conn.expired) {
        result.error = timeout_message(request.timeout, Phase::kRead);
      } else if (interim > 0 &&
                 (ec == http::error::end_of_stream || is_stale_connection_error(ec))) {
        result.error = "read: connection closed after an interim 1xx response";
      } else {
        out.stale = reused && interim == 0 && !parser->got_some() && is_stale_connection_error(ec);
        result.error = read_message(ec, options);
      }
      co_return;
    }
    const unsigned status = parser->get().result_int();
    if (status >= 100 && status < 200 && status != 101) continue;
    break;
  }

  auto& response = parser->get();
  result.status = static_cast<int>(response.result_int());
  for (const auto& field : response) {
    result.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }

  // Body: read in chunks, keep at most max_response_body bytes, and stop reading (instead of
  // failing) when the server sends more: the status is what counts.
  auto& chunk = conn.chunk;
  const std::size_t limit = options.max_response_body;
  while (!parser->is_done()) {
    const std::size_t room = limit - result.body.size();
    // Ask for one byte more than there is room for: getting it proves the body is longer.
    const std::size_t want = std::min(chunk.size(), room + 1);
    response.body().data = chunk.data();
    response.body().size = want;
    auto [ec, n] = co_await http::async_read(stream, conn.buffer, *parser, kUseTuple);
    if (ec == http::error::need_buffer) ec = {};
    const std::size_t got = want - response.body().size;
    result.body.append(chunk.data(), std::min(got, room));
    if (got > room) {
      result.body_truncated = true;
      break;
    }
    if (ec) {
      result.body_truncated = true;
      result.body_error =
          conn.expired ? timeout_message(request.timeout, Phase::kRead) : read_message(ec, options);
      break;
    }
  }

  out.reusable = parser->is_done() && !result.body_truncated && parser->keep_alive() &&
                 response.version() == 11 && conn.buffer.size() == 0;
}

net::awaitable<Exchange> HttpClientPool::Impl::exchange(std::shared_ptr<Connection> conn,
                                                        const Url& url,
                                                        const OutgoingRequest& request,
                                                        SteadyClock::time_point deadline,
                                                        bool reused, tcp::endpoint endpoint) {
  Exchange out;
  auto& tcp = conn->tcp();
  conn->expired = false;
  const auto generation = ++conn->exchanges;
  conn->deadline_timer.expires_at(deadline);
  conn->deadline_timer.async_wait(
      [weak = std::weak_ptr<Connection>(conn), generation](error_code ec) {
        if (ec) return;
        const auto c = weak.lock();
        // A wait that completed just as its exchange ended must not touch a later one.
        if (!c || c->exchanges != generation) return;
        // Closed, not cancelled: an operation started after this still fails at once.
        c->expired = true;
        error_code ignored;
        c->tcp().socket().close(ignored);
      });
  struct Disarm {
    Connection& conn;
    ~Disarm() {
      ++conn.exchanges;
      conn.deadline_timer.cancel();
    }
  } disarm{*conn};
  if (!reused) {
    conn->remote = format_endpoint(endpoint);
    out.result.remote_address = conn->remote;
    auto [ec] = co_await tcp.async_connect(endpoint, kUseTuple);
    if (ec) {
      out.connect_failed = !conn->expired;
      out.result.error = conn->expired ? timeout_message(request.timeout, Phase::kConnect)
                                       : "connect: " + ec.message();
      co_return out;
    }
    if (conn->tls) {
      SSL* ssl = conn->tls->native_handle();
      bool configured = false;
      if (url.host_is_ip) {
        // RFC 6066: no SNI for IP literals; the certificate must name the IP (SAN iPAddress).
        configured = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url.host.c_str()) == 1;
      } else {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        configured = SSL_set_tlsext_host_name(ssl, url.host.c_str()) == 1 &&
                     SSL_set1_host(ssl, url.host.c_str()) == 1;
      }
      if (!configured) {
        out.result.error = "tls: cannot set up host name verification for " + url.host;
        co_return out;
      }
      // A session from an earlier connection to this same pool key makes this an abbreviated
      // handshake; the certificate was verified (for this host) when the session was made.
      tls_contexts.sessions().prepare(ssl, &conn->session_key);
      auto [hs_ec] = co_await conn->tls->async_handshake(ssl::stream_base::client, kUseTuple);
      if (hs_ec) {
        out.result.error = conn->expired ? timeout_message(request.timeout, Phase::kTls)
                                         : tls_message(hs_ec, ssl, url);
        tcp.close();
        co_return out;
      }
      tls_contexts.sessions().after_handshake(ssl);
    }
  }
  out.result.remote_address = conn->remote;

  if (conn->tls) {
    co_await write_and_read(*conn->tls, *conn, url, request, reused, out);
  } else {
    co_await write_and_read(*conn->plain, *conn, url, request, reused, out);
  }
  if (!out.reusable || conn->expired) {
    out.reusable = false;
    tcp.close();
  }
  co_return out;
}

net::awaitable<HttpResult> HttpClientPool::Impl::send(OutgoingRequest request) {
  const auto start = SteadyClock::now();
  const auto deadline = start + request.timeout;
  auto finish = [&](HttpResult r) {
    r.duration = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start);
    return r;
  };
  auto fail = [&](std::string error) {
    HttpResult r;
    r.error = std::move(error);
    return finish(std::move(r));
  };

  std::string url_error;
  const auto url = parse_url(request.url, &url_error);
  if (!url) co_return fail("url: " + url_error);
  if (!url->is_https() && !request.allow_insecure_http) {
    co_return fail("insecure: http:// URL requires allow_insecure_http");
  }
  ssl::context* tls = nullptr;
  std::string key = url->origin() + (request.allow_private_networks ? "|any" : "|public");
  if (url->is_https()) {
    if (request.extra_ca_file.empty()) {
      tls = &tls_contexts.default_context();
    } else {
      std::string generation;
      std::string error;
      tls = tls_contexts.with_extra(request.extra_ca_file, generation, error);
      if (tls == nullptr) co_return fail("tls: " + error);
      key += "|ca=" + generation;
    }
  }

  // 1. A pooled connection; if it turns out the server had closed it, go on with a fresh one
  //    (this is not a new attempt).
  if (auto conn = checkout(key)) {
    auto strand = conn->strand;
    Exchange ex = co_await net::co_spawn(strand, exchange(conn, *url, request, deadline, true, {}),
                                         net::use_awaitable);
    if (!ex.stale) {
      if (ex.reusable) checkin(key, std::move(conn));
      co_return finish(std::move(ex.result));
    }
  }

  // 2. Resolve, bounded by the deadline. The resolver runs getaddrinfo on a private thread and
  //    cannot be interrupted, so the coroutine waits on a timer that the resolve completion
  //    cancels, and simply walks away on timeout.
  std::vector<tcp::endpoint> endpoints;
  if (url->host_is_ip) {
    endpoints.emplace_back(net::ip::make_address(url->host), url->port);
  } else {
    struct DnsWait {
      explicit DnsWait(const net::any_io_executor& ex) : resolver(ex), timer(ex) {}
      tcp::resolver resolver;
      net::steady_timer timer;
      bool done = false;
      error_code ec;
      tcp::resolver::results_type results;
    };
    auto wait = std::make_shared<DnsWait>(co_await net::this_coro::executor);
    wait->resolver.async_resolve(url->host, std::to_string(url->port),
                                 [wait](const error_code& ec, tcp::resolver::results_type results) {
                                   wait->done = true;
                                   wait->ec = ec;
                                   wait->results = std::move(results);
                                   wait->timer.cancel();
                                 });
    wait->timer.expires_at(deadline);
    co_await wait->timer.async_wait(kUseTuple);
    if (!wait->done) {
      wait->resolver.cancel();
      co_return fail(timeout_message(request.timeout, Phase::kDns));
    }
    if (wait->ec) co_return fail(dns_message(wait->ec));
    for (const auto& entry : wait->results) endpoints.push_back(entry.endpoint());
    if (endpoints.empty()) co_return fail("dns: no address for " + url->host);
  }

  // 3. SSRF guard on every resolved address; only checked addresses are connected to.
  std::vector<tcp::endpoint> allowed;
  for (const auto& ep : endpoints) {
    if (is_address_allowed(classify(ep.address()), request.allow_private_networks)) {
      allowed.push_back(ep);
    }
  }
  if (allowed.empty()) {
    co_return fail("refused: " + url->host +
                   " resolves only to private/loopback addresses (allow_private_networks is "
                   "false)");
  }

  // 4. Each allowed address in turn until one accepts the connection.
  Exchange last;
  std::shared_ptr<Connection> conn;
  for (const auto& ep : allowed) {
    conn = std::make_shared<Connection>(net::make_strand(io), tls, key);
    auto strand = conn->strand;
    last = co_await net::co_spawn(strand, exchange(conn, *url, request, deadline, false, ep),
                                  net::use_awaitable);
    if (!last.connect_failed || SteadyClock::now() >= deadline) break;
  }
  if (last.reusable) checkin(key, std::move(conn));
  co_return finish(std::move(last.result));
}

HttpClientPool::HttpClientPool(boost::asio::io_context& io, ClientOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(options))) {}

HttpClientPool::~HttpClientPool() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->closed = true;
  }
  impl_->close_idle();
}

void HttpClientPool::send(OutgoingRequest request, std::function<void(HttpResult)> done) {
  auto once = std::make_shared<DoneOnce>(std::move(done));
  auto strand = net::make_strand(impl_->io);
  net::co_spawn(strand, impl_->send(std::move(request)),
                [impl = impl_, once](std::exception_ptr e, HttpResult result) {
                  if (e) {
                    result = HttpResult{};
                    try {
                      std::rethrow_exception(e);
                    } catch (const std::exception& ex) {
                      result.error = std::string("internal: ") + ex.what();
                    } catch (...) {
                      result.error = "internal: unknown exception";
                    }
                  }
                  (*once)(std::move(result));
                });
}

void HttpClientPool::close_idle() {
  impl_->close_idle();
}

std::size_t HttpClientPool::idle_connections() const {
  return impl_->idle_count();
}

}  // namespace relay::delivery
