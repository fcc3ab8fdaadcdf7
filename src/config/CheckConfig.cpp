#include "relay/config/CheckConfig.hpp"

#include <exception>
#include <ostream>
#include <string>
#include <vector>

#include "relay/common/Redaction.hpp"
#include "relay/common/Time.hpp"
#include "relay/config/FileModes.hpp"

namespace relay::config {
namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) out += ", ";
    out += i;
  }
  return out;
}

}  // namespace

void print_config_summary(const Config& config, std::ostream& out) {
  const auto& s = config.server;
  out << "server:\n";
  out << "  listen: " << s.listen << '\n';
  out << "  auth: "
      << (s.token_file ? "bearer token from " + *s.token_file : std::string("none (no token_file)"))
      << '\n';
  out << "  max_body_bytes: " << s.max_body_bytes << '\n';
  out << "  max_connections: " << s.max_connections << '\n';
  if (s.tls_cert && s.tls_key) {
    out << "  tls: cert " << *s.tls_cert << ", key " << *s.tls_key << '\n';
  } else {
    out << "  tls: off\n";
  }
  out << "storage:\n";
  if (config.storage.backend == StorageConfig::Backend::kPostgres) {
    const auto& pg = config.storage.postgres;
    out << "  backend: postgres\n";
    out << "  dsn: " << common::redact_dsn(pg.dsn) << '\n';
    out << "  pool_size: " << pg.pool_size << '\n';
    out << "  lease: " << format_duration(pg.lease) << '\n';
  } else {
    out << "  backend: sqlite\n";
    out << "  path: " << config.storage.path << '\n';
  }
  out << "  retention: " << format_duration(config.storage.retention) << '\n';
  const auto& d = config.delivery;
  std::vector<std::string> schedule;
  for (const auto& r : d.retry_schedule) schedule.push_back(format_duration(r));
  out << "delivery:\n";
  out << "  concurrency: " << d.concurrency << '\n';
  out << "  per_webhook_concurrency: " << d.per_webhook_concurrency << '\n';
  out << "  timeout: " << format_duration(d.timeout) << '\n';
  out << "  retry_schedule: [" << join(schedule) << "] (" << d.retry_schedule.size()
      << " attempts)\n";
  out << "  ca_file: " << d.ca_file << '\n';
  out << "  allow_private_networks: " << (d.allow_private_networks ? "true" : "false") << '\n';
  out << "  circuit_breaker: failures " << d.circuit_breaker.failures << ", cooldown "
      << format_duration(d.circuit_breaker.cooldown) << ", max_cooldown "
      << format_duration(d.circuit_breaker.max_cooldown) << '\n';
  out << "  auto_disable_after: "
      << (d.auto_disable_after.count() == 0 ? std::string("off")
                                            : format_duration(d.auto_disable_after))
      << '\n';
  out << "shutdown_grace: " << format_duration(config.shutdown_grace) << '\n';
  out << "logging: level " << config.logging.level << ", format "
      << (config.logging.format == LoggingConfig::Format::kJson ? "json" : "text") << '\n';
  out << "webhooks: " << config.webhooks.size() << '\n';
  for (const auto& w : config.webhooks) {
    // id, url (query values redacted), events, enabled only: never the secret or header values.
    out << "  - " << w.id << ": " << common::redact_url(w.url) << " events=[" << join(w.events)
        << "] enabled=" << (w.enabled ? "true" : "false");
    if (w.signature != SignatureScheme::kRelay) out << " signature=" << to_string(w.signature);
    // When each previous secret stops signing, so the operator sees the rotation's end.
    for (const auto& p : w.previous_secrets) {
      out << " previous_secret_until=" << common::format_rfc3339_s(p.expires)
          << (p.expires <= common::now_ms() ? "(expired)" : "");
    }
    if (w.ca_file) out << " ca_file=" << *w.ca_file;
    out << '\n';
  }
}

int run_check_config(const std::string& path, std::ostream& out, std::ostream& err,
                     const EnvLookup& env) {
  try {
    const auto config = load_config_file(path, env);
    // Warnings, not errors: the daemon runs with them too, and says the same at start.
    for (const auto& w : secret_file_warnings(*config)) err << "warning: " << w << '\n';
    out << path << ": OK\n";
    print_config_summary(*config, out);
    return 0;
  } catch (const ConfigError& e) {
    for (const auto& p : e.problems()) err << p.to_string() << '\n';
  } catch (const std::exception& e) {
    err << path << ": cannot check config: " << e.what() << '\n';
  }
  return 1;
}

int run_check_config(const std::string& path, std::ostream& out, std::ostream& err) {
  return run_check_config(path, out, err, process_env());
}

}  // namespace relay::config
