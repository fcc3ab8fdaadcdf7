#pragma once

#include <sys/types.h>

#include <iosfwd>
#include <optional>
#include <string>

namespace relay::daemon {

struct AdminReply {
  int status = 0;
  std::string body;
};

/// Where the admin sub-commands find the running daemon: `--config` (only server.listen,
/// server.token_file and server.tls_cert are read from it — never a webhook, so a secret's
/// variable unset in the operator's shell does not matter), overridden by `--url` and
/// `--token-file` (SPEC §1).
struct AdminOptions {
  std::string config_path;
  std::optional<std::string> url;         // http://HOST:PORT
  std::optional<std::string> token_file;  // the bearer token, one word
};

/// The resolved address and token.
struct AdminTarget {
  std::string host;  // to connect to (a wildcard listener becomes loopback)
  std::string port;
  std::string token;  // empty: send no Authorization header
};

/// Resolves `options` into a target. Throws std::runtime_error with one line naming the file or
/// key at fault (never the token).
AdminTarget resolve_admin_target(const AdminOptions& options);

/// One request to the daemon. Throws std::runtime_error with a one-line reason.
AdminReply admin_request(const AdminTarget& target, const std::string& method,
                         const std::string& path, const std::string& body);

/// `relayd send-test`: prints the attempt (status, latency, body); 0 when it got a 2xx.
int send_test(const AdminOptions& options, const std::string& webhook_id,
              const std::string& event_type, std::ostream& out, std::ostream& err);

/// `relayd redeliver`: 0 when the daemon queued the delivery again.
int redeliver(const AdminOptions& options, const std::string& delivery_id, std::ostream& out,
              std::ostream& err);

/// `relayd reload`: 0 once the daemon applied the file; 1 with each of its problems when it
/// rejected it (the previous config stays in effect). With `pid` (the unit passes $MAINPID), a
/// token the daemon refuses — the token file changed since its last reload — is handled by
/// SIGHUP to `pid` and waiting up to 10 s for the new token to be accepted.
int reload(const AdminOptions& options, std::optional<pid_t> pid, std::ostream& out,
           std::ostream& err);

/// `relayd recover`: 0 with the number recovered printed.
int recover(const AdminOptions& options, const std::string& webhook_id, const std::string& since,
            const std::optional<std::string>& until, std::ostream& out, std::ostream& err);

/// `relayd enable` / `relayd disable`: 0 with the webhook's state printed.
int set_webhook_enabled(const AdminOptions& options, const std::string& webhook_id, bool enable,
                        std::ostream& out, std::ostream& err);

/// `relayd reload --dry-run`: prints what reloading the daemon's config file would change
/// (webhooks added, removed, changed, paused, resumed; deliveries affected; keys that need a
/// restart) and applies nothing. 0 when the daemon would accept the file, 1 with its problems
/// when it would reject it.
int reload_dry_run(const AdminOptions& options, std::ostream& out, std::ostream& err);

/// `relayd gen-secret`: prints "whsec_" + base64 of 32 random bytes (OpenSSL RAND_bytes).
int gen_secret(std::ostream& out, std::ostream& err);

}  // namespace relay::daemon
