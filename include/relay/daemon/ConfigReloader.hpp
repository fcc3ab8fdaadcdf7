#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "relay/config/Config.hpp"

namespace relay::store {
class MaintenanceStore;
}

namespace relay::daemon {

/// What a reload did. Rejected: the file has problems (each one line, `PATH:LINE:COL: …`) and
/// the previous configuration stays in effect.
struct ReloadOutcome {
  bool applied = false;
  std::vector<std::string> problems;
  /// Applied, but some changes wait for a restart (listen address, TLS files, database, CA).
  std::vector<std::string> warnings;
  std::size_t webhooks = 0;  // in the configuration now in effect
};

/// What a reload would do, without doing it (`relayd reload --dry-run`). `problems` non-empty:
/// the file would be rejected. Else `next` is the file's configuration and `current` the one in
/// effect, for the caller to compare.
struct ReloadPreview {
  std::vector<std::string> problems;
  std::vector<std::string> warnings;  // as a reload would log them (secret file modes)
  std::shared_ptr<const config::Config> current;
  std::shared_ptr<const config::Config> next;
};

/// Owns the configuration in effect and replaces it from the file: SIGHUP, and any other
/// trigger (an admin route, a command) call reload(). A new configuration is swapped in as a
/// whole (`shared_ptr<const Config>`), logging is reconfigured, and the stored deliveries are
/// reconciled with the new webhooks (store writes in the background; `on_due` runs when
/// deliveries became due, on the store's thread: it must only post).
/// Thread-safety: current() from any thread, lock-free; reload() from any thread but an I/O
/// thread (it reads the file), serialized. Never throws for a bad file (see ReloadOutcome).
class ConfigReloader {
 public:
  ConfigReloader(std::string path, std::shared_ptr<const config::Config> initial,
                 store::MaintenanceStore& store, std::function<void()> on_due);

  [[nodiscard]] std::shared_ptr<const config::Config> current() const { return current_.load(); }
  /// For components that take a config source.
  [[nodiscard]] std::function<std::shared_ptr<const config::Config>()> source() const {
    return [this] { return current(); };
  }

  /// Reads the file again and applies it, or rejects it; logs the outcome either way.
  ReloadOutcome reload();

  /// Reads the file like reload() but applies nothing and logs nothing. Any thread but an I/O
  /// thread.
  [[nodiscard]] ReloadPreview preview() const;

 private:
  std::string path_;
  std::atomic<std::shared_ptr<const config::Config>> current_;
  store::MaintenanceStore& store_;
  std::function<void()> on_due_;
  std::mutex reload_mutex_;
};

}  // namespace relay::daemon
