#include "relay/daemon/Daemon.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "relay/common/Version.hpp"
#include "relay/config/ConfigLoader.hpp"
#include "relay/config/FileModes.hpp"
#include "relay/daemon/AdminApi.hpp"
#include "relay/daemon/Logging.hpp"
#include "relay/daemon/Metrics.hpp"
#include "relay/daemon/Reload.hpp"
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

// Brings the stored deliveries in line with the webhooks of `cfg`: removed webhooks'
// unfinished deliveries are cancelled, disabled ones' pending deliveries paused, enabled
// ones' paused deliveries resumed. Idempotent, so it runs at every start and reload.
// `due` runs whenever a chunk of resumed deliveries is committed (a large backlog is resumed in
// chunks: delivery starts on the first instead of after the last), `then` once at the end.
void reconcile(store::Store& store, const config::Config& cfg, const std::function<void()>& due,
               std::function<void()> then) {
  std::vector<std::string> ids;
  ids.reserve(cfg.webhooks.size());
  for (const auto& wh : cfg.webhooks) ids.push_back(wh.id);
  auto remaining = std::make_shared<std::atomic<std::size_t>>(cfg.webhooks.size() + 1);
  auto step = [remaining, then = std::move(then)] {
    if (--*remaining == 0 && then) then();
  };
  store.cancel_webhooks_except(ids, [step](store::WriteStatus st, std::size_t cancelled) {
    if (st != store::WriteStatus::kOk) {
      spdlog::error("reconcile: cannot cancel deliveries of removed webhooks: storage unavailable");
    } else if (cancelled > 0) {
      spdlog::warn("cancelled {} unfinished deliveries of webhooks removed from the config",
                   cancelled);
    }
    step();
  });
  for (const auto& wh : cfg.webhooks) {
    store.set_webhook_paused(
        wh.id, !wh.enabled, wh.max_queued,
        [step, id = wh.id](store::WriteStatus st) {
          if (st != store::WriteStatus::kOk) {
            spdlog::error(
                "reconcile: cannot update webhook={}: storage "
                "unavailable",
                id);
          }
          step();
        },
        due);
  }
}

// Prunes in small batches, one write request at a time, so delivery and intake requests
// interleave with it in the writer queue instead of waiting behind one huge DELETE. Batches
// are paced: after each, the job waits kPruneRest times as long as the batch took, so it
// takes at most ~1/(1+kPruneRest) of the writer (the soak test saw back-to-back 2,000-row
// batches stall intake for a minute at 2,000 events/s). Running every minute keeps each run
// small; 1,000 rows in ~15 ms at a 25% duty cycle still prunes far faster than rows arrive.
constexpr std::size_t kPruneBatch = 1000;
constexpr std::chrono::minutes kPruneInterval{1};
constexpr int kPruneRest = 3;
constexpr std::chrono::milliseconds kPruneMinRest{10};

class RetentionJob {
 public:
  RetentionJob(net::io_context& io, store::Store& store,
               std::function<std::shared_ptr<const config::Config>()> config)
      : timer_(io), store_(store), config_(std::move(config)) {}

  void start() { run(); }
  void stop() {
    stopped_ = true;
    timer_.cancel();
  }

 private:
  void run() {
    if (stopped_) return;
    const auto cutoff = common::now_ms() - config_()->storage.retention;
    prune(cutoff, 0);
  }

  void prune(common::TimePoint cutoff, std::size_t total) {
    const auto started = std::chrono::steady_clock::now();
    store_.prune_before(
        cutoff, kPruneBatch,
        [this, cutoff, total, started](store::WriteStatus st, std::size_t removed) {
          if (stopped_) return;
          if (st == store::WriteStatus::kOk && removed == kPruneBatch) {
            const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - started);
            net::post(timer_.get_executor(), [this, cutoff, total, removed, took] {
              if (stopped_) return;
              timer_.expires_after(std::max(kPruneMinRest, took * kPruneRest));
              timer_.async_wait([this, cutoff, total, removed](boost::system::error_code ec) {
                if (!ec) prune(cutoff, total + removed);
              });
            });
            return;
          }
          if (st != store::WriteStatus::kOk) {
            spdlog::warn(
                "retention: pruning failed (storage unavailable); "
                "trying again later");
          } else if (total + removed > 0) {
            spdlog::info("retention: pruned {} rows older than {}", total + removed,
                         common::format_rfc3339_ms(cutoff));
          }
          net::post(timer_.get_executor(), [this] { schedule(); });
        });
  }

  void schedule() {
    if (stopped_) return;
    timer_.expires_after(kPruneInterval);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) run();
    });
  }

  net::steady_timer timer_;
  store::Store& store_;
  std::function<std::shared_ptr<const config::Config>()> config_;
  std::atomic<bool> stopped_{false};
};

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
  std::atomic<std::shared_ptr<const config::Config>> current{initial};
  auto config_source = [&current] { return current.load(); };

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
    store = store::open_sqlite_store(options);
    tighten_database_modes(options.path);
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

  const unsigned threads = std::max(2U, std::thread::hardware_concurrency());
  net::io_context io{static_cast<int>(threads)};
  auto work = net::make_work_guard(io);

  delivery::ClientOptions client_options;
  client_options.ca_file = initial->delivery.ca_file;
  // Every attempt a webhook may have in flight can go back to the pool: otherwise connections
  // beyond the idle cap are closed after each answer and re-opened (TCP + TLS) for the next.
  client_options.max_idle_per_origin =
      static_cast<std::size_t>(std::max(16, initial->delivery.per_webhook_concurrency));
  delivery::HttpClientPool client(io, client_options);
  dispatcher::Dispatcher dispatcher(io, *store, client, config_source);
  Metrics metrics;
  dispatcher.set_attempt_observer(
      [&metrics](const std::string& webhook_id, const char* outcome, std::int64_t ms) {
        metrics.attempt(webhook_id, outcome, ms);
      });
  AdminApi admin(*store, client, dispatcher, metrics, config_source);

  server::ServerContext context;
  context.config = config_source;
  context.store = store.get();
  context.on_new_deliveries = [&dispatcher] { dispatcher.notify(); };
  context.on_events_accepted = [&metrics](std::size_t n) { metrics.events_received(n); };
  server::HttpServer server(io, context);
  admin.register_routes(server);

  // SIGHUP and POST /v1/reload (`relayd reload`, the unit's ExecReload) share this; the mutex
  // keeps two reloads from interleaving.
  std::mutex reload_mutex;
  ReloadFunction reload = [&]() -> ReloadResult {
    std::lock_guard lock(reload_mutex);
    ReloadResult result;
    notify_systemd("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec()));
    try {
      auto next = config::load_config_file(config_path);
      const auto& old = *current.load();
      if (next->server.listen != old.server.listen || next->storage.path != old.storage.path ||
          next->server.tls_cert != old.server.tls_cert ||
          next->server.tls_key != old.server.tls_key ||
          next->delivery.ca_file != old.delivery.ca_file) {
        spdlog::warn(
            "reload: server.listen, TLS files, storage.path and delivery.ca_file "
            "take effect only after a restart");
      }
      configure_logging(next->logging);
      warn_about_secret_files(*next);
      current.store(next);
      reconcile(
          *store, *next, [&dispatcher] { dispatcher.notify(); },
          [&dispatcher] { dispatcher.notify(); });
      spdlog::info("reload: configuration applied ({} webhooks)", next->webhooks.size());
      result.applied = true;
      result.webhooks = next->webhooks.size();
    } catch (const config::ConfigError& e) {
      for (const auto& p : e.problems()) {
        spdlog::error("reload rejected: {}", p.to_string());
        result.problems.push_back(p.to_string());
      }
      spdlog::error("reload: the previous configuration stays in effect");
    }
    notify_systemd("READY=1");
    return result;
  };
  add_reload_route(server, reload);
  try {
    server.start();
  } catch (const std::exception& e) {
    spdlog::critical("cannot listen on {}: {}", initial->server.listen, e.what());
    store->close();
    return 1;
  }

  std::promise<void> stopped;
  std::atomic<bool> stopping{false};
  net::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
  net::steady_timer watchdog(io);

  std::function<void()> wait_signal;
  wait_signal = [&] {
    signals.async_wait([&](boost::system::error_code ec, int signo) {
      if (ec) return;
      if (signo == SIGHUP) {
        reload();
        wait_signal();
        return;
      }
      if (stopping.exchange(true)) return;
      spdlog::info("received {}, shutting down (grace {} ms)",
                   signo == SIGTERM ? "SIGTERM" : "SIGINT", current.load()->shutdown_grace.count());
      notify_systemd("STOPPING=1");
      server.begin_shutdown();
      watchdog.cancel();
      dispatcher.shutdown(current.load()->shutdown_grace, [&](std::size_t unfinished) {
        if (unfinished > 0) {
          spdlog::warn(
              "{} attempts did not finish within the grace period; they stay queued "
              "and are retried after the next start",
              unfinished);
        }
        stopped.set_value();
      });
    });
  };
  wait_signal();

  std::uint64_t watchdog_usec = 0;
  std::function<void()> ping;
  if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0) {
    ping = [&] {
      notify_systemd("WATCHDOG=1");
      watchdog.expires_after(std::chrono::microseconds(watchdog_usec / 2));
      watchdog.async_wait([&](boost::system::error_code ec) {
        if (!ec) ping();
      });
    };
    ping();
  }

  // Before start() a notify is a no-op; start() looks at everything due.
  reconcile(
      *store, *initial, [&dispatcher] { dispatcher.notify(); },
      [&dispatcher] { dispatcher.start(); });
  RetentionJob retention(io, *store, config_source);
  retention.start();

  std::vector<std::thread> pool;
  for (unsigned i = 0; i < threads; ++i) {
    pool.emplace_back([&io] {
      // Named so that `top -H` and profilers tell the I/O threads from the store's writer.
      pthread_setname_np(pthread_self(), "relayd-io");
      io.run();
    });
  }

  notify_systemd("READY=1\nSTATUS=relayd " + std::string(kVersion) + " listening on " +
                 initial->server.listen);
  spdlog::info("relayd {} ready: listening on {}:{}, database {}, {} webhooks", kVersion,
               initial->server.listen_host, server.port(), initial->storage.path,
               initial->webhooks.size());

  stopped.get_future().wait();
  retention.stop();
  server.stop();
  admin.stop();
  client.close_idle();
  // Flushes writes still queued (attempt records, intake) before the threads go.
  store->close();
  signals.cancel();
  work.reset();
  io.stop();
  for (auto& t : pool) t.join();
  spdlog::info("relayd stopped");
  return 0;
}

}  // namespace relay::daemon
