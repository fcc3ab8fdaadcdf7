#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "TestCerts.hpp"
#include "TestReceiver.hpp"

namespace relay::torture {

/// One request as the torture's receiver saw it, reduced to what the checks need (a long run
/// sees hundreds of thousands of requests, so bodies are kept once per delivery).
struct Received {
  std::string delivery_id;   // X-Relay-Delivery
  std::string webhook;       // from the path /hook/<webhook>
  std::string event_id;      // the payload's "id"; "" when the body is not a JSON object
  std::string event_header;  // X-Relay-Event
  bool signature_ok = false;
  bool same_body_as_first = true;  // the exact bytes of this delivery's first request
  int answer = 0;                  // status sent back; 0 = closed without an answer
  bool reused_connection = false;
};

/// A real HTTPS receiver (TestReceiver) for several webhooks at /hook/<id>, slow and flaky on
/// purpose until set_healthy(true): random delays of 0 to 300 ms, random 500/502/503, random
/// closes without an answer, and 503 always for events whose data has "doom": true. It checks
/// each request's signature with the webhook's secret as it arrives. Thread-safe.
class FlakyReceiver {
 public:
  FlakyReceiver(const relay::test::CertAndKey& certificate,
                std::map<std::string, std::string> secrets, std::uint64_t seed);
  ~FlakyReceiver();
  FlakyReceiver(const FlakyReceiver&) = delete;
  FlakyReceiver& operator=(const FlakyReceiver&) = delete;

  [[nodiscard]] std::string url(const std::string& webhook) const;
  void set_healthy(bool healthy) { healthy_ = healthy; }

  /// Waits until no connection is open (after a kill: every session of the dead process has
  /// ended, so every request it sent in full is recorded), then returns how many requests were
  /// received so far. False in `settled` when connections stayed open past `timeout`.
  std::size_t settle(std::chrono::milliseconds timeout, bool& settled);

  /// Requests [from, to) in arrival order.
  [[nodiscard]] std::vector<Received> range(std::size_t from, std::size_t to) const;
  [[nodiscard]] std::size_t size() const;
  /// The first body received for each delivery id.
  [[nodiscard]] std::map<std::string, std::string> first_bodies() const;
  /// Delivery ids whose request arrived while the receiver still owed (or had just begun to
  /// owe) an answer to an earlier request of the same delivery: one delivery attempted twice at
  /// once. The answer goes out `delay` after the earlier request's arrival, and relayd may only
  /// send again after it (or after the close), so any arrival before that is an overlap.
  [[nodiscard]] std::vector<std::string> overlapping() const;

 private:
  relay::test::Reply on_request(const relay::test::RecordedRequest& request);

  std::map<std::string, std::string> secrets_;
  std::atomic<bool> healthy_{false};
  std::mt19937_64 rng_;  // only used on the receiver's thread

  mutable std::mutex mutex_;
  std::vector<Received> log_;                        // guarded by mutex_
  std::map<std::string, std::string> first_bodies_;  // guarded by mutex_
  std::size_t forgotten_ = 0;                        // TestReceiver records already cleared
  // guarded by mutex_: when the answer to each delivery's latest request goes out
  std::map<std::string, std::chrono::steady_clock::time_point> answer_due_;
  std::vector<std::string> overlapping_;  // guarded by mutex_

  // Last: its thread calls on_request until it is destroyed.
  std::unique_ptr<relay::test::TestReceiver> receiver_;
};

}  // namespace relay::torture
