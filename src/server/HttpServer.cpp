// The only translation unit of the server module that includes Beast/Asio/SSL (they take
// ~25 s to compile here); routing, intake and auth live in plain files beside it.
#include "relay/server/HttpServer.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <stdexcept>
#include <type_traits>

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "IntakeHandler.hpp"
#include "RateLimitedLog.hpp"
#include "Router.hpp"
#include "relay/common/HandOffBatch.hpp"
#include "relay/server/BearerAuth.hpp"
#include "relay/store/Store.hpp"

namespace relay::server {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using TlsStream = ssl::stream<beast::tcp_stream>;

// Boost 1.81 with BOOST_ASIO_NO_DEPRECATED: as_tuple lives in net::, the net::experimental alias
// is compiled out.
constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);
constexpr std::size_t kDefaultBodyLimit = 1048576;
constexpr std::size_t kMaxLingerBytes = 4 * 1024 * 1024;
constexpr auto kLingerTime = std::chrono::seconds(1);
constexpr auto kTlsShutdownTime = std::chrono::seconds(1);

struct PendingAnswer;

/// Per-connection state reachable from outside the connection's coroutine (read deadline
/// timer, stop(), the connection cap). Touched only on the connection's strand, except the
/// atomics and what sessions_mutex guards.
struct SessionState {
  explicit SessionState(net::any_io_executor ex) : executor(std::move(ex)) {}
  net::any_io_executor executor;
  std::function<void()> cancel_read;  // set while a read is in progress
  std::uint64_t read_generation = 0;
  bool timed_out = false;
  bool shed = false;              // chosen by the cap: close instead of waiting for a request
  std::atomic<bool> busy{false};  // a request is in progress (first byte read → answer written)
  bool shed_requested = false;    // guarded by sessions_mutex
  // While a handler runs: its answer slot (strand only) and when it is overdue (steady clock
  // ticks, 0 = none; read by the server's sweep).
  std::shared_ptr<PendingAnswer> pending;
  std::atomic<std::int64_t> answer_deadline{0};
};

/// A request waiting for its handler's answer. The first of respond() (any thread) and the
/// handler deadline (the server's sweep) claims it and resumes the request's coroutine with
/// one post to its strand: no timer per request (arming and cancelling one cost a scheduler
/// round trip and a timer-queue update for every event).
struct PendingAnswer {
  virtual ~PendingAnswer() = default;
  /// False when the answer was already given.
  virtual bool answer(Response response) = 0;
};

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

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(net::io_context& io_context, ServerContext server_context, ServerOptions server_options)
      : io(io_context),
        context(std::move(server_context)),
        options(server_options),
        acceptor_strand(net::make_strand(io_context)),
        blocking(std::max<std::size_t>(1, server_options.blocking_threads)) {}

  net::io_context& io;
  ServerContext context;
  ServerOptions options;
  Router router;
  std::shared_ptr<std::atomic<bool>> shutting_down = std::make_shared<std::atomic<bool>>(false);
  std::atomic<bool> stopped{false};
  std::atomic<std::uint16_t> bound_port{0};
  bool started = false;
  net::strand<net::io_context::executor_type> acceptor_strand;
  std::optional<tcp::acceptor> acceptor;           // used on acceptor_strand only
  net::steady_timer sweep_timer{acceptor_strand};  // used on acceptor_strand only
  std::unique_ptr<ssl::context> tls;
  net::thread_pool blocking;

  // Ordered by id, i.e. by accept time: the cap sheds the oldest idle connection first.
  std::mutex sessions_mutex;
  std::condition_variable sessions_drained;  // notified when `sessions` becomes empty
  std::map<std::uint64_t, std::shared_ptr<SessionState>> sessions;
  std::uint64_t next_session_id = 0;
  std::size_t shedding = 0;     // sessions asked to close that have not ended yet
  std::size_t fd_reserve = 64;  // descriptors kept for the rest of the process; set by start()
  std::atomic<std::uint64_t> shed_total{0};
  std::atomic<std::uint64_t> refused_total{0};
  RateLimitedLog unauthorized_log{std::chrono::seconds(1)};

  void add_builtin_routes() {
    router.add("POST", "/v1/events", IntakeHandler(context, shutting_down, IntakeKind::kSingle));
    router.add("POST", "/v1/events/batch",
               IntakeHandler(context, shutting_down, IntakeKind::kBatch));
    router.add("GET", "/healthz", [](Request, std::function<void(Response)> respond) {
      respond(Response{200, "application/json", R"({"status":"ok"})", {}});
    });
    // writable() blocks: it runs on the server's own thread pool, never on an I/O thread. The
    // task holds no reference to the server, only to what it needs.
    router.add("GET", "/readyz", [this](Request, std::function<void(Response)> respond) {
      auto not_ready = [](std::string_view reason) {
        return Response{503,
                        "application/json",
                        R"({"status":"not_ready","reason":")" + std::string(reason) + "\"}",
                        {}};
      };
      if (shutting_down->load()) {
        respond(not_ready("shutting_down"));
        return;
      }
      if (context.store == nullptr) {
        respond(not_ready("storage_unavailable"));
        return;
      }
      net::post(blocking, [store = context.store, flag = shutting_down,
                           respond = std::move(respond), not_ready] {
        bool writable = false;
        try {
          writable = store->writable();
        } catch (const std::exception& e) {
          spdlog::warn("readyz: store check failed: {}", e.what());
        }
        if (flag->load()) {
          respond(not_ready("shutting_down"));
        } else if (!writable) {
          respond(not_ready("storage_unavailable"));
        } else {
          respond(Response{200, "application/json", R"({"status":"ready"})", {}});
        }
      });
    });
  }

  // ---- connections ----

  /// The connection cap (SPEC §8), called by the accept loop before a new connection is
  /// served: registers it when there is room or an idle connection can be closed for it
  /// (oldest first); nullptr when every connection is busy (the caller refuses it).
  std::shared_ptr<SessionState> admit(const net::any_io_executor& ex, std::uint64_t& id) {
    const std::size_t cap = connection_cap();
    std::lock_guard lock(sessions_mutex);
    if (sessions.size() - shedding >= cap) {
      std::shared_ptr<SessionState> victim;
      for (const auto& [other_id, other] : sessions) {
        if (!other->shed_requested && !other->busy.load()) {
          victim = other;
          break;
        }
      }
      if (!victim) {
        ++refused_total;
        return nullptr;
      }
      victim->shed_requested = true;
      ++shedding;
      ++shed_total;
      // On its strand: a connection that became busy meanwhile finishes its request first.
      net::post(victim->executor, [victim] {
        victim->shed = true;
        if (!victim->busy.load() && victim->cancel_read) victim->cancel_read();
      });
    }
    auto state = std::make_shared<SessionState>(ex);
    id = next_session_id++;
    sessions.emplace(id, state);
    return state;
  }

  /// server.max_connections, or fewer when the open-file limit (read each time: an operator
  /// may lower it with prlimit) leaves less room.
  std::size_t connection_cap() const {
    const auto config = context.config ? context.config() : nullptr;
    return std::min(config ? config->server.max_connections : std::size_t{1024},
                    connections_fitting_fd_limit(0, fd_reserve));
  }

  /// Closing shed connections takes a moment; accepting faster than they close could still
  /// run out of descriptors, so the accept loop waits while too many are on their way out.
  bool too_many_closing() {
    constexpr std::size_t kClosingSlack = 16;
    const std::size_t cap = connection_cap();
    std::lock_guard lock(sessions_mutex);
    return sessions.size() >= cap + kClosingSlack;
  }

  void unregister_session(std::uint64_t id) {
    std::lock_guard lock(sessions_mutex);
    const auto it = sessions.find(id);
    if (it == sessions.end()) return;
    if (it->second->shed_requested) --shedding;
    sessions.erase(it);
    if (sessions.empty()) sessions_drained.notify_all();
  }

  /// Starts a read deadline: on expiry the read in progress is cancelled (not the socket
  /// closed), so the connection can still answer 408.
  template <class Stream>
  static void arm(Stream& stream, const std::shared_ptr<SessionState>& state,
                  net::steady_timer& timer, std::chrono::milliseconds budget) {
    const auto generation = ++state->read_generation;
    state->timed_out = false;
    state->cancel_read = [&stream] { beast::get_lowest_layer(stream).cancel(); };
    timer.expires_after(budget);
    timer.async_wait([state, generation](error_code ec) {
      if (ec || state->read_generation != generation || !state->cancel_read) return;
      state->timed_out = true;
      state->cancel_read();
    });
  }

  /// Ends the read deadline; returns whether it had expired.
  static bool disarm(const std::shared_ptr<SessionState>& state, net::steady_timer& timer) {
    ++state->read_generation;
    state->cancel_read = nullptr;
    timer.cancel();
    return state->timed_out;
  }

  template <class Stream, class Message>
  net::awaitable<bool> write(Stream& stream, Message& message) {
    beast::get_lowest_layer(stream).expires_after(options.write_timeout);
    auto [ec, n] = co_await http::async_write(stream, message, kUseTuple);
    beast::get_lowest_layer(stream).expires_never();
    co_return !ec;
  }

  template <class Stream>
  net::awaitable<bool> write_response(Stream& stream, Response response, unsigned version,
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
    co_return co_await write(stream, res);
  }

  template <class Stream>
  net::awaitable<bool> write_error(Stream& stream, int status, std::string_view code,
                                   std::string_view message) {
    co_return co_await write_response(stream, error_response(status, code, message), 11, false);
  }

  /// Runs `handler`; resumes when some thread has called respond() or when the handler
  /// deadline (handler_timeout, checked by sweep_overdue) has passed.
  net::awaitable<Response> handle(const Handler& handler, Request request,
                                  const net::any_io_executor& ex, SessionState& state) {
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

  /// The handler deadline of every connection, checked every sweep_interval() (a bug guard
  /// against handlers that never answer; one clock read per request instead of a timer).
  std::chrono::milliseconds sweep_interval() const {
    return std::clamp(options.handler_timeout / 4, std::chrono::milliseconds(10),
                      std::chrono::milliseconds(1000));
  }

  void sweep_overdue() {
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    std::lock_guard lock(sessions_mutex);
    for (const auto& [id, state] : sessions) {
      const auto deadline = state->answer_deadline.load();
      if (deadline == 0 || deadline > now) continue;
      net::post(state->executor, [state, timeout = options.handler_timeout] {
        if (state->pending && state->pending->answer(error_response(
                                  500, "internal_error", "the request was not answered in time"))) {
          spdlog::error("http: a handler did not answer within {} ms", timeout.count());
        }
      });
    }
  }

  net::awaitable<void> sweep_loop(std::shared_ptr<Impl> self) {
    while (!stopped) {
      sweep_timer.expires_after(sweep_interval());
      co_await sweep_timer.async_wait(kUseTuple);
      if (!stopped) sweep_overdue();
    }
    (void)self;
  }

  enum class Ending { kQuiet, kGraceful, kLinger };

  /// A refused token leaves a trace an operator can act on (who, what), at most once a second;
  /// never the token, nor the query (it may carry one).
  template <class Stream>
  void log_unauthorized(Stream& stream, const Request& request) {
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

  /// One connection's requests, in order. Each request: wait for its first byte (the
  /// connection is idle until then, so the cap may close it), read the header, then decide
  /// framing, route and token from the header alone: a refused request never has its body
  /// buffered or gets `100 Continue` (SPEC §8).
  template <class Stream>
  net::awaitable<Ending> serve(Stream& stream, const std::shared_ptr<SessionState>& state,
                               std::chrono::steady_clock::time_point connected) {
    auto ex = co_await net::this_coro::executor;
    net::steady_timer deadline(ex);
    beast::flat_buffer buffer;
    for (bool first = true;; first = false) {
      if (stopped || state->shed) co_return Ending::kGraceful;
      // The first request's header deadline runs from connect (TLS handshake included).
      auto header_budget = options.header_timeout;
      if (buffer.size() == 0) {
        arm(stream, state, deadline, first ? options.header_timeout : options.idle_timeout);
        auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), kUseTuple);
        const bool timed_out = disarm(state, deadline);
        if (ec) {
          if (!first || state->shed) co_return Ending::kQuiet;
          co_return co_await read_failed(stream, ec, timed_out, "header");
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

      arm(stream, state, deadline, header_budget);
      auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kUseTuple);
      bool timed_out = disarm(state, deadline);
      if (ec) co_return co_await read_failed(stream, ec, timed_out, "header");

      auto& req = parser.get();
      std::optional<std::string> transfer_encoding;
      for (const auto& field : req) {
        if (field.name() != http::field::transfer_encoding) continue;
        if (transfer_encoding) transfer_encoding->append(", ");
        transfer_encoding = transfer_encoding.value_or("").append(field.value());
      }
      if (const auto framing = transfer_encoding_error(transfer_encoding)) {
        spdlog::debug("http: refused framing: {}", *framing);
        co_await write_error(stream, 400, "bad_request", *framing);
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
        if (!co_await write_response(stream, std::move(*decision.refusal), version, again)) {
          co_return Ending::kQuiet;
        }
        if (!again) co_return body_pending ? Ending::kLinger : Ending::kGraceful;
        continue;
      }

      if (!parser.is_done()) {
        if (beast::iequals(req[http::field::expect], "100-continue")) {
          http::response<http::empty_body> cont{http::status::continue_, version};
          if (!co_await write(stream, cont)) co_return Ending::kQuiet;
        }
        auto budget = options.body_timeout_max;
        if (const auto length = parser.content_length()) {
          const auto rate = std::max<std::size_t>(1, options.body_min_rate);
          budget = std::min(
              budget, options.body_timeout + std::chrono::milliseconds(*length * 1000 / rate));
        }
        arm(stream, state, deadline, budget);
        std::tie(ec, n) = co_await http::async_read(stream, buffer, parser, kUseTuple);
        timed_out = disarm(state, deadline);
        if (ec) co_return co_await read_failed(stream, ec, timed_out, "body");
      }

      const bool keep_alive = parser.get().keep_alive();
      request.body = std::move(parser.get().body());

      Response response = co_await handle(*decision.handler, std::move(request), ex, *state);
      const bool again = keep_alive && !stopped && !state->shed;
      if (!co_await write_response(stream, std::move(response), version, again)) {
        co_return Ending::kQuiet;
      }
      if (!again) co_return Ending::kGraceful;
    }
  }

  /// Answers what can still be answered after a failed read and says how to close.
  template <class Stream>
  net::awaitable<Ending> read_failed(Stream& stream, error_code ec, bool timed_out,
                                     const char* phase) {
    if (timed_out) {
      spdlog::debug("http: {} read timed out", phase);
      co_await write_error(stream, 408, "request_timeout",
                           std::string("the request ") + phase + " was not received in time");
      co_return Ending::kQuiet;
    }
    if (ec == http::error::body_limit) {
      const auto config = context.config ? context.config() : nullptr;
      const auto limit = config ? config->server.max_body_bytes : kDefaultBodyLimit;
      co_await write_error(stream, 413, "payload_too_large",
                           "the body is larger than " + std::to_string(limit) + " bytes");
      co_return Ending::kLinger;
    }
    if (ec == http::error::header_limit) {
      co_await write_error(
          stream, 431, "headers_too_large",
          "the request header is larger than " + std::to_string(options.header_limit) + " bytes");
      co_return Ending::kLinger;
    }
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec.category() != http::make_error_code(http::error::bad_method).category()) {
      // The client went away (or stop() cancelled the read): nothing to answer.
      co_return Ending::kQuiet;
    }
    spdlog::debug("http: malformed request: {}", ec.message());
    co_await write_error(stream, 400, "bad_request", "malformed HTTP request: " + ec.message());
    co_return Ending::kLinger;
  }

  /// Closing after an error answer while the client may still be sending: stop sending, read
  /// and discard for a moment, so the client reads the answer instead of a reset.
  net::awaitable<void> linger(beast::tcp_stream& stream,
                              const std::shared_ptr<SessionState>& state) {
    error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    net::steady_timer deadline(stream.get_executor());
    arm(stream, state, deadline, kLingerTime);
    std::array<char, 16384> scratch{};
    std::size_t total = 0;
    while (total < kMaxLingerBytes) {
      auto [ec, n] = co_await stream.async_read_some(net::buffer(scratch), kUseTuple);
      if (ec) break;
      total += n;
    }
    disarm(state, deadline);
    co_return;
  }

  net::awaitable<void> run_session(std::shared_ptr<Impl> self, tcp::socket socket,
                                   std::shared_ptr<SessionState> state, std::uint64_t id) {
    const auto connected = std::chrono::steady_clock::now();
    struct Unregister {
      Impl* impl;
      std::shared_ptr<SessionState> state;
      std::uint64_t id;
      ~Unregister() {
        state->cancel_read = nullptr;
        impl->unregister_session(id);
      }
    } unregister{this, state, id};
    (void)self;

    // Declared after each stream, so destroyed before it: stop() must never reach a dead one.
    struct ClearCancel {
      SessionState& state;
      ~ClearCancel() { state.cancel_read = nullptr; }
    };
    if (tls) {
      TlsStream stream(beast::tcp_stream(std::move(socket)), *tls);
      ClearCancel clear{*state};
      beast::get_lowest_layer(stream).expires_after(options.header_timeout);
      // A handshaking connection is idle too: the cap may close it.
      state->cancel_read = [&stream] { beast::get_lowest_layer(stream).cancel(); };
      auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, kUseTuple);
      state->cancel_read = nullptr;
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

  net::awaitable<void> accept_loop(std::shared_ptr<Impl> self) {
    net::steady_timer backoff(acceptor_strand);
    for (;;) {
      while (too_many_closing() && !stopped) {
        backoff.expires_after(std::chrono::milliseconds(5));
        co_await backoff.async_wait(kUseTuple);
      }
      tcp::socket socket(net::make_strand(io));
      auto [ec] = co_await acceptor->async_accept(socket, kUseTuple);
      if (stopped || !acceptor->is_open()) co_return;
      if (ec) {
        if (ec == net::error::operation_aborted) co_return;
        // E.g. out of file descriptors: keep serving the open connections, retry shortly.
        spdlog::warn("http: accept failed: {}", ec.message());
        backoff.expires_after(std::chrono::milliseconds(100));
        co_await backoff.async_wait(kUseTuple);
        continue;
      }
      error_code ignored;
      const auto ex = socket.get_executor();
      std::uint64_t id = 0;
      auto state = admit(ex, id);
      if (!state) {
        // Every connection is busy: refusing this one keeps the descriptors for them.
        socket.close(ignored);
        continue;
      }
      socket.set_option(tcp::no_delay(true), ignored);
      net::co_spawn(ex, run_session(self, std::move(socket), std::move(state), id),
                    [](std::exception_ptr e) {
                      if (!e) return;
                      try {
                        std::rethrow_exception(e);
                      } catch (const std::exception& ex) {
                        spdlog::error("http: connection failed: {}", ex.what());
                      } catch (...) {
                        spdlog::error("http: connection failed");
                      }
                    });
    }
  }

  void load_tls(const config::ServerConfig& server) {
    if (!server.tls_cert && !server.tls_key) return;
    if (!server.tls_cert || !server.tls_key) {
      throw std::runtime_error("server.tls_cert and server.tls_key must be set together");
    }
    auto context_tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    context_tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                             ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                             ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    SSL_CTX_set_min_proto_version(context_tls->native_handle(), TLS1_2_VERSION);
    error_code ec;
    context_tls->use_certificate_chain_file(*server.tls_cert, ec);
    if (ec) {
      throw std::runtime_error("cannot load server.tls_cert " + *server.tls_cert + ": " +
                               ec.message());
    }
    context_tls->use_private_key_file(*server.tls_key, ssl::context::pem, ec);
    if (ec) {
      throw std::runtime_error("cannot load server.tls_key " + *server.tls_key + ": " +
                               ec.message());
    }
    tls = std::move(context_tls);
  }

  void start() {
    if (started) throw std::logic_error("HttpServer::start called twice");
    const auto config = context.config ? context.config() : nullptr;
    if (!config) throw std::runtime_error("HttpServer: no configuration");
    const auto& server = config->server;
    load_tls(server);
    // Descriptors kept for everything but clients: SQLite (database, WAL, shared memory, per
    // reader), outbound deliveries, logs, the event loop.
    fd_reserve = 64 + config->delivery.concurrency;
    const auto fd_cap = connections_fitting_fd_limit(server.max_connections, fd_reserve);
    if (fd_cap < server.max_connections) {
      spdlog::warn(
          "http: the open-file limit leaves room for {} connections, not server.max_connections "
          "{}; raise LimitNOFILE to allow more",
          fd_cap, server.max_connections);
    }

    const std::string where = server.listen_host + ":" + std::to_string(server.listen_port);
    error_code ec;
    tcp::endpoint endpoint;
    const auto address = net::ip::make_address(server.listen_host, ec);
    if (!ec) {
      endpoint = tcp::endpoint(address, server.listen_port);
    } else {
      tcp::resolver resolver(io);
      const auto results =
          resolver.resolve(server.listen_host, std::to_string(server.listen_port), ec);
      if (ec || results.empty()) {
        throw std::runtime_error("cannot listen on " + where + ": cannot resolve " +
                                 server.listen_host + (ec ? ": " + ec.message() : ""));
      }
      endpoint = results.begin()->endpoint();
    }
    tcp::acceptor bound(acceptor_strand);
    bound.open(endpoint.protocol(), ec);
    if (!ec) bound.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) bound.bind(endpoint, ec);
    if (!ec) bound.listen(net::socket_base::max_listen_connections, ec);
    if (ec == net::error::address_in_use) {
      throw std::runtime_error("cannot listen on " + where +
                               ": address in use (another process listens there)");
    }
    if (ec) throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
    bound_port = bound.local_endpoint().port();
    acceptor.emplace(std::move(bound));
    started = true;
    net::co_spawn(acceptor_strand, accept_loop(shared_from_this()), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("http: the accept loop ended: {}", ex.what());
      } catch (...) {
        spdlog::error("http: the accept loop ended");
      }
    });
    net::co_spawn(acceptor_strand, sweep_loop(shared_from_this()), net::detached);
    spdlog::info("http: listening on {}:{}{}", server.listen_host, bound_port.load(),
                 tls ? " (TLS)" : "");
  }

  void stop() {
    stopped = true;
    net::post(acceptor_strand, [self = shared_from_this()] {
      if (self->acceptor && self->acceptor->is_open()) {
        error_code ignored;
        self->acceptor->close(ignored);
      }
      self->sweep_timer.cancel();
    });
    std::vector<std::shared_ptr<SessionState>> snapshot;
    {
      std::lock_guard lock(sessions_mutex);
      for (const auto& [id, state] : sessions) snapshot.push_back(state);
    }
    for (auto& state : snapshot) {
      net::post(state->executor, [state] {
        if (state->cancel_read) state->cancel_read();
      });
    }
  }
};

HttpServer::HttpServer(boost::asio::io_context& io, ServerContext context)
    : HttpServer(io, std::move(context), ServerOptions{}) {}

HttpServer::HttpServer(boost::asio::io_context& io, ServerContext context, ServerOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(context), options)) {
  impl_->add_builtin_routes();
}

HttpServer::~HttpServer() {
  stop();
  impl_->blocking.join();
}

void HttpServer::add_route(std::string method, std::string path_prefix, Handler handler) {
  if (impl_->started) throw std::logic_error("HttpServer::add_route after start");
  impl_->router.add(std::move(method), std::move(path_prefix), std::move(handler));
}

ConnectionStats HttpServer::connection_stats() const {
  ConnectionStats stats;
  stats.limit = impl_->connection_cap();
  {
    std::lock_guard lock(impl_->sessions_mutex);
    stats.open = impl_->sessions.size();
  }
  stats.shed = impl_->shed_total.load();
  stats.refused = impl_->refused_total.load();
  return stats;
}

void HttpServer::start() {
  impl_->start();
}

std::uint16_t HttpServer::port() const {
  return impl_->bound_port.load();
}

void HttpServer::begin_shutdown() {
  impl_->shutting_down->store(true);
}

bool HttpServer::shutting_down() const {
  return impl_->shutting_down->load();
}

void HttpServer::stop() {
  impl_->stop();
}

bool HttpServer::wait_drained(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->sessions_mutex);
  return impl_->sessions_drained.wait_for(lock, timeout,
                                          [this] { return impl_->sessions.empty(); });
}

}  // namespace relay::server
