#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "SoakLedger.hpp"

namespace relay::soak {

struct ClientOptions {
  std::uint16_t port = 0;     // relayd's intake on 127.0.0.1
  double rate = 2000;         // events per second, all connections together
  double duration_s = 60;     // how long requests are scheduled
  int connections = 64;       // keep-alive connections
  std::int64_t start_ns = 0;  // CLOCK_MONOTONIC time of request 0
};

/// Open-loop intake load on its own thread: event `seq` is due at start + seq/rate whatever
/// happened to earlier ones, and its latency counts from that due time (no coordinated
/// omission: a stalled relayd shows in the percentiles, not as a lower send rate). Each event is
/// a single POST /v1/events with the id "soak-<seq>", the type event_kind(seq) gives and a body
/// of 512–1,024 bytes. Every answer and failure goes to the ledger. Not copyable; join() must be
/// called before destruction (the destructor joins too).
class OpenLoopClient {
 public:
  OpenLoopClient(ClientOptions options, SoakLedger& ledger);
  ~OpenLoopClient();
  OpenLoopClient(const OpenLoopClient&) = delete;
  OpenLoopClient& operator=(const OpenLoopClient&) = delete;

  /// Waits until every scheduled request was answered or failed.
  void join();
  /// Requests scheduled so far (the events that were due).
  [[nodiscard]] std::uint64_t scheduled() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace relay::soak
