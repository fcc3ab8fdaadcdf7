// One connection's requests, in order: reads under deadlines, framing and routing decided
// from the header, the handler's answer awaited and written (HttpServerImpl.hpp).
#include <algorithm>
#include <array>
#include <exception>
#include <string>

#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "Framing.hpp"
#include "HttpServerImpl.hpp"
#include "IntakeHandler.hpp"
#include "relay/common/HandOffBatch.hpp"

namespace relay::server {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using TlsStream = ssl::stream<beast::tcp_stream>;

constexpr std::size_t kDefaultBodyLimit = 1048576;
constexpr std::size_t kMaxLingerBytes = 4 * 1024 * 1024;
constexpr auto kLingerTime = std::chrono::seconds(1);
constexpr auto kTlsShutdownTime = std::chrono::seconds(1);

/// Hands a batch of answers (common::HandOffBatch: one group commit's) to the event loop with
/// one post: the I/O thread that takes it resumes each connection in turn.
void post_answers(void* io, std::vector<std::function<void()>> calls) {
  net::post(*static_cast<net::io_context*>(io), [calls = std::move(calls)] {
    for (const auto& call : calls) call();
  });
}

template <class Resume>
struct PendingAnswerFor final : PendingAnswer,
                                std::enable_shared_from_this<PendingAnswerFor<Resume>> {
  PendingAnswerFor(Resume r, net::any_io_executor ex, net::io_context& context)
      : resume(std::move(r)), executor(std::move(ex)), io(context) {}
  bool answer(Response response) override {
    if (answered.exchange(true)) return false;
    auto resume_now = [self = this->shared_from_this(), response = std::move(response)]() mutable {
      std::move(self->resume)(std::move(response));
    };
    if (common::HandOffBatch::active()) {
      // On the strand: inline when the I/O thread running the batch may enter it.
      std::function<void()> call = [ex = executor, resume_now]() mutable {
        net::dispatch(ex, std::move(resume_now));
      };
      common::HandOffBatch::add(&io, &post_answers, call);
    } else {
      net::post(executor, std::move(resume_now));
    }
    return true;
  }
  Resume resume;  // the coroutine's completion handler, called on its strand
  net::any_io_executor executor;
  net::io_context& io;
  std::atomic<bool> answered{false};
};

}  // namespace

template <class Stream>
void HttpServer::Impl::arm(Stream& stream, SessionState& state, std::chrono::milliseconds budget) {
  state.timed_out = false;
  state.cancel_io = [&stream] { beast::get_lowest_layer(stream).cancel(); };
  state.io_deadline.store((std::chrono::steady_clock::now() + budget).time_since_epoch().count(),
                          std::memory_order_relaxed);
}

bool HttpServer::Impl::disarm(SessionState& state) {
  state.io_deadline.store(0, std::memory_order_relaxed);
  state.cancel_io = nullptr;
  return state.timed_out;
}

template <class Stream, class Message>
net::awaitable<bool> HttpServer::Impl::write(Stream& stream, SessionState& state,
                                             Message& message) {
  arm(stream, state, options.write_timeout);
  state.writing = true;
  auto [ec, n] = co_await http::async_write(stream, message, kUseTuple);
  state.writing = false;
  disarm(state);
  co_return !ec;
}

template <class Stream>
net::awaitable<bool> HttpServer::Impl::write_response(Stream& stream, SessionState& state,
                                                      Response response, unsigned version,
                                                      bool keep_alive) {
  http::response<http::string_body> res;
  res.version(version);
  res.result(static_cast<unsigned>(response.status));
  res.set(http::field::server, "relayd");
  if (!response.content_type.empty()) res.set(http::field::content_type, response.content_type);
  for (auto& [name, value] : response.headers) res.insert(name, value);
  res.body() = std::move(response.body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  co_return co_await write(stream, state, res);
}

template <class Stream>
net::awaitable<bool> HttpServer::Impl::write_error(Stream& stream, SessionState& state, int status,
                                                   std::string_view code,
                                                   std::string_view message) {
  co_return co_await write_response(stream, state, error_response(status, code, message), 11,
                                    false);
}

net::awaitable<Response> HttpServer::Impl::handle(const Handler& handler, Request request,
                                                  const net::any_io_executor& ex,
                                                  SessionState& state) {
  state.answer_deadline =
      (std::chrono::steady_clock::now() + options.handler_timeout).time_since_epoch().count();
  Response response = co_await net::async_initiate<decltype(net::use_awaitable), void(Response)>(
      [&](auto resume) {
        // Runs with the coroutine suspended, so an answer given at once (or by another
        // thread before the handler even returns) resumes it safely.
        auto pending =
            std::make_shared<PendingAnswerFor<decltype(resume)>>(std::move(resume), ex, io);
        state.pending = pending;
        std::function<void(Response)> respond = [pending](Response r) {
          pending->answer(std::move(r));
        };
        try {
          handler(std::move(request), std::move(respond));
        } catch (const std::exception& e) {
          spdlog::error("http: handler failed: {}", e.what());
          pending->answer(error_response(500, "internal_error", "internal error"));
        }
      },
      net::use_awaitable);
  state.answer_deadline = 0;
  state.pending.reset();
  co_return response;
}

template <class Stream>
void HttpServer::Impl::log_unauthorized(Stream& stream, const Request& request) {
  std::uint64_t suppressed = 0;
  if (!unauthorized_log.allow(suppressed)) return;
  error_code ec;
  const auto peer = beast::get_lowest_layer(stream).socket().remote_endpoint(ec);
  const auto who = ec ? std::string("an unknown peer")
                      : (peer.address().is_v6() ? "[" + peer.address().to_string() + "]"
                                                : peer.address().to_string()) +
                            ":" + std::to_string(peer.port());
  spdlog::warn("http: 401 for {} {} from {}: missing or wrong bearer token{}", request.method,
               request.path, who,
               suppressed > 0 ? " (" + std::to_string(suppressed) + " more 401s not logged)"
                              : std::string());
}

template <class Stream>
net::awaitable<HttpServer::Impl::Ending> HttpServer::Impl::serve(
    Stream& stream, const std::shared_ptr<SessionState>& state,
    std::chrono::steady_clock::time_point connected) {
  auto ex = co_await net::this_coro::executor;
  beast::flat_buffer buffer;
  for (bool first = true;; first = false) {
    if (stopped || state->shed) co_return Ending::kGraceful;
    // The first request's header deadline runs from connect (TLS handshake included).
    auto header_budget = options.header_timeout;
    if (buffer.size() == 0) {
      arm(stream, *state, first ? options.header_timeout : options.idle_timeout);
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), kUseTuple);
      const bool timed_out = disarm(*state);
      if (ec) {
        if (!first || state->shed) co_return Ending::kQuiet;
        co_return co_await read_failed(stream, *state, ec, timed_out, "header");
      }
      buffer.commit(n);
    }
    if (first) {
      const auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - connected);
      header_budget = std::max(std::chrono::milliseconds(1), header_budget - spent);
    }
    state->busy = true;
    struct Idle {
      SessionState& state;
      ~Idle() { state.busy = false; }
    } idle_again{*state};

    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
    const auto config = context.config ? context.config() : nullptr;
    parser.body_limit(config ? config->server.max_body_bytes : kDefaultBodyLimit);

    arm(stream, *state, header_budget);
    auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kUseTuple);
    bool timed_out = disarm(*state);
    if (ec) co_return co_await read_failed(stream, *state, ec, timed_out, "header");

    auto& req = parser.get();
    std::optional<std::string> transfer_encoding;
    for (const auto& field : req) {
      if (field.name() != http::field::transfer_encoding) continue;
      if (transfer_encoding) transfer_encoding->append(", ");
      transfer_encoding = transfer_encoding.value_or("").append(field.value());
    }
    if (const auto framing = transfer_encoding_error(transfer_encoding)) {
      spdlog::debug("http: refused framing: {}", *framing);
      co_await write_error(stream, *state, 400, "bad_request", *framing);
      co_return Ending::kLinger;
    }

    const unsigned version = req.version();
    Request request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    split_target(request.target, request);
    for (const auto& field : req) {
      request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    const std::string_view token = config ? std::string_view(config->server.token) : "";
    auto decision =
        router.decide(request.method, request.path, request.header("authorization"), token);
    if (decision.refusal) {
      if (decision.refusal->status == 401) log_unauthorized(stream, request);
      // An unread body is never read: close after the answer instead.
      const bool body_pending = !parser.is_done();
      const bool again = !body_pending && req.keep_alive() && !stopped;
      if (!co_await write_response(stream, *state, std::move(*decision.refusal), version, again)) {
        co_return Ending::kQuiet;
      }
      if (!again) co_return body_pending ? Ending::kLinger : Ending::kGraceful;
      continue;
    }

    if (!parser.is_done()) {
      if (beast::iequals(req[http::field::expect], "100-continue")) {
        http::response<http::empty_body> cont{http::status::continue_, version};
        if (!co_await write(stream, *state, cont)) co_return Ending::kQuiet;
      }
      auto budget = options.body_timeout_max;
      if (const auto length = parser.content_length()) {
        const auto rate = std::max<std::size_t>(1, options.body_min_rate);
        budget = std::min(budget,
                          options.body_timeout + std::chrono::milliseconds(*length * 1000 / rate));
      }
      arm(stream, *state, budget);
      std::tie(ec, n) = co_await http::async_read(stream, buffer, parser, kUseTuple);
      timed_out = disarm(*state);
      if (ec) co_return co_await read_failed(stream, *state, ec, timed_out, "body");
    }

    const bool keep_alive = parser.get().keep_alive();
    request.body = std::move(parser.get().body());

    Response response = co_await handle(*decision.handler, std::move(request), ex, *state);
    const bool again = keep_alive && !stopped && !state->shed;
    if (!co_await write_response(stream, *state, std::move(response), version, again)) {
      co_return Ending::kQuiet;
    }
    if (!again) co_return Ending::kGraceful;
  }
}

template <class Stream>
net::awaitable<HttpServer::Impl::Ending> HttpServer::Impl::read_failed(
    Stream& stream, SessionState& state, error_code ec, bool timed_out, const char* phase) {
  if (timed_out) {
    spdlog::debug("http: {} read timed out", phase);
    co_await write_error(stream, state, 408, "request_timeout",
                         std::string("the request ") + phase + " was not received in time");
    co_return Ending::kQuiet;
  }
  if (ec == http::error::body_limit) {
    const auto config = context.config ? context.config() : nullptr;
    const auto limit = config ? config->server.max_body_bytes : kDefaultBodyLimit;
    co_await write_error(stream, state, 413, "payload_too_large",
                         "the body is larger than " + std::to_string(limit) + " bytes");
    co_return Ending::kLinger;
  }
  if (ec == http::error::header_limit) {
    co_await write_error(
        stream, state, 431, "headers_too_large",
        "the request header is larger than " + std::to_string(options.header_limit) + " bytes");
    co_return Ending::kLinger;
  }
  if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
      ec.category() != http::make_error_code(http::error::bad_method).category()) {
    // The client went away (or stop() cancelled the read): nothing to answer.
    co_return Ending::kQuiet;
  }
  spdlog::debug("http: malformed request: {}", ec.message());
  co_await write_error(stream, state, 400, "bad_request",
                       "malformed HTTP request: " + ec.message());
  co_return Ending::kLinger;
}

template <class Stream>
net::awaitable<void> HttpServer::Impl::linger(Stream& stream,
                                              const std::shared_ptr<SessionState>& state) {
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  arm(stream, *state, kLingerTime);
  std::array<char, 16384> scratch{};
  std::size_t total = 0;
  while (total < kMaxLingerBytes) {
    auto [ec, n] = co_await stream.async_read_some(net::buffer(scratch), kUseTuple);
    if (ec) break;
    total += n;
  }
  disarm(*state);
  co_return;
}

net::awaitable<void> HttpServer::Impl::run_session(std::shared_ptr<Impl> self, tcp::socket socket,
                                                   std::shared_ptr<SessionState> state,
                                                   std::uint64_t id) {
  const auto connected = std::chrono::steady_clock::now();
  struct Unregister {
    Impl* impl;
    std::shared_ptr<SessionState> state;
    std::uint64_t id;
    ~Unregister() {
      state->cancel_io = nullptr;
      impl->unregister_session(id);
    }
  } unregister{this, state, id};
  (void)self;

  // Declared after each stream, so destroyed before it: stop() must never reach a dead one.
  struct ClearCancel {
    SessionState& state;
    ~ClearCancel() { state.cancel_io = nullptr; }
  };
  if (tls) {
    TlsStream stream(beast::tcp_stream(std::move(socket)), *tls);
    ClearCancel clear{*state};
    beast::get_lowest_layer(stream).expires_after(options.header_timeout);
    // A handshaking connection is idle too: the cap may close it.
    state->cancel_io = [&stream] { beast::get_lowest_layer(stream).cancel(); };
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, kUseTuple);
    state->cancel_io = nullptr;
    beast::get_lowest_layer(stream).expires_never();
    if (ec || state->shed) co_return;
    const auto ending = co_await serve(stream, state, connected);
    if (ending != Ending::kQuiet) {
      beast::get_lowest_layer(stream).expires_after(kTlsShutdownTime);
      co_await stream.async_shutdown(kUseTuple);
    }
    beast::get_lowest_layer(stream).close();
  } else {
    beast::tcp_stream stream(std::move(socket));
    ClearCancel clear{*state};
    const auto ending = co_await serve(stream, state, connected);
    error_code ignored;
    if (ending == Ending::kLinger) {
      co_await linger(stream, state);
    } else if (ending == Ending::kGraceful) {
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
    stream.close();
  }
}

}  // namespace relay::server
