#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace relay::config {

using Duration = std::chrono::milliseconds;

/// The `server:` section. Plain value; copied freely.
struct ServerConfig {
  std::string listen = "127.0.0.1:8686";  // as written in the file
  std::string listen_host = "127.0.0.1";  // host part (IPv6 without brackets)
  std::uint16_t listen_port = 8686;
  std::optional<std::string> token_file;
  std::string token;  // contents of token_file, trimmed; empty = no token required
  std::size_t max_body_bytes = 1048576;
  /// Open client connections at most; at the cap the oldest idle one is closed for a new one,
  /// and a new one is refused only when all are busy (SPEC §8). Lowered at start when the
  /// open-file limit cannot hold it.
  std::size_t max_connections = 1024;
  std::optional<std::string> tls_cert;
  std::optional<std::string> tls_key;
};

/// `storage.postgres` (SPEC §14): several relayd nodes on one PostgreSQL database.
struct PostgresConfig {
  /// libpq conninfo ("host=… dbname=… user=… password=…" or a postgresql:// URI). May hold a
  /// password: print it only through common::redact_dsn.
  std::string dsn;
  /// Connections per node: one writer (group commit), one listener (LISTEN/NOTIFY), the rest
  /// serve the blocking reads. At least 3.
  std::size_t pool_size = 4;
  /// How long a claim holds a delivery. A node that dies loses its leases; another node takes
  /// the delivery over once its lease has run out. Must exceed delivery.timeout.
  Duration lease = std::chrono::minutes(2);
  /// This node's name in the leases it takes; empty: the host name. Nodes that share a host
  /// (and a database) need distinct names: at start a node releases its own name's leases.
  std::string node_id;
};

/// The `storage:` section.
struct StorageConfig {
  enum class Backend { kSqlite, kPostgres };
  Backend backend = Backend::kSqlite;
  PostgresConfig postgres;
  std::string path = "/var/lib/relayd/relayd.db";
  Duration retention = std::chrono::hours(24 * 30);
  /// Encrypts the secrets of API-managed webhooks at rest (SPEC §11); none: the API refuses
  /// to create webhooks.
  std::optional<std::string> secret_key_file;
  std::string secret_key;  // its 32 decoded bytes (never log this); empty without a file
};

/// `delivery.circuit_breaker` (SPEC §10): after `failures` consecutive failed attempts a
/// webhook's circuit opens; one probe per cooldown, doubling up to max_cooldown.
struct CircuitBreakerConfig {
  int failures = 10;
  Duration cooldown = std::chrono::seconds(30);
  Duration max_cooldown = std::chrono::minutes(10);
};

/// The `delivery:` section.
struct DeliveryConfig {
  int concurrency = 64;
  int per_webhook_concurrency = 8;
  Duration timeout = std::chrono::seconds(30);
  std::vector<Duration> retry_schedule = {std::chrono::seconds(0), std::chrono::minutes(1),
                                          std::chrono::minutes(5), std::chrono::minutes(30),
                                          std::chrono::hours(2),   std::chrono::hours(8)};
  std::string ca_file = "/etc/ssl/certs/ca-certificates.crt";
  bool allow_private_networks = false;
  CircuitBreakerConfig circuit_breaker;
  /// No success for this long (and at least circuit_breaker.failures failures) disables a
  /// webhook; 0 turns it off.
  Duration auto_disable_after = std::chrono::hours(24 * 5);
};

/// The `logging:` section.
struct LoggingConfig {
  enum class Format { kText, kJson };
  std::string level = "info";  // trace, debug, info, warn, error, critical, off
  Format format = Format::kText;
};

/// How a webhook's requests are signed (SPEC §9): `relay` sends X-Relay-Signature, `standard`
/// the Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature), `both` both.
enum class SignatureScheme { kRelay, kStandard, kBoth };

/// "relay", "standard" or "both".
std::string_view to_string(SignatureScheme scheme);

/// A secret that still signs during a rotation (`previous_secrets:`), until `expires`.
/// Holds a secret: never log, print or store it.
struct PreviousSecret {
  std::string secret;  // as written (never log this)
  std::string key;     // the decoded bytes of a whsec_ secret (standard/both), else empty
  std::chrono::sys_time<std::chrono::milliseconds> expires;
};

/// The bytes of a Standard Webhooks secret: `whsec_` + base64 of 24-64 bytes. nullopt (and
/// `error` says why, never quoting the secret) for anything else.
std::optional<std::string> decode_standard_secret(std::string_view secret, std::string& error);

/// One entry of `webhooks:`. Holds the secret: never log, print or store it.
struct WebhookConfig {
  std::string id;
  std::string url;
  std::string secret;                      // never log, print or store this
  std::optional<std::string> secret_file;  // where `secret` came from, when from a file
  SignatureScheme signature = SignatureScheme::kRelay;
  std::string signing_key;  // decoded whsec_ bytes when signature is standard or both
  std::vector<PreviousSecret> previous_secrets;  // at most 5, in file order
  std::vector<std::string> events;               // exact names, "group.*" or "*"
  bool enabled = true;
  /// Not from the file: set when relayd or an operator disabled the webhook at run time
  /// (SPEC §10, stored in the database). `enabled` is then false in the configuration in
  /// effect, so every consumer pauses it like `enabled: false`.
  std::optional<std::string> disabled_reason;
  std::optional<std::string> disabled_at;  // RFC 3339 ms
  std::size_t max_queued = 10000;
  std::vector<std::pair<std::string, std::string>> headers;  // in file order
  bool allow_insecure_http = false;
  /// Created over the API (stored in the database), not read from the file (SPEC §11).
  bool managed_by_api = false;
  /// A PEM file of CAs trusted for this webhook's receiver, in addition to delivery.ca_file
  /// (never instead of it). Read when the daemon starts and at every reload.
  std::optional<std::string> ca_file;

  /// True when `event_type` matches one of `events`: "*" matches everything, "group.*" every
  /// type starting with "group.", anything else only itself. Thread-safe (const).
  [[nodiscard]] bool matches(std::string_view event_type) const;
};

/// The whole validated configuration. Immutable once built: a reload builds a new one and
/// swaps a shared_ptr<const Config>, so readers on any thread never see a half-applied file.
struct Config {
  std::string source_path;
  ServerConfig server;
  StorageConfig storage;
  DeliveryConfig delivery;
  Duration shutdown_grace = std::chrono::seconds(10);
  LoggingConfig logging;
  std::vector<WebhookConfig> webhooks;

  /// The webhook with this id, or nullptr. The pointer lives as long as this Config.
  [[nodiscard]] const WebhookConfig* find_webhook(std::string_view id) const;
};

/// One problem found in a config file; `line` and `column` are 1-based.
struct ConfigProblem {
  std::string path;
  int line = 0;
  int column = 0;
  std::string message;

  /// "PATH:LINE:COL: message", or "PATH: message" when line is 0 (a problem with the file as a
  /// whole, e.g. it cannot be read).
  [[nodiscard]] std::string to_string() const;
};

/// Thrown by the loader with every problem found (not only the first), sorted by position.
/// what() is every problem's to_string() joined by '\n'. Messages never contain secrets.
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<ConfigProblem> problems);
  [[nodiscard]] const std::vector<ConfigProblem>& problems() const noexcept { return problems_; }

 private:
  std::vector<ConfigProblem> problems_;
};

}  // namespace relay::config
