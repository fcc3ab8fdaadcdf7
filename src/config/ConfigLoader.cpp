// YAML -> Config with every problem collected at its line:col (SPEC §2). This file is relayd's
// schema; the generic reading (mappings, scalars, ${VAR}, problems) is in YamlReader.cpp.
#include "relay/config/ConfigLoader.hpp"

#include "relay/common/SecretBox.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "YamlReader.hpp"
#include "relay/common/Ascii.hpp"
#include "relay/common/EventTypes.hpp"
#include "relay/common/HeaderNames.hpp"
#include "relay/common/Suggest.hpp"
#include "relay/common/Time.hpp"
#include "relay/common/Url.hpp"

namespace relay::config {
namespace {

using yaml::Entry;
using yaml::mark_text;
using yaml::parse_uint;
using yaml::Section;

constexpr std::size_t kMaxConfigFileBytes = 16 * 1024 * 1024;
constexpr std::size_t kMaxSecretFileBytes = 64 * 1024;
constexpr std::size_t kMaxRetryScheduleEntries = 20;
constexpr std::size_t kMaxWebhookIdLength = 64;

struct FileCloser {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};

/// Reads a whole file (at most `max_bytes`). On failure returns nullopt and sets `error` to the
/// reason ("No such file or directory", "Is a directory", "larger than 65536 bytes").
std::optional<std::string> read_file(const std::string& path, std::size_t max_bytes,
                                     std::string& error) {
  errno = 0;
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) {
    error = std::strerror(errno);
    return std::nullopt;
  }
  std::string data;
  char buf[8192];
  for (;;) {
    const std::size_t n = std::fread(buf, 1, sizeof buf, f.get());
    data.append(buf, n);
    if (data.size() > max_bytes) {
      error = "larger than " + std::to_string(max_bytes) + " bytes";
      return std::nullopt;
    }
    if (n < sizeof buf) {
      if (std::ferror(f.get())) {
        error = std::strerror(errno != 0 ? errno : EIO);
        return std::nullopt;
      }
      return data;
    }
  }
}

/// Checks that `path` can be opened and read (certificates, CA bundles).
bool check_readable(const std::string& path, std::string& error) {
  errno = 0;
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) {
    error = std::strerror(errno);
    return false;
  }
  char c;
  (void)std::fread(&c, 1, 1, f.get());  // a directory opens but fails here with EISDIR
  if (std::ferror(f.get())) {
    error = std::strerror(errno != 0 ? errno : EIO);
    return false;
  }
  return true;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string trim(std::string s) {
  std::size_t b = 0;
  while (b < s.size() && is_space(s[b])) ++b;
  std::size_t e = s.size();
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

using common::is_alpha;
using common::is_digit;
using common::lower;

bool is_valid_webhook_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxWebhookIdLength) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || c == '-';
  });
}

/// RFC 9110 token characters.
bool is_valid_header_name(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return is_alpha(c) || is_digit(c) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

bool is_valid_header_value(std::string_view value) {
  return std::none_of(value.begin(), value.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

bool is_reg_name_char(char c) {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '%';
}

bool is_ipv6_literal_char(char c) {
  // hex digits, ':' and '.', plus a zone id after '%' (e.g. fe80::1%eth0)
  return is_alpha(c) || is_digit(c) || c == ':' || c == '.' || c == '%' || c == '_' || c == '-';
}

struct HostPort {
  std::string host;  // IPv6 without brackets
  std::string port;  // digits as written, may be empty when there was no ':'
  bool had_port = false;
};

/// Splits "host:port" / "[v6]:port" / "host" into parts; the error is a complete sentence.
std::optional<HostPort> split_host_port(std::string_view s, std::string& error) {
  HostPort hp;
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find(']');
    if (close == std::string_view::npos) {
      error = "missing ']' after the IPv6 address";
      return std::nullopt;
    }
    hp.host = std::string(s.substr(1, close - 1));
    if (hp.host.empty() || hp.host.find(':') == std::string::npos ||
        !std::all_of(hp.host.begin(), hp.host.end(), is_ipv6_literal_char)) {
      error = "invalid IPv6 address in brackets";
      return std::nullopt;
    }
    const std::string_view rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        error = "unexpected text after ']'";
        return std::nullopt;
      }
      hp.had_port = true;
      hp.port = std::string(rest.substr(1));
    }
    return hp;
  }
  const auto colon = s.rfind(':');
  if (colon != std::string_view::npos) {
    if (s.substr(0, colon).find(':') != std::string_view::npos) {
      error = "IPv6 addresses must be written in brackets, e.g. [::1]:8686";
      return std::nullopt;
    }
    hp.had_port = true;
    hp.port = std::string(s.substr(colon + 1));
    s = s.substr(0, colon);
  }
  hp.host = std::string(s);
  if (hp.host.empty()) {
    error = "missing host";
    return std::nullopt;
  }
  if (!std::all_of(hp.host.begin(), hp.host.end(), is_reg_name_char)) {
    error = "invalid host name";
    return std::nullopt;
  }
  return hp;
}

/// check-config's wording of each URL rule (docs/configuration.md lists these messages).
std::string url_error_text(common::UrlError code) {
  using common::UrlError;
  switch (code) {
    case UrlError::kControlCharacter:
      return "must not contain spaces or control characters";
    case UrlError::kNotAbsolute:
    case UrlError::kUnsupportedScheme:
      return "expected an absolute https:// URL";
    case UrlError::kUserInfo:
      return "must not contain a user name or password (user:password@)";
    case UrlError::kMissingHost:
      return "missing host";
    case UrlError::kUnterminatedIpv6:
      return "missing ']' after the IPv6 address";
    case UrlError::kTextAfterIpv6:
      return "unexpected text after ']'";
    case UrlError::kInvalidIpv6:
      return "invalid IPv6 address in brackets (zone ids such as %eth0 are not supported)";
    case UrlError::kUnbracketedIpv6:
      return "IPv6 addresses must be written in brackets, e.g. [::1]:8686";
    case UrlError::kInvalidHost:
      return "invalid host name (letters, digits, '-', '.' and '_'; not starting with '.' or '-')";
    case UrlError::kInvalidPort:
      return "invalid port (expected 1-65535)";
  }
  return "invalid URL";  // not reached: the switch names every code (-Wswitch)
}

/// Validates a webhook URL; on success returns it with the scheme lower-cased. The grammar is
/// the delivery client's own (common::parse_url), so check-config cannot pass a URL that every
/// attempt would then fail on; only the policy below is config's. The error never quotes the
/// URL (its path or query may carry a credential).
std::optional<std::string> check_url(std::string_view text, bool allow_http, std::string& error) {
  common::UrlError code{};
  const auto url = common::parse_url(text, nullptr, &code);
  if (!url) {
    error = url_error_text(code);
    return std::nullopt;
  }
  if (!url->is_https() && !allow_http) {
    error = "http:// is not allowed unless allow_insecure_http: true";
    return std::nullopt;
  }
  // The client would drop it silently; a fragment in a webhook URL is a mistake worth naming.
  if (url->had_fragment) {
    error = "must not contain a fragment (#...)";
    return std::nullopt;
  }
  // RFC 3986 reads "host:" as the default port and the client accepts it; in a config file it is
  // more likely a port left out by mistake.
  if (url->empty_port) {
    error = "invalid port (expected 1-65535)";
    return std::nullopt;
  }
  // parse_url took the scheme from before the first "://" and only lower-cased it, so the rest
  // of the text follows it unchanged.
  return url->scheme + std::string(text.substr(url->scheme.size()));
}

/// relayd's schema: which keys there are and what they mean. Reading YAML, ${VAR} expansion and
/// collecting problems at line:col come from yaml::Reader (YamlReader.hpp).
class Loader : private yaml::Reader {
 public:
  Loader(std::string path, const EnvLookup& env) : Reader(std::move(path), env) {}

  /// One webhook from the API: no ${VAR}, no file names, problems named by field path.
  WebhookConfig load_api_webhook(std::string_view text) {
    api_ = true;
    set_expand_env(false);
    const YAML::Node root = parse(text);
    std::map<std::string, YAML::Mark, std::less<>> seen;
    auto w = webhook(root, root.Mark(), 0, seen);
    if (problem_count() != 0 || !w) fail();
    w->managed_by_api = true;
    return std::move(*w);
  }

  std::shared_ptr<const Config> load(std::string_view text) {
    auto config = std::make_shared<Config>();
    config->source_path = path();
    const YAML::Node root = parse(text);
    if (root.IsNull()) {
      // An empty file would remove every webhook (and cancel their deliveries) on reload.
      add(YAML::Mark(), "config file is empty");
      fail();
    }
    if (!root.IsMap()) {
      add(root.Mark(), "expected a mapping at top level (server:, storage:, webhooks:, ...)");
      fail();
    }
    const auto top =
        check_keys(collect(root), "", root.Mark(),
                   {"server", "storage", "delivery", "shutdown_grace", "logging", "webhooks"});
    if (const auto* e = top.get("server")) server(*e, config->server);
    if (const auto* e = top.get("storage")) storage(*e, config->storage);
    if (const auto* e = top.get("delivery")) delivery(*e, config->delivery);
    if (const auto* e = top.get("shutdown_grace")) {
      if (auto d = duration(*e, "shutdown_grace")) config->shutdown_grace = *d;
    }
    if (const auto* e = top.get("logging")) logging(*e, config->logging);
    if (const auto* e = top.get("webhooks")) webhooks(*e, config->webhooks);
    if (config->storage.backend == StorageConfig::Backend::kPostgres &&
        config->storage.postgres.lease <= config->delivery.timeout) {
      // A lease that runs out while its attempt is still in flight lets a second node send
      // the same delivery at the same time.
      add(root.Mark(), "storage.postgres.lease (" +
                           format_duration(config->storage.postgres.lease) +
                           ") must be longer than delivery.timeout (" +
                           format_duration(config->delivery.timeout) + ")");
    }
    if (problem_count() != 0) fail();
    return config;
  }

 private:
  /// A file path whose contents must be readable now.
  std::optional<std::string> readable_file(const Entry& e, const std::string& path) {
    auto p = non_empty_text(e, path);
    if (!p) return std::nullopt;
    std::string error;
    if (!check_readable(*p, error)) {
      add(e.value_mark(), path + ": cannot read '" + *p + "': " + error);
      return std::nullopt;
    }
    return p;
  }

  // ---- sections ------------------------------------------------------------------------------

  void server(const Entry& entry, ServerConfig& out) {
    const auto s = section(entry, {"listen", "token_file", "max_body_bytes", "max_connections",
                                   "tls_cert", "tls_key"});
    if (!s) return;
    if (const auto* e = s->get("listen")) listen(*e, s->key_path("listen"), out);
    if (const auto* e = s->get("token_file")) {
      const auto path = s->key_path("token_file");
      if (auto file = non_empty_text(*e, path)) {
        std::string error;
        auto contents = read_file(*file, kMaxSecretFileBytes, error);
        if (!contents) {
          add(e->value_mark(), path + ": cannot read '" + *file + "': " + error);
        } else {
          std::string token = trim(std::move(*contents));
          if (token.empty()) {
            add(e->value_mark(), path + ": file '" + *file + "' is empty");
          } else if (std::any_of(token.begin(), token.end(), [](char c) {
                       return static_cast<unsigned char>(c) <= 0x20 ||
                              static_cast<unsigned char>(c) == 0x7f;
                     })) {
            add(e->value_mark(), path + ": the token in '" + *file +
                                     "' must be one word (no spaces, line breaks or control "
                                     "characters)");
          } else {
            out.token_file = *file;
            out.token = std::move(token);
          }
        }
      }
    }
    if (const auto* e = s->get("max_body_bytes")) {
      if (auto n = positive_int(*e, s->key_path("max_body_bytes"),
                                std::numeric_limits<std::uint32_t>::max())) {
        out.max_body_bytes = static_cast<std::size_t>(*n);
      }
    }
    if (const auto* e = s->get("max_connections")) {
      if (auto n = positive_int(*e, s->key_path("max_connections"), 1000000)) {
        out.max_connections = static_cast<std::size_t>(*n);
      }
    }
    const auto* cert = s->get("tls_cert");
    const auto* key = s->get("tls_key");
    if (cert) out.tls_cert = readable_file(*cert, s->key_path("tls_cert"));
    if (key) out.tls_key = readable_file(*key, s->key_path("tls_key"));
    if (cert && !key) {
      add(cert->value_mark(), "server.tls_cert: server.tls_key must be set too (TLS needs both)");
    } else if (key && !cert) {
      add(key->value_mark(), "server.tls_key: server.tls_cert must be set too (TLS needs both)");
    }
  }

  void listen(const Entry& e, const std::string& path, ServerConfig& out) {
    const auto v = non_empty_text(e, path);
    if (!v) return;
    std::string error;
    const auto hp = split_host_port(*v, error);
    if (!hp) {
      add(e.value_mark(), path + ": " + error);
      return;
    }
    if (!hp->had_port) {
      add(e.value_mark(), path + ": expected HOST:PORT, e.g. 127.0.0.1:8686 or [::1]:8686");
      return;
    }
    const auto port = parse_uint(hp->port, 65535);
    if (!port) {
      add(e.value_mark(), path + ": invalid port (expected 1-65535, or 0 for any free port)");
      return;
    }
    out.listen = *v;
    out.listen_host = hp->host;
    out.listen_port = static_cast<std::uint16_t>(*port);
  }

  void storage(const Entry& entry, StorageConfig& out) {
    const auto s = section(entry, {"backend", "postgres", "path", "retention", "secret_key_file"});
    if (!s) return;
    if (const auto* e = s->get("backend")) {
      if (auto v = non_empty_text(*e, s->key_path("backend"))) {
        if (*v == "sqlite") {
          out.backend = StorageConfig::Backend::kSqlite;
        } else if (*v == "postgres") {
          out.backend = StorageConfig::Backend::kPostgres;
        } else {
          add(e->value_mark(),
              s->key_path("backend") + ": expected sqlite or postgres, got '" + *v + "'");
        }
      }
    }
    if (const auto* e = s->get("postgres")) postgres(*e, out.postgres);
    if (out.backend == StorageConfig::Backend::kPostgres && out.postgres.dsn.empty()) {
      add(entry.value_mark(),
          "storage.postgres.dsn: required with storage.backend: postgres (a libpq connection "
          "string, e.g. \"host=db.internal dbname=relayd user=relayd password=${PGPASSWORD}\")");
    }
    if (const auto* e = s->get("secret_key_file")) {
      const auto path = s->key_path("secret_key_file");
      if (auto file = non_empty_text(*e, path)) {
        std::string error;
        auto contents = read_file(*file, kMaxSecretFileBytes, error);
        if (!contents) {
          add(e->value_mark(), path + ": cannot read '" + *file + "': " + error);
        } else if (auto key = common::parse_secret_key(*contents, error)) {
          out.secret_key_file = *file;
          out.secret_key = std::move(*key);
        } else {
          add(e->value_mark(), path + ": '" + *file + "': " + error);
        }
      }
    }
    if (const auto* e = s->get("path")) {
      if (auto v = non_empty_text(*e, s->key_path("path"))) out.path = *v;
    }
    if (const auto* e = s->get("retention")) {
      if (auto d = positive_duration(*e, s->key_path("retention"))) out.retention = *d;
    }
  }

  void postgres(const Entry& entry, PostgresConfig& out) {
    const std::string path = "storage.postgres";
    if (entry.value.IsNull()) return;
    if (!entry.value.IsMap()) {
      add(entry.value_mark(),
          path + ": expected a mapping, e.g. { dsn: \"host=db dbname=relayd\" }");
      return;
    }
    const auto s = check_keys(collect(entry.value), path, entry.value.Mark(),
                              {"dsn", "pool_size", "lease", "node_id"});
    if (const auto* e = s.get("dsn")) {
      if (auto v = non_empty_text(*e, s.key_path("dsn"))) out.dsn = *v;
    }
    if (const auto* e = s.get("pool_size")) {
      if (auto n = positive_int(*e, s.key_path("pool_size"), 256)) {
        if (*n < 3) {
          add(e->value_mark(),
              s.key_path("pool_size") + ": at least 3 (one writer, one listener, one reader)");
        } else {
          out.pool_size = static_cast<std::size_t>(*n);
        }
      }
    }
    if (const auto* e = s.get("lease")) {
      if (auto d = positive_duration(*e, s.key_path("lease"))) out.lease = *d;
    }
    if (const auto* e = s.get("node_id")) {
      if (auto v = non_empty_text(*e, s.key_path("node_id"))) out.node_id = *v;
    }
  }

  void delivery(const Entry& entry, DeliveryConfig& out) {
    const auto s = section(
        entry, {"concurrency", "per_webhook_concurrency", "timeout", "retry_schedule", "ca_file",
                "allow_private_networks", "circuit_breaker", "auto_disable_after"});
    if (!s) return;
    constexpr auto kIntMax = static_cast<std::uint64_t>(std::numeric_limits<int>::max());
    if (const auto* e = s->get("concurrency")) {
      if (auto n = positive_int(*e, s->key_path("concurrency"), kIntMax)) {
        out.concurrency = static_cast<int>(*n);
      }
    }
    if (const auto* e = s->get("per_webhook_concurrency")) {
      if (auto n = positive_int(*e, s->key_path("per_webhook_concurrency"), kIntMax)) {
        out.per_webhook_concurrency = static_cast<int>(*n);
      }
    }
    if (const auto* e = s->get("timeout")) {
      if (auto d = positive_duration(*e, s->key_path("timeout"))) out.timeout = *d;
    }
    if (const auto* e = s->get("retry_schedule")) retry_schedule(*e, out);
    if (const auto* e = s->get("ca_file")) {
      if (auto p = readable_file(*e, s->key_path("ca_file"))) out.ca_file = *p;
    }
    if (const auto* e = s->get("allow_private_networks")) {
      if (auto b = boolean(*e, s->key_path("allow_private_networks"))) {
        out.allow_private_networks = *b;
      }
    }
    if (const auto* e = s->get("circuit_breaker")) circuit_breaker(*e, out.circuit_breaker);
    if (const auto* e = s->get("auto_disable_after")) {
      if (auto d = duration(*e, s->key_path("auto_disable_after"))) out.auto_disable_after = *d;
    }
  }

  void circuit_breaker(const Entry& entry, CircuitBreakerConfig& out) {
    const std::string path = "delivery.circuit_breaker";
    if (!entry.value.IsNull() && !entry.value.IsMap()) {
      add(entry.value_mark(), path + ": expected a mapping, e.g. { failures: 10, cooldown: 30s }");
      return;
    }
    if (entry.value.IsNull()) return;
    const auto s = check_keys(collect(entry.value), path, entry.value.Mark(),
                              {"failures", "cooldown", "max_cooldown"});
    if (const auto* e = s.get("failures")) {
      if (auto n = positive_int(*e, s.key_path("failures"), 1000000)) {
        out.failures = static_cast<int>(*n);
      }
    }
    if (const auto* e = s.get("cooldown")) {
      if (auto d = positive_duration(*e, s.key_path("cooldown"))) out.cooldown = *d;
    }
    if (const auto* e = s.get("max_cooldown")) {
      if (auto d = positive_duration(*e, s.key_path("max_cooldown"))) out.max_cooldown = *d;
    }
    if (out.max_cooldown < out.cooldown) {
      add(entry.value_mark(), path + ": max_cooldown must be at least cooldown");
    }
  }

  void retry_schedule(const Entry& e, DeliveryConfig& out) {
    const std::string path = "delivery.retry_schedule";
    if (!e.value.IsSequence() || e.value.size() == 0) {
      add(e.value_mark(), path + ": expected a non-empty list of durations, e.g. [0s, 1m, 5m]");
      return;
    }
    if (e.value.size() > kMaxRetryScheduleEntries) {
      add(e.value_mark(), path + ": at most " + std::to_string(kMaxRetryScheduleEntries) +
                              " entries (found " + std::to_string(e.value.size()) + ")");
      return;
    }
    std::vector<Duration> schedule;
    bool ok = true;
    for (std::size_t i = 0; i < e.value.size(); ++i) {
      const YAML::Node item = e.value[i];
      const YAML::Mark mark = item.Mark().is_null() ? e.value_mark() : item.Mark();
      auto d = duration_node(item, mark, path + "[" + std::to_string(i) + "]");
      if (d) {
        schedule.push_back(*d);
      } else {
        ok = false;
      }
    }
    if (ok) out.retry_schedule = std::move(schedule);
  }

  void logging(const Entry& entry, LoggingConfig& out) {
    const auto s = section(entry, {"level", "format"});
    if (!s) return;
    if (const auto* e = s->get("level")) {
      if (auto v = text(*e, s->key_path("level"))) {
        static constexpr std::string_view kLevels[] = {"trace", "debug",    "info", "warn",
                                                       "error", "critical", "off"};
        if (std::find(std::begin(kLevels), std::end(kLevels), *v) == std::end(kLevels)) {
          add(e->value_mark(),
              "logging.level: must be one of trace, debug, info, warn, error, critical, off "
              "(found '" +
                  *v + "')");
        } else {
          out.level = *v;
        }
      }
    }
    if (const auto* e = s->get("format")) {
      if (auto v = text(*e, s->key_path("format"))) {
        if (*v == "text") {
          out.format = LoggingConfig::Format::kText;
        } else if (*v == "json") {
          out.format = LoggingConfig::Format::kJson;
        } else {
          add(e->value_mark(), "logging.format: must be text or json (found '" + *v + "')");
        }
      }
    }
  }

  // ---- webhooks ------------------------------------------------------------------------------

  void webhooks(const Entry& e, std::vector<WebhookConfig>& out) {
    if (e.value.IsNull()) return;  // `webhooks:` with every entry commented out
    if (!e.value.IsSequence()) {
      add(e.value_mark(), "webhooks: expected a list of webhooks (- id: ...)");
      return;
    }
    std::map<std::string, YAML::Mark, std::less<>> seen;
    for (std::size_t i = 0; i < e.value.size(); ++i) {
      const YAML::Node item = e.value[i];
      const YAML::Mark mark = item.Mark().is_null() ? e.value_mark() : item.Mark();
      if (auto w = webhook(item, mark, i, seen)) out.push_back(std::move(*w));
    }
  }

  std::optional<WebhookConfig> webhook(const YAML::Node& node, const YAML::Mark& mark,
                                       std::size_t index,
                                       std::map<std::string, YAML::Mark, std::less<>>& seen) {
    // From the API the object itself is the top level: paths are its fields ("events[2]").
    const std::string by_index = api_ ? "" : "webhooks[" + std::to_string(index) + "]";
    const auto at = [](const std::string& where, const std::string& message) {
      return where.empty() ? message : where + ": " + message;
    };
    const auto field = [](const std::string& where, const std::string& key) {
      return where.empty() ? key : where + "." + key;
    };
    if (!node.IsMap()) {
      add(mark, at(by_index, "expected a mapping with id, url, secret and events"));
      return std::nullopt;
    }
    const std::size_t problems_before = problem_count();
    auto raw = collect(node);

    // Name the webhook by its id in messages when the id is usable, else by its index.
    std::string name = by_index;
    std::optional<std::string> id;
    const Entry* id_entry = nullptr;
    for (const auto& r : raw) {
      if (r.key == "id") {
        id_entry = &r;
        break;
      }
    }
    Entry id_copy;
    if (id_entry != nullptr) {
      id_copy = *id_entry;
      id = text(id_copy, field(by_index, "id"));
      if (id && is_valid_webhook_id(*id)) {
        if (!api_) name = "webhooks[" + *id + "]";
      } else if (id) {
        add(id_copy.value_mark(), field(by_index, "id") + ": invalid id '" + *id +
                                      "' (use 1-64 characters from a-z, 0-9, _ and -)");
        id.reset();
      }
    }
    const auto s =
        check_keys(std::move(raw), name, node.Mark(),
                   {"id", "url", "secret", "secret_file", "signature", "previous_secrets", "events",
                    "enabled", "max_queued", "headers", "allow_insecure_http", "ca_file"});

    WebhookConfig w;
    if (id_entry == nullptr) add(s.mark, at(name, "missing required key 'id'"));
    if (id) {
      w.id = *id;
      if (const auto it = seen.find(*id); it != seen.end()) {
        add(id_copy.value_mark(), field(name, "id") + ": duplicate webhook id '" + *id +
                                      "' (first defined at " + mark_text(it->second) + ")");
      } else {
        seen.emplace(*id, s.mark);
      }
    }

    if (const auto* e = s.get("allow_insecure_http")) {
      if (auto b = boolean(*e, s.key_path("allow_insecure_http"))) w.allow_insecure_http = *b;
    }
    if (const auto* e = s.get("url")) {
      if (auto v = non_empty_text(*e, s.key_path("url"))) {
        std::string error;
        if (auto url = check_url(*v, w.allow_insecure_http, error)) {
          w.url = std::move(*url);
        } else {
          add(e->value_mark(), s.key_path("url") + ": " + error);
        }
      }
    } else {
      add(s.mark, at(name, "missing required key 'url'"));
    }
    if (auto v = secret(s, &w.secret_file)) w.secret = std::move(*v);
    signature(s, w);
    if (const auto* e = s.get("events")) {
      events(*e, s.key_path("events"), w);
    } else {
      add(s.mark, at(name, "missing required key 'events'"));
    }
    if (const auto* e = s.get("enabled")) {
      if (auto b = boolean(*e, s.key_path("enabled"))) w.enabled = *b;
    }
    if (const auto* e = s.get("max_queued")) {
      if (auto n = positive_int(*e, s.key_path("max_queued"),
                                std::numeric_limits<std::uint32_t>::max())) {
        w.max_queued = static_cast<std::size_t>(*n);
      }
    }
    if (const auto* e = s.get("headers")) headers(*e, s.key_path("headers"), w);
    if (const auto* e = s.get("ca_file")) {
      // Checked here, not at the first attempt: a wrong file (a key, a DER file) would
      // otherwise show up only as failing deliveries.
      if (auto p = readable_file(*e, s.key_path("ca_file"))) {
        std::string error;
        const auto pem = read_file(*p, kMaxConfigFileBytes, error);
        if (!pem) {
          add(e->value_mark(), s.key_path("ca_file") + ": cannot read '" + *p + "': " + error);
        } else if (pem->find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
          add(e->value_mark(), s.key_path("ca_file") + ": '" + *p +
                                   "' holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
        } else {
          w.ca_file = *p;
        }
      }
    }
    if (problem_count() != problems_before) return std::nullopt;
    return w;
  }

  /// `secret` or `secret_file` of a section (a webhook or a previous secret); `file_path` (when
  /// given) is set to the file's path when the secret came from one.
  std::optional<std::string> secret(const Section& s,
                                    std::optional<std::string>* file_path = nullptr) {
    const auto* inline_secret = s.get("secret");
    const auto* file = s.get("secret_file");
    if (inline_secret && file) {
      add(file->key_node.Mark(), s.path + ": set either secret or secret_file, not both");
      return std::nullopt;
    }
    if (!inline_secret && !file) {
      add(s.mark, s.path.empty() ? std::string("missing required key 'secret'")
                                 : s.path + ": missing required key 'secret' (or 'secret_file')");
      return std::nullopt;
    }
    if (inline_secret) {
      // Never quote the value: problems are reported by position only.
      return non_empty_text(*inline_secret, s.key_path("secret"));
    }
    const auto path = s.key_path("secret_file");
    const auto p = non_empty_text(*file, path);
    if (!p) return std::nullopt;
    std::string error;
    auto contents = read_file(*p, kMaxSecretFileBytes, error);
    if (!contents) {
      add(file->value_mark(), path + ": cannot read '" + *p + "': " + error);
      return std::nullopt;
    }
    // `echo secret > file` and editors add a final newline that is not part of the secret.
    while (!contents->empty() && (contents->back() == '\n' || contents->back() == '\r')) {
      contents->pop_back();
    }
    if (contents->empty()) {
      add(file->value_mark(), path + ": file '" + *p + "' is empty");
      return std::nullopt;
    }
    if (file_path) *file_path = *p;
    return contents;
  }

  /// Where a section's secret was given: the value of `secret` or of `secret_file`.
  static YAML::Mark secret_mark(const Section& s) {
    if (const auto* e = s.get("secret")) return e->value_mark();
    if (const auto* e = s.get("secret_file")) return e->value_mark();
    return s.mark;
  }

  /// The key bytes of a Standard Webhooks secret, or a problem at the secret's position.
  std::optional<std::string> standard_key(const Section& s, const std::string& secret) {
    std::string error;
    auto key = decode_standard_secret(secret, error);
    if (!key) {
      const bool from_file = s.get("secret_file") != nullptr;
      add(secret_mark(s), s.key_path(from_file ? "secret_file" : "secret") + ": " + error +
                              " (required by signature: standard or both)");
    }
    return key;
  }

  void signature(const Section& s, WebhookConfig& w) {
    if (const auto* e = s.get("signature")) {
      const auto path = s.key_path("signature");
      const auto v = scalar(*e, path, "expected relay, standard or both");
      if (!v) return;
      if (*v == "relay") {
        w.signature = SignatureScheme::kRelay;
      } else if (*v == "standard") {
        w.signature = SignatureScheme::kStandard;
      } else if (*v == "both") {
        w.signature = SignatureScheme::kBoth;
      } else {
        add(e->value_mark(),
            path + ": unknown signature scheme '" + *v + "' (expected relay, standard or both)");
        return;
      }
    }
    const bool standard = w.signature != SignatureScheme::kRelay;
    if (standard && !w.secret.empty()) {
      if (auto key = standard_key(s, w.secret)) w.signing_key = std::move(*key);
    }
    if (const auto* e = s.get("previous_secrets")) {
      previous_secrets(*e, s.key_path("previous_secrets"), standard, w);
    }
  }

  void previous_secrets(const Entry& e, const std::string& path, bool standard, WebhookConfig& w) {
    constexpr std::size_t kMaxPrevious = 5;
    if (e.value.IsNull()) return;
    if (!e.value.IsSequence()) {
      add(e.value_mark(), path + ": expected a list of {secret (or secret_file), expires}");
      return;
    }
    if (e.value.size() > kMaxPrevious) {
      add(e.value_mark(), path + ": at most " + std::to_string(kMaxPrevious) +
                              " previous secrets (found " + std::to_string(e.value.size()) + ")");
      return;
    }
    for (std::size_t i = 0; i < e.value.size(); ++i) {
      const YAML::Node item = e.value[i];
      const YAML::Mark mark = item.Mark().is_null() ? e.value_mark() : item.Mark();
      const std::string item_path = path + "[" + std::to_string(i) + "]";
      if (!item.IsMap()) {
        add(mark, item_path + ": expected a mapping with secret (or secret_file) and expires");
        continue;
      }
      const auto ps =
          check_keys(collect(item), item_path, item.Mark(), {"secret", "secret_file", "expires"});
      PreviousSecret prev;
      auto value = secret(ps);
      if (value && standard) {
        auto key = standard_key(ps, *value);
        if (!key) continue;
        prev.key = std::move(*key);
      }
      const auto* ex = ps.get("expires");
      if (ex == nullptr) {
        add(ps.mark, item_path +
                         ": missing required key 'expires' (an RFC 3339 UTC time such as "
                         "2026-12-01T00:00:00Z)");
        continue;
      }
      const auto text_value = scalar(*ex, ps.key_path("expires"), "expected an RFC 3339 time");
      if (!text_value) continue;
      const auto t = common::parse_rfc3339(*text_value);
      if (!t) {
        add(ex->value_mark(), ps.key_path("expires") + ": invalid time '" + *text_value +
                                  "' (expected an RFC 3339 UTC time such as "
                                  "2026-12-01T00:00:00Z)");
        continue;
      }
      if (!value) continue;
      prev.secret = std::move(*value);
      prev.expires = *t;
      w.previous_secrets.push_back(std::move(prev));
    }
  }

  /// What an `events:` item may be: a type of the catalogue, a group, or "*".
  static const std::vector<std::string_view>& event_names() {
    static const std::vector<std::string_view> names = [] {
      std::vector<std::string_view> v(common::kEventTypes.begin(), common::kEventTypes.end());
      for (const char* g : {"ticket.*", "message.*", "customer.*", "sla.*"}) v.emplace_back(g);
      return v;
    }();
    return names;
  }

  void events(const Entry& e, const std::string& path, WebhookConfig& w) {
    if (!e.value.IsSequence() || e.value.size() == 0) {
      add(e.value_mark(), path +
                              ": expected a non-empty list of event types, e.g. "
                              "[ticket.created, \"message.*\"]");
      return;
    }
    for (std::size_t i = 0; i < e.value.size(); ++i) {
      const YAML::Node item = e.value[i];
      const YAML::Mark mark = item.Mark().is_null() ? e.value_mark() : item.Mark();
      // Each item by its index, so a typo is found in a long list (and named by the API).
      const std::string item_path = path + "[" + std::to_string(i) + "]";
      const auto v = scalar_node(item, mark, item_path, "expected an event type (a string)");
      if (!v) continue;
      if (*v == "*" || is_known_event_type(*v)) {
        w.events.push_back(*v);
        continue;
      }
      if (v->size() > 2 && v->ends_with(".*")) {
        const std::string group = v->substr(0, v->size() - 2);
        if (group == "ticket" || group == "message" || group == "customer" || group == "sla") {
          w.events.push_back(*v);
        } else {
          add(mark, item_path + ": unknown event group '" + *v +
                        "' (groups: ticket.*, message.*, customer.*, sla.*)" +
                        common::did_you_mean(*v, event_names()));
        }
        continue;
      }
      add(mark, item_path + ": unknown event type '" + *v + "'" +
                    common::did_you_mean(*v, event_names()));
    }
  }

  void headers(const Entry& e, const std::string& path, WebhookConfig& w) {
    if (e.value.IsNull()) return;
    if (!e.value.IsMap()) {
      add(e.value_mark(), path + ": expected a mapping of header names to values");
      return;
    }
    std::map<std::string, YAML::Mark, std::less<>> seen;  // lower-case name -> first key
    for (const auto& h : collect(e.value)) {
      const YAML::Mark key_mark = h.key_node.Mark();
      if (!h.key_node.IsScalar() || !is_valid_header_name(h.key)) {
        add(key_mark, path + ": '" + (h.key_node.IsScalar() ? h.key : std::string("?")) +
                          "' is not a valid header name");
        continue;
      }
      const std::string lname = lower(h.key);
      if (common::is_relay_set_header(lname)) {
        add(key_mark, path + ": '" + h.key + "' is set by relayd and cannot be overridden");
        continue;
      }
      if (common::is_relay_prefixed_header(lname)) {
        add(key_mark, path + ": '" + h.key + "' is reserved (relayd sets X-Relay-* headers)");
        continue;
      }
      if (const auto it = seen.find(lname); it != seen.end()) {
        add(key_mark,
            path + ": duplicate header '" + h.key + "' (first at " + mark_text(it->second) + ")");
        continue;
      }
      seen.emplace(lname, key_mark);
      // Values may be credentials (Authorization): never quote them.
      const std::string value_path = path + "." + h.key;
      auto v = scalar(h, value_path, "expected a string");
      if (!v) continue;
      if (!is_valid_header_value(*v)) {
        add(h.value_mark(), value_path + ": must be one line without control characters");
        continue;
      }
      w.headers.emplace_back(h.key, std::move(*v));
    }
  }

  bool api_ = false;  // reading one webhook from the API (load_api_webhook)
};

}  // namespace

std::shared_ptr<const Config> parse_config(std::string_view yaml_text, const std::string& path,
                                           const EnvLookup& env) {
  return Loader(path, env).load(yaml_text);
}

WebhookConfig parse_api_webhook(std::string_view json_text) {
  const EnvLookup none = [](const std::string&) { return std::optional<std::string>(); };
  return Loader("webhook", none).load_api_webhook(json_text);
}

std::shared_ptr<const Config> load_config_file(const std::string& path, const EnvLookup& env) {
  std::string error;
  auto text = read_file(path, kMaxConfigFileBytes, error);
  if (!text) {
    ConfigProblem p;
    p.path = path;
    p.message = "cannot read config file: " + error;
    throw ConfigError({std::move(p)});
  }
  return parse_config(*text, path, env);
}

}  // namespace relay::config
