#include "relay/dispatcher/CircuitBreaker.hpp"

#include <algorithm>

namespace relay::dispatcher {

bool CircuitBreaker::on_failure(common::TimePoint now, const config::CircuitBreakerConfig& cfg,
                                bool was_probe) {
  ++failures_;
  if (was_probe) probe_.reset();
  if (open_until_) {
    if (was_probe) {
      cooldown_ = std::min(cooldown_ * 2, std::max(cfg.max_cooldown, cfg.cooldown));
      open_until_ = now + cooldown_;
    }
    return false;
  }
  if (failures_ < cfg.failures) return false;
  // Opens now, or a circuit restored open at start-up saw its first probe fail (already
  // logged as open then).
  cooldown_ = cfg.cooldown;
  open_until_ = now + cooldown_;
  return !was_probe;
}

bool CircuitBreaker::on_success() {
  probe_.reset();
  const bool was_open = open_until_.has_value();
  open_until_.reset();
  cooldown_ = std::chrono::milliseconds(0);
  failures_ = 0;
  return was_open;
}

std::optional<common::TimePoint> CircuitBreaker::open_until(
    const config::CircuitBreakerConfig& cfg) const {
  if (open_until_) return open_until_;
  if (failures_ >= cfg.failures) return common::TimePoint{};  // restored open: probe now
  return std::nullopt;
}

bool CircuitBreaker::may_probe(common::TimePoint now,
                               const config::CircuitBreakerConfig& cfg) const {
  const auto until = open_until(cfg);
  return until && now >= *until && !probe_;
}

}  // namespace relay::dispatcher
