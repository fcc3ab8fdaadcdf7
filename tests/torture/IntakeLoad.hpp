#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "EventLedger.hpp"

namespace relay::torture {

/// Concurrent intake clients, one keep-alive connection each, until stop() or until their
/// daemon dies. Each client first sends again what lost its answer, else posts a single event
/// (most often), a batch of 2 to 12, or a duplicate of an acked event; then it waits a random
/// think time so that intake stays below what the flaky receiver can take. Every event has a
/// fresh client-chosen id ("evt_c<cycle>_t<client>_<n>").
class IntakeLoad {
 public:
  IntakeLoad(EventLedger& ledger, std::uint16_t port, int clients, int cycle, std::uint64_t seed,
             std::chrono::milliseconds max_think);
  ~IntakeLoad();
  IntakeLoad(const IntakeLoad&) = delete;
  IntakeLoad& operator=(const IntakeLoad&) = delete;

  /// Asks every client to stop after its current request and joins them.
  void stop();
  /// Requests sent (including ones whose answer was lost) and lost answers so far.
  [[nodiscard]] std::size_t sent() const { return sent_; }
  [[nodiscard]] std::size_t lost() const { return lost_; }

 private:
  void run(int client, std::uint64_t seed);

  EventLedger& ledger_;
  std::uint16_t port_;
  int cycle_;
  std::chrono::milliseconds max_think_;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> sent_{0};
  std::atomic<std::size_t> lost_{0};
  std::vector<std::thread> threads_;
};

}  // namespace relay::torture
