#pragma once

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

/// What a reload would do, without doing it (`relayd reload --dry-run`). `problems` non-empty:
/// the file would be rejected. Else `next` is the file's configuration and `current` the one in
/// effect, for the caller to compare.
struct ReloadPreview {
  std::vector<std::string> problems;
  std::vector<std::string> warnings;  // as a reload would log them (secret file modes)
  std::shared_ptr<const config::Config> current;
  std::shared_ptr<const config::Config> next;
};

/// Owns the configuration in effect: the file's webhooks and those managed over the API
/// (SPEC §11), as one `Config` whose `webhooks` are the file's (in file order) then the API's
/// (by id). It replaces the file part from the file: SIGHUP, and any other
/// trigger (an admin route, a command) call reload(). A new configuration is swapped in as a
/// whole (`shared_ptr<const Config>`), logging is reconfigured, and the stored deliveries are
/// reconciled with the new webhooks (store writes in the background; `on_due` runs when
/// deliveries became due, on the store's thread: it must only post).
/// Thread-safety: current() from any thread (a pointer copy under a mutex); reload() from any
/// thread but an I/O thread (it reads the file), serialized. Never throws for a bad file (see
/// ReloadOutcome).
class ConfigReloader {
 public:
  ConfigReloader(std::string path, std::shared_ptr<const config::Config> initial,
                 store::MaintenanceStore& store, std::function<void()> on_due);

  [[nodiscard]] std::shared_ptr<const config::Config> current() const { return current_.load(); }
  /// For components that take a config source.
  [[nodiscard]] std::function<std::shared_ptr<const config::Config>()> source() const {
    return [this] { return current(); };
  }

  /// Reads the file again and applies it, or rejects it; logs the outcome either way. A file
  /// that names the id of an API-managed webhook is rejected.
  ReloadOutcome reload();

  /// At start, before anything reads the config: the API-managed webhooks read from the
  /// database. Throws std::runtime_error when one has the id of a file webhook.
  void set_api_webhooks(std::vector<config::WebhookConfig> webhooks);

  /// What an API change returns: the new set of API-managed webhooks and the id that changed
  /// (nullopt: nothing changed, nothing to apply).
  struct ApiChange {
    std::vector<config::WebhookConfig> webhooks;
    std::string changed_id;
  };
  /// Runs `change` with reloads and other API changes held off, given the configuration in
  /// effect and the current API webhooks; it makes the change durable (it may block) and
  /// returns the new set, which is then swapped in and reconciled for the changed webhook
  /// (disabled → paused, removed → cancelled). Call from a blocking thread, never an I/O one.
  void change_api_webhooks(
      const std::function<std::optional<ApiChange>(
          const config::Config& in_effect, const std::vector<config::WebhookConfig>& api)>& change);

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

  /// Reads the file like reload() but applies nothing and logs nothing. Any thread but an I/O
  /// thread.
  [[nodiscard]] ReloadPreview preview() const;

 private:
  // The configuration in effect: the file's webhooks and the API's, with the runtime disables
  // applied. Called with state_mutex_ held.
  [[nodiscard]] std::shared_ptr<const config::Config> effective() const;
  // `file` with the API's webhooks added and the runtime disables applied (state_mutex_ held).
  [[nodiscard]] std::shared_ptr<const config::Config> compose(
      const std::shared_ptr<const config::Config>& file) const;

  // What current() hands out. A mutex held for a pointer copy, not
  // std::atomic<std::shared_ptr>: ThreadSanitizer reports libstdc++ 12's implementation of that
  // (a lock bit in the control-block word) as a race between load() and store(), and with
  // halt_on_error the daemon died under the TSan stage of CI. Uncontended, the cost is the same.
  class CurrentConfig {
   public:
    explicit CurrentConfig(std::shared_ptr<const config::Config> c) : config_(std::move(c)) {}
    [[nodiscard]] std::shared_ptr<const config::Config> load() const {
      std::lock_guard lock(mutex_);
      return config_;
    }
    void store(std::shared_ptr<const config::Config> c) {
      {
        std::lock_guard lock(mutex_);
        config_.swap(c);
      }
      // c, the old configuration, is freed here, outside the lock, if this was its last user.
    }

   private:
    mutable std::mutex mutex_;
    std::shared_ptr<const config::Config> config_;
  };

  std::string path_;
  CurrentConfig current_;
  // Guarded by state_mutex_ (held briefly; reload_mutex_ covers reading the file).
  std::shared_ptr<const config::Config> file_;
  std::map<std::string, RuntimeDisable> disabled_;
  mutable std::mutex state_mutex_;
  store::MaintenanceStore& store_;
  std::function<void()> on_due_;
  // Serializes reloads and API changes (which read the file or write the database); the
  // state above changes under state_mutex_ too, so holding either one is enough to read it.
  std::mutex reload_mutex_;
  std::vector<config::WebhookConfig> api_webhooks_;
};

}  // namespace relay::daemon
