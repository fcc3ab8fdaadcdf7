#include "relay/dispatcher/CircuitBreaker.hpp"

#include <gtest/gtest.h>

namespace relay::dispatcher {
namespace {

using namespace std::chrono_literals;

config::CircuitBreakerConfig cfg() {
  config::CircuitBreakerConfig c;
  c.failures = 3;
  c.cooldown = 1000ms;
  c.max_cooldown = 3000ms;
  return c;
}

const common::TimePoint t0{std::chrono::milliseconds(1'000'000)};

TEST(CircuitBreaker, OpensAfterConsecutiveFailuresOnly) {
  CircuitBreaker b;
  EXPECT_FALSE(b.on_failure(t0, cfg(), false));
  EXPECT_FALSE(b.on_failure(t0, cfg(), false));
  EXPECT_FALSE(b.is_open(cfg()));
  EXPECT_FALSE(b.on_success());  // closed: nothing to log
  EXPECT_EQ(b.consecutive_failures(), 0);
  EXPECT_FALSE(b.on_failure(t0, cfg(), false));
  EXPECT_FALSE(b.on_failure(t0, cfg(), false));
  EXPECT_TRUE(b.on_failure(t0, cfg(), false));
  EXPECT_TRUE(b.is_open(cfg()));
  EXPECT_EQ(b.open_until(cfg()), t0 + 1000ms);
}

TEST(CircuitBreaker, OneProbePerCooldownDoublingToTheMax) {
  CircuitBreaker b;
  for (int i = 0; i < 3; ++i) b.on_failure(t0, cfg(), false);
  EXPECT_FALSE(b.may_probe(t0 + 999ms, cfg()));
  EXPECT_TRUE(b.may_probe(t0 + 1000ms, cfg()));
  b.probe_started("dlv_1");
  EXPECT_FALSE(b.may_probe(t0 + 1000ms, cfg()));  // one at a time
  EXPECT_TRUE(b.is_probe("dlv_1"));
  EXPECT_FALSE(b.is_probe("dlv_2"));
  // The probe fails: 2 s, then 3 s (the max), then 3 s again.
  auto t = t0 + 1000ms;
  EXPECT_FALSE(b.on_failure(t, cfg(), true));
  EXPECT_EQ(b.open_until(cfg()), t + 2000ms);
  t += 2000ms;
  b.probe_started("dlv_1");
  b.on_failure(t, cfg(), true);
  EXPECT_EQ(b.open_until(cfg()), t + 3000ms);
  t += 3000ms;
  b.probe_started("dlv_1");
  b.on_failure(t, cfg(), true);
  EXPECT_EQ(b.open_until(cfg()), t + 3000ms);
  EXPECT_EQ(b.consecutive_failures(), 6);
}

TEST(CircuitBreaker, LateFailuresOfEarlierAttemptsDoNotPushTheProbeBack) {
  CircuitBreaker b;
  for (int i = 0; i < 3; ++i) b.on_failure(t0, cfg(), false);
  b.on_failure(t0 + 500ms, cfg(), false);  // started before the circuit opened
  EXPECT_EQ(b.open_until(cfg()), t0 + 1000ms);
  EXPECT_EQ(b.consecutive_failures(), 4);
}

TEST(CircuitBreaker, ASuccessfulProbeClosesAndResetsTheCooldown) {
  CircuitBreaker b;
  for (int i = 0; i < 3; ++i) b.on_failure(t0, cfg(), false);
  b.probe_started("dlv_1");
  b.on_failure(t0 + 1000ms, cfg(), true);  // cooldown now 2 s
  b.probe_started("dlv_1");
  EXPECT_TRUE(b.on_success());
  EXPECT_FALSE(b.is_open(cfg()));
  EXPECT_FALSE(b.probe_in_flight());
  EXPECT_EQ(b.open_until(cfg()), std::nullopt);
  // Opening again starts from the configured cooldown.
  for (int i = 0; i < 3; ++i) b.on_failure(t0 + 10s, cfg(), false);
  EXPECT_EQ(b.open_until(cfg()), t0 + 11s);
}

TEST(CircuitBreaker, RestoredOpenProbesAtOnce) {
  CircuitBreaker b(5);  // five failures recorded before a restart
  EXPECT_TRUE(b.is_open(cfg()));
  EXPECT_TRUE(b.may_probe(t0, cfg()));
  b.probe_started("dlv_9");
  EXPECT_FALSE(b.on_failure(t0, cfg(), true));  // already reported open
  EXPECT_EQ(b.open_until(cfg()), t0 + 1000ms);
}

TEST(CircuitBreaker, AbandonedProbeAllowsAnother) {
  CircuitBreaker b;
  for (int i = 0; i < 3; ++i) b.on_failure(t0, cfg(), false);
  b.probe_started("dlv_1");
  b.probe_abandoned();
  EXPECT_TRUE(b.may_probe(t0 + 1000ms, cfg()));
}

}  // namespace
}  // namespace relay::dispatcher
