#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace relay::daemon {

/// `relayd receive`: a local HTTP receiver for trying a webhook during development.
struct ReceiveOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port (printed at start)
  /// Secrets the receiver holds; a request verifies when any of them matches (a receiver in
  /// the middle of a rotation holds two).
  std::vector<std::string> secrets;
  enum class Scheme { kAuto, kRelay, kStandard };
  /// kAuto: Standard Webhooks when the request has webhook-signature, else X-Relay-Signature.
  Scheme scheme = Scheme::kAuto;
  int status = 200;  // the answer to every request (try retries with 500, give-ups with 400)
};

/// Listens until SIGINT or SIGTERM, verifies each request and prints one block per request to
/// `out` (never the secret). Returns 0 on a signal, 1 when the port cannot be bound.
int run_receive(const ReceiveOptions& options, std::ostream& out, std::ostream& err);

}  // namespace relay::daemon
