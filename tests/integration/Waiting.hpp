#pragma once

#include <chrono>
#include <functional>
#include <thread>

#include "TestCerts.hpp"

namespace relay::testing {

/// Polls `condition` every 25 ms until it holds or `timeout` passes; returns its last value.
/// Bounds are generous on purpose: these are correctness tests on a shared 2-core machine.
inline bool wait_until(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return condition();
}

/// One test PKI per test binary (generating keys is the slow part).
inline const relay::test::TestCerts& test_certs() {
  static const relay::test::TestCerts certs;
  return certs;
}

}  // namespace relay::testing
