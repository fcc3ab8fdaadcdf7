#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "SoakLedger.hpp"
#include "TestCerts.hpp"

namespace relay::soak {

/// The HTTPS webhook receiver of the soak, on 127.0.0.1 with a kernel-chosen port and its own
/// thread. Keeps connections alive and answers by path: /fast 200 at once, /slow 200 after
/// `slow_delay`, /fail 500, /hang reads the request and never answers (relayd's attempt
/// timeout ends it). Records each request in the ledger and nothing else, so its memory stays
/// flat however long it runs. The constructor throws when it cannot listen.
class SoakReceiver {
 public:
  SoakReceiver(const relay::test::CertAndKey& certificate, SoakLedger& ledger,
               std::chrono::milliseconds slow_delay);
  ~SoakReceiver();
  SoakReceiver(const SoakReceiver&) = delete;
  SoakReceiver& operator=(const SoakReceiver&) = delete;

  [[nodiscard]] std::uint16_t port() const;
  /// "https://127.0.0.1:PORT/<path>".
  [[nodiscard]] std::string url(const std::string& path) const;
  /// Closes the listener and every connection, then joins the thread; idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace relay::soak
