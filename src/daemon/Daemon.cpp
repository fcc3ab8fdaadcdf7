#include "relay/daemon/Daemon.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "Reconcile.hpp"
#include "RetentionJob.hpp"
#include "relay/common/Redaction.hpp"
#include "relay/common/Version.hpp"
#include "relay/config/ConfigLoader.hpp"
#include "relay/config/FileModes.hpp"
#include "relay/daemon/AdminApi.hpp"
#include "relay/daemon/ConfigReloader.hpp"
#include "relay/daemon/HealthApi.hpp"
#include "relay/daemon/Logging.hpp"
#include "relay/daemon/Metrics.hpp"
#include "relay/daemon/Reload.hpp"
#include "relay/daemon/WebhookApi.hpp"
#include "relay/delivery/HttpClient.hpp"
#include "relay/dispatcher/Dispatcher.hpp"
#include "relay/server/HttpServer.hpp"
#include "relay/store/Store.hpp"

namespace relay::daemon {

namespace net = boost::asio;

namespace {

void notify_systemd(const std::string& state) {
  // A no-op outside systemd (no NOTIFY_SOCKET).
  sd_notify(0, state.c_str());
}

std::uint64_t monotonic_usec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000U +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000U;
}

// After the store has closed, how long the io threads may take to run out of work.
constexpr std::chrono::seconds kExitWait{2};

void print_config_problems(const config::ConfigError& e) {
  for (const auto& p : e.problems()) std::cerr << p.to_string() << '\n';
}

void warn_about_secret_files(const config::Config& cfg) {
  for (const auto& w : config::secret_file_warnings(cfg)) spdlog::warn("{}", w);
}

// The umask covers files relayd creates; a database created by an older version (or copied in)
// may still be group/world-readable, and it holds every payload.
void tighten_database_modes(const std::string& db_path) {
  for (const auto& path : {db_path, db_path + "-wal", db_path + "-shm"}) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || (st.st_mode & 077) == 0) continue;
    if (::chmod(path.c_str(), 0600) != 0) {
      spdlog::warn("cannot make {} private (mode 0600): {}", path, std::strerror(errno));
    }
  }
}

// The name this node's leases carry: storage.postgres.node_id, else the host name. Nodes on
// one host need distinct node_ids (a restarting node releases its own name's leases).
std::string node_id(const config::PostgresConfig& pg) {
  if (!pg.node_id.empty()) return pg.node_id;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "relayd";
  return host;
}

}  // namespace

int run_serve(const std::string& config_path) {
  // The database, its WAL and anything else relayd creates hold payloads: 0600 whatever the
  // umask relayd was started with (SPEC §13).
  ::umask(0077);
  std::shared_ptr<const config::Config> initial;
  try {
    initial = config::load_config_file(config_path);
  } catch (const config::ConfigError& e) {
    print_config_problems(e);
    return 1;
  }
  configure_logging(initial->logging);
  warn_about_secret_files(*initial);

  std::unique_ptr<store::Store> store;
  try {
    store::StoreOptions options;
    options.path = initial->storage.path;
    // Tuning knob, not a config key: how many intake requests may wait for the writer before
    // intake answers 503 overloaded (default 65,536). Documented in docs/operations.md.
    if (const char* v = std::getenv("RELAYD_MAX_QUEUED_WRITES")) {
      try {
        options.max_queued_writes = std::max<std::size_t>(1, std::stoul(v));
      } catch (const std::exception&) {
        spdlog::critical("RELAYD_MAX_QUEUED_WRITES must be a positive integer");
        return 1;
      }
    }
    if (initial->storage.backend == config::StorageConfig::Backend::kPostgres) {
      const auto& pg = initial->storage.postgres;
      store::PostgresStoreOptions po;
      po.dsn = pg.dsn;
      po.pool_size = pg.pool_size;
      po.lease = std::chrono::duration_cast<std::chrono::milliseconds>(pg.lease);
      po.node_id = node_id(pg);
      po.max_queued_writes = options.max_queued_writes;
      store = store::open_postgres_store(po);
      spdlog::info("database {}: this node claims deliveries as '{}'", common::redact_dsn(pg.dsn),
                   po.node_id);
    } else {
      store = store::open_sqlite_store(options);
      tighten_database_modes(options.path);
    }
  } catch (const std::exception& e) {
    spdlog::critical("cannot open the database: {}", e.what());
    return 1;
  }
  try {
    if (const auto n = store->recover_interrupted(common::now_ms()); n > 0) {
      spdlog::warn("{} deliveries were interrupted by a crash or kill; they are due again now", n);
    }
  } catch (const std::exception& e) {
    spdlog::critical("cannot recover interrupted deliveries: {}", e.what());
    store->close();
    return 1;
  }

  // The dispatcher reads the configuration through the reloader, and a reload that resumes
  // deliveries wakes the dispatcher: `wake` ties that knot (set before anything can reload).
  std::function<void()> wake;
  ConfigReloader reloader(config_path, initial, *store, [&wake] { wake(); });
  const auto config_source = reloader.source();
  // API-managed webhooks join the configuration before anything reads it.
  WebhookApi webhook_api(*store, reloader);
  try {
    webhook_api.load();
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    store->close();
    return 1;
  }

  const unsigned threads = std::max(2U, std::thread::hardware_concurrency());
  net::io_context io{static_cast<int>(threads)};
  auto work = net::make_work_guard(io);

  delivery::ClientOptions client_options;
  client_options.ca_file = initial->delivery.ca_file;
  // Every attempt that may be in flight to one origin can go back to the pool: otherwise
  // connections beyond the idle cap are closed after each answer and re-opened (TCP + TLS) for
  // the next. Several webhooks can share an origin (a fan-out to one receiver), so the cap is
  // the global limit, not the per-webhook one.
  client_options.max_idle_per_origin = static_cast<std::size_t>(
      std::max({16, initial->delivery.concurrency, initial->delivery.per_webhook_concurrency}));
  delivery::HttpClientPool client(io, client_options);
  dispatcher::Dispatcher dispatcher(io, *store, client, config_source);
  wake = [&dispatcher] { dispatcher.notify(); };
  // Other nodes on the same database (PostgreSQL) made work due: claim.
  store->set_wake_handler([&dispatcher] { dispatcher.notify(); });
  Metrics metrics;
  dispatcher.set_attempt_observer(
      [&metrics](const std::string& webhook_id, const char* outcome, std::int64_t ms) {
        metrics.attempt(webhook_id, outcome, ms);
      });
  AdminApi admin(*store, client, dispatcher, metrics, config_source);
  // Endpoint health: stored disables apply before intake or the dispatcher read the config.
  HealthApi health(*store, dispatcher, reloader);
  try {
    health.restore();
  } catch (const std::exception& e) {
    spdlog::critical("cannot read the webhooks' stored state: {}", e.what());
    store->close();
    return 1;
  }
  dispatcher.set_webhook_handlers(
      [&health](const std::string& webhook_id, std::string reason) {
        health.disable(webhook_id, std::move(reason), nullptr);
      },
      [&store, &reloader, &wake](const std::string& webhook_id) {
        reconcile_webhook(*store, *reloader.current(), webhook_id, [&wake] { wake(); });
      });
  admin.set_health_api(health);

  server::ServerContext context;
  context.config = config_source;
  context.store = store.get();
  context.on_new_deliveries = [&dispatcher] { dispatcher.notify(); };
  context.on_events_accepted = [&metrics](std::size_t n) { metrics.events_received(n); };
  context.on_intake_answer = [&metrics](int status) { metrics.intake_answer(status); };
  server::HttpServer server(io, context);
  admin.register_routes(server);
  webhook_api.register_routes(server, admin);
  // GET /v1/webhooks/{id} is the API's view (both sources) with the health state merged in.
  // last_failure_at as GET /v1/webhooks has it (the metrics), so that the console's webhook
  // page can ask for its one webhook (whose deliveries alone are counted) instead of the list.
  webhook_api.set_state_source([&health, &metrics](const std::string& id) {
    const auto activity = metrics.webhook_activity();
    const auto it = activity.find(id);
    return health.state_json(id, it != activity.end() ? it->second.last_failure_at : std::nullopt);
  });

  // SIGHUP and POST /v1/reload (`relayd reload`, the unit's ExecReload) share this (the
  // reloader serializes reloads); systemd hears RELOADING=1 / READY=1 around each.
  ReloadFunction reload = [&reloader]() -> ReloadOutcome {
    notify_systemd("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec()));
    auto outcome = reloader.reload();
    notify_systemd("READY=1");
    return outcome;
  };
  // Dry runs read the file and count deliveries: on their own thread, joined before the store
  // closes.
  net::thread_pool previews{1};
  add_reload_route(server, reload,
                   make_reload_preview(reloader, *store, [&previews](std::function<void()> job) {
                     net::post(previews, std::move(job));
                   }));
  try {
    server.start();
  } catch (const std::exception& e) {
    // The message names the address already ("cannot listen on X: why").
    spdlog::critical("{}", e.what());
    store->close();
    return 1;
  }

  // The daemon's own timers and signals live on one strand: they are armed, cancelled and
  // re-armed only there (a timer object is not thread-safe).
  auto timers = net::make_strand(io);
  net::signal_set signals(timers, SIGTERM, SIGINT, SIGHUP);
  net::steady_timer watchdog(timers);
  RetentionJob retention(timers, *store, config_source);
  std::promise<void> stop_requested;
  bool stopping = false;  // on the strand

  std::function<void()> wait_signal;
  wait_signal = [&] {
    signals.async_wait([&](boost::system::error_code ec, int signo) {
      if (ec) return;
      if (signo == SIGHUP) {
        (void)reload();
        wait_signal();
        return;
      }
      if (std::exchange(stopping, true)) return;
      spdlog::info("received {}, shutting down (grace {} ms)",
                   signo == SIGTERM ? "SIGTERM" : "SIGINT",
                   reloader.current()->shutdown_grace.count());
      notify_systemd("STOPPING=1");
      // From now on intake answers 503 shutting_down; run_serve does the rest in order.
      server.begin_shutdown();
      watchdog.cancel();
      retention.stop();
      stop_requested.set_value();
    });
  };
  wait_signal();

  std::uint64_t watchdog_usec = 0;
  std::function<void()> ping;
  if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0) {
    ping = [&] {
      if (stopping) return;
      notify_systemd("WATCHDOG=1");
      watchdog.expires_after(std::chrono::microseconds(watchdog_usec / 2));
      watchdog.async_wait([&](boost::system::error_code ec) {
        if (!ec) ping();
      });
    };
    net::post(timers, ping);
  }

  // Before start() a notify is a no-op; start() looks at everything due.
  reconcile(
      *store, *reloader.current(), [&dispatcher] { dispatcher.notify(); },
      [&dispatcher] { dispatcher.start(); });
  retention.start();

  std::mutex exit_mutex;
  std::condition_variable exit_cv;
  unsigned running_threads = threads;
  std::vector<std::thread> pool;
  for (unsigned i = 0; i < threads; ++i) {
    pool.emplace_back([&] {
      // Named so that `top -H` and profilers tell the I/O threads from the store's writer.
      pthread_setname_np(pthread_self(), "relayd-io");
      io.run();
      std::lock_guard lock(exit_mutex);
      if (--running_threads == 0) exit_cv.notify_all();
    });
  }

  notify_systemd("READY=1\nSTATUS=relayd " + std::string(kVersion) + " listening on " +
                 initial->server.listen);
  spdlog::info("relayd {} ready: listening on {}:{}, database {}, {} webhooks", kVersion,
               initial->server.listen_host, server.port(),
               initial->storage.backend == config::StorageConfig::Backend::kPostgres
                   ? common::redact_dsn(initial->storage.postgres.dsn)
                   : initial->storage.path,
               initial->webhooks.size());

  stop_requested.get_future().wait();
  // Shutdown, in order. Nothing stops the io_context while work is owed: a 202 for a
  // committed event must reach its client, or a client without an `id` sends it again.
  const auto grace = reloader.current()->shutdown_grace;
  // 1. Stop accepting; every connection answers the request it is serving (intake waits for
  //    its commit, which the store still makes), then closes.
  server.stop();
  if (!server.wait_drained(grace)) {
    spdlog::warn("connections still open after the grace period; they are cut off");
  }
  // 2. The dispatcher: attempts in flight finish (within the grace) and are recorded.
  std::promise<std::size_t> dispatcher_stopped;
  dispatcher.shutdown(grace,
                      [&dispatcher_stopped](std::size_t n) { dispatcher_stopped.set_value(n); });
  if (const auto unfinished = dispatcher_stopped.get_future().get(); unfinished > 0) {
    spdlog::warn(
        "{} attempts did not finish within the grace period; they stay queued and are retried "
        "after the next start",
        unfinished);
  }
  admin.stop();
  webhook_api.stop();
  health.stop();
  previews.join();
  client.close_idle();
  // 3. The store: queued writes (attempt records) are committed before the writer stops; a
  //    callback that comes after this answers kShuttingDown at once.
  store->close();
  // 4. Nothing is left to wake up: the io threads return once the last handlers have run.
  net::post(timers, [&] {
    signals.cancel();
    watchdog.cancel();
  });
  work.reset();
  {
    std::unique_lock lock(exit_mutex);
    // Only attempts past the grace can still be running (each within its own timeout); they
    // are recovered at the next start, so they need not hold up the exit.
    if (!exit_cv.wait_for(lock, kExitWait, [&] { return running_threads == 0; })) {
      spdlog::warn("abandoning work still running {} ms after the store closed", kExitWait.count());
      io.stop();
    }
  }
  for (auto& t : pool) t.join();
  spdlog::info("relayd stopped");
  return 0;
}

}  // namespace relay::daemon
