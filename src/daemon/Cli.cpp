#include "relay/daemon/Cli.hpp"

#include <charconv>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "relay/common/Version.hpp"
#include "relay/config/CheckConfig.hpp"
#include "relay/daemon/AdminClient.hpp"
#include "relay/daemon/Daemon.hpp"
#include "relay/daemon/Receiver.hpp"

namespace relay::daemon {

namespace {

constexpr const char* kDefaultConfig = "/etc/relayd/relayd.yaml";

constexpr const char* kUsage =
    R"(relayd — webhook delivery daemon

Usage:
  relayd [serve] [--config PATH]          run the daemon
  relayd check-config [--config] PATH     validate the config file and print a summary
  relayd send-test WEBHOOK_ID --event TYPE [ADMIN]
                                          ask the running daemon to send a test event
  relayd redeliver DELIVERY_ID [ADMIN]    ask the running daemon to deliver again now
  relayd reload [ADMIN] [--pid PID]       ask the running daemon to reload its config; exit 0
                                          once applied, 1 with the reasons if rejected; with
                                          --pid (the unit's $MAINPID) a changed token file is
                                          applied by SIGHUP to PID
  relayd recover WEBHOOK_ID --since T [--until T] [ADMIN]
                                          make the webhook's failed deliveries created in
                                          [since, until) due again (T: RFC 3339, e.g.
                                          2026-01-15T00:00:00Z; until defaults to now)
  relayd enable WEBHOOK_ID [ADMIN]        clear relayd's disable; paused deliveries resume
  relayd disable WEBHOOK_ID [ADMIN]       pause the webhook's deliveries until `enable`
  relayd reload --dry-run [ADMIN]         show what reloading the daemon's config file would
                                          change (webhooks, deliveries cancelled or paused,
                                          keys needing a restart); applies nothing
  relayd gen-secret                       print a new secret: whsec_ + base64 of 32 random bytes
  relayd receive --port N --secret S [--secret S2] [--scheme relay|standard] [--status N]
                                          a local receiver for development: verifies each
                                          request's signature and prints it
  relayd --version | --help

ADMIN is [--config PATH] [--url http://HOST:PORT] [--token-file PATH]: the daemon's address
and token are server.listen and server.token_file of the config (nothing else is read from
it), unless --url / --token-file give them.
--config defaults to /etc/relayd/relayd.yaml.
Exit codes: 0 ok, 1 bad config or failed request, 2 usage error.
)";

struct Parsed {
  std::string command = "serve";
  std::vector<std::string> positional;
  std::optional<std::string> config;
  std::optional<std::string> event;
  std::optional<std::string> port;
  std::vector<std::string> secrets;
  std::optional<std::string> scheme;
  std::optional<std::string> status;
  std::optional<std::string> url;
  std::optional<std::string> token_file;
  std::optional<std::string> pid;
  std::optional<std::string> since;
  std::optional<std::string> until;
  bool dry_run = false;
};

bool is_admin_command(const std::string& command) {
  return command == "send-test" || command == "redeliver" || command == "reload" ||
         command == "recover" || command == "enable" || command == "disable";
}

int usage_error(std::ostream& err, const std::string& message) {
  err << "relayd: " << message << " (see relayd --help)\n";
  return 2;
}

std::optional<int> parse_int(const std::string& s, int min, int max) {
  if (s.empty() || s.size() > 6) return std::nullopt;
  int v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < min || v > max) return std::nullopt;
  return v;
}

int receive(const Parsed& p, std::ostream& out, std::ostream& err) {
  if (!p.positional.empty()) {
    return usage_error(err, "unexpected argument '" + p.positional[0] + "'");
  }
  ReceiveOptions options;
  if (!p.port) return usage_error(err, "receive needs --port N");
  const auto port = parse_int(*p.port, 0, 65535);
  if (!port) return usage_error(err, "--port must be a number from 0 to 65535");
  options.port = static_cast<std::uint16_t>(*port);
  if (p.secrets.empty()) return usage_error(err, "receive needs --secret S");
  options.secrets = p.secrets;
  if (p.scheme) {
    if (*p.scheme == "relay") {
      options.scheme = ReceiveOptions::Scheme::kRelay;
    } else if (*p.scheme == "standard") {
      options.scheme = ReceiveOptions::Scheme::kStandard;
    } else {
      return usage_error(err, "--scheme must be relay or standard");
    }
  }
  if (p.status) {
    const auto status = parse_int(*p.status, 200, 599);
    if (!status) return usage_error(err, "--status must be an HTTP status from 200 to 599");
    options.status = *status;
  }
  return run_receive(options, out, err);
}

}  // namespace

int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Parsed p;
  std::size_t i = 0;
  if (!args.empty() && !args[0].empty() && args[0][0] != '-') {
    p.command = args[0];
    i = 1;
  }
  for (; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--help" || a == "-h") {
      out << kUsage;
      return 0;
    }
    if (a == "--version" || a == "-V") {
      out << "relayd " << kVersion << '\n';
      return 0;
    }
    auto take_value = [&](std::optional<std::string>& slot, const char* name) -> bool {
      const std::string prefix = std::string(name) + "=";
      if (a.rfind(prefix, 0) == 0) {
        slot = a.substr(prefix.size());
      } else if (i + 1 < args.size()) {
        slot = args[++i];
      } else {
        return false;
      }
      return !slot->empty();
    };
    if (a == "--config" || a.rfind("--config=", 0) == 0) {
      if (!take_value(p.config, "--config")) return usage_error(err, "--config needs a path");
    } else if (a == "--event" || a.rfind("--event=", 0) == 0) {
      if (!take_value(p.event, "--event")) return usage_error(err, "--event needs an event type");
    } else if (a == "--port" || a.rfind("--port=", 0) == 0) {
      if (!take_value(p.port, "--port")) return usage_error(err, "--port needs a number");
    } else if (a == "--secret" || a.rfind("--secret=", 0) == 0) {
      std::optional<std::string> secret;
      if (!take_value(secret, "--secret")) return usage_error(err, "--secret needs a value");
      p.secrets.push_back(*secret);
    } else if (a == "--scheme" || a.rfind("--scheme=", 0) == 0) {
      if (!take_value(p.scheme, "--scheme")) return usage_error(err, "--scheme needs a value");
    } else if (a == "--status" || a.rfind("--status=", 0) == 0) {
      if (!take_value(p.status, "--status")) return usage_error(err, "--status needs a number");
    } else if (a == "--url" || a.rfind("--url=", 0) == 0) {
      if (!take_value(p.url, "--url")) return usage_error(err, "--url needs http://HOST:PORT");
    } else if (a == "--token-file" || a.rfind("--token-file=", 0) == 0) {
      if (!take_value(p.token_file, "--token-file")) {
        return usage_error(err, "--token-file needs a path");
      }
    } else if (a == "--pid" || a.rfind("--pid=", 0) == 0) {
      if (!take_value(p.pid, "--pid")) return usage_error(err, "--pid needs a process id");
    } else if (a == "--since" || a.rfind("--since=", 0) == 0) {
      if (!take_value(p.since, "--since")) return usage_error(err, "--since needs a time");
    } else if (a == "--until" || a.rfind("--until=", 0) == 0) {
      if (!take_value(p.until, "--until")) return usage_error(err, "--until needs a time");
    } else if (a == "--dry-run") {
      p.dry_run = true;
    } else if (!a.empty() && a[0] == '-') {
      return usage_error(err, "unknown option '" + a + "'");
    } else {
      p.positional.push_back(a);
    }
  }

  if (p.command != "receive" && (p.port || !p.secrets.empty() || p.scheme || p.status)) {
    return usage_error(err, "--port, --secret, --scheme and --status are only for receive");
  }
  if ((p.url || p.token_file) && !is_admin_command(p.command)) {
    return usage_error(err,
                       "--url and --token-file are only for send-test, redeliver, reload, "
                       "recover, enable and disable");
  }
  if ((p.since || p.until) && p.command != "recover") {
    return usage_error(err, "--since and --until are only for recover");
  }
  const AdminOptions admin{p.config.value_or(kDefaultConfig), p.url, p.token_file};
  if (p.pid && p.command != "reload") return usage_error(err, "--pid is only for reload");
  if (p.dry_run && p.command != "reload") return usage_error(err, "--dry-run is only for reload");
  if (p.dry_run && p.pid) return usage_error(err, "--dry-run and --pid do not go together");
  if (p.command == "serve") {
    if (!p.positional.empty())
      return usage_error(err, "unexpected argument '" + p.positional[0] + "'");
    if (p.event) return usage_error(err, "--event is only for send-test");
    return run_serve(p.config.value_or(kDefaultConfig));
  }
  if (p.command == "check-config") {
    if (p.event) return usage_error(err, "--event is only for send-test");
    if (p.positional.size() > 1 || (p.positional.size() == 1 && p.config)) {
      return usage_error(err, "check-config takes one config path");
    }
    const auto path = p.positional.empty() ? p.config.value_or(kDefaultConfig) : p.positional[0];
    return config::run_check_config(path, out, err);
  }
  if (p.command == "send-test") {
    if (p.positional.size() != 1) return usage_error(err, "send-test needs one WEBHOOK_ID");
    if (!p.event) return usage_error(err, "send-test needs --event TYPE");
    return send_test(admin, p.positional[0], *p.event, out, err);
  }
  if (p.command == "redeliver") {
    if (p.positional.size() != 1) return usage_error(err, "redeliver needs one DELIVERY_ID");
    if (p.event) return usage_error(err, "--event is only for send-test");
    return redeliver(admin, p.positional[0], out, err);
  }
  if (p.command == "reload") {
    if (!p.positional.empty()) return usage_error(err, "reload takes no arguments");
    if (p.event) return usage_error(err, "--event is only for send-test");
    std::optional<pid_t> pid;
    if (p.pid) {
      int n = 0;
      const auto r = std::from_chars(p.pid->data(), p.pid->data() + p.pid->size(), n);
      if (r.ptr != p.pid->data() + p.pid->size() || n <= 1) {
        return usage_error(err, "--pid needs a process id, not '" + *p.pid + "'");
      }
      pid = n;
    }
    if (p.dry_run) return reload_dry_run(admin, out, err);
    return reload(admin, pid, out, err);
  }
  if (p.command == "recover") {
    if (p.positional.size() != 1) return usage_error(err, "recover needs one WEBHOOK_ID");
    if (p.event) return usage_error(err, "--event is only for send-test");
    if (!p.since) return usage_error(err, "recover needs --since T (an RFC 3339 time)");
    return recover(admin, p.positional[0], *p.since, p.until, out, err);
  }
  if (p.command == "enable" || p.command == "disable") {
    if (p.positional.size() != 1) return usage_error(err, p.command + " needs one WEBHOOK_ID");
    if (p.event) return usage_error(err, "--event is only for send-test");
    return set_webhook_enabled(admin, p.positional[0], p.command == "enable", out, err);
  }
  if (p.command == "gen-secret") {
    if (!p.positional.empty() || p.event || p.config) {
      return usage_error(err, "gen-secret takes no arguments");
    }
    return gen_secret(out, err);
  }
  if (p.command == "receive") return receive(p, out, err);
  return usage_error(err, "unknown command '" + p.command + "'");
}

}  // namespace relay::daemon
