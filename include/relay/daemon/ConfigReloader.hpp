#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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

  /// A webhook disabled by relayd or an operator (SPEC §10; stored in the database by the
  /// caller): reason and time.
  struct RuntimeDisable {
    std::string reason;
    std::string at;  // RFC 3339 ms
  };
  /// At start-up, before anything reads the configuration: the stored disables. They apply
  /// over every file read from now on (`enabled` false, `disabled_reason` set).
  void restore_disabled(std::map<std::string, RuntimeDisable> disabled);
  /// Disables (`d` set) or clears the disable of a webhook: the configuration in effect
  /// changes and its deliveries are paused or resumed like a reload would. Never blocks for
  /// long (safe from a store callback).
  void set_disabled(const std::string& webhook_id, std::optional<RuntimeDisable> d);

 private:
  // The configuration in effect: the file's, with the runtime disables applied.
  [[nodiscard]] std::shared_ptr<const config::Config> effective() const;

  std::string path_;
  std::atomic<std::shared_ptr<const config::Config>> current_;
  // Guarded by state_mutex_ (held briefly; reload_mutex_ covers reading the file).
  std::shared_ptr<const config::Config> file_;
  std::map<std::string, RuntimeDisable> disabled_;
  std::mutex state_mutex_;
  store::MaintenanceStore& store_;
  std::function<void()> on_due_;
  std::mutex reload_mutex_;
};

}  // namespace relay::daemon
