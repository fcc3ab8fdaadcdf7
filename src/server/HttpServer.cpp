// The public HttpServer, its built-in routes and the deadline sweep (reads, writes, handlers);
// the rest of the server lives in HttpListener.cpp and HttpConnection.cpp (HttpServerImpl.hpp).
#include "relay/server/HttpServer.hpp"

#include <algorithm>
#include <exception>
#include <stdexcept>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "HttpServerImpl.hpp"
#include "IntakeHandler.hpp"
#include "relay/store/Store.hpp"

namespace relay::server {

void HttpServer::Impl::add_builtin_routes() {
  router.add("POST", "/v1/events", IntakeHandler(context, shutting_down, IntakeKind::kSingle));
  router.add("POST", "/v1/events/batch", IntakeHandler(context, shutting_down, IntakeKind::kBatch));
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
    net::post(blocking, [store = context.store, flag = shutting_down, respond = std::move(respond),
                         not_ready] {
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

std::chrono::milliseconds HttpServer::Impl::sweep_interval() const {
  const auto shortest =
      std::min({options.header_timeout, options.idle_timeout, options.body_timeout,
                options.write_timeout, options.handler_timeout});
  return std::clamp(shortest / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(250));
}

void HttpServer::Impl::sweep_overdue() {
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  std::lock_guard lock(sessions_mutex);
  for (const auto& [id, state] : sessions) {
    if (const auto io = state->io_deadline.load(std::memory_order_relaxed); io != 0 && io <= now) {
      // On its strand, where the read or write may have ended (0) or a later one begun.
      net::post(state->executor, [state] {
        const auto due = state->io_deadline.load(std::memory_order_relaxed);
        if (due == 0 || due > std::chrono::steady_clock::now().time_since_epoch().count()) return;
        if (!state->cancel_io) return;
        state->timed_out = true;
        state->cancel_io();
      });
    }
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

net::awaitable<void> HttpServer::Impl::sweep_loop(std::shared_ptr<Impl> self) {
  // It outlives stop() while connections remain: their answers' write deadlines are here.
  for (;;) {
    sweep_timer.expires_after(sweep_interval());
    co_await sweep_timer.async_wait(kUseTuple);
    if (stopped) {
      std::lock_guard lock(sessions_mutex);
      if (sessions.empty()) break;
    }
    sweep_overdue();
  }
  (void)self;
}

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
