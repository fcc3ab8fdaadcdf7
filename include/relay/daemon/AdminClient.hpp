#pragma once

#include <iosfwd>
#include <optional>
#include <string>

namespace relay::daemon {

struct AdminReply {
  int status = 0;
  std::string body;
};

/// One request to the running daemon's admin API at server.listen of the config at
/// `config_path`, with its bearer token. Throws std::runtime_error with a one-line reason.
AdminReply admin_request(const std::string& config_path, const std::string& method,
                         const std::string& target, const std::string& body);

/// `relayd send-test`: prints the attempt (status, latency, body); 0 when it got a 2xx.
int send_test(const std::string& config_path, const std::string& webhook_id,
              const std::string& event_type, std::ostream& out, std::ostream& err);

/// `relayd redeliver`: 0 when the daemon queued the delivery again.
int redeliver(const std::string& config_path, const std::string& delivery_id, std::ostream& out,
              std::ostream& err);

}  // namespace relay::daemon
