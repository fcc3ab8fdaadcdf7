#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "BenchCommon.hpp"

namespace relay::soak {

/// The webhooks of the soak config, in the order of their bit in the ledger.
enum class Hook : std::uint8_t { kFast = 0, kSlow = 1, kFail = 2, kRefused = 3, kHang = 4 };
constexpr std::size_t kHookCount = 5;
const char* hook_name(Hook hook);

/// What the load sends for event number `seq` (a fixed mix, see SoakMain.cpp): the event type
/// and the healthy webhooks (bit 0 fast, bit 1 slow) that must receive it.
struct EventKind {
  const char* type;
  std::uint8_t healthy_mask;
};
EventKind event_kind(std::uint64_t seq);

/// Everything observed during one sampling window, from the outside of relayd.
struct WindowStats {
  relay::bench::LatencyHistogram intake;  // due time of the request → its answer
  relay::bench::LatencyHistogram e2e;     // 202 read by the client → receipt (healthy hooks)
  std::uint64_t sent = 0;
  std::uint64_t acked = 0;                           // 2xx answers
  std::uint64_t non_2xx = 0;                         // any other status
  std::map<unsigned, std::uint64_t> statuses;        // non-2xx by status
  std::uint64_t transport_errors = 0;                // connect / write / read failures, timeouts
  std::array<std::uint64_t, kHookCount> requests{};  // requests the receiver got, per hook
  std::uint64_t healthy_due = 0;        // healthy deliveries owed for the events acked here
  std::uint64_t healthy_delivered = 0;  // first 2xx receipt of an acked (event, healthy hook)
  std::uint64_t duplicates = 0;         // a healthy hook got the same event again
  std::uint64_t before_ack = 0;         // receipt came before the client read the 202
  std::uint64_t unacked = 0;            // receipt of an event whose request got no 2xx
};

/// Shared by the load generator and the receiver (two threads): counts what happened per
/// window, and keeps which healthy deliveries of acked events are still owed, so that the
/// backlog seen from outside and the end-to-end latency need no log join afterwards.
/// Thread-safe (one mutex; a few thousand calls per second).
class SoakLedger {
 public:
  /// `capacity`: an upper bound on the event numbers the load will use.
  explicit SoakLedger(std::uint64_t capacity);

  void on_sent();
  /// An answer to the request carrying event `seq`; `now_ns` is CLOCK_MONOTONIC.
  void on_answer(std::uint64_t seq, unsigned status, std::int64_t latency_ns, std::int64_t now_ns);
  /// The request carrying event `seq` failed without an answer (the event may still have been
  /// stored: then its deliveries arrive unacked, which is allowed).
  void on_transport_error(std::uint64_t seq);
  /// A request that reached the receiver for `hook`; `seq` < 0 when the body had no soak id.
  void on_receipt(Hook hook, std::int64_t seq, std::int64_t now_ns);

  /// Returns the window so far and starts a new one.
  WindowStats take_window();
  /// Healthy deliveries of acked events that the receiver has not seen yet.
  [[nodiscard]] std::uint64_t healthy_outstanding() const;
  /// Totals since the start.
  [[nodiscard]] std::uint64_t acked_total() const;
  [[nodiscard]] std::uint64_t healthy_expected_total() const;
  /// Up to `max` events that were acked but still miss a healthy receipt.
  [[nodiscard]] std::vector<std::uint64_t> missing(std::size_t max) const;

 private:
  static constexpr std::uint8_t kAcked = 0x80;
  static constexpr std::uint8_t kNotAcked = 0x40;  // the request failed or got a non-2xx
  static constexpr std::uint8_t kHookBits = 0x3F;

  mutable std::mutex mutex_;
  WindowStats window_;
  // Per event number: kAcked | bits of the healthy hooks that got it. One byte per event keeps
  // a 30-minute run at ~4 MB and lets duplicates be told from first receipts.
  std::vector<std::uint8_t> state_;
  std::unordered_map<std::uint64_t, std::int64_t> ack_ns_;  // acked events still owed a receipt
  std::uint64_t outstanding_ = 0;
  std::uint64_t acked_total_ = 0;
  std::uint64_t expected_total_ = 0;
};

}  // namespace relay::soak
