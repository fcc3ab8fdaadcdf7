#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "relay/common/Time.hpp"
#include "relay/config/Config.hpp"

namespace relay::dispatcher {

/// One webhook's circuit (SPEC §10), as a pure state machine over times it is given:
///
///   closed --`failures` consecutive failures--> open (until now + cooldown)
///   open   --open_until passed--> one probe may start (probe_started)
///   probe failed  --> open again, cooldown doubled (at most max_cooldown)
///   any success   --> closed, cooldown back to its configured value
///
/// Failures of attempts that were already under way when the circuit opened count towards
/// consecutive_failures but do not move open_until (only a probe's result does).
/// Not thread-safe: the dispatcher keeps one per webhook on its strand.
class CircuitBreaker {
 public:
  /// Starts closed, or open with a probe due at once when `consecutive_failures` (restored
  /// from the database at start-up) already reaches the threshold.
  CircuitBreaker() = default;
  explicit CircuitBreaker(int consecutive_failures) : failures_(consecutive_failures) {}

  /// True when this failure opened the circuit (log it).
  bool on_failure(common::TimePoint now, const config::CircuitBreakerConfig& cfg, bool was_probe);
  /// True when this success closed an open circuit (log it).
  bool on_success();

  [[nodiscard]] bool is_open(const config::CircuitBreakerConfig& cfg) const {
    return open_until_.has_value() || failures_ >= cfg.failures;
  }
  /// When the next probe may start; nullopt while closed.
  [[nodiscard]] std::optional<common::TimePoint> open_until(
      const config::CircuitBreakerConfig& cfg) const;
  /// Open, the cooldown has passed and no probe is under way.
  [[nodiscard]] bool may_probe(common::TimePoint now,
                               const config::CircuitBreakerConfig& cfg) const;
  void probe_started(std::string delivery_id) { probe_ = std::move(delivery_id); }
  [[nodiscard]] bool is_probe(const std::string& delivery_id) const {
    return probe_ && *probe_ == delivery_id;
  }
  /// The probe ended without a result (shutdown, webhook removed): another may start.
  void probe_abandoned() { probe_.reset(); }
  [[nodiscard]] bool probe_in_flight() const { return probe_.has_value(); }
  [[nodiscard]] int consecutive_failures() const { return failures_; }
  [[nodiscard]] std::chrono::milliseconds cooldown() const { return cooldown_; }

 private:
  int failures_ = 0;
  // Set once the circuit has opened in this process; a circuit restored open has none yet
  // (its first probe is due at once).
  std::optional<common::TimePoint> open_until_;
  std::chrono::milliseconds cooldown_{0};  // the current cooldown; 0 until the circuit first opens
  std::optional<std::string> probe_;
};

}  // namespace relay::dispatcher
