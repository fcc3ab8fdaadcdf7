#pragma once

// The HTTP server's state and the declarations its three files share (private to
// src/server; only those files include it):
//   HttpServer.cpp      the public class, the built-in routes, the deadline sweep
//   HttpListener.cpp    listening, TLS setup, the accept loop and the connection cap
//   HttpConnection.cpp  one connection's requests: reads, deadlines, handlers, answers

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include "RateLimitedLog.hpp"
#include "Router.hpp"
#include "relay/server/HttpServer.hpp"

namespace relay::server {

namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

// Boost 1.81 with BOOST_ASIO_NO_DEPRECATED: as_tuple lives in net::, the net::experimental alias
// is compiled out.
inline constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);

/// A request waiting for its handler's answer (HttpConnection.cpp). The first of respond()
/// (any thread) and the handler deadline (the server's sweep) claims it and resumes the
/// request's coroutine with one post to its strand.
struct PendingAnswer {
  virtual ~PendingAnswer() = default;
  /// False when the answer was already given.
  virtual bool answer(Response response) = 0;
};

/// Per-connection state reachable from outside the connection's coroutine (read deadline
/// timer, stop(), the connection cap). Touched only on the connection's strand, except the
/// atomics and what sessions_mutex guards.
struct SessionState {
  explicit SessionState(net::any_io_executor ex) : executor(std::move(ex)) {}
  net::any_io_executor executor;
  std::function<void()> cancel_io;  // set while a read or write is in progress
  bool timed_out = false;
  bool writing = false;  // an answer is being written: stop() and the cap leave it to finish
  // When the read or write in progress is overdue (steady clock ticks, 0 = none; read by the
  // server's sweep, which cancels it). A timer per read and write cost more than the request.
  std::atomic<std::int64_t> io_deadline{0};
  bool shed = false;              // chosen by the cap: close instead of waiting for a request
  std::atomic<bool> busy{false};  // a request is in progress (first byte read → answer written)
  bool shed_requested = false;    // guarded by sessions_mutex
  // While a handler runs: its answer slot (strand only) and when it is overdue (steady clock
  // ticks, 0 = none; read by the server's sweep).
  std::shared_ptr<PendingAnswer> pending;
  std::atomic<std::int64_t> answer_deadline{0};
};

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

  // HttpServer.cpp
  void add_builtin_routes();

  /// The read, write and handler deadlines of every connection, checked every
  /// sweep_interval() (a quarter of the shortest timeout, at most 250 ms): one clock read per
  /// read or write instead of a timer.
  std::chrono::milliseconds sweep_interval() const;

  void sweep_overdue();

  net::awaitable<void> sweep_loop(std::shared_ptr<Impl> self);

  // HttpListener.cpp
  /// The connection cap (SPEC §8), called by the accept loop before a new connection is
  /// served: registers it when there is room or an idle connection can be closed for it
  /// (oldest first); nullptr when every connection is busy (the caller refuses it).
  std::shared_ptr<SessionState> admit(const net::any_io_executor& ex, std::uint64_t& id);

  /// server.max_connections, or fewer when the open-file limit (read each time: an operator
  /// may lower it with prlimit) leaves less room.
  std::size_t connection_cap() const;

  /// Closing shed connections takes a moment; accepting faster than they close could still
  /// run out of descriptors, so the accept loop waits while too many are on their way out.
  bool too_many_closing();

  void unregister_session(std::uint64_t id);

  net::awaitable<void> accept_loop(std::shared_ptr<Impl> self);

  void load_tls(const config::ServerConfig& server);

  void start();

  void stop();

  // HttpConnection.cpp
  enum class Ending { kQuiet, kGraceful, kLinger };

  net::awaitable<void> run_session(std::shared_ptr<Impl> self, tcp::socket socket,
                                   std::shared_ptr<SessionState> state, std::uint64_t id);

  /// One connection's requests, in order. Each request: wait for its first byte (the
  /// connection is idle until then, so the cap may close it), read the header, then decide
  /// framing, route and token from the header alone: a refused request never has its body
  /// buffered or gets `100 Continue` (SPEC §8).
  template <class Stream>
  net::awaitable<Ending> serve(Stream& stream, const std::shared_ptr<SessionState>& state,
                               std::chrono::steady_clock::time_point connected);

  /// Answers what can still be answered after a failed read and says how to close.
  template <class Stream>
  net::awaitable<Ending> read_failed(Stream& stream, SessionState& state, error_code ec,
                                     bool timed_out, const char* phase);

  /// Runs `handler`; resumes when some thread has called respond() or when the handler
  /// deadline (handler_timeout, checked by sweep_overdue) has passed.
  net::awaitable<Response> handle(const Handler& handler, Request request,
                                  const net::any_io_executor& ex, SessionState& state);

  /// Starts a read or write deadline: once the sweep finds it expired it cancels the operation
  /// in progress (not the socket), so after a read the connection can still answer 408.
  template <class Stream>
  static void arm(Stream& stream, SessionState& state, std::chrono::milliseconds budget);

  /// Ends the deadline; returns whether it had expired.
  static bool disarm(SessionState& state);

  template <class Stream, class Message>
  net::awaitable<bool> write(Stream& stream, SessionState& state, Message& message);

  template <class Stream>
  net::awaitable<bool> write_response(Stream& stream, SessionState& state, Response response,
                                      unsigned version, bool keep_alive);

  template <class Stream>
  net::awaitable<bool> write_error(Stream& stream, SessionState& state, int status,
                                   std::string_view code, std::string_view message);

  /// A refused token leaves a trace an operator can act on (who, what), at most once a second;
  /// never the token, nor the query (it may carry one).
  template <class Stream>
  void log_unauthorized(Stream& stream, const Request& request);

  /// Closing after an error answer while the client may still be sending: stop sending, read
  /// and discard for a moment, so the client reads the answer instead of a reset.
  template <class Stream>
  net::awaitable<void> linger(Stream& stream, const std::shared_ptr<SessionState>& state);
};

}  // namespace relay::server
