// Listening: the address, TLS setup, the accept loop and the connection cap (SPEC §8).
#include <algorithm>
#include <exception>
#include <stdexcept>

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>

#include "HttpServerImpl.hpp"

namespace relay::server {

std::shared_ptr<SessionState> HttpServer::Impl::admit(const net::any_io_executor& ex,
                                                      std::uint64_t& id) {
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
      if (!victim->busy.load() && !victim->writing && victim->cancel_io) victim->cancel_io();
    });
  }
  auto state = std::make_shared<SessionState>(ex);
  id = next_session_id++;
  sessions.emplace(id, state);
  return state;
}

std::size_t HttpServer::Impl::connection_cap() const {
  const auto config = context.config ? context.config() : nullptr;
  return std::min(config ? config->server.max_connections : std::size_t{1024},
                  connections_fitting_fd_limit(0, fd_reserve));
}

bool HttpServer::Impl::too_many_closing() {
  constexpr std::size_t kClosingSlack = 16;
  const std::size_t cap = connection_cap();
  std::lock_guard lock(sessions_mutex);
  return sessions.size() >= cap + kClosingSlack;
}

void HttpServer::Impl::unregister_session(std::uint64_t id) {
  std::lock_guard lock(sessions_mutex);
  const auto it = sessions.find(id);
  if (it == sessions.end()) return;
  if (it->second->shed_requested) --shedding;
  sessions.erase(it);
  if (sessions.empty()) sessions_drained.notify_all();
}

net::awaitable<void> HttpServer::Impl::accept_loop(std::shared_ptr<Impl> self) {
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

void HttpServer::Impl::load_tls(const config::ServerConfig& server) {
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
    throw std::runtime_error("cannot load server.tls_key " + *server.tls_key + ": " + ec.message());
  }
  tls = std::move(context_tls);
}

void HttpServer::Impl::start() {
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

void HttpServer::Impl::stop() {
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
      if (state->cancel_io && !state->writing) state->cancel_io();
    });
  }
}

}  // namespace relay::server
