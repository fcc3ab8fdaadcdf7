#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "TestCerts.hpp"

namespace relay::test {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

/// One request as the receiver saw it.
struct RecordedRequest {
  std::string method;
  std::string target;
  HeaderList headers;                      // in arrival order, names as sent
  std::string body;                        // exact bytes
  std::uint64_t connection_id = 0;         // 1, 2, ... in accept order: same id = keep-alive reuse
  std::size_t sequence_on_connection = 0;  // 0 for the first request on its connection
  bool tls_session_reused = false;         // its TLS handshake resumed a session (server's view)
  std::chrono::steady_clock::time_point received_at{};

  /// Value of the first header called `name` (case-insensitive); "" when absent.
  [[nodiscard]] std::string header(std::string_view name) const;
  [[nodiscard]] bool has_header(std::string_view name) const;
};

/// How the receiver answers one request. The default is "200 OK" with body "ok".
struct Reply {
  int status = 200;
  HeaderList headers;  // Content-Length is added (except for endless_body); Date is not
  std::string body = "ok";
  std::chrono::milliseconds delay{0};          // wait this long after the request before answering
  std::vector<int> interim;                    // 1xx responses sent first, e.g. {100, 103}
  bool close_without_response = false;         // after `delay`, close the connection, send nothing
  bool close_after_interim = false;            // send `interim`, then close (a lone 1xx)
  bool close_after_response = false;           // add "Connection: close" and close after the answer
  bool http10 = false;                         // "HTTP/1.0" status line; connection closed after
  std::chrono::milliseconds drip_interval{0};  // > 0: send the response in pieces, pausing
  std::size_t drip_chunk = 1;                  //   this many bytes per piece
  std::size_t filler_body = 0;  // > 0: the body is this many 'x' bytes instead of `body`
  bool endless_body = false;    // chunked body of 'x' that never ends (until the client closes)

  static Reply with_status(int status, std::string body = "") {
    Reply r;
    r.status = status;
    r.body = std::move(body);
    return r;
  }
};

/// Decides the reply for a request that has no scripted reply. Runs on the receiver's thread.
using ReplyHandler = std::function<Reply(const RecordedRequest&)>;

struct ReceiverOptions {
  bool tls = true;
  CertAndKey certificate;                  // server certificate + key (PEM) when tls
  std::string bind_address = "127.0.0.1";  // port is always 0 (chosen by the kernel)
  std::size_t max_body = 8 * 1024 * 1024;
};

/// A real HTTP/1.1 (or HTTPS) server for tests: listens on `bind_address` with an ephemeral
/// port, runs its own io_context on its own thread, records every request and answers from a
/// script (push_reply, FIFO), else from the handler, else with 200 "ok". Connections are kept
/// alive unless a Reply says otherwise. All public methods are thread-safe. The constructor
/// throws on bind or certificate errors.
class TestReceiver {
 public:
  explicit TestReceiver(ReceiverOptions options);
  ~TestReceiver();
  TestReceiver(const TestReceiver&) = delete;
  TestReceiver& operator=(const TestReceiver&) = delete;

  [[nodiscard]] std::uint16_t port() const;
  /// "https://127.0.0.1:PORT/hook"; `host` replaces the bind address (e.g. "localhost").
  [[nodiscard]] std::string url(std::string_view path = "/hook", std::string_view host = "") const;

  void push_reply(Reply reply);  // answers the next unscripted request
  void set_handler(ReplyHandler handler);
  void set_default_reply(Reply reply);  // handler that always answers `reply`

  [[nodiscard]] std::vector<RecordedRequest> requests() const;
  [[nodiscard]] std::size_t request_count() const;
  /// Blocks until at least `n` requests were recorded or `timeout` passed; true when reached.
  bool wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const;
  void clear_requests();

  [[nodiscard]] std::size_t connections_accepted() const;
  [[nodiscard]] std::size_t open_connections() const;
  /// Closes every connection that is waiting for its next request (the server side of an
  /// idle keep-alive timeout); one still finishing a response is closed right after it.
  /// Returns once the idle ones are closed.
  void close_idle_connections();

  /// Stops listening and closes every connection; idempotent (also done by the destructor).
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace relay::test
